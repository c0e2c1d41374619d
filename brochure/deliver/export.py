"""The delivery record for other systems: FHIR R4 resources as NDJSON, and CSV for a spreadsheet.

`brochure history --format fhir` writes, oldest delivery first, one
``DocumentReference`` for each handout version given (before the first
delivery that points at it) and one ``Communication`` for each delivery,
one resource a line.

What about the patient goes where:

- the patient's name: only ``Communication.subject.display``. The record
  keeps no birth date or chart number, so a contained Patient would hold the
  name alone and look like an identity a receiving system could match on;
  a display name says "a person matches this by hand", which is the truth;
- the treatment: ``Communication.reasonCode.text`` (why the handouts were
  given), nowhere else;
- the note, the injector, the treatment date and the email address or
  printer: nowhere. A DocumentReference describes a handout version shared
  by every patient who got it, so it holds nothing about any of them.

Nothing here needs a FHIR library: the resources are plain JSON.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brochure.base.errors import BrochureError

if TYPE_CHECKING:
    from brochure.deliver.education import Education
    from brochure.deliver.record import Delivery
    from brochure.project.model import Project

#: Identifier systems and the extension of brochure's own (URNs: no web address is promised).
DELIVERY_SYSTEM = "urn:brochure:delivery"
VERSION_SYSTEM = "urn:brochure:content-version"
HANDOUT_SYSTEM = "urn:brochure:handout"
REVIEW_DUE_EXTENSION = "urn:brochure:review-due"

_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"

#: How each delivery method is coded in Communication.medium (v3 ParticipationMode), and said.
MEDIUM = {
    "print": ("WRITTEN", "written", "printed"),
    "email": ("EMAILWRIT", "email", "emailed"),
    "draft": ("EMAILWRIT", "email", "email draft"),
    "download": ("ELECTRONIC", "electronic data", "downloaded"),
}

CSV_COLUMNS = ("when", "patient", "how", "to", "by", "handouts", "changed since")
#: The columns of the education documented (brochure.deliver.education), after those.
EDUCATION_COLUMNS = ("language used", "education method", "teach-back", "acknowledgement")


def handout_id(name: str, version: str) -> str:
    """A FHIR id for one version of a handout: letters, digits, - and . only, at most 64."""
    return f"{re.sub(r'[^A-Za-z0-9.-]', '-', name)[:47]}-{version[:16]}"


def fhir_lines(deliveries: Iterable[Delivery], project: Project | None) -> Iterator[str]:
    """The deliveries as NDJSON lines (each ending in a newline), oldest first.

    ``project`` gives each handout's title and language; a handout no longer
    in it keeps its name as its title.
    """
    known: dict[str, Any] = {}
    if project is not None:
        from brochure.project.model import documents

        known = {doc.name: doc for doc in documents(project)}
    written: set[str] = set()
    for delivery in sorted(deliveries, key=lambda d: (d.when, d.id)):
        for name, version, due in delivery.documents:
            key = handout_id(name, version)
            if key not in written:
                written.add(key)
                changed = name in delivery.changed
                yield _line(_document_reference(name, version, due, known.get(name), changed))
        yield _line(_communication(delivery, known))


def _line(resource: dict[str, Any]) -> str:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n"


def _document_reference(name: str, version: str, due: str | None, doc: Any, changed: bool) -> dict[str, Any]:  # noqa: ANN401
    title = (doc.title if doc is not None else "") or name
    attachment: dict[str, Any] = {"contentType": "application/pdf", "title": title}
    if doc is not None:
        attachment["language"] = doc.lang
    resource: dict[str, Any] = {"resourceType": "DocumentReference", "id": handout_id(name, version)}
    if due:
        resource["extension"] = [{"url": REVIEW_DUE_EXTENSION, "valueDate": due}]
    resource |= {
        "masterIdentifier": {"system": VERSION_SYSTEM, "value": version},
        "identifier": [{"system": HANDOUT_SYSTEM, "value": name}],
        # Superseded: the handout says something else today (or is gone).
        "status": "superseded" if changed or doc is None else "current",
        "docStatus": "final",
        "type": {"text": "Patient education handout"},
        "description": title,
        "content": [{"attachment": attachment}],
    }
    return resource


def _communication(delivery: Delivery, known: dict[str, Any]) -> dict[str, Any]:
    code, display, said = MEDIUM.get(delivery.method, ("", "", delivery.method))
    medium: dict[str, Any] = {"text": said}
    if code:
        medium["coding"] = [{"system": _MODE, "code": code, "display": display}]
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": f"delivery-{delivery.id}",
        "identifier": [{"system": DELIVERY_SYSTEM, "value": str(delivery.id)}],
        "status": "completed",
        "category": [
            {
                "coding": [{"system": _CATEGORY, "code": "instruction", "display": "Instruction"}],
                "text": "Patient education",
            }
        ],
        "medium": [medium],
    }
    if delivery.patient_name:
        resource["subject"] = {"display": delivery.patient_name}
    resource["sent"] = delivery.when.isoformat(timespec="seconds")
    if delivery.user:
        resource["sender"] = {"display": delivery.user}
    treatment = delivery.patient.get("treatment", "")
    if treatment:
        resource["reasonCode"] = [{"text": treatment}]
    payload = []
    for name, version, _due in delivery.documents:
        doc = known.get(name)
        reference = {"reference": f"DocumentReference/{handout_id(name, version)}"}
        payload.append({"contentReference": reference | {"display": (doc.title if doc else "") or name}})
    if payload:
        resource["payload"] = payload
    return resource


def csv_text(deliveries: Iterable[Delivery], documented: Mapping[int, Education] | None = None) -> str:
    """The deliveries as CSV for a spreadsheet, newest first, formulas neutralised (audit.spreadsheet);
    with the education ``documented`` for them (by delivery row): 'signed', never the signature."""
    from brochure.deliver.audit import spreadsheet

    documented = documented or {}
    rows = [
        (
            d.when.isoformat(timespec="seconds"),
            d.patient_name,
            d.method,
            d.target,
            d.user,
            " ".join(f"{name}@{version}" for name, version, *_ in d.documents),
            " ".join(d.changed),
            *_education_cells(documented.get(d.id)),
        )
        for d in deliveries
    ]
    return spreadsheet(CSV_COLUMNS + EDUCATION_COLUMNS, rows)


def _education_cells(documented: Education | None) -> tuple[str, str, str, str]:
    if documented is None:
        return ("", "", "", "")
    return (documented.language, " ".join(documented.methods), documented.teach_back, documented.acknowledged)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a 0600 file (it holds patient details), through a temporary
    file beside it: a reader never sees half of it, and a failure leaves the old file as it was."""
    path = path.expanduser()
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
    except OSError as exc:
        raise BrochureError.at(
            str(path), None, f"cannot write the file: {exc.strerror}", "name a file in a folder that exists"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BrochureError.at(str(path), None, f"cannot write the file: {exc.strerror}", None) from None
        raise
