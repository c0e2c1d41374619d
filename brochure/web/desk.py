"""The front-desk pages: personalise a packet, preview it, print, email or download it; today's deliveries.

Patient details arrive only in POST bodies and leave only in responses the
browser may not keep. Every check and every delivery is brochure.deliver's:
a view gathers the form, calls it, and shows what it said.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Response,
    abort,
    after_this_request,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)

from brochure.base import clock
from brochure.base.errors import BrochureError
from brochure.deliver import rules
from brochure.web import catalog, pages
from brochure.web.app import plain
from brochure.web.signin import desk, staff_name

if TYPE_CHECKING:
    from brochure.deliver.packet import Packet
    from brochure.deliver.patient import Patient
    from brochure.project.model import Project

bp = Blueprint("desk", __name__)

PATIENT_FIELDS = ("name", "treated_on", "injector", "treatment", "note")
ACTIONS = ("preview", "print", "email", "download")
#: How long one person's live previews of the same handouts make one line of the audit trail.
PREVIEW_AUDIT_MINUTES = 10

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What happened to a delivery, as the page says it: ``kind`` "good" (done, and nothing is
    waiting), "wait" (accepted, but it will not come out yet) or "bad" (nothing was given)."""

    kind: str
    text: str
    more: list[str] = field(default_factory=list)
    passphrase: str = ""

    @property
    def role(self) -> str:
        return "status" if self.kind == "good" else "alert"


@dataclass
class Again:
    """The same handouts went to the same patient by the same method a few minutes ago."""

    method: str
    minutes: int
    at: str


@dataclass
class Form:
    """What the personalise page shows: the packet, the fields as typed, and what is wrong with them."""

    names: list[str]
    entries: list[catalog.Entry]
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    preview: list[pages.Page] = field(default_factory=list)
    follow_up: dt.date | None = None
    outcome: Outcome | None = None
    again: Again | None = None
    cards: dict[str, catalog.Card] = field(default_factory=dict)
    #: The delivery just recorded, for the education form under the outcome.
    delivered: Any = None  # record.Delivery

    @property
    def method(self) -> str:
        chosen = self.values.get("action", "")
        return chosen if chosen in ("print", "email", "download") else "print"


def _live():  # noqa: ANN202
    return current_app.extensions["desk"]


def _packet(project: Project, names: list[str]) -> list[catalog.Entry]:  # noqa: ANN001
    """The chosen documents, in the order picked; 404 for a name that is not a document."""
    by_name = {e.name: e for e in catalog.entries(project) if e.kind == "handout"}
    names = list(dict.fromkeys(names))
    if not names:
        abort(404, "Pick at least one handout on the Handouts page.")
    unknown = [n for n in names if n not in by_name]
    if unknown:
        abort(404, "One of the handouts picked no longer exists. Pick again on the Handouts page.")
    return [by_name[n] for n in names]


def _blank() -> dict[str, str]:
    """The form as it starts: empty but for the treatment date (today, replaced when typed over)."""
    return {
        "name": "",
        "treated_on": clock.today().isoformat(),
        "injector": "",
        "treatment": "",
        "note": "",
        "printer": "",
        "copies": "1",
        "to": "",
        "to_again": "",
        "mail_lang": "",
        "action": "print",
    }


def _page(project: Project, form: Form, status: int = 200):  # noqa: ANN001, ANN202
    """Render the personalise page, with what the server can deliver to."""
    from brochure.deliver import printers, staff

    queues: list[str] = []
    default_queue = None
    print_problem = ""
    try:
        queues, default_queue = printers()
    except BrochureError as exc:
        log.warning("no printers: %s", plain(exc))
        print_problem = (
            "Printing is not working right now. Download the PDF or email it instead, and tell IT."
        )
    if not form.values.get("printer"):
        remembered = request.cookies.get(_printer_cookie(), "")
        form.values["printer"] = (
            remembered if remembered in queues else default_queue or (queues[0] if queues else "")
        )
    found = catalog.entries(project)
    form.cards = catalog.versions(found)
    treatments = dict.fromkeys(t for e in found for t in e.treatments)
    return (
        render_template(
            "personalise.html",
            form=form,
            injectors=staff(project),
            treatments=list(treatments),
            queues=queues,
            print_problem=print_problem,
            max_copies=rules.MAX_COPIES,
            mail_languages=_mail_languages(project),
            follow_up_emails=_follow_up_emails(project, form.names),
            education_languages=_education_languages(project),
        ),
        status,
    )


