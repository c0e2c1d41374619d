"""Education documented: for a recorded delivery, how the patient was taught and what they said.

Each field is optional: the language used, the methods (printed, emailed,
explained in person), the teach-back result, and the patient's
acknowledgement, either a ticked box or a signature drawn on the desk's pad.

It is kept in the delivery record (table ``education``, one row per
delivery: saving again replaces it), so it is as private as the record. A
drawn signature arrives as strokes, lists of points in the pad's box; it is
checked here and written as SVG by this module, so no text from a browser
ever ends up in the stored picture. Each save is a line of the audit trail
("education") naming the record's row and the non-personal answers
(methods, teach-back, ticked or signed), never the signature.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from brochure.base import clock
from brochure.base.errors import BrochureError

if TYPE_CHECKING:
    from brochure.deliver.record import Delivery, Record
    from brochure.deliver.settings import MachineSettings
    from brochure.project.model import Project

_TABLE = """
CREATE TABLE IF NOT EXISTS education (
    delivery INTEGER PRIMARY KEY,  -- the delivery's row (delivery.id)
    language TEXT NOT NULL,        -- the language used, a tag such as 'es'; '' when not said
    methods TEXT NOT NULL,         -- ["printed", "emailed", "in-person"] as JSON, any of them
    teach_back TEXT NOT NULL,      -- one of TEACH_BACK, or ''
    acknowledged TEXT NOT NULL,    -- 'ticked', 'signed' or ''
    signature TEXT,                -- the drawn signature as SVG written here; NULL when not signed
    staff TEXT NOT NULL,           -- who documented it
    at TEXT NOT NULL               -- when, ISO 8601 with the UTC offset
);
"""

#: How the patient was taught, and the words staff and the history read.
METHODS = {"printed": "printed", "emailed": "emailed", "in-person": "explained in person"}
#: What the teach-back showed (one answer).
TEACH_BACK = {
    "voiced": "voiced understanding",
    "demonstrated": "demonstrated",
    "needs-review": "needs review",
    "declined": "declined",
}
#: What the patient ticks (or signs under), for the clinic to review.
ACKNOWLEDGEMENT = "I got this information, and my questions were answered."

#: The signature pad's box, in its own units (the canvas's size; the browser scales it).
PAD_WIDTH = 600
PAD_HEIGHT = 200
#: The most strokes, and points in all, a signature may have; a longer one is not a signature.
MAX_STROKES = 60
MAX_POINTS = 3000
#: The most characters of the strokes' JSON read at all.
MAX_STROKES_TEXT = 48_000

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class EducationError(BrochureError):
    """The education documented cannot be saved as given."""


class SignatureError(EducationError):
    """The drawn signature is empty or is not one the pad can draw."""


@dataclass(frozen=True)
class Education:
    """What was documented for one delivery."""

    delivery: int
    language: str = ""
    methods: tuple[str, ...] = ()
    teach_back: str = ""
    acknowledged: str = ""  # "ticked", "signed" or ""
    signature: str | None = None  # SVG, written by signature_svg
    staff: str = ""
    when: dt.datetime | None = None

    def summary(self, language_name: dict[str, str] | None = None) -> str:
        """One line for a person: 'Español; printed, explained in person; voiced understanding; signed'."""
        parts = []
        if self.language:
            parts.append((language_name or {}).get(self.language, self.language))
        if self.methods:
            parts.append(", ".join(METHODS.get(m, m) for m in self.methods))
        if self.teach_back:
            parts.append(TEACH_BACK.get(self.teach_back, self.teach_back))
        if self.acknowledged:
            parts.append(self.acknowledged)
        return "; ".join(parts)

    def audit_detail(self) -> str:
        """The trail's words for it: the methods, the teach-back and ticked or signed; nothing else."""
        parts = []
        if self.methods:
            parts.append("method " + "+".join(self.methods))
        if self.teach_back:
            parts.append(f"teach-back {self.teach_back}")
        if self.acknowledged:
            parts.append(self.acknowledged)
        return "; ".join(parts) or "nothing chosen"


