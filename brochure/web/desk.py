"""The front-desk pages: personalise a packet, preview it, print, email or download it; today's deliveries.

Patient details arrive only in POST bodies and leave only in responses the
browser may not keep. Every check and every delivery is brochure.deliver's:
a view gathers the form, calls it, and shows what it said.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import Blueprint, Response, abort, current_app, render_template, request

from ..errors import BrochureError
from . import catalog, pages

bp = Blueprint("desk", __name__)

PATIENT_FIELDS = ("name", "treated_on", "injector", "treatment", "note")
ACTIONS = ("preview", "print", "email", "download")
MAX_COPIES = 20


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


def _live():  # noqa: ANN202
    return current_app.extensions["desk"]


def _settings():  # noqa: ANN202
    """The machine's settings (printer, mail server, record), read once."""
    from ..deliver import load_settings

    settings = current_app.extensions.get("desk.settings")
    if settings is None:
        settings = current_app.extensions["desk.settings"] = load_settings()
    return settings


def _packet(project, names: list[str]) -> list[catalog.Entry]:  # noqa: ANN001
    """The chosen documents, in the order picked; 404 for a name that is not a document."""
    by_name = {e.name: e for e in catalog.entries(project)}
    names = list(dict.fromkeys(names))
    if not names:
        abort(404, "Pick at least one handout on the Handouts page.")
    unknown = [n for n in names if n not in by_name]
    if unknown:
        abort(404, "One of the handouts picked no longer exists. Pick again on the Handouts page.")
    return [by_name[n] for n in names]


def _blank(project, entries: list[catalog.Entry]) -> dict[str, str]:  # noqa: ANN001
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


def _page(project, form: Form, status: int = 200):  # noqa: ANN001, ANN202
    """Render the personalise page, with what the machine can deliver to."""
    from ..deliver import printers, staff

    queues: list[str] = []
    default_queue = None
    print_problem = ""
    try:
        queues, default_queue = printers()
    except BrochureError as exc:
        print_problem = str(exc)
    if not form.values.get("printer"):
        form.values["printer"] = default_queue or (queues[0] if queues else "")
    return (
        render_template(
            "personalise.html",
            form=form,
            injectors=staff(project),
            queues=queues,
            print_problem=print_problem,
            max_copies=MAX_COPIES,
        ),
        status,
    )


@bp.get("/personalise")
def personalise_form():  # noqa: ANN201
    """The patient form for the handouts picked (their names, not a patient's, are in the URL)."""
    from ..deliver import follow_up_date

    project = _live().project()
    entries = _packet(project, request.args.getlist("d"))
    names = [e.name for e in entries]
    form = Form(names, entries, _blank(project, entries))
    form.follow_up = follow_up_date(project, names, dt.date.today())
    return _page(project, form)


@bp.post("/personalise")
def personalise_post():  # noqa: ANN201
    """Preview, print, email or download the packet for the patient in the form."""
    from ..deliver import PatientError, check_patient, follow_up_date, personalise

    project = _live().project()
    entries = _packet(project, request.form.getlist("d"))
    names = [e.name for e in entries]
    values = {**_blank(project, entries), **{k: v for k, v in request.form.items() if k in _KEPT}}
    form = Form(names, entries, values)
    action = request.form.get("action", "preview")
    if action not in ACTIONS:
        abort(400, "Unknown action.")
    try:
        patient = check_patient(project, {k: values[k] for k in PATIENT_FIELDS})
    except PatientError as exc:
        form.errors = dict(exc.fields)
        return _page(project, form, 422)
    form.follow_up = follow_up_date(project, names, patient.treated_on)
    try:
        packet = personalise(project, names, patient)
    except BrochureError as exc:
        form.errors["packet"] = str(exc)
        return _page(project, form, 422)
    if action == "preview":
        form.preview = pages.preview(packet.pdf)
        return _page(project, form)
    if action == "download":
        return _download(packet)
    try:
        done, passphrase = _deliver(action, packet, patient, project, values, form.errors)
    except BrochureError as exc:
        form.errors[action] = str(exc)
    if form.errors:
        form.preview = pages.preview(packet.pdf)
        return _page(project, form, 422)
    # Delivered: a clear confirmation, and the form empty for the next patient.
    cleared = Form(names, entries, _blank(project, entries), done=done, passphrase=passphrase or "")
    cleared.follow_up = follow_up_date(project, names, dt.date.today())
    return _page(project, cleared)


#: Form fields the page sends back as typed (patient fields and delivery choices).
_KEPT = (*PATIENT_FIELDS, "printer", "copies", "to", "to_again", "consent", "encrypt")


def _deliver(action, packet, patient, project, values, errors) -> tuple[str, str | None]:  # noqa: ANN001
    """Print or email the packet; a sentence for the confirmation, and a passphrase to show once."""
    from ..deliver import email_packet, print_packet

    settings = _settings()
    count = len(packet.documents)
    what = (
        f"{count} handout{'s' if count != 1 else ''} ({packet.pages} page{'s' if packet.pages != 1 else ''})"
    )
    if action == "print":
        try:
            copies = int(values.get("copies") or 1)
        except ValueError:
            copies = 0
        if not 1 <= copies <= MAX_COPIES:
            errors["copies"] = f"Copies must be a whole number from 1 to {MAX_COPIES}."
            return "", None
        job = print_packet(packet, printer=values.get("printer") or None, copies=copies, settings=settings)
        _record(settings, packet, patient, "print", job.printer, consent=False)
        return f"Sent {what} to the printer {job.printer} (job {job.job_id}).", None
    to, again = values.get("to", "").strip(), values.get("to_again", "").strip()
    if not to:
        errors["to"] = "Type the patient's email address."
    elif to != again:
        errors["to_again"] = "The two addresses differ. Type the address again in both boxes."
    encrypt, consented = bool(values.get("encrypt")), bool(values.get("consent"))
    if not errors and not (encrypt or consented):
        errors["consent"] = "Tick that the patient agreed to unencrypted email, or choose Encrypt."
    if errors:
        return "", None
    result = email_packet(
        packet, patient, to=to, encrypt=encrypt, consented=consented, settings=settings, project=project
    )
    _record(settings, packet, patient, "email", result.to, consent=consented)
    sent = f"Emailed {what}" + (", encrypted." if encrypt else ".")
    return sent, result.passphrase


def _record(settings, packet, patient, method: str, target: str, *, consent: bool) -> None:  # noqa: ANN001
    """Write the delivery into the record."""
    from ..deliver import Record

    record = Record.open(settings)
    record.add(packet=packet, patient=patient, method=method, target=target, consent=consent)


def _download(packet) -> Response:  # noqa: ANN001
    response = Response(packet.pdf, mimetype="application/pdf")
    # A generic name: the file name must not carry the patient's.
    response.headers["Content-Disposition"] = 'attachment; filename="handouts.pdf"'
    return response


@bp.get("/today")
def today() -> str:
    """The day's deliveries from the record: what, to whom, how and by whom."""
    from ..deliver import Record

    problem = ""
    deliveries = []
    try:
        deliveries = Record.open(_settings()).today()
    except BrochureError as exc:
        problem = str(exc)
    titles = {}
    try:
        titles = {e.name: e.title for e in catalog.entries(_live().project())}
    except BrochureError:
        pass
    return render_template("today.html", deliveries=deliveries, problem=problem, titles=titles, done="")