def _follow_up_emails(project: Project, names: list[str]) -> str:
    """The follow-up emails the handouts ask for, as the consent box names them ("Day-1 check-in
    (day 1) and Review visit reminder (day 12)"); "" when they ask for none."""
    from brochure.deliver.followups import planned
    from brochure.document.emails import follow_up

    said = []
    for days, name in planned(project, names):
        try:
            title = follow_up(project.root, name, project.settings.source_lang).title
        except BrochureError:
            title = name
        said.append(f"{title} (day {days})")
    return " and ".join([", ".join(said[:-1]), said[-1]] if len(said) > 1 else said)


def _mail_languages(project: Project) -> list[tuple[str, str]]:
    """The languages staff may choose for an email, as (tag, name): none when the project has one."""
    from brochure.document.emails import languages

    offered = languages(project)
    if len(offered) < 2:
        return []
    return [(lang, catalog.LANGUAGES.get(lang, lang)) for lang in offered]


@bp.get("/personalise")
def personalise_form():  # noqa: ANN201
    """The patient form for the handouts picked (their names, not a patient's, are in the URL).
    From a card's Give button or the packet, it first settles which version of each topic."""
    project = _live().project()
    if "give" in request.args or "packet" in request.args:
        return redirect(url_for("desk.personalise_form", d=_chosen(project)), 303)
    entries = _packet(project, request.args.getlist("d"))
    names = [e.name for e in entries]
    form = Form(names, entries, _blank())
    form.follow_up = _first_follow_up(project, names)
    return _page(project, form)


def _chosen(project: Project) -> list[str]:
    """The handouts the Handouts page asked for: a card's (Give) or the ticked ones, each in the
    version chosen on its card."""
    cards = {card.key: card for card in catalog.versions(catalog.entries(project)).values()}
    given = request.args.get("give")
    keys = [given] if given else request.args.getlist("t")
    names = [] if given else request.args.getlist("d")
    for key in keys:
        card = cards.get(key)
        if card is None:
            abort(404, "One of the handouts picked no longer exists. Pick again on the Handouts page.")
        wanted = request.args.get(f"v-{key}", "")
        names.append(wanted if wanted in {v.name for v in card.versions} else card.main.name)
    if not names:
        abort(404, "Pick at least one handout on the Handouts page: tick “Add to packet” on each.")
    return names


def _first_follow_up(project: Project, names: list[str], day: dt.date | None = None) -> dt.date | None:
    """The follow-up date of a treatment on ``day`` (today when not given)."""
    from brochure.deliver import follow_up_date

    return follow_up_date(project, names, day or clock.today())


def _form_values() -> dict[str, str]:
    values = {**_blank(), **{k: v for k, v in request.form.items() if k in _KEPT}}
    actions = request.form.getlist("action")
    values["action"] = next((a for a in actions if a != "preview"), "print")
    return values


@bp.post("/personalise/preview")
def live_preview() -> Response:
    """The packet drawn for the fields as typed so far, as JSON for the page's script: its pages, where
    the patient's name is on them, and the follow-up date. With no name yet, the blank handouts."""
    from brochure.deliver import PatientError
    from brochure.deliver.packet import personalise
    from brochure.deliver.service import prepare

    project = _live().project()
    entries = _packet(project, request.form.getlist("d"))
    names = [e.name for e in entries]
    values = _form_values()
    fields = {k: values[k] for k in PATIENT_FIELDS}
    answer: dict[str, Any] = {"errors": {}, "blank": False, "follow_up": ""}
    if not fields["name"].strip():
        packet = personalise(project, names, None)  # no name yet: the handouts as they print blank
        answer["blank"] = True
        with contextlib.suppress(ValueError):
            day = dt.date.fromisoformat(fields["treated_on"])
            answer["follow_up"] = _day(_first_follow_up(project, names, day))
        find = ""
    else:
        try:
            prepared = prepare(project, names, fields)
        except PatientError as exc:
            answer["errors"] = {name: _sentence(name, message) for name, message in exc.fields.items()}
            return _json(answer)
        if prepared.packet is None:
            answer["errors"] = {"packet": plain(prepared.problem) if prepared.problem else "Not drawn."}
            return _json(answer)
        packet, find = prepared.packet, prepared.patient.name
        answer["follow_up"] = _day(prepared.follow_up)
        _audit_preview(prepared, names)
    drawn = pages.preview(packet.pdf, find=find)
    answer["pages"] = [
        {
            "src": page.data_url,
            "alt": f"Page {n} of {len(drawn)} of the handouts",
            "text": page.text,
            "found": page.found,
        }
        for n, page in enumerate(drawn, 1)
    ]
    return _json(answer)