@dataclass(frozen=True)
class Saved:
    """What save kept, for which delivery, and the warnings to show (a trail that could not be written)."""

    education: Education
    delivery: Delivery
    warnings: list[str]


def create(db: sqlite3.Connection) -> None:
    """Make the table in an open record (Record.open calls it)."""
    db.executescript(_TABLE)


def strokes_of(text: str) -> list[list[tuple[float, float]]]:
    """The strokes a browser sent, as JSON ``[[[x, y], ...], ...]`` in the pad's box, checked:
    SignatureError says, in plain words, what is wrong."""
    redo = "clear the pad and sign again"
    if len(text) > MAX_STROKES_TEXT:
        raise SignatureError.at(None, None, "the signature is too long to keep", redo)
    try:
        data = json.loads(text)
    except ValueError:
        raise SignatureError.at(None, None, "the signature did not arrive whole", redo) from None
    if not isinstance(data, list) or not all(isinstance(s, list) for s in data):
        raise SignatureError.at(None, None, "the signature did not arrive whole", redo)
    if len(data) > MAX_STROKES:
        raise SignatureError.at(None, None, "the signature has too many strokes", redo)
    strokes = []
    count = 0
    for stroke in data:
        points = []
        for point in stroke:
            if not (isinstance(point, list) and len(point) == 2 and all(_number(v) for v in point)):
                raise SignatureError.at(None, None, "the signature did not arrive whole", redo)
            x, y = float(point[0]), float(point[1])
            if not (0 <= x <= PAD_WIDTH and 0 <= y <= PAD_HEIGHT):
                raise SignatureError.at(None, None, "the signature goes outside the pad", redo)
            points.append((x, y))
        count += len(points)
        if count > MAX_POINTS:
            raise SignatureError.at(None, None, "the signature is too long to keep", redo)
        if points:
            strokes.append(points)
    if count < 2:
        raise SignatureError.at(
            None, None, "the signature is empty", "sign with a finger, pen or mouse, or tick the box instead"
        )
    return strokes


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def signature_svg(strokes: Sequence[Sequence[tuple[float, float]]]) -> str:
    """The signature as SVG, written from checked strokes (see strokes_of): numbers only come in."""
    paths = []
    for stroke in strokes:
        (x0, y0), rest = stroke[0], stroke[1:] or stroke[:1]  # one point: a dot
        steps = " ".join(f"L{_n(x)} {_n(y)}" for x, y in rest)
        paths.append(f"M{_n(x0)} {_n(y0)} {steps}")
    drawn = "".join(f'<path d="{d}"/>' for d in paths)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PAD_WIDTH} {PAD_HEIGHT}"'
        f' width="{PAD_WIDTH}" height="{PAD_HEIGHT}" fill="none" stroke="#1a1a1a" stroke-width="3"'
        f' stroke-linecap="round" stroke-linejoin="round" role="img"><title>Signature</title>{drawn}</svg>'
    )


def _n(value: float) -> str:
    return f"{round(float(value), 1):g}"


