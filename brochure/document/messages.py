"""What the templates print on their own, in each language: labels, the default disclaimer, dates.

Built-in catalogues for English and Spanish live here. A project changes a
label, or adds a language, with ``content/messages/LANG.toml`` holding
``key = "text"`` lines; keys it leaves out come from the built-in
catalogue of that language, then from English.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from brochure.base.errors import ConfigError, Problem

MESSAGES_DIR = "content/messages"

#: {placeholder} names each message may use; a key is known when it is here.
ENGLISH: dict[str, str] = {
    "page_of": "Page {page} of {pages}",
    "contents": "Contents",
    "contact_us": "Contact us",
    "notes": "Notes",
    "phone": "Phone",
    "book_online": "Book online",
    "scan_to_book": "Scan to book",
    "read_online": "Read this online",
    "reviewed": "Medically reviewed {date}",
    "reviewed_by": "Medically reviewed {date} by {name}",
    "review_due": "Next review due {date}",
    "your_treatment": "Your treatment",
    "patient_name": "Name",
    "treatment_date": "Date",
    "injector": "Injector",
    "treatment": "Treatment",
    "follow_up": "Follow-up",
    "logo_alt": "{clinic} logo",
    "note": "Note",
    "tip": "Tip",
    "warning": "Warning",
    "disclaimer": (
        "This handout gives general information only. It does not replace advice from your own "
        "medical provider. If you have a problem after treatment, call us."
    ),
    # The brochure's back page: about the whole guide, not one handout.
    "brochure_disclaimer": (
        "This guide gives general information about treatment at our clinic. It does not replace a "
        "talk with your injector, who will tell you what is right for you. If something does not feel "
        "right after treatment, call us."
    ),
    "hours": "Opening hours",
    "email": "Email",
    "website": "Web",
    "address": "Address",
    "in_this_guide": "In this guide",
    "when_to_call": "When to call us",
    # The clinic's tagline in another language than brand.toml's: set it in content/messages/LANG.toml.
    "tagline": "",
}

SPANISH: dict[str, str] = {
    "page_of": "Página {page} de {pages}",
    "contents": "Contenido",
    "contact_us": "Contáctenos",
    "notes": "Notas",
    "phone": "Teléfono",
    "book_online": "Pida su cita en línea",
    "scan_to_book": "Pida su cita",
    "read_online": "Lea esto en línea",
    "reviewed": "Revisado por personal médico en {date}",
    "reviewed_by": "Revisado en {date} por {name}",
    "review_due": "Próxima revisión: {date}",
    "your_treatment": "Su tratamiento",
    "patient_name": "Nombre",
    "treatment_date": "Fecha",
    "injector": "Profesional",
    "treatment": "Tratamiento",
    "follow_up": "Control",
    "logo_alt": "Logotipo de {clinic}",
    "note": "Nota",
    "tip": "Consejo",
    "warning": "Aviso",
    "disclaimer": (
        "Esta hoja solo da información general. No reemplaza los consejos de su propio médico. "
        "Si tiene un problema después del tratamiento, llámenos."
    ),
    "brochure_disclaimer": (
        "Esta guía da información general sobre el tratamiento en nuestra clínica. No reemplaza una "
        "charla con su profesional, que le dirá qué es lo mejor para usted. Si algo no se siente bien "
        "después del tratamiento, llámenos."
    ),
    "hours": "Horario",
    "email": "Correo",
    "website": "Web",
    "address": "Dirección",
    "in_this_guide": "En esta guía",
    "when_to_call": "Cuándo llamarnos",
}

BUILTIN: dict[str, dict[str, str]] = {"en": ENGLISH, "es": SPANISH}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


@dataclass(frozen=True)
class Messages:
    """One language's messages, as templates use them: ``t.contents`` or ``t("reviewed", date=...)``."""

    lang: str
    texts: Mapping[str, str]

    def __getattr__(self, key: str) -> str:
        if key.startswith("_") or key not in self.texts:
            raise AttributeError(f"no message {key!r} (messages: {', '.join(sorted(self.texts))})")
        return self.texts[key]

    def __call__(self, key: str, **values: object) -> str:
        text = getattr(self, key)
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)

    def month_year(self, date: dt.date | None) -> str:
        """A date as month and year in this language: 'March 2027', 'marzo de 2027'."""
        return month_year(date, self.lang)

    def long_date(self, date: dt.date | None) -> str:
        """A whole date in this language: 'November 21, 2026', '21 de noviembre de 2026'."""
        return long_date(date, self.lang)

    def weekday_date(self, date: dt.date | None) -> str:
        """A whole date with its weekday: 'Monday, December 7, 2026', 'lunes, 7 de diciembre de 2026'."""
        return long_date(date, self.lang, "full")

    def css_page_of(self) -> str:
        """The 'Page N of M' label as a CSS content value, with the page counters."""
        parts = re.split(r"(\{page\}|\{pages\})", self.page_of)
        out = []
        for part in parts:
            if part == "{page}":
                out.append("counter(page)")
            elif part == "{pages}":
                out.append("counter(pages)")
            elif part:
                out.append(css_string(part))
        return " ".join(out) or '""'

    def css(self) -> str:
        """Custom properties with the labels stylesheets print in page margins, for a <style> element."""
        return f":root {{ --label-page-of: {self.css_page_of()}; }}"


