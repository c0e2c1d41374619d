"""The front-desk pages: personalise a packet, preview it, print, email or download it; today's deliveries.

Patient details arrive only in POST bodies and leave only in responses the
browser may not keep. Every check and every delivery is brochure.deliver's:
a view gathers the form, calls it, and shows what it said.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, after_this_request, current_app, render_template, request

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


@dataclass
class Form:
    """What the personalise page shows: the packet, the fields as typed, and what is wrong with them."""

    names: list[str]
    entries: list[catalog.Entry]
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    preview: list[pages.Page] = field(default_factory=list)
    follow_up: dt.date | None = None
    done: str = ""
    passphrase: str = ""
    warnings: list[str] = field(default_factory=list)
    again: str = ""  # when the same handouts went to the same patient a few minutes ago


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


def _blank(project: Project, entries: list[catalog.Entry]) -> dict[str, str]:  # noqa: ANN001
    treatments = dict.fromkeys(t for e in entries for t in e.treatments)
    return {
        "name": "",
        "treated_on": dt.date.today().isoformat(),
        "injector": "",
        "treatment": ", ".join(treatments),
        "note": "",
        "printer": "",
        "copies": "1",
        "to": "",
        "to_again": "",
    }


def _page(project: Project, form: Form, status: int = 200):  # noqa: ANN001, ANN202
    """Render the personalise page, with what the machine can deliver to."""
    from brochure.deliver import printers, staff

    queues: list[str] = []
    default_queue = None
    print_problem = ""
    try:
        queues, default_queue = printers()
    except BrochureError as exc:
        print_problem = plain(exc)
    if not form.values.get("printer"):
        remembered = request.cookies.get(_printer_cookie(), "")
        form.values["printer"] = (
            remembered if remembered in queues else default_queue or (queues[0] if queues else "")
        )
    return (
        render_template(
            "personalise.html",
            form=form,
            injectors=staff(project),
            queues=queues,
            print_problem=print_problem,
            max_copies=rules.MAX_COPIES,
        ),
        status,
    )


@bp.get("/personalise")
def personalise_form():  # noqa: ANN201
    """The patient form for the handouts picked (their names, not a patient's, are in the URL)."""
    project = _live().project()
    entries = _packet(project, request.args.getlist("d"))
    names = [e.name for e in entries]
    form = Form(names, entries, _blank(project, entries))
    form.follow_up = _first_follow_up(project, names)
    return _page(project, form)


def _first_follow_up(project: Project, names: list[str]) -> dt.date | None:
    """The follow-up date of a treatment today, as the empty form shows it."""
    from brochure.deliver import follow_up_date

    return follow_up_date(project, names, dt.date.today())


@bp.post("/personalise")
def personalise_post():  # noqa: ANN201
    """Preview, print, email or download the packet for the patient in the form."""
    from brochure.deliver import PatientError
    from brochure.deliver.service import prepare

    project = _live().project()
    entries = _packet(project, request.form.getlist("d"))
    names = [e.name for e in entries]
    values = {**_blank(project, entries), **{k: v for k, v in request.form.items() if k in _KEPT}}
    form = Form(names, entries, values)
    action = request.form.get("action", "preview")
    if action not in ACTIONS:
        abort(400, "Unknown action.")
    try:
        prepared = prepare(project, names, {k: values[k] for k in PATIENT_FIELDS})
    except PatientError as exc:
        form.errors = {name: _sentence(name, message) for name, message in exc.fields.items()}
        return _page(project, form, 422)
    form.follow_up, patient, packet = prepared.follow_up, prepared.patient, prepared.packet
    if packet is None:
        form.errors["packet"] = plain(prepared.problem)
        return _page(project, form, 422)
    if action == "preview":
        from brochure.deliver.service import previewed

        warnings = previewed(prepared, by=staff_name(), desk=desk())
        form.warnings = [f"{w[:1].upper()}{w[1:]}." for w in warnings]
        form.preview = pages.preview(packet.pdf)
        return _page(project, form)
    if action == "download":
        return _download(packet, patient, project)
    try:
        done = _deliver(action, packet, patient, project, values, form)
    except BrochureError as exc:
        form.errors[action] = plain(exc)
        done = ""
    if not done:
        form.preview = pages.preview(packet.pdf)
        return _page(project, form, 422 if form.errors else 200)
    # Delivered: a clear confirmation, and the form empty for the next patient.
    cleared = Form(names, entries, _blank(project, entries), done=done, passphrase=form.passphrase)
    cleared.warnings = form.warnings
    cleared.follow_up = _first_follow_up(project, names)
    return _page(project, cleared)


#: Form fields the page sends back as typed (patient fields and delivery choices).
_KEPT = (*PATIENT_FIELDS, "printer", "copies", "to", "to_again", "consent", "encrypt", "again")


def _sentence(name: str, message: str) -> str:
    """'is required' for the field 'name' -> 'Patient name is required.'"""
    from brochure.deliver import FIELDS

    return _sentence_of(f"{FIELDS.get(name, name)} {message}")


def _deliver(action, packet: Packet, patient: Patient | None, project: Project, values, form: Form) -> str:  # noqa: ANN001
    """Print or email the packet through the delivery service; the sentence that confirms it ('' when
    it did not go: the form then says why)."""
    from brochure.deliver.rules import OptionsError
    from brochure.deliver.service import GivenRecently, Request, deliver

    try:
        copies = int(values.get("copies") or 1)
    except ValueError:
        copies = 0
    options: dict[str, Any]
    if action == "print":
        options = {"printer": values.get("printer") or None, "copies": copies}
    else:
        options = {
            "to": values.get("to", "").strip(),
            "to_again": values.get("to_again", "").strip(),
            "encrypt": bool(values.get("encrypt")),
            "consented": bool(values.get("consent")),
        }
    delivery = Request(
        [n for n, _v in packet.documents], patient, action, again=bool(values.get("again")), **options
    )
    try:
        done = deliver(project, delivery, packet=packet, desk=desk(), by=staff_name())
    except OptionsError as exc:
        form.errors.update(
            {
                name: _FIELD_SENTENCES.get(exc.rules[name]) or _sentence_of(message)
                for name, message in exc.fields.items()
            }
        )
        return ""
    except GivenRecently as exc:
        form.again = exc.earlier.when.strftime("%H:%M")
        return ""
    count, sheets = len(packet.documents), packet.pages
    what = f"{count} handout{'s' * (count != 1)} ({sheets} page{'s' * (sheets != 1)})"
    form.warnings = [f"{w[:1].upper()}{w[1:]}." for w in done.warnings]
    if done.job is not None:
        _remember_printer(done.job.printer)
        return f"Sent {what} to the printer {done.job.printer} (job {done.job.job_id})."
    form.passphrase = (done.email.passphrase if done.email else None) or ""
    return f"Emailed {what}" + (", encrypted." if delivery.encrypt else ".")


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


def _download(packet: Packet, patient: Patient | None, project: Project) -> Response:  # noqa: ANN001
    """The packet as a file to save, recorded as given (method 'download'), like a print or an email."""
    from brochure.deliver.service import Request, deliver

    names = [n for n, _v in packet.documents]
    given = Request(names, patient, "download", again=True)
    deliver(project, given, packet=packet, desk=desk(), by=staff_name())
    response = Response(packet.pdf, mimetype="application/pdf")
    # A generic name: the file name must not carry the patient's.
    response.headers["Content-Disposition"] = 'attachment; filename="handouts.pdf"'
    return response


@bp.get("/today")
def today() -> str:
    """The day's deliveries from the record: what, to whom, how and by whom."""
    return _today()


@bp.post("/reprint")
def reprint():  # noqa: ANN201
    """Print a delivery of today again, for the same patient, with the handouts as they are now."""
    from brochure.deliver import PatientError
    from brochure.deliver.service import NotInRecord
    from brochure.deliver.service import reprint as print_again

    project = _live().project()
    try:
        wanted = int(request.form.get("id", ""))
    except ValueError:
        abort(400, "Unknown delivery.")
    try:
        done = print_again(project, wanted, desk=desk(), by=staff_name())
        packet, job = done.packet, done.job
        assert job is not None  # printed
    except NotInRecord:
        abort(404, "That delivery is not in today's record.")
    except PatientError:
        return _today(problem="The recorded details no longer pass the checks; use the Handouts page."), 422
    except BrochureError as exc:
        return _today(problem=plain(exc)), 422
    count = len(packet.documents)
    warned = "".join(f" {w[:1].upper()}{w[1:]}." for w in done.warnings)
    return _today(
        done=f"Printed {count} handout{'s' * (count != 1)} again on {job.printer} (job {job.job_id}).{warned}"
    )


def _today(done: str = "", problem: str = "") -> str:
    from brochure.deliver import Record, load_settings

    deliveries = []
    titles: dict[str, str] = {}
    try:
        project = _live().project()
        titles = {e.name: e.title for e in catalog.entries(project)}
        with Record.open(load_settings(), project) as record:
            deliveries = record.today()
    except BrochureError as exc:
        problem = problem or plain(exc)
    return render_template("today.html", deliveries=deliveries, problem=problem, titles=titles, done=done)
