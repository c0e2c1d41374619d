"""A batch: one row per patient in a CSV file, each row printed or emailed as its own packet.

Every row is checked before anything is printed or sent, and all the
problems are listed with their row and column. Then each row is
personalised (through the warm render server when it is on), delivered and
recorded; a row that fails does not stop the others.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.base.errors import BrochureError, Problem
from brochure.deliver import rules
from brochure.deliver.patient import FIELDS, Patient, PatientError, check_patient

if TYPE_CHECKING:
    from brochure.deliver.packet import Packet
    from brochure.project.model import Project

#: The columns a batch file may have; `name` and `handouts` are required.
COLUMNS = {
    "name": "the patient's name",
    "treated_on": "treatment date, YYYY-MM-DD (default today)",
    "injector": "a name from content/staff.toml",
    "treatment": "what was done",
    "note": "a short note",
    "handouts": "handout names separated by spaces, in order",
    "email": "the patient's address: email the packet (else it is printed)",
    "consent": "'yes' when the patient agreed to an unencrypted email",
    "follow_ups": "'yes' when the patient agreed to the handouts' follow-up emails",
}
MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One checked row: its number in the file (the header is row 1), patient, handouts and address."""

    number: int
    patient: Patient
    handouts: tuple[str, ...]
    email: str = ""
    consented: bool = False
    follow_ups: bool = False


@dataclass
class Outcome:
    """What happened to one row."""

    row: int
    ok: bool
    detail: str = ""  # a job id, an address, a passphrase note, or the error (never a patient detail)
    passphrase: str | None = None


def read_rows(
    project,  # noqa: ANN001
    path: Path,
    *,
    today=None,  # noqa: ANN001
    email: bool = False,
    encrypt: bool = False,
    consented: bool = False,
) -> list[Row]:
    """Read and check every row of the CSV file at ``path``; the error lists all problems (row, column).

    With ``email`` (a batch to email), every row needs an address, and,
    unless ``encrypt`` or ``consented`` (for all rows), the patient's consent.
    """
    from brochure.project.model import documents

    shown = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BrochureError.at(shown, None, f"is larger than {MAX_BYTES // 1024 // 1024} MB", "split it")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BrochureError.at(shown, None, "file not found", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BrochureError.at(shown, None, f"cannot be read: {exc}", "save it as UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise BrochureError.at(shown, 1, "the file is empty", "add a header row: name,handouts,...") from None
    except csv.Error as exc:
        raise BrochureError.at(shown, 1, f"not valid CSV: {exc}", "save it as CSV") from None
    problems: list[Problem] = []
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        problems.append(
            Problem(shown, 1, f"unknown column {unknown[0]!r}", f"use only: {', '.join(COLUMNS)}")
        )
    for required in ("name", "handouts"):
        if required not in header:
            problems.append(
                Problem(shown, 1, f"the column {required!r} is missing", "add it to the header row")
            )
    if problems:
        raise BrochureError(problems)
    handout_names = {d.name for d in documents(project) if d.spec.kind == "handout"}
    rows: list[Row] = []
    try:
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                problems.append(Problem(shown, number, f"more than {MAX_ROWS} rows", "split the file"))
                break
            row, row_problems = _row(project, shown, number, header, values, handout_names, today)
            if email and row is not None and not row.email:
                fix = "give the patient's address on each row"
                row_problems.append(Problem(shown, number, "column 'email': is empty", fix))
            refused = None
            if email and row is not None:
                refused = rules.consent_problem(encrypt, rules.consent_of(encrypt, consented, row.consented))
            if refused:
                fix = "write yes once the patient agreed, or send the batch with --encrypt"
                row_problems.append(Problem(shown, number, f"column 'consent': {refused.message}", fix))
            problems += row_problems
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.append(
            Problem(shown, reader.line_num, f"not valid CSV: {exc}", "check the quotes on this row")
        )
    if problems:
        raise BrochureError(problems)
    if not rows:
        raise BrochureError.at(shown, None, "has no patient rows", "add one row per patient under the header")
    return rows


def _row(project: Project, shown, number, header, values, handout_names, today):  # noqa: ANN001, ANN202
    problems: list[Problem] = []

    def at(column: str, message: str, fix: str | None) -> None:
        problems.append(Problem(shown, number, f"column {column!r}: {message}", fix))

    if len(values) != len(header):
        at("*", f"has {len(values)} values for {len(header)} columns", "check the commas on this row")
        return None, problems
    cells = dict(zip(header, values, strict=True))
    patient = None
    try:
        patient = check_patient(project, {k: cells.get(k, "") for k in FIELDS}, today=today)
    except PatientError as exc:
        for name, message in exc.fields.items():
            at(name, message, exc.problems[0].fix if len(exc.problems) == 1 else None)
    names = tuple(cells.get("handouts", "").replace(",", " ").replace(";", " ").split())
    if not names:
        at("handouts", "is empty", "name one or more handouts, separated by spaces")
    bad = [n for n in names if n not in handout_names]
    if bad:
        at("handouts", f"{bad[0]!r} is not a handout", "see 'brochure list' for the names")
    address = cells.get("email", "").strip()
    consent = cells.get("consent", "").strip().lower()
    if address:
        from brochure.deliver.mail import MailError, check_address

        try:
            address = check_address(address)
        except MailError:
            at(
                "email",
                "is not a valid email address",
                "one address such as name@example.com, or leave it empty",
            )
    follow_ups = cells.get("follow_ups", "").strip().lower()
    for column, value in (("consent", consent), ("follow_ups", follow_ups)):
        if value not in ("", "yes", "no"):
            at(column, "must be yes, no or empty", "write yes only when the patient agreed")
    if follow_ups == "yes" and not address:
        at("follow_ups", "needs the patient's email address", "fill in the email column, or leave this empty")
    if problems or patient is None:
        return None, problems
    return Row(number, patient, names, address, consent == "yes", follow_ups == "yes"), problems


def deliver_rows(
    project,  # noqa: ANN001
    rows: list[Row],
    deliver: Callable[[Row, Packet], Outcome],
    *,
    paper: str | None = None,
    renderer=None,  # noqa: ANN001
) -> Iterator[Outcome]:
    """Personalise each row's packet (in parallel through the render server) and ``deliver`` it, in order.

    A row whose rendering or delivery fails yields a failed Outcome; the rest go on.
    """
    from brochure.deliver.packet import personalise_many

    requests = [(row.handouts, row.patient) for row in rows]
    for row, packet in zip(
        rows, personalise_many(project, requests, paper=paper, renderer=renderer), strict=True
    ):
        if isinstance(packet, BrochureError):
            yield Outcome(row.number, False, _first_line(packet))
            continue
        try:
            yield deliver(row, packet)
        except BrochureError as exc:
            yield Outcome(row.number, False, _first_line(exc))


def _first_line(exc: BrochureError) -> str:
    problem = exc.problems[0]
    return f"{problem.message} ({problem.fix})" if problem.fix else problem.message