def _json(answer: dict[str, Any]) -> Response:
    return Response(json.dumps(answer), mimetype="application/json")


def _day(day: dt.date | None) -> str:
    from brochure.document.messages import long_date

    return long_date(day, "en", "full") if day else ""


_previews: dict[tuple, float] = {}
_previews_lock = threading.Lock()


def _audit_preview(prepared: Any, names: list[str]) -> None:  # noqa: ANN401 - service.Prepared
    """One audit line for a person's previews of the same handouts: the live preview redraws at
    every pause in typing, and the trail wants the fact, not each keystroke."""
    from brochure.deliver.service import previewed

    key = (staff_name(), desk(), tuple(names))
    now = time.monotonic()
    with _previews_lock:
        last = _previews.get(key)
        if last is not None and now - last < PREVIEW_AUDIT_MINUTES * 60:
            return
        _previews[key] = now
        for old in [k for k, t in _previews.items() if now - t > PREVIEW_AUDIT_MINUTES * 60]:
            del _previews[old]
    for warning in previewed(prepared, by=staff_name(), desk=desk()):
        log.warning("%s", warning)


@bp.post("/personalise")
def personalise_post():  # noqa: ANN201
    """Print, email or download the packet for the patient in the form (or, without the page's
    script, draw its preview)."""
    from brochure.deliver import PatientError
    from brochure.deliver.service import prepare

    project = _live().project()
    entries = _packet(project, request.form.getlist("d"))
    names = [e.name for e in entries]
    values = _form_values()
    form = Form(names, entries, values)
    action = "preview" if "preview" in request.form.getlist("action") else values["action"]
    if action not in ACTIONS:
        abort(400, "Unknown action.")
    try:
        prepared = prepare(project, names, {k: values[k] for k in PATIENT_FIELDS})
    except PatientError as exc:
        form.errors = {name: _sentence(name, message) for name, message in exc.fields.items()}
        return _page(project, form, 422)
    form.follow_up, patient, packet = prepared.follow_up, prepared.patient, prepared.packet
    if packet is None:
        form.errors["packet"] = (
            plain(prepared.problem) if prepared.problem else "The handouts could not be made."
        )
        return _page(project, form, 422)
    if action == "preview":
        _audit_preview(prepared, names)
        form.preview = pages.preview(packet.pdf, find=patient.name)
        return _page(project, form)
    outcome = _deliver(action, packet, patient, project, values, form)
    if outcome is None or outcome.kind == "bad":
        form.outcome = outcome
        return _page(project, form, 422 if form.errors or outcome else 200)
    if action == "download":
        return _download_answer(packet, outcome)
    # Given: say so, and empty the form for the next patient (the method and printer stay).
    cleared = Form(names, entries, {**_blank(), "action": action, "printer": values.get("printer", "")})
    cleared.outcome = outcome
    cleared.delivered = form.delivered
    cleared.follow_up = _first_follow_up(project, names)
    return _page(project, cleared)


#: Form fields the page sends back as typed (patient fields and delivery choices).
_KEPT = (
    *PATIENT_FIELDS,
    *("printer", "copies", "to", "to_again", "mail_lang", "consent", "encrypt", "follow_ups", "again"),
)


def _sentence(name: str, message: str) -> str:
    """'is required' for the field 'name' -> 'Patient name is required.'"""
    from brochure.deliver import FIELDS

    return _sentence_of(f"{FIELDS.get(name, name)} {message}")


