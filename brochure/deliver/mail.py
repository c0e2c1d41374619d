"""Email a packet with the standard library, encrypted in transit, and optionally the PDF itself.

The connection is always encrypted (STARTTLS, or TLS from the start on
port 465 style servers) with the server's certificate verified; there is no
plaintext fallback, and the login happens only after TLS. Subject and body
come from overridable templates (templates/email/, templates/email/LANG/ for
another language: see `email_language`); the defaults name no treatment and
greet the patient by first name only. Sending an unencrypted
PDF needs the patient's recorded consent; --encrypt protects it with AES-256
and a random passphrase that staff give the patient by phone or in person.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brochure.base.errors import BrochureError
from brochure.deliver import rules
from brochure.deliver.packet import Packet
from brochure.deliver.patient import Patient
from brochure.deliver.settings import MachineSettings, load_settings, smtp_password

ATTACHMENT_NAME = "handout.pdf"
#: Letters and digits that cannot be mistaken for one another when read out.
PASSPHRASE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
PASSPHRASE_GROUPS = 3  # of four characters: 'abcd-efgh-jkmn', about 60 bits
TIMEOUT = 30
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)

if TYPE_CHECKING:
    from brochure.deliver.record import Delivery
    from brochure.document.emails import EmailTemplates, FollowUpEmail
    from brochure.project.model import Project


class MailError(BrochureError):
    """An email could not be sent or written; the message says whether anything left.

    ``refused`` is set when the mail server refused this message or its address (a 5xx answer):
    trying the same again will not help, unlike a server that cannot be reached."""

    refused = False


def _refused(error: MailError) -> MailError:
    error.refused = True
    return error


@dataclass(frozen=True)
class EmailResult:
    """What was done: the passphrase to give the patient (when encrypted), the draft's file, the address."""

    passphrase: str | None
    draft_path: Path | None
    to: str
    #: The language the email's subject and body are in ("es"); its Content-Language.
    language: str = "en"


def check_address(address: str) -> str:
    """The address, stripped; MailError when it is not one plain address (the value is not repeated)."""
    address = (address or "").strip()
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise MailError.at(
            None, None, "the email address is not valid", "type one address such as name@example.com"
        )
    return address


def new_passphrase() -> str:
    """A random passphrase from `secrets`, easy to read out: three groups of four characters."""
    groups = [
        "".join(secrets.choice(PASSPHRASE_ALPHABET) for _ in range(4)) for _ in range(PASSPHRASE_GROUPS)
    ]
    return "-".join(groups)


def encrypt_pdf(pdf: bytes, passphrase: str) -> bytes:
    """``pdf`` under AES-256 (R=6): opening it takes ``passphrase``; screen readers may still read it."""
    import io

    import pikepdf

    owner = secrets.token_urlsafe(24)
    permissions = pikepdf.Permissions(accessibility=True, extract=False, modify_other=False)
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as document:
        document.save(
            out, encryption=pikepdf.Encryption(owner=owner, user=passphrase, R=6, allow=permissions)
        )
    return out.getvalue()


def check_language(project: Project, language: str | None) -> str | None:
    """``language`` when it is one of the project's languages (or None: not chosen); MailError if not."""
    from brochure.document.emails import languages

    if language is None or project is None:
        return language
    offered = languages(project)
    if language not in offered:
        raise MailError.at(
            None,
            None,
            f"the project has no language {language!r} for the email: nothing was sent",
            f"choose one of {', '.join(offered)}",
        )
    return language


def email_language(project: Project, names: list[str], chosen: str | None = None) -> str:
    """The language an email of the handouts ``names`` is meant to go in: the one chosen, else the
    handouts' language when they share one, else (a packet of several languages) the project's own.
    Whether it has templates of its own is `brochure.document.emails.templates_for`'s question."""
    if chosen:
        return chosen
    if project is None:
        return "en"
    from brochure.project.model import select

    langs = {doc.lang for doc in select(project, names)}
    return langs.pop() if len(langs) == 1 else project.settings.source_lang


def _templates(project: Project) -> Any:  # noqa: ANN001, ANN401 - a Jinja environment
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from brochure.base.paths import builtin_dir
    from brochure.document.templates import search_path

    folders = search_path(project.root, "templates") if project is not None else [builtin_dir("templates")]
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def sender_domain(sender: str) -> str | None:
    """The domain of a sender's address ("clinic.test" of "Clinic <desk@clinic.test>"), for a
    Message-ID; None when it has none."""
    return sender.rpartition("@")[2].rstrip(">") if "@" in sender else None


