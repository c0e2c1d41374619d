"""The one delivery transaction: check a delivery's options, personalise, deliver, record.

`brochure print`, `brochure email` (one patient or a CSV batch), the desk's
Print, Email and Download buttons and its Reprint all call `deliver`, so the
front desk's rules (brochure.deliver.rules) and the order of the steps are
the same whichever front end a person uses:

1. the options are checked (`check`): copies, the address, encrypt or
   consent; nothing is rendered or sent when one is wrong;
2. the record is asked whether the same handouts went to the same patient a
   few minutes ago: unless the delivery says ``again``, that stops here
   with GivenRecently, for the front end to ask the person;
3. the packet is personalised (unless the caller already has it, as the
   desk's preview and a batch do);
4. it is printed, emailed, written as a draft, or handed back to download;
5. the delivery is recorded, with the staff member who gave it.

Nothing here parses options or prints: the front ends do.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from brochure.base import clock
from brochure.base.errors import BrochureError, Problem
from brochure.deliver import rules
from brochure.deliver.rules import OptionsError

if TYPE_CHECKING:
    from brochure.deliver.followups import FollowUp
    from brochure.deliver.mail import EmailResult
    from brochure.deliver.packet import Packet
    from brochure.deliver.patient import Patient
    from brochure.deliver.printing import PrintJob
    from brochure.deliver.record import Delivery as Recorded
    from brochure.deliver.record import Record
    from brochure.deliver.settings import MachineSettings
    from brochure.project.model import Project

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """A delivery asked for: which handouts, for whom, how, and the options of that method."""

    names: Sequence[str]
    patient: Patient | None  # None: the box left blank, to fill in by hand
    method: str  # one of rules.METHODS
    paper: str | None = None
    printer: str | None = None
    copies: int = 1
    duplex: bool = False
    to: str | None = None  # None: not known yet (check says nothing about it)
    to_again: str | None = None  # the address typed a second time, where it was
    encrypt: bool = False
    consented: bool = False
    #: The language the patient chose for the email ("es"); None: the handouts' own (mail.email_language).
    language: str | None = None
    #: The patient agreed to follow-up emails (the handouts' follow_ups; emailed deliveries only).
    follow_ups: bool = False
    #: The person asked agreed to give the same handouts again within minutes.
    again: bool = False
    #: Keep it in the delivery record (the command line's --no-record says no).
    record: bool = True


@dataclass
class Delivered:
    """What happened: the packet given, where it went, and what the method said."""

    packet: Packet
    method: str
    target: str
    job: PrintJob | None = None
    email: EmailResult | None = None
    recorded: Recorded | None = None
    #: The follow-up emails this delivery scheduled (brochure.deliver.followups).
    follow_ups: list[FollowUp] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class GivenRecently(BrochureError):
    """The same handouts went to the same patient a few minutes ago: ask before giving them again."""

    def __init__(self, earlier: Recorded) -> None:
        self.earlier = earlier
        self.minutes = max(1, round((clock.now() - earlier.when).total_seconds() / 60))
        super().__init__(
            [
                Problem(
                    None,
                    None,
                    f"the same handouts went to this patient {self.minutes} min ago ({earlier.method})",
                    "confirm that they are to be given again",
                )
            ]
        )


def repeats(
    record: Record | None, rows: Sequence[tuple[int, Patient, Sequence[str]]]
) -> list[tuple[int, str]]:
    """The rows of a batch ((number, patient, handouts) each) that repeat a delivery: one of the last
    few minutes in ``record``, or an earlier row of the same batch; each with what it repeats."""
    seen: dict[tuple, int] = {}
    found = []
    for number, patient, names in rows:
        same = (patient.name.casefold(), tuple(sorted(names)))
        if same in seen:
            found.append((number, f"the same handouts for the same patient as row {seen[same]}"))
        elif record is not None and (earlier := record.recent(patient, list(names), rules.AGAIN_MINUTES)):
            found.append((number, str(GivenRecently(earlier).problems[0].message)))
        else:
            seen[same] = number
    return found


def check(delivery: Request) -> Request:
    """``delivery`` with its options checked (the address as it will be used); OptionsError if not.

    Every broken rule is reported at once, each under its field.
    """
    from brochure.deliver.mail import MailError, check_address

    if delivery.method not in rules.METHODS:
        raise ValueError(f"unknown delivery method {delivery.method!r}")
    problems: dict[str, rules.Broken] = {}
    if delivery.method == "print" and (problem := rules.copies_problem(delivery.copies)):
        problems["copies"] = problem
    if delivery.method in ("email", "draft"):
        if delivery.to is not None:
            try:
                to = check_address(delivery.to)
            except MailError as exc:
                problems["to"] = rules.Broken(exc.problems[0].message, exc.problems[0].fix or "", "address")
            else:
                delivery = replace(delivery, to=to)
                again = delivery.to_again
                if again is not None and again.strip().casefold() != to.casefold():
                    problems["to_again"] = rules.Broken(
                        "the two addresses differ: nothing was sent", "type them again", "addresses-differ"
                    )
        if problem := rules.consent_problem(delivery.encrypt, delivery.consented):
            problems["consent"] = problem
    if problems:
        raise OptionsError(problems)
    return delivery


def deliver(
    project: Project,
    delivery: Request,
    *,
    settings: MachineSettings | None = None,
    packet: Packet | None = None,
    record: Record | None = None,
    by: str | None = None,
    desk: str = "terminal",
    event: str | None = None,
) -> Delivered:
    """Check, personalise (unless ``packet`` is given), deliver and record ``delivery``.

    ``record`` is an open delivery record to use (a batch opens it once);
    otherwise one is opened and closed here when ``delivery.record``.
    ``by`` names the staff member (default: this computer's user), ``desk``
    where it was given from (a client's address; "terminal" for the command
    line); a recorded delivery is also a line of the audit trail (see
    brochure.deliver.audit), its ``event`` the method unless given
    ("reprint").
    Raises OptionsError, GivenRecently, or the method's own error
    (PrintError, MailError), each before anything is recorded.
    """
    from brochure.deliver.packet import personalise
    from brochure.deliver.record import Record
    from brochure.deliver.settings import load_settings

    delivery = check(delivery)
    settings = settings or load_settings()
    opened = None
    if record is None and delivery.record:
        record = opened = Record.open(settings, project)
    try:
        if record is not None and delivery.patient is not None and not delivery.again:
            earlier = record.recent(
                delivery.patient, list(delivery.names), minutes=rules.AGAIN_MINUTES, method=delivery.method
            )
            if earlier is not None:
                raise GivenRecently(earlier)
        if packet is None:
            packet = personalise(project, delivery.names, delivery.patient, paper=delivery.paper)
        done = _hand_over(project, delivery, packet, settings)
        if record is not None:
            consent = ""
            if delivery.method in ("email", "draft"):
                consent = "encrypted" if delivery.encrypt else "consented"
            follow_ups = delivery.follow_ups and done.method == "email"
            done.recorded = record.add(
                packet,
                delivery.patient,
                method=done.method,
                target=done.target,
                consent=consent,
                by=by,
                follow_ups=follow_ups,
            )
            if done.email is not None:
                consent = f"{consent}; email in {done.email.language}"  # the trail's detail, not the record's
            _audit(settings, done, event or done.method, by, desk, consent)
            if follow_ups and done.email is not None:
                done.follow_ups, problems = _schedule(record, done, project)
                done.warnings += problems
        return done
    finally:
        if opened is not None:
            opened.close()


def _audit(
    settings: MachineSettings, done: Delivered, event: str, by: str | None, desk: str, consent: str
) -> None:
    """The delivery as a line of the audit trail: the record's row stands for the patient."""
    detail = done.target if done.method == "print" else consent  # a printer, never an address
    done.warnings += _noted(
        settings,
        event,
        staff=by or (done.recorded.user if done.recorded else None),
        desk=desk,
        handouts=done.packet.documents,
        record=done.recorded.id if done.recorded else None,
        detail=detail,
    )


def _schedule(record: Record, done: Delivered, project: Project) -> tuple[list[FollowUp], list[str]]:
    """The follow-ups of an email just sent and recorded; one that cannot be scheduled is a warning
    (the handouts are given: never turn that into an error)."""
    from brochure.deliver import followups

    assert done.recorded is not None
    assert done.email is not None
    try:
        return followups.schedule(record, done.recorded, project, lang=done.email.language), []
    except Exception:  # noqa: BLE001
        log.exception("the follow-up emails could not be scheduled")
        return [], ["the follow-up emails could not be scheduled: tell IT (the log says why)"]


def _noted(settings: MachineSettings, event: str, **fields: Any) -> list[str]:
    """Add a line to the audit trail for what has already happened: a trail that cannot be written
    is a warning to show (returned), not an error that would undo it."""
    from brochure.deliver import audit

    try:
        audit.append(settings, event, **fields)
    except audit.AuditError as exc:
        return [f"the audit trail could not be written ({exc.problems[0].message})"]
    except Exception:  # noqa: BLE001 - the handouts are given: never turn that into an error
        log.exception("the audit trail could not be written")
        return ["the audit trail could not be written (see the log)"]
    return []


def _hand_over(project: Project, delivery: Request, packet: Packet, settings: MachineSettings) -> Delivered:
    from brochure.deliver.mail import email_packet
    from brochure.deliver.printing import print_packet

    if delivery.method == "print":
        job = print_packet(
            packet,
            printer=delivery.printer,
            copies=delivery.copies,
            duplex=delivery.duplex,
            settings=settings,
        )
        return Delivered(packet, "print", job.printer, job=job, warnings=list(job.warnings))
    if delivery.method == "download":
        return Delivered(packet, "download", "this computer")
    assert delivery.to is not None, "an email needs an address"
    result = email_packet(
        packet,
        delivery.patient,
        to=delivery.to,
        encrypt=delivery.encrypt,
        consented=delivery.consented,
        draft=delivery.method == "draft",
        settings=settings,
        project=project,
        language=delivery.language,
    )
    method = "draft" if result.draft_path else "email"
    return Delivered(packet, method, result.to, email=result)


@dataclass
class Prepared:
    """A packet personalised for a patient whose fields passed their checks, before it is given."""

    patient: Patient
    follow_up: dt.date | None
    packet: Packet | None  # None when it could not be rendered: ``problem`` says why
    problem: BrochureError | None = None


def prepare(project: Project, names: Sequence[str], fields: dict[str, str]) -> Prepared:
    """Check the patient's ``fields`` (PatientError names each field that fails) and personalise
    the handouts ``names`` for them: what the desk previews, then prints, emails or downloads."""
    from brochure.deliver.packet import personalise
    from brochure.deliver.patient import check_patient, follow_up_date

    patient = check_patient(project, fields)
    follow_up = follow_up_date(project, names, patient.treated_on)
    try:
        packet = personalise(project, names, patient)
    except BrochureError as exc:
        return Prepared(patient, follow_up, None, exc)
    return Prepared(patient, follow_up, packet)


def previewed(prepared: Prepared, *, by: str | None = None, desk: str = "terminal") -> list[str]:
    """Put the preview of a prepared packet on the audit trail (its handouts and their versions; the
    patient is in no record yet, so nothing of theirs); the warnings, if the trail cannot be written."""
    from brochure.deliver.settings import load_settings

    if prepared.packet is None:
        return []
    return _noted(load_settings(), "preview", staff=by, desk=desk, handouts=prepared.packet.documents)


class NotInRecord(BrochureError):
    """The delivery asked for is not one of today's."""


def reprint(
    project: Project,
    delivery_id: int,
    *,
    settings: MachineSettings | None = None,
    by: str | None = None,
    desk: str = "terminal",
    encrypt: bool = False,
    consented: bool = False,
) -> Delivered:
    """Give one of today's deliveries again, for the same patient, with the handouts as they are now,
    the way it was given: printed on the printer it went to, or emailed to the address it went to
    (``encrypt`` or ``consented`` as for any email). A download or a draft is printed on the usual
    printer. Recorded like the first (the trail says "reprint"); PatientError when the recorded
    details no longer pass the checks."""
    from brochure.deliver.patient import check_patient
    from brochure.deliver.record import Record
    from brochure.deliver.settings import load_settings

    settings = settings or load_settings()
    with Record.open(settings, project) as record:
        found = [d for d in record.today() if d.id == delivery_id]
        if not found:
            raise NotInRecord.at(None, None, "that delivery is not in today's record", "pick one from Today")
        earlier = found[0]
        names = [name for name, *_rest in earlier.documents]
        patient = check_patient(project, earlier.patient)
        if earlier.method == "email":
            again = Request(
                names,
                patient,
                "email",
                to=earlier.target,
                to_again=earlier.target,
                encrypt=encrypt,
                consented=consented,
                again=True,
            )
        else:
            printer = earlier.target if earlier.method == "print" else None
            again = Request(names, patient, "print", printer=printer, again=True)
        return deliver(project, again, settings=settings, record=record, by=by, desk=desk, event="reprint")