def _what(packet: Packet, titles: dict[str, str]) -> str:
    """'Aftercare: what to expect' for one handout, '3 handouts' for more."""
    names = [n for n, _v in packet.documents]
    return titles.get(names[0], names[0]) if len(names) == 1 else f"{len(names)} handouts"


def _deliver(
    action, packet: Packet, patient: Patient | None, project: Project, values, form: Form
) -> Outcome | None:  # noqa: ANN001
    """Print, email or download the packet through the delivery service; what the page says of it
    (None when it was not tried: the form or the repeat question says why)."""
    from brochure.deliver.mail import MailError
    from brochure.deliver.printing import PrintError
    from brochure.deliver.rules import OptionsError
    from brochure.deliver.service import GivenRecently, Request, deliver

    try:
        copies = int(values.get("copies") or 1)
    except ValueError:
        copies = 0
    options: dict[str, Any] = {}
    if action == "print":
        options = {"printer": values.get("printer") or None, "copies": copies}
    elif action == "email":
        offered = dict(_mail_languages(project))
        chosen = values.get("mail_lang") or None
        if chosen is not None and chosen not in offered:
            abort(400, "Unknown language for the email.")
        options = {
            "to": values.get("to", "").strip(),
            "to_again": values.get("to_again", "").strip(),
            "encrypt": bool(values.get("encrypt")),
            "consented": bool(values.get("consent")),
            "language": chosen,
            "follow_ups": bool(values.get("follow_ups")),
        }
    again = action == "download" or bool(values.get("again"))  # a second download gives no second copy
    delivery = Request([n for n, _v in packet.documents], patient, action, again=again, **options)
    try:
        done = deliver(project, delivery, packet=packet, desk=desk(), by=staff_name())
    except OptionsError as exc:
        form.errors.update(
            {
                name: _FIELD_SENTENCES.get(exc.rules[name]) or _sentence_of(message)
                for name, message in exc.fields.items()
            }
        )
        return None
    except GivenRecently as exc:
        form.again = Again(action, exc.minutes, exc.earlier.when.strftime("%H:%M"))
        return None
    except PrintError as exc:
        log.warning("printing failed: %s", plain(exc))  # for IT: the printer and what CUPS said
        return _print_failed(exc, values.get("printer", ""))
    except MailError as exc:
        return _mail_failed(exc, "Print the handouts or download the PDF instead")
    except BrochureError as exc:
        log.warning("%s failed: %s", action, plain(exc))
        return Outcome(
            "bad", f"Nothing was given: {plain(exc)}", ["Try again, or tell IT if it happens again."]
        )
    form.delivered = done.recorded
    titles = {e.name: e.title for e in form.entries}
    what, name = _what(packet, titles), patient.name if patient else "a blank box"
    more = [
        f"{w[:1].upper()}{w[1:]}."
        for w in done.warnings
        if not (done.job and done.job.paused and "paused" in w)
    ]
    if done.job is not None:
        _remember_printer(done.job.printer)
        copies_text = f"{copies} cop{'y' if copies == 1 else 'ies'}"
        if done.job.paused:
            return _paused(
                done.job.printer, "Print on another printer, download the PDF, or email it instead.", more
            )
        return Outcome("good", f"Printed {copies_text} of {what} on {done.job.printer} for {name}.", more)
    if action == "download":
        # Said by the script from a response header: no patient detail in it.
        return Outcome("good", f"Downloaded {what} as handouts.pdf. It is recorded in Today.", more)
    passphrase = (done.email.passphrase if done.email else None) or ""
    sealed = ", encrypted" if delivery.encrypt else ""
    offered = dict(_mail_languages(project))
    if done.email is not None and offered:
        more.insert(0, f"The email is in {offered.get(done.email.language, done.email.language)}.")
    if done.follow_ups:
        from brochure.deliver.followups import title

        when = "; ".join(f"{title(project, f)} on {f.due:%A, %B} {f.due.day}" for f in done.follow_ups)
        more.append(f"Follow-up emails: {when}.")
    return Outcome("good", f"Emailed {what} to {done.target} for {name}{sealed}.", more, passphrase)


