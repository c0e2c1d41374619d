"""The patient fields staff type, checked in one place for the command line, the batch and the web page.

Messages name the field and what is wrong, never the value: a value is a
patient detail, and messages end up in terminals, logs and web pages.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.base import caches, clock
from brochure.base.errors import BrochureError, ConfigError, Problem
from brochure.project import schema
from brochure.project.config import read_toml
from brochure.project.schema import Field

if TYPE_CHECKING:
    from brochure.project.model import Project

STAFF_FILE = "content/staff.toml"

#: The fields staff can fill in, in the order forms show them, with their labels.
FIELDS = {
    "name": "patient name",
    "treated_on": "treatment date",
    "injector": "injector",
    "treatment": "treatment",
    "note": "note",
}
#: Longest value each field takes: the "Your treatment" box has room for this much.
MAX_LENGTH = {"name": 60, "treated_on": 10, "injector": 60, "treatment": 60, "note": 100}
#: How far from today a treatment date may be.
MAX_DAYS_AWAY = 366

# Control (Cc), format (Cf: bidi overrides, zero-width characters), lone
# surrogates (Cs), private use (Co) and unassigned (Cn) characters.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class PatientError(BrochureError):
    """One or more patient fields are wrong; ``fields`` maps each bad field to its message."""

    def __init__(self, problems: Problem | list[Problem], fields: Mapping[str, str] | None = None) -> None:
        super().__init__(problems)
        self.fields = dict(fields or {})

    def __reduce__(self) -> tuple:
        return (self.__class__, (self.problems, self.fields))

    @classmethod
    def of(cls, fields: Mapping[str, str], where: str | None = None) -> PatientError:
        """An error listing every bad field; ``where`` (a CSV row, say) prefixes each message."""
        problems = [
            Problem(where, None, f"{FIELDS.get(name, name)}: {message}", _FIXES.get(name))
            for name, message in fields.items()
        ]
        return cls(problems, fields)


_FIXES = {
    "name": "type the name as it should print, in letters the brand font has",
    "treated_on": "write the date as YYYY-MM-DD, for example 2026-11-21",
    "injector": f"choose a name from {STAFF_FILE}",
    "treatment": "shorten it, and use letters the brand font has",
    "note": "shorten it, and use letters the brand font has",
}


@dataclass(frozen=True)
class Injector:
    """Someone on the clinic's staff who gives treatments."""

    name: str
    credentials: str = ""

    @property
    def label(self) -> str:
        """How the handout shows them: 'Dana Smith, RN'."""
        return f"{self.name}, {self.credentials}" if self.credentials else self.name


@dataclass(frozen=True)
class Patient:
    """A patient's details for one delivery, checked by check_patient."""

    name: str
    treated_on: dt.date
    injector: str = ""
    treatment: str = ""
    note: str = ""

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else ""

    def fields(self) -> dict[str, str]:
        """The fields as text, as a form or the record holds them."""
        return {
            "name": self.name,
            "treated_on": self.treated_on.isoformat(),
            "injector": self.injector,
            "treatment": self.treatment,
            "note": self.note,
        }


_STAFF_SCHEMA = {
    "name": Field(str, required=True, check=schema.not_blank, example='name = "Dana Smith"'),
    "credentials": Field(str, default="", example='credentials = "RN"'),
}


