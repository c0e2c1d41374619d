"""What a person at the desk types at the command line's questions: dates in the short forms people
use, an injector by number or by the start of a name, and each answer asked again until it is right."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from brochure.base import clock
from brochure.base.text import fold

if TYPE_CHECKING:
    from brochure.deliver.patient import Injector

_WORDS = {"today": 0, "hoy": 0, "tomorrow": 1, "mañana": 1, "manana": 1, "yesterday": -1, "ayer": -1}


def month_first() -> bool:
    """Whether this computer's locale writes the month before the day (4/12 = April 12, in the US)."""
    from babel import Locale, UnknownLocaleError
    from babel.dates import get_date_format

    name = next((os.environ[k] for k in ("LC_ALL", "LC_TIME", "LANG") if os.environ.get(k)), "")
    name = name.split(".")[0].split("@")[0]
    if name in ("", "C", "POSIX"):
        return True  # no locale: the US form, as the sample clinic
    try:
        pattern = get_date_format("short", locale=Locale.parse(name)).pattern
    except (ValueError, UnknownLocaleError):
        return True
    return pattern.find("M") < pattern.find("d")


def parse_date(text: str, today: dt.date | None = None) -> tuple[dt.date | None, str]:
    """A date as typed: "today", "tomorrow", "yesterday", 2026-12-04, or the locale's short form
    (4/12, 4/12/26, 4.12.2026); without a year, the one that puts it nearest today. The date, or
    None and why not."""
    today = today or clock.today()
    typed = fold(text)
    if typed in _WORDS:
        return today + dt.timedelta(days=_WORDS[typed]), ""
    try:
        return dt.date.fromisoformat(typed), ""
    except ValueError:
        pass
    parts = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?", typed)
    if parts is None:
        return None, "type a date such as 4/12, today or tomorrow"
    first, second, year = int(parts[1]), int(parts[2]), parts[3]
    month, day = (first, second) if month_first() else (second, first)
    if year is None:
        candidates = [today.year - 1, today.year, today.year + 1]
    else:
        candidates = [int(year) + 2000 if len(year) == 2 else int(year)]
    found = []
    for candidate in candidates:
        try:
            found.append(dt.date(candidate, month, day))
        except ValueError:
            continue
    if not found:
        return None, "there is no such day"
    return min(found, key=lambda d: abs((d - today).days)), ""


def match_injector(people: Sequence[Injector], text: str) -> tuple[Injector | None, str]:
    """The injector typed: their number in the list, their name in any case, or the start of a
    name or surname that only one of them has. None and why, when it is not one person."""
    typed = fold(text)
    if typed.isdigit() and 1 <= int(typed) <= len(people):
        return people[int(typed) - 1], ""
    exact = [p for p in people if typed in (fold(p.name), fold(p.label))]
    if exact:
        return exact[0], ""
    starts = [
        p for p in people if typed and any(w.startswith(typed) for w in [fold(p.name), *fold(p.name).split()])
    ]
    if len(starts) == 1:
        return starts[0], ""
    if starts:
        return None, f"that could be {', '.join(p.name for p in starts)}: type more of the name"
    return None, f"no injector is called that: type a number from 1 to {len(people)} or a name"


def ask(question: str, check: Callable[[str], tuple[Any, str]], default: str | None = None) -> Any:  # noqa: ANN401
    """Ask until ``check`` accepts the answer (it returns the value and '' or anything and why not),
    saying each time what was wrong; the answers before this one are kept."""
    while True:
        answer = click.prompt(question, default=default, show_default=bool(default))
        value, problem = check(answer)
        if not problem:
            return value
        click.echo(f"  {problem[:1].upper()}{problem[1:]}. Try again.", err=True)