def _paused(printer: str, instead: str, more: list[str]) -> Outcome:
    """A job accepted by a paused printer: it waits there; what to do instead."""
    return Outcome(
        "wait",
        f"The printer {printer} is paused: the job will wait there until it is resumed.",
        [instead, *more],
    )


def _mail_failed(exc: Any, instead: str) -> Outcome:  # noqa: ANN401 - mail.MailError
    """Why the email did not go, in the desk's words; what the server said goes to the log for IT."""
    log.warning("email failed: %s", plain(exc))
    return Outcome("bad", "The email was not sent.", [f"{instead}, and tell IT that email is not working."])


def _print_failed(exc: Any, printer: str) -> Outcome:  # noqa: ANN401 - printing.PrintError
    """Why nothing was printed, in the desk's words, with what to do now."""
    instead = "Download the PDF or email it instead"
    if exc.kind == "service":
        return Outcome(
            "bad", "Printing is not working right now: nothing was printed.", [f"{instead}, and tell IT."]
        )
    if exc.kind == "refused":
        return Outcome(
            "bad",
            f"The printer {printer} is not taking jobs: nothing was printed.",
            [f"Choose another printer, or {instead[0].lower()}{instead[1:]}."],
        )
    if exc.kind == "printer":
        return Outcome(
            "bad",
            "That printer is not set up on the server: nothing was printed.",
            ["Choose another printer."],
        )
    return Outcome(
        "bad",
        "The printer did not take the job: nothing was printed.",
        [f"Try again, choose another printer, or {instead[0].lower()}{instead[1:]}."],
    )


def _printer_cookie() -> str:
    return "__Host-desk-printer" if current_app.config.get("CLINIC") else "desk_printer"


def _remember_printer(queue: str) -> None:
    """This desk's printer, kept by its browser: the next form there starts with it, whoever signs in."""

    @after_this_request
    def keep(response: Response) -> Response:
        response.set_cookie(
            _printer_cookie(),
            queue,
            max_age=400 * 24 * 3600,
            secure=bool(current_app.config.get("CLINIC")),
            httponly=True,
            samesite="Strict",
        )
        return response


#: What the page says beside a field whose rule was broken, in the words of its controls.
_FIELD_SENTENCES = {
    "address": "Type the patient's email address, such as name@example.com.",
    "addresses-differ": "The two addresses differ. Type the same address in both boxes.",
    "consent-or-encrypt": "Tick that the patient agreed to unencrypted email, or choose Encrypt.",
    "consent-and-encrypt": "Choose one: encrypt the PDF, or send it unencrypted with consent.",
}


def _sentence_of(message: str) -> str:
    return f"{message[:1].upper()}{message[1:].rstrip('.')}."


def _download_answer(packet: Packet, outcome: Outcome) -> Response:
    """The packet as a file to save (already recorded as given, method 'download'); the page's script
    shows what the outcome says."""
    response = Response(packet.pdf, mimetype="application/pdf")
    # A generic name: the file name must not carry the patient's.
    response.headers["Content-Disposition"] = 'attachment; filename="handouts.pdf"'
    response.headers["X-Brochure-Outcome"] = _header_safe(outcome.text)
    return response


def _header_safe(text: str) -> str:
    """``text`` for a response header (which is Latin-1): percent-encoded, for the script to decode."""
    from urllib.parse import quote

    return quote(text, safe=" ,.:()'")


@bp.get("/today")
def today() -> str:
    """The day's deliveries from the record: what, to whom, how and by whom."""
    return _today()