def staff(project: Project) -> list[Injector]:  # noqa: ANN001 - project.Project
    """The clinic's injectors from content/staff.toml (none when the file is absent)."""
    path = Path(project.root) / STAFF_FILE
    if not path.is_file():
        return []
    data, lines = read_toml(path, STAFF_FILE, Path(project.root))
    problems: list[Problem] = []
    for key in data:
        if key != "injector":
            problems.append(
                Problem(
                    STAFF_FILE, lines.get(key), f"unknown key '{key}'", "list people as [[injector]] tables"
                )
            )
    entries = data.get("injector", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError.at(
            STAFF_FILE, lines.get("injector"), "'injector' must be [[injector]] tables", None
        )
    people: list[Injector] = []
    for index, entry in enumerate(entries):
        result = schema.validate(
            entry, _STAFF_SCHEMA, STAFF_FILE, lines, prefix=f"injector.{index}.", line_if_unknown=None
        )
        problems += result.errors
        if not result.errors:
            people.append(Injector(result.values["name"].strip(), result.values["credentials"].strip()))
    names = [p.name for p in people]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(
            Problem(STAFF_FILE, None, f"two injectors are named {name!r}", "give each person one entry")
        )
    if problems:
        raise ConfigError(problems)
    return people


def _text_problem(value: str, field: str, project: Project) -> str | None:  # noqa: ANN001
    """What is wrong with a text value, without repeating it; None when it is good."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return f"holds an invisible or control character (U+{ord(char):04X})"
    if len(value) > MAX_LENGTH[field]:
        return f"is {len(value)} characters long, more than the {MAX_LENGTH[field]} that fit"
    missing = missing_glyphs(project, value)
    if missing:
        shown = ", ".join(f"U+{ord(c):04X}" for c in missing[:3])
        return f"holds a character the brand font does not have ({shown})"
    return None


def _date(value: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    if not _ISO_DATE.fullmatch(value):
        return None, "is not a date written as YYYY-MM-DD"
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None, "is not a real date"
    if abs((day - today).days) > MAX_DAYS_AWAY:
        return None, "is more than a year away from today"
    return day, None


def check_patient(project: Project, fields: Mapping[str, str], *, today: dt.date | None = None) -> Patient:  # noqa: ANN001
    """Check and tidy the fields staff typed; raise PatientError listing every bad field.

    Text is put in Unicode NFC form and stripped; control, format (bidi
    overrides, zero-width) and surrogate characters are refused, as are
    values too long for the box and characters the brand font lacks. HTML
    is not special: templates show it literally.
    """
    today = today or clock.today()
    bad: dict[str, str] = {}
    clean: dict[str, str] = {}
    for key in fields:
        if key not in FIELDS:
            bad[key] = f"is not a patient field (known: {', '.join(FIELDS)})"
    for key in FIELDS:
        raw = fields.get(key)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            bad[key] = "must be text"
            continue
        try:
            value = unicodedata.normalize("NFC", raw).strip()
        except UnicodeError:  # pragma: no cover - normalize does not raise on surrogates today
            bad[key] = "holds characters that are not valid text"
            continue
        problem = _text_problem(value, key, project) if key != "treated_on" else None
        if problem:
            bad[key] = problem
            continue
        clean[key] = value
    if "name" not in bad and not clean.get("name"):
        bad["name"] = "is required"
    treated_on = today
    if "treated_on" not in bad and clean.get("treated_on"):
        day, problem = _date(clean["treated_on"], today)
        if problem:
            bad["treated_on"] = problem
        elif day is not None:
            treated_on = day
    if "injector" not in bad:
        people = staff(project)
        known = {p.name: p for p in people}
        chosen = clean.get("injector", "")
        if people and not chosen:
            bad["injector"] = "is required: choose who gave the treatment"
        elif chosen and people and chosen not in known:
            bad["injector"] = "is not on the clinic's staff list"
    if bad:
        raise PatientError.of(bad)
    return Patient(
        clean["name"],
        treated_on,
        clean.get("injector", ""),
        clean.get("treatment", ""),
        clean.get("note", ""),
    )


def injector_label(project: Project, name: str) -> str:  # noqa: ANN001
    """'Dana Smith, RN' for a staff name; the name itself when the clinic lists no credentials."""
    for person in staff(project):
        if person.name == name:
            return person.label
    return name


def follow_up_date(project: Project, names: Sequence[str], treated_on: dt.date) -> dt.date | None:  # noqa: ANN001
    """The earliest follow-up over the named documents' topics (front matter ``follow_up_days``)."""
    from brochure.project.model import select

    days = [t.follow_up_days for doc in select(project, names) for t in doc.topics if t.follow_up_days]
    return treated_on + dt.timedelta(days=min(days)) if days else None


# -- the brand font's characters ------------------------------------------------


def missing_glyphs(project: Project, text: str) -> list[str]:  # noqa: ANN001
    """Characters of ``text`` that some face of the brand font lacks (spaces aside)."""
    if text.isascii() and text.isprintable():
        wanted = set(text) - {" "}
    else:
        wanted = {c for c in text if not c.isspace()}
    if not wanted:
        return []
    faces = [face.path for face in project.brand.fonts]
    missing: set[str] = set()
    for path in faces:
        chars = _font_chars(str(path), _mtime(path))
        missing |= {c for c in wanted if ord(c) not in chars}
    return sorted(missing)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@cache
def _font_chars(path: str, mtime: float) -> frozenset[int]:
    """The code points a font file maps to glyphs (read once per file and change)."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            return frozenset(font.getBestCmap() or {})
    except (OSError, TTLibError):
        return frozenset()


caches.register("deliver.font characters", _font_chars.cache_clear)