def _render(
    project: Project, found: EmailTemplates, context: dict[str, Any], where: str
) -> tuple[str, str, str]:  # noqa: ANN001
    """An email's subject (one line), text body and HTML body from its three templates; MailError
    naming the template and its line when one is wrong."""
    import jinja2

    env = _templates(project)
    try:
        subject = " ".join(env.get_template(found.name("subject.txt")).render(context).split())
        text = env.get_template(found.name("body.txt")).render(context).strip() + "\n"
        html = env.get_template(found.name("body.html")).render(context)
    except jinja2.TemplateError as exc:
        name = getattr(exc, "name", None) or getattr(exc, "filename", None) or where
        raise MailError.at(
            name, getattr(exc, "lineno", None), f"email template error: {exc}", "fix it"
        ) from None
    return subject, text, html


def _message(subject: str, sender: str, to: str, text: str, html: str) -> EmailMessage:
    """The message with its headers and its two bodies (text, and HTML as the alternative)."""
    message = EmailMessage()
    message["Subject"] = subject
    if sender:
        message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender_domain(sender))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def compose_message(
    packet: Packet,
    patient: Patient | None,
    *,
    to: str,
    sender: str,
    encrypted: bool,
    project=None,  # noqa: ANN001
    language: str | None = None,
) -> EmailMessage:
    """The email: subject and bodies from templates/email/ (or templates/email/LANG/ for the email's
    language, see `email_language`), the PDF attached as handout.pdf. The message's Content-Language
    says the language its text is in."""

    from brochure.base.paths import builtin_dir
    from brochure.document.emails import templates_for

    titles = []
    names = [name for name, _ in packet.documents]
    if project is not None:
        from brochure.project.model import select

        titles = [doc.title for doc in select(project, names)]
    wanted = email_language(project, names, check_language(project, language))
    found = templates_for(project.root if project is not None else builtin_dir("templates").parent, wanted)
    context = {
        "lang": found.lang,
        "first_name": patient.first_name if patient else "",
        "clinic_name": project.brand.clinic_name if project is not None else "",
        "phone": (project.brand.contact.get("phone") or "") if project is not None else "",
        "documents": titles,
        "encrypted": encrypted,
    }
    subject, text, html = _render(project, found, context, "templates/email/")
    message = _message(subject or "Your handout", sender, to, text, html)
    message.add_attachment(packet.pdf, maintype="application", subtype="pdf", filename=ATTACHMENT_NAME)
    # After the parts: making them moves a message's Content- headers into its first part.
    message["Content-Language"] = found.lang
    return message


def compose_follow_up(
    project: Project,
    email: FollowUpEmail,
    delivery: Delivery,
    *,
    settings: MachineSettings,
    message_id: str | None = None,
) -> EmailMessage:
    """A follow-up email (see brochure.deliver.followups) to the address ``delivery`` went to: its
    subject and bodies from the follow-up's templates, in their language, without attachment. The
    templates get the patient's first name, the handouts' titles, the review visit's date
    (``review_on``) and the clinic's name, phone and booking address; never the treatment."""

    from brochure.deliver.patient import follow_up_date
    from brochure.document.messages import long_date
    from brochure.project.model import documents

    sender = settings.smtp_sender or settings.smtp_user
    if not sender:
        raise MailError.at(
            str(settings.file), None, "no sender address set: nothing was sent", "set [smtp] sender"
        )
    names = [name for name, *_rest in delivery.documents]
    docs = [doc for doc in documents(project) if doc.name in names]  # a handout since removed is left out
    lang = email.templates.lang
    treated = delivery.patient.get("treated_on")
    review = (
        follow_up_date(project, [d.name for d in docs], dt.date.fromisoformat(treated)) if treated else None
    )
    contact = project.brand.contact
    context = {
        "lang": lang,
        "first_name": delivery.patient_name.split()[0] if delivery.patient_name.split() else "",
        "clinic_name": project.brand.clinic_name,
        "phone": contact.get("phone") or "",
        "booking_url": contact.get("booking_url") or "",
        "documents": [doc.title for doc in docs],
        "review_on": long_date(review, lang, "full") if review else "",
    }
    subject, text, html = _render(project, email.templates, context, email.shown)
    message = _message(
        subject or project.brand.clinic_name, sender, check_address(delivery.target), text, html
    )
    if message_id:
        message.replace_header("Message-ID", message_id)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    message["Content-Language"] = lang
    return message