@bp.post("/reprint")
def reprint():  # noqa: ANN201
    """Give one of today's deliveries again, the way it was given: first the question (print again
    on that printer? send again to that address?), then, once answered yes, the delivery."""
    from brochure.deliver import PatientError
    from brochure.deliver.mail import MailError
    from brochure.deliver.printing import PrintError
    from brochure.deliver.rules import OptionsError
    from brochure.deliver.service import NotInRecord
    from brochure.deliver.service import reprint as give_again

    project = _live().project()
    try:
        wanted = int(request.form.get("id", ""))
    except ValueError:
        abort(400, "Unknown delivery.")
    if request.form.get("confirm") != "yes":
        return _today(ask=wanted)
    try:
        done = give_again(
            project,
            wanted,
            desk=desk(),
            by=staff_name(),
            encrypt=bool(request.form.get("encrypt")),
            consented=bool(request.form.get("consent")),
        )
    except NotInRecord:
        abort(404, "That delivery is not in today's record.")
    except PatientError:
        return _today(problem="The recorded details no longer pass the checks; use the Handouts page."), 422
    except OptionsError:
        return _today(ask=wanted, ask_problem=_FIELD_SENTENCES["consent-or-encrypt"]), 422
    except PrintError as exc:
        log.warning("printing failed: %s", plain(exc))
        return _today(outcome=_print_failed(exc, "")), 422
    except MailError as exc:
        return _today(outcome=_mail_failed(exc, "Print the handouts instead")), 422
    except BrochureError as exc:
        return _today(problem=plain(exc)), 422
    count = len(done.packet.documents)
    what = f"{count} handout{'s' * (count != 1)}"
    name = done.recorded.patient_name if done.recorded else "the patient"
    more = [f"{w[:1].upper()}{w[1:]}." for w in done.warnings]
    if done.job is not None:
        if done.job.paused:
            return _today(
                outcome=_paused(done.job.printer, "Print on another printer, or email it instead.", more)
            )
        return _today(
            outcome=Outcome("good", f"Printed {what} again on {done.job.printer} for {name}.", more)
        )
    passphrase = (done.email.passphrase if done.email else None) or ""
    return _today(
        outcome=Outcome("good", f"Emailed {what} again to {done.target} for {name}.", more, passphrase)
    )


@bp.post("/follow-ups/cancel")
def cancel_follow_up():  # noqa: ANN201
    """Cancel a follow-up email due today (the visit was rebooked, the patient declined): first the
    question, with the reason to choose, then, once answered, the cancel."""
    from brochure.deliver import Record, load_settings
    from brochure.deliver.followups import REASONS, cancel

    try:
        wanted = int(request.form.get("id", ""))
    except ValueError:
        abort(400, "Unknown follow-up.")
    reason = request.form.get("reason", "")
    if request.form.get("confirm") != "yes" or reason not in REASONS:
        return _today(cancelling=wanted)
    project = _live().project()
    settings = load_settings()
    with Record.open(settings, project) as record:
        waiting = {item.follow_up.id: item for item in _due_today(record, project)}
        if wanted not in waiting:
            abort(404, "That follow-up is no longer waiting: it was sent or cancelled.")
        done, warnings = cancel(
            record, [wanted], reason=REASONS[reason], by=staff_name() or "", settings=settings, desk=desk()
        )
    item = waiting[wanted]
    name = item.delivery.patient_name if item.delivery else "the patient"
    more = [f"{w[:1].upper()}{w[1:]}." for w in warnings]
    if not done:
        return _today(
            outcome=Outcome("bad", "It was being sent just now, so it could not be cancelled.", more)
        )
    return _today(outcome=Outcome("good", f"Cancelled the {item.title} email for {name}.", more))


#: How far ahead Today lists the follow-ups to come (so staff can cancel one for a rebooked visit).
COMING_DAYS = 14


def _due_today(record, project: Project) -> list:  # noqa: ANN001 - Record -> list[followups.Listed]
    """Follow-up emails waiting to go today (and any left from earlier days) and in the next
    COMING_DAYS days, soonest first."""
    from brochure.deliver.followups import WAITING, listing

    ahead = clock.today() + dt.timedelta(days=COMING_DAYS)
    return listing(record, project, due_by=ahead, states=(*WAITING, "sending"))