def css_string(text: str) -> str:
    """Text as a quoted CSS string; quotes, backslashes and line ends escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ").replace("<", "\\3c ")
    return f'"{escaped}"'


def month_year(date: dt.date | None, lang: str) -> str:
    """Month and year in ``lang`` (Babel's CLDR data), English when Babel does not know it."""
    if date is None:
        return ""
    from babel.core import UnknownLocaleError
    from babel.dates import format_skeleton

    try:
        return format_skeleton("yMMMM", date, locale=lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return format_skeleton("yMMMM", date, locale="en")


def long_date(date: dt.date | None, lang: str, form: str = "long") -> str:
    """A whole date in ``lang`` (Babel's CLDR data), English when Babel does not know it;
    ``form`` "full" names the weekday too."""
    if date is None:
        return ""
    from babel.core import UnknownLocaleError
    from babel.dates import format_date

    try:
        return format_date(date, form, locale=lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return format_date(date, form, locale="en")


def project_file(root: Path, lang: str) -> Path:
    """Where a project keeps its own messages for ``lang``."""
    return root / MESSAGES_DIR / f"{lang}.toml"


def load(root: Path, lang: str) -> Messages:
    """The messages for ``lang``: the project's file over the built-in catalogue over English."""
    from brochure.project.config import read_toml

    texts = {**ENGLISH, **BUILTIN.get(lang.split("-")[0], {}), **BUILTIN.get(lang, {})}
    path = project_file(root, lang)
    if path.is_file():
        shown = f"{MESSAGES_DIR}/{lang}.toml"
        data, lines = read_toml(path, shown, root)
        problems = []
        for key, value in data.items():
            if key not in ENGLISH:
                problems.append(
                    Problem(
                        shown,
                        lines.get(key),
                        f"unknown message {key!r}",
                        f"use one of: {', '.join(sorted(ENGLISH))}",
                    )
                )
            elif not isinstance(value, str) or not value.strip():
                problems.append(
                    Problem(shown, lines.get(key), f"message {key!r} must be text", f'write {key} = "..."')
                )
            elif bad := set(_PLACEHOLDER.findall(value)) - set(_PLACEHOLDER.findall(ENGLISH[key])):
                allowed = ", ".join("{" + p + "}" for p in _PLACEHOLDER.findall(ENGLISH[key])) or "none"
                problems.append(
                    Problem(
                        shown,
                        lines.get(key),
                        f"message {key!r} uses {', '.join('{' + b + '}' for b in sorted(bad))}, "
                        "which it cannot fill in",
                        f"placeholders it may use: {allowed}",
                    )
                )
            else:
                texts[key] = value
        if problems:
            raise ConfigError(problems)
    return Messages(lang, texts)