def check(
    *,
    language: str = "",
    methods: Iterable[str] = (),
    teach_back: str = "",
    ticked: bool = False,
    strokes: str | None = None,
    signature: str | None = None,
    languages: Sequence[str] | None = None,
) -> Education:
    """The answers as an Education (delivery 0, not yet saved); EducationError naming what is wrong.
    ``strokes`` is the pad's JSON (None or '' when not signed); ``signature`` one this module wrote
    before (read back from the record), kept when no new strokes come; ``languages``, when given,
    are the ones allowed."""
    methods = tuple(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise EducationError.at(None, None, f"unknown method {unknown[0]!r}", f"use {', '.join(METHODS)}")
    if teach_back and teach_back not in TEACH_BACK:
        raise EducationError.at(
            None, None, f"unknown teach-back result {teach_back!r}", f"use {', '.join(TEACH_BACK)}"
        )
    if language and (not _LANGUAGE.match(language) or (languages is not None and language not in languages)):
        allowed = ", ".join(languages) if languages else "a language tag such as en or es"
        raise EducationError.at(None, None, f"unknown language {language!r}", f"use {allowed}")
    signature = signature_svg(strokes_of(strokes)) if strokes else signature
    acknowledged = "signed" if signature else "ticked" if ticked else ""
    if not (language or methods or teach_back or acknowledged):
        raise EducationError.at(
            None, None, "nothing was chosen", "choose at least one answer, or leave it undocumented"
        )
    return Education(0, language, methods, teach_back, acknowledged, signature)


def document(
    record: Record,
    delivery_id: int,
    answers: Education,
    *,
    by: str | None = None,
    when: dt.datetime | None = None,
) -> Education:
    """Keep ``answers`` (from check) for the delivery ``delivery_id``, replacing what was kept before;
    EducationError when the record has no such delivery."""
    from brochure.deliver.record import RecordError, _user

    db = record.connection
    when = when or clock.now()
    saved = Education(
        delivery_id,
        answers.language,
        answers.methods,
        answers.teach_back,
        answers.acknowledged,
        answers.signature,
        by or _user(),
        when.replace(microsecond=0),
    )
    try:
        if db.execute("SELECT 1 FROM delivery WHERE id = ?", (delivery_id,)).fetchone() is None:
            raise EducationError.at(
                None, None, f"there is no delivery {delivery_id} in the record", "pick one from the history"
            )
        db.execute(
            "INSERT OR REPLACE INTO education"
            " (delivery, language, methods, teach_back, acknowledged, signature, staff, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery_id,
                saved.language,
                json.dumps(list(saved.methods)),
                saved.teach_back,
                saved.acknowledged,
                saved.signature,
                saved.staff,
                when.isoformat(timespec="seconds"),
            ),
        )
    except sqlite3.Error as exc:
        raise RecordError.at(
            str(record.path), None, f"the education could not be recorded: {exc}", None
        ) from None
    return saved


def of(record: Record, ids: Iterable[int]) -> dict[int, Education]:
    """What was documented for each of the deliveries ``ids`` that has anything, by delivery id."""
    wanted = sorted(set(ids))
    found: dict[int, Education] = {}
    db = record.connection
    for start in range(0, len(wanted), 500):  # SQLite's limit on a query's parameters
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(f"SELECT * FROM education WHERE delivery IN ({marks})", chunk):  # noqa: S608
            found[row[0]] = _education(row)
    return found


def _education(row: tuple[Any, ...]) -> Education:
    delivery, language, methods, teach_back, acknowledged, signature, staff, at = row
    return Education(
        delivery,
        language,
        tuple(json.loads(methods)),
        teach_back,
        acknowledged,
        signature,
        staff,
        dt.datetime.fromisoformat(at),
    )


def save(
    project: Project | None,
    delivery_id: int,
    answers: Education,
    *,
    settings: MachineSettings | None = None,
    by: str | None = None,
    desk: str = "terminal",
    today_only: bool = False,
) -> Saved:
    """Open the record, keep ``answers`` for the delivery ``delivery_id`` and put it on the audit
    trail. With ``today_only``, only one of today's deliveries (what the desk offers); NotInRecord
    when there is no such delivery."""
    from brochure.deliver.record import Record
    from brochure.deliver.service import NotInRecord, _noted
    from brochure.deliver.settings import load_settings

    settings = settings or load_settings()
    with Record.open(settings, project) as record:
        delivery = record.get(delivery_id)
        if today_only and (delivery is None or delivery.when.date() != clock.today()):
            raise NotInRecord.at(None, None, "that delivery is not in today's record", "pick one from Today")
        if delivery is None:
            raise NotInRecord.at(
                None,
                None,
                f"there is no delivery {delivery_id} in the record",
                "look it up in 'brochure history'",
            )
        saved = document(record, delivery_id, answers, by=by)
    handouts = [(name, version) for name, version, *_ in delivery.documents]
    warnings = _noted(
        settings,
        "education",
        staff=saved.staff,
        desk=desk,
        handouts=handouts,
        record=delivery_id,
        detail=saved.audit_detail(),
    )
    return Saved(saved, delivery, warnings)