def _today(
    problem: str = "",
    outcome: Outcome | None = None,
    ask: int | None = None,
    ask_problem: str = "",
    cancelling: int | None = None,
    educate: int | None = None,
    educate_problem: str = "",
) -> str:
    from brochure.deliver import Record, education, load_settings

    deliveries = []
    follow_ups = []
    titles: dict[str, str] = {}
    documented: dict[int, Any] = {}
    languages: list[tuple[str, str]] = []
    try:
        project = _live().project()
        titles = {e.name: e.title for e in catalog.entries(project)}
        languages = _education_languages(project)
        with Record.open(load_settings(), project) as record:
            deliveries = record.today()
            follow_ups = _due_today(record, project)
            documented = education.of(record, [d.id for d in deliveries])
    except BrochureError as exc:
        problem = problem or plain(exc)
    asked = next((d for d in deliveries if d.id == ask), None)
    if ask is not None and asked is None:
        abort(404, "That delivery is not in today's record.")
    to_cancel = next((f for f in follow_ups if f.follow_up.id == cancelling), None)
    if cancelling is not None and to_cancel is None:
        abort(404, "That follow-up is no longer waiting: it was sent or cancelled.")
    educating = next((d for d in deliveries if d.id == educate), None)
    if educate is not None and educating is None:
        abort(404, "That delivery is not in today's record.")
    return render_template(
        "today.html",
        deliveries=deliveries,
        follow_ups=follow_ups,
        problem=problem,
        titles=titles,
        outcome=outcome,
        asked=asked,
        ask_problem=ask_problem,
        to_cancel=to_cancel,
        today=clock.today(),
        coming_days=COMING_DAYS,
        documented=documented,
        educating=educating,
        educate_problem=educate_problem,
        education_languages=languages,
    )


# Education documented (brochure.deliver.education): the form under a delivery's outcome, and
# Today's "Education" button per row, post here.


@bp.app_template_filter("svg_data")
def _svg_data(svg: str) -> str:
    """A signature's SVG (written by brochure.deliver.education, never by a browser) as a data: URL
    for an <img>: the page's policy allows data: images, and an SVG in an <img> runs nothing."""
    import base64

    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


@bp.app_context_processor
def _education_words() -> dict[str, Any]:
    from brochure.deliver import education

    return {
        "acknowledgement": education.ACKNOWLEDGEMENT,
        "pad_width": education.PAD_WIDTH,
        "pad_height": education.PAD_HEIGHT,
    }


def _education_languages(project: Project) -> list[tuple[str, str]]:
    """The languages staff may say the patient was taught in, as (tag, name)."""
    from brochure.document.emails import languages

    return [(lang, catalog.LANGUAGES.get(lang, lang)) for lang in languages(project)]


@bp.post("/education")
def education_post():  # noqa: ANN201
    """Document the education for one of today's deliveries: first the form (Today's button), then,
    with ``save``, keep the answers and show Today with them."""
    from brochure.deliver import education
    from brochure.deliver.service import NotInRecord

    project = _live().project()
    try:
        wanted = int(request.form.get("id", ""))
    except ValueError:
        abort(400, "Unknown delivery.")
    if request.form.get("save") != "yes":
        return _today(educate=wanted)
    strokes = request.form.get("strokes", "").strip()
    kept = None
    if not strokes and request.form.get("keep_signature") == "yes":
        kept = _kept_signature(project, wanted)
    try:
        answers = education.check(
            language=request.form.get("language", ""),
            methods=request.form.getlist("method"),
            teach_back=request.form.get("teach_back", ""),
            ticked=bool(request.form.get("ticked")),
            strokes=strokes or None,
            signature=kept,
            languages=[lang for lang, _name in _education_languages(project)],
        )
        saved = education.save(project, wanted, answers, by=staff_name(), desk=desk(), today_only=True)
    except NotInRecord:
        abort(404, "That delivery is not in today's record.")
    except education.EducationError as exc:
        return _today(educate=wanted, educate_problem=plain(exc)), 422
    more = [f"{w[:1].upper()}{w[1:]}." for w in saved.warnings]
    at = saved.delivery.when.strftime("%H:%M")
    name = saved.delivery.patient_name or "a blank box"
    return _today(outcome=Outcome("good", f"Education saved for {name}, given at {at}.", more))


def _kept_signature(project: Project, delivery_id: int) -> str | None:
    """The signature already kept for a delivery (saved again without signing anew: it stays)."""
    from brochure.deliver import Record, education, load_settings

    with Record.open(load_settings(), project) as record:
        kept = education.of(record, [delivery_id]).get(delivery_id)
    return kept.signature if kept else None