def email_packet(
    packet: Packet,
    patient: Patient | None,
    *,
    to: str,
    encrypt: bool = False,
    consented: bool = False,
    draft: bool = False,
    settings: MachineSettings | None = None,
    project=None,  # noqa: ANN001
    language: str | None = None,
) -> EmailResult:
    """Send ``packet`` to ``to`` (or, with ``draft``, write it as an .eml file in the private drafts folder).

    ``language`` is the language the patient chose for the email (None: the handouts' own, see
    `email_language`). Raises MailError, saying that nothing was sent, when the rule or the
    connection fails.
    """
    to = check_address(to)
    check_language(project, language)
    if refused := rules.consent_problem(encrypt, consented):
        raise MailError.at(None, None, f"{refused.message}: nothing was sent", refused.fix)
    settings = settings or load_settings()
    passphrase = new_passphrase() if encrypt else None
    if passphrase:
        packet = Packet(
            encrypt_pdf(packet.pdf, passphrase),
            packet.pages,
            packet.documents,
            packet.review_due,
            packet.paper,
            packet.personalised,
        )
    sender = settings.smtp_sender or settings.smtp_user
    message = compose_message(
        packet, patient, to=to, sender=sender, encrypted=encrypt, project=project, language=language
    )
    lang = str(message["Content-Language"])
    if draft:
        del message["From"]
        message["X-Unsent"] = "1"
        return EmailResult(passphrase, write_draft(message, settings.drafts_folder), to, lang)
    if not sender:
        raise MailError.at(
            str(settings.file), None, "no sender address set: nothing was sent", "set [smtp] sender"
        )
    send(message, settings)
    return EmailResult(passphrase, None, to, lang)


def write_draft(message: EmailMessage, folder: Path) -> Path:
    """Write ``message`` as an .eml file (CRLF lines) into ``folder``, which is made private (0700)."""
    from email import policy

    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = folder / f"handout-{stamp}-{secrets.token_hex(3)}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(message.as_bytes(policy=policy.SMTP))
    except OSError as exc:
        raise MailError.at(
            str(folder), None, f"cannot write the draft: {exc.strerror or exc}", "check [drafts] path"
        ) from None
    return path


def tls_context(settings: MachineSettings) -> ssl.SSLContext:
    """A context that verifies the server's certificate (against cafile when set)."""
    try:
        return ssl.create_default_context(cafile=str(settings.smtp_cafile) if settings.smtp_cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise MailError.at(
            str(settings.file),
            None,
            f"smtp.cafile cannot be used: {exc}",
            "name a PEM file of CA certificates",
        ) from None


def send(message: EmailMessage, settings: MachineSettings) -> None:
    """Send over TLS, log in after TLS when a user is set; MailError (nothing sent) on any failure."""
    host, port = settings.smtp_host, settings.port
    if not host:
        raise MailError.at(
            str(settings.file),
            None,
            "no mail server set: nothing was sent",
            "set [smtp] host, or use --draft",
        )
    where = f"{host}:{port}"
    context = tls_context(settings)
    password = smtp_password(settings) if settings.smtp_user else None
    if settings.smtp_user and not password:
        raise MailError.at(
            None,
            None,
            f"no password for the mail user {settings.smtp_user!r}: nothing was sent",
            "set BROCHURE_SMTP_PASSWORD, or store it in the keyring (see README, 'Email')",
        )
    nothing = "nothing was sent"
    try:
        if settings.smtp_tls == "implicit":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        else:
            connection = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with connection:
            if settings.smtp_tls != "implicit":
                connection.ehlo()
                try:
                    connection.starttls(context=context)  # always: never a plaintext fallback
                except smtplib.SMTPNotSupportedError:
                    raise MailError.at(
                        None,
                        None,
                        f"the mail server {where} does not offer STARTTLS (encryption): {nothing}",
                        "ask IT for the server's TLS settings; brochure never sends unencrypted",
                    ) from None
                connection.ehlo()
            if settings.smtp_user:
                connection.login(settings.smtp_user, password or "")
            connection.send_message(message)
    except MailError:
        raise
    except smtplib.SMTPNotSupportedError:
        raise MailError.at(
            None,
            None,
            f"the mail server {where} does not offer a login (AUTH) over TLS: {nothing}",
            "check smtp.tls and smtp.port, or remove smtp.user if the server needs no login",
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise MailError.at(
            None,
            None,
            f"the mail server {where} has a certificate that could not be verified ({exc.verify_message}): "
            f"{nothing}",
            "check smtp.host, or set smtp.cafile to the CA that signed the server's certificate",
        ) from None
    except ssl.SSLError as exc:
        raise MailError.at(
            None, None, f"TLS with the mail server {where} failed ({exc.reason}): {nothing}", "check smtp.tls"
        ) from None
    except smtplib.SMTPAuthenticationError:
        raise MailError.at(
            None,
            None,
            f"the mail server {where} refused the login: {nothing}",
            "check smtp.user and the password",
        ) from None
    except smtplib.SMTPRecipientsRefused:
        raise _refused(
            MailError.at(
                None, None, f"the mail server {where} refused the address: {nothing}", "check the address"
            )
        ) from None
    except smtplib.SMTPResponseException as exc:
        error = MailError.at(
            None, None, f"the mail server {where} answered {exc.smtp_code}: {nothing}", "try again, or ask IT"
        )
        raise (_refused(error) if 500 <= exc.smtp_code < 600 else error) from None
    except (smtplib.SMTPException, OSError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise MailError.at(
            None,
            None,
            f"cannot reach the mail server {where} ({reason}): {nothing}",
            "check smtp.host and port",
        ) from None
