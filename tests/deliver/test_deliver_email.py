"""Emailing a packet to real aiosmtpd servers: STARTTLS with a verified certificate, or nothing is sent."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner
from conftest import REPO
from pypdf import PdfReader
from servers import SMTP_PASSWORD, SMTP_USER

from brochure.cli.main import cli
from brochure.deliver import MailError, check_patient, email_packet, load_settings, personalise
from brochure.deliver.mail import PASSPHRASE_ALPHABET, new_passphrase
from brochure.project.model import load_project

NAME = "Zelda Quistorp"


@pytest.fixture(scope="module")
def sample():
    return load_project(REPO)


@pytest.fixture(scope="module")
def packet(sample):
    patient = check_patient(sample, {"name": NAME, "injector": "Dana Smith", "treatment": "Botox"})
    return personalise(sample, ["aftercare"], patient), patient


def settings_for(server, tmp_path: Path, monkeypatch, *, cafile: Path | None = None, tls: str = "starttls"):
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[smtp]\nhost = "{server.host}"\nport = {server.port}\nuser = "{SMTP_USER}"\n'
        f'sender = "Test Clinic <desk@clinic.test>"\ncafile = "{cafile or server.cafile}"\ntls = "{tls}"\n'
        f'[record]\npath = "{tmp_path / "record.sqlite"}"\n[drafts]\npath = "{tmp_path / "drafts"}"\n'
    )
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    monkeypatch.setenv("BROCHURE_SMTP_PASSWORD", SMTP_PASSWORD)
    return load_settings()


def attachment(message) -> bytes:  # noqa: ANN001
    (part,) = [p for p in message.iter_attachments()]
    assert part.get_filename() == "handout.pdf"
    assert part.get_content_type() == "application/pdf"
    return part.get_content()


def test_email_arrives_over_starttls_with_the_pdf_and_no_name_in_the_subject(
    smtp_server, packet, sample, tmp_path, monkeypatch
):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    result = email_packet(
        packet[0], packet[1], to="zq@example.org", consented=True, settings=settings, project=sample
    )
    assert result.passphrase is None
    assert result.draft_path is None
    (message,) = smtp_server.messages
    assert smtp_server.logins == [SMTP_USER]  # logged in, which the server allows only after TLS
    assert message["To"] == "zq@example.org"
    assert message["Subject"] == "Your handout from Example Aesthetics Clinic"
    assert "Zelda" not in message["Subject"]
    assert "Botox" not in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert body.startswith("Hello Zelda,")
    assert "Quistorp" not in body  # first name only
    assert "Aftercare: what to expect" in body
    html = message.get_body(("html",)).get_content()
    assert "Hello Zelda," in html
    pdf = attachment(message)
    (page,) = PdfReader(io.BytesIO(pdf)).pages
    assert NAME in " ".join(page.extract_text().split())


def test_implicit_tls_port_465_style(smtp_implicit_server, packet, sample, tmp_path, monkeypatch):
    smtp_implicit_server.reset()
    settings = settings_for(smtp_implicit_server, tmp_path, monkeypatch, tls="implicit")
    email_packet(packet[0], packet[1], to="zq@example.org", consented=True, settings=settings, project=sample)
    assert len(smtp_implicit_server.messages) == 1


def test_a_server_without_starttls_gets_nothing(smtp_plain_server, packet, tmp_path, monkeypatch):
    smtp_plain_server.reset()
    settings = settings_for(smtp_plain_server, tmp_path, monkeypatch)
    with pytest.raises(MailError) as caught:
        email_packet(packet[0], packet[1], to="zq@example.org", consented=True, settings=settings)
    assert "does not offer STARTTLS (encryption): nothing was sent" in str(caught.value)
    assert smtp_plain_server.messages == []
    assert smtp_plain_server.envelopes == []
    assert smtp_plain_server.logins == []


def test_a_certificate_from_an_unknown_ca_is_refused(
    smtp_server, other_ca_file, packet, tmp_path, monkeypatch
):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch, cafile=other_ca_file)
    with pytest.raises(MailError) as caught:
        email_packet(packet[0], packet[1], to="zq@example.org", consented=True, settings=settings)
    assert "certificate that could not be verified" in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    assert smtp_server.messages == []
    assert smtp_server.logins == []


def test_unencrypted_needs_consent(smtp_server, packet, tmp_path, monkeypatch):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    with pytest.raises(MailError, match="only be emailed with the patient's consent"):
        email_packet(packet[0], packet[1], to="zq@example.org", settings=settings)
    result = CliRunner().invoke(
        cli, ["email", "aftercare", "--project", str(REPO), "--to", "zq@example.org", "--patient", NAME, "-y"]
    )
    assert result.exit_code == 1
    assert "Error: an unencrypted PDF may only be emailed with the patient's consent" in result.output
    assert smtp_server.messages == []


def test_encrypted_attachment_opens_only_with_its_passphrase_and_stays_accessible(
    smtp_server, packet, sample, tmp_path, monkeypatch
):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    result = email_packet(packet[0], packet[1], to="zq@example.org", encrypt=True, settings=settings)
    passphrase = result.passphrase
    assert passphrase
    assert len(passphrase.replace("-", "")) >= 10
    assert set(passphrase.replace("-", "")) <= set(PASSPHRASE_ALPHABET)
    (message,) = smtp_server.messages
    assert passphrase not in message.as_string()
    pdf = attachment(message)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(pdf))
    with pikepdf.open(io.BytesIO(pdf), password=passphrase) as opened:
        assert opened.encryption.R == 6  # AES-256
        assert opened.allow.accessibility
        assert not opened.allow.extract
        assert "/StructTreeRoot" in opened.Root
    if shutil.which("qpdf"):  # a second opinion, where qpdf's command is installed
        path = tmp_path / "check.pdf"
        path.write_bytes(pdf)
        shown = subprocess.run(
            ["qpdf", f"--password={passphrase}", "--show-encryption", str(path)],
            capture_output=True,
            text=True,
        ).stdout
        assert "extract for accessibility: allowed" in shown
    assert new_passphrase() != new_passphrase()


def test_draft_is_a_private_eml_marked_unsent(packet, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("BROCHURE_SETTINGS", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text(f'[drafts]\npath = "{tmp_path / "drafts"}"\n')
    result = email_packet(
        packet[0],
        packet[1],
        to="zq@example.org",
        encrypt=True,
        draft=True,
        settings=load_settings(),
        project=sample,
    )
    path = result.draft_path
    assert path.parent == tmp_path / "drafts"
    assert path.suffix == ".eml"
    assert "Zelda" not in path.name
    assert "Quistorp" not in path.name
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    raw = path.read_bytes()
    assert b"\r\n" in raw
    message = message_from_bytes(raw, policy=policy.default)
    assert message["X-Unsent"] == "1"
    assert message["From"] is None
    assert message["To"] == "zq@example.org"
    with pikepdf.open(io.BytesIO(attachment(message)), password=result.passphrase):
        pass


def test_email_command_end_to_end_records_and_shows_the_passphrase_once(smtp_server, tmp_path, monkeypatch):
    smtp_server.reset()
    settings_for(smtp_server, tmp_path, monkeypatch)
    args = ["email", "aftercare", "results", "--project", str(REPO), "--to", "zq@example.org", "--encrypt"]
    args += [
        "--patient",
        NAME,
        "--injector",
        "Luis Ortega",
        "--treated-on",
        dt.date.today().isoformat(),
        "-y",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Sent 2 pages (encrypted)." in result.output
    assert "Passphrase for the PDF: " in result.output
    assert NAME not in result.output
    (message,) = smtp_server.messages
    assert (
        len(
            PdfReader(
                io.BytesIO(attachment(message)), password=result.output.split("PDF: ")[1].split()[0]
            ).pages
        )
        == 2
    )
    # The same again within minutes asks first; without a terminal, --yes is needed.
    again = CliRunner().invoke(cli, [a for a in args if a != "-y"])
    assert again.exit_code == 1
    assert "the address was not confirmed" in again.output or "min ago" in again.output
    history = CliRunner().invoke(cli, ["history", "--project", str(REPO), "--patient", "quist"])
    assert history.exit_code == 0
    assert NAME in history.output
    assert "email" in history.output
    assert "aftercare, results" in history.output


def test_password_from_the_keyring(smtp_server, packet, tmp_path, monkeypatch):
    import keyring
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1
        stored: dict = {}

        def get_password(self, service, username):  # noqa: ANN001
            return self.stored.get((service, username))

        def set_password(self, service, username, password):  # noqa: ANN001
            self.stored[(service, username)] = password

        def delete_password(self, service, username):  # noqa: ANN001
            self.stored.pop((service, username), None)

    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    monkeypatch.delenv("BROCHURE_SMTP_PASSWORD")
    previous = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        with pytest.raises(MailError, match="no password for the mail user 'frontdesk'"):
            email_packet(packet[0], packet[1], to="zq@example.org", consented=True, settings=settings)
        keyring.set_password("brochure-smtp", SMTP_USER, SMTP_PASSWORD)
        email_packet(packet[0], packet[1], to="zq@example.org", consented=True, settings=settings)
    finally:
        keyring.set_keyring(previous)
    assert len(smtp_server.messages) == 1
    shown = CliRunner().invoke(cli, ["settings"])
    assert SMTP_PASSWORD not in shown.output
    assert "from the system keyring" in shown.output


def test_bad_addresses_are_refused_without_echo(packet, tmp_path, monkeypatch):
    monkeypatch.setenv("BROCHURE_SETTINGS", str(tmp_path / "none.toml"))
    for bad in ["not-an-address", "a@b.c\r\nBcc: x@evil.test", "two@example.org, three@example.org", ""]:
        with pytest.raises(MailError) as caught:
            email_packet(packet[0], packet[1], to=bad, consented=True)
        assert (
            str(caught.value) == "the email address is not valid (type one address such as name@example.com)"
        )


def test_an_address_asked_for_is_typed_twice(smtp_server, tmp_path, monkeypatch):
    import sys

    commands = sys.modules["brochure.cli.deliver"]
    smtp_server.reset()
    settings_for(smtp_server, tmp_path, monkeypatch)
    monkeypatch.setattr(commands, "_interactive", lambda: True)  # CliRunner's input stands for the terminal
    args = ["email", "aftercare", "--project", str(REPO), "--patient-consented", "--no-record"]
    typed = f"{NAME}\n2026-11-20\nDana Smith\n\n\n"
    differ = CliRunner().invoke(cli, args, input=typed + "zq@example.org\nzq@example.com\n\n")
    assert differ.exit_code == 1
    assert "Error: the two addresses differ: nothing was sent (type them again)" in differ.output
    assert smtp_server.messages == []
    same = CliRunner().invoke(cli, args, input=typed + "zq@example.org\nZQ@example.org\n\n")
    assert same.exit_code == 0, same.output
    assert smtp_server.messages[0]["To"] == "zq@example.org"
    # The project has two languages: the email's is asked, the handouts' by default.
    assert "Language for the email (English (en), Spanish (es)) [en]: " in same.output
    assert smtp_server.messages[0]["Content-Language"] == "en"
    # A name of the language, in English or in the language, in any case, will do; a wrong one asks again.
    smtp_server.reset()
    spanish = CliRunner().invoke(
        cli, args, input=typed + "zq@example.org\nzq@example.org\nklingon\nESPAÑOL\n"
    )
    assert spanish.exit_code == 0, spanish.output
    assert "Type one of en, es. Try again." in spanish.output
    assert "The email is in Spanish (es)." in spanish.output
    (message,) = smtp_server.messages
    assert (str(message["Subject"]), message["Content-Language"]) == (SPANISH_SUBJECT, "es")


# The email's language: the handouts', or the one chosen; English when a language has no templates.

SPANISH_SUBJECT = "Su hoja informativa de Example Aesthetics Clinic"
ENGLISH_SUBJECT = "Your handout from Example Aesthetics Clinic"
#: Everything of the patient's in `spanish_packet`: none of it may be in a subject.
DETAILS = ("Zelda", "Quistorp", "Botox", "frente", "20 unidades", "Dana", "Smith")


def personalised(project, names, **more):  # noqa: ANN001, ANN201
    fields = {"name": NAME, "injector": "Dana Smith", "treatment": "Botox, frente", "note": "20 unidades"}
    patient = check_patient(project, {**fields, **more})
    return personalise(project, names, patient), patient


def in_words(message) -> tuple[str, str, str]:  # noqa: ANN001
    """The subject, the plain text and the HTML of a received message."""
    return (
        str(message["Subject"]),
        message.get_body(("plain",)).get_content().replace("\r\n", "\n"),
        message.get_body(("html",)).get_content(),
    )


def test_a_spanish_handout_is_emailed_in_spanish_with_no_choice(smtp_server, sample, tmp_path, monkeypatch):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    packet, patient = personalised(sample, ["aftercare.es"])
    result = email_packet(
        packet, patient, to="zq@example.org", encrypt=True, settings=settings, project=sample
    )
    assert result.language == "es"
    (message,) = smtp_server.messages
    subject, text, html = in_words(message)
    assert subject == SPANISH_SUBJECT
    assert message["Content-Language"] == "es"
    assert text.startswith("Hola, Zelda:\n\nGracias por visitar Example Aesthetics Clinic.")
    assert "- Cuidados después del tratamiento" in text
    assert "Le dimos su contraseña por teléfono o en persona" in text  # encrypted: the passphrase's words
    assert "llámenos al 555-0142" in text
    assert "Hello" not in text
    assert "Thank you" not in text
    assert '<html lang="es">' in html
    assert "<p>Hola, Zelda:</p>" in html
    assert "<li>Cuidados después del tratamiento</li>" in html
    assert not [d for d in DETAILS if d in subject]


def test_a_packet_of_two_languages_goes_in_the_projects_own(smtp_server, sample, tmp_path, monkeypatch):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    packet, patient = personalised(sample, ["aftercare.es", "results"])
    email_packet(packet, patient, to="zq@example.org", consented=True, settings=settings, project=sample)
    (message,) = smtp_server.messages
    subject, text, html = in_words(message)
    assert (subject, message["Content-Language"]) == (ENGLISH_SUBJECT, "en")
    assert text.startswith("Hello Zelda,")
    assert '<html lang="en">' in html
    # Unless a language is chosen: then that one, whatever the handouts are in.
    smtp_server.reset()
    result = email_packet(
        packet, patient, to="zq@example.org", consented=True, settings=settings, project=sample, language="es"
    )
    (message,) = smtp_server.messages
    assert (str(message["Subject"]), message["Content-Language"], result.language) == (
        SPANISH_SUBJECT,
        "es",
        "es",
    )


def test_email_language_es_on_the_command_line_for_an_english_handout(smtp_server, tmp_path, monkeypatch):
    from brochure.deliver import audit

    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    args = ["email", "aftercare", "--project", str(REPO), "--to", "zq@example.org", "--encrypt", "-y"]
    args += ["--patient", NAME, "--injector", "Dana", "--treatment", "Botox, frente", "--language", "es"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "The email is in Spanish (es)." in result.output
    (message,) = smtp_server.messages
    subject, text, html = in_words(message)
    assert (subject, message["Content-Language"]) == (SPANISH_SUBJECT, "es")
    assert text.startswith("Hola, Zelda:")
    assert "- Aftercare: what to expect" in text  # the handout's own title: it is in English
    assert '<html lang="es">' in html
    assert not [d for d in DETAILS if d in subject]
    # The audit trail says which language it went in (the record keeps the handouts' names only).
    (line,) = audit.entries(settings)
    assert (line.event, line.detail) == ("email", "encrypted; email in es")
    # A language the project does not have is refused before anything is asked or sent.
    smtp_server.reset()
    refused = CliRunner().invoke(cli, [*args[:-1], "fr", "--no-record"])
    assert refused.exit_code == 1
    assert (
        "Error: the project has no language 'fr' for the email: nothing was sent (choose one of en, es)"
        in refused.output
    )
    assert "Traceback" not in refused.output
    assert smtp_server.messages == []


def french(tmp_path: Path) -> Path:
    """A copy of the sample with a French translation of the aftercare topic, and no French emails."""
    from conftest import copy_sample

    root = copy_sample(tmp_path / "clinic", variants=True)
    spanish = (root / "content/topics/aftercare.es.md").read_text(encoding="utf-8")
    french_text = spanish.replace("lang: es", "lang: fr").replace(
        'title: "Cuidados después del tratamiento"', 'title: "Soins après le traitement"'
    )
    (root / "content/topics/aftercare.fr.md").write_text(french_text, encoding="utf-8")
    return root


def test_a_language_without_templates_goes_in_english_and_check_names_the_file(
    smtp_server, tmp_path, monkeypatch
):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    root = french(tmp_path)
    project = load_project(root)
    packet, patient = personalised(project, ["aftercare.fr"])
    result = email_packet(
        packet, patient, to="zq@example.org", encrypt=True, settings=settings, project=project
    )
    (message,) = smtp_server.messages
    subject, text, html = in_words(message)
    assert (subject, message["Content-Language"], result.language) == (ENGLISH_SUBJECT, "en", "en")
    assert text.startswith("Hello Zelda,")
    assert "- Soins après le traitement" in text
    assert '<html lang="en">' in html
    # `brochure check` names each missing file, and says the emails go in English meanwhile.
    checked = CliRunner().invoke(cli, ["check", "aftercare.fr", "--project", str(root)])
    found = [line for line in checked.output.splitlines() if line.startswith("warning  email")]
    assert [line.split()[2] for line in found] == [
        "templates/email/fr/subject.txt",
        "templates/email/fr/body.txt",
        "templates/email/fr/body.html",
    ]
    assert "is missing: emails in 'fr' go in English until the language has all of" in found[0]
    assert "(copy the built-in templates/email/subject.txt there and translate it)" in found[0]
    # One file of three is not enough (an email never mixes two languages): still English, two named.
    own = root / "templates/email/fr"
    own.mkdir(parents=True)
    (own / "subject.txt").write_text("Votre fiche de {{ clinic_name }}\n", encoding="utf-8")
    checked = CliRunner().invoke(cli, ["check", "aftercare.fr", "--project", str(root), "--format", "json"])
    import json

    files = [f["file"] for f in json.loads(checked.output)["findings"] if f["check"] == "email"]
    assert files == ["templates/email/fr/body.txt", "templates/email/fr/body.html"]
    # With all three in the project's own templates/, the email goes in French.
    (own / "body.txt").write_text("Bonjour {{ first_name }},\n\n{{ clinic_name }}\n", encoding="utf-8")
    (own / "body.html").write_text('<html lang="{{ lang }}"><p>Bonjour {{ first_name }}</p></html>\n')
    smtp_server.reset()
    email_packet(packet, patient, to="zq@example.org", encrypt=True, settings=settings, project=project)
    (message,) = smtp_server.messages
    subject, text, html = in_words(message)
    assert (subject, message["Content-Language"]) == ("Votre fiche de Example Aesthetics Clinic", "fr")
    assert text.startswith("Bonjour Zelda,")
    assert '<html lang="fr">' in html
    checked = CliRunner().invoke(cli, ["check", "aftercare.fr", "--project", str(root), "--format", "json"])
    assert [f for f in json.loads(checked.output)["findings"] if f["check"] == "email"] == []


def test_a_project_may_change_one_file_of_a_language(smtp_server, tmp_path, monkeypatch):
    from conftest import copy_sample

    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    root = copy_sample(tmp_path / "clinic", variants=True)
    (root / "templates/email/es").mkdir(parents=True)
    (root / "templates/email/es/subject.txt").write_text(
        "Información de {{ clinic_name }}\n", encoding="utf-8"
    )
    project = load_project(root)
    packet, patient = personalised(project, ["side-effects.es"])
    email_packet(packet, patient, to="zq@example.org", encrypt=True, settings=settings, project=project)
    (message,) = smtp_server.messages
    subject, text, _html = in_words(message)
    assert (subject, message["Content-Language"]) == ("Información de Example Aesthetics Clinic", "es")
    assert text.startswith("Hola, Zelda:")  # the built-in Spanish body


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_no_patient_detail_in_the_subject_in_any_language(smtp_server, tmp_path, monkeypatch, language):
    smtp_server.reset()
    settings = settings_for(smtp_server, tmp_path, monkeypatch)
    project = load_project(french(tmp_path))
    packet, patient = personalised(project, ["aftercare"], treated_on="2026-11-20")
    email_packet(
        packet,
        patient,
        to="zq@example.org",
        encrypt=True,
        settings=settings,
        project=project,
        language=language,
    )
    (message,) = smtp_server.messages
    subject = str(message["Subject"])
    assert subject in (SPANISH_SUBJECT, ENGLISH_SUBJECT)
    assert not [d for d in (*DETAILS, "2026", "Nov", "Aftercare", "Cuidados") if d in subject]


def test_a_batch_goes_in_each_rows_handout_language_or_in_the_one_given(smtp_server, tmp_path, monkeypatch):
    smtp_server.reset()
    settings_for(smtp_server, tmp_path, monkeypatch)
    batch = tmp_path / "today.csv"
    batch.write_text(
        "name,treated_on,injector,treatment,note,handouts,email,consent\n"
        "Ana Uno,2026-11-20,Dana Smith,Botox,,aftercare,uno@example.org,yes\n"
        "Ana Dos,2026-11-20,Dana Smith,Botox,,aftercare.es,dos@example.org,yes\n",
        encoding="utf-8",
    )
    command = ["email", "--csv", str(batch), "--project", str(REPO), "--no-record"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    by_address = {m["To"]: (str(m["Subject"]), m["Content-Language"]) for m in smtp_server.messages}
    assert by_address == {
        "uno@example.org": (ENGLISH_SUBJECT, "en"),
        "dos@example.org": (SPANISH_SUBJECT, "es"),
    }
    smtp_server.reset()
    result = CliRunner().invoke(cli, [*command, "--language", "es"])
    assert result.exit_code == 0, result.output
    assert {m["Content-Language"] for m in smtp_server.messages} == {"es"}
    assert {str(m["Subject"]) for m in smtp_server.messages} == {SPANISH_SUBJECT}
