"""Which email templates an email in a given language uses, and which languages lack their own.

The English templates are templates/email/subject.txt, body.txt and
body.html; a language's own are in templates/email/LANG/ (templates/email/es/
for Spanish). A project's templates/ folder is searched first, so a clinic may
change one file of a language and keep the others built in. A language is
used only when all three of its files are found (one email never mixes two
languages); otherwise the email goes in English, and `brochure check` names
the missing file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.base.errors import ConfigError
from brochure.document.templates import search_path
from brochure.project import schema
from brochure.project.config import read_toml
from brochure.project.schema import Field

if TYPE_CHECKING:
    from brochure.project.model import Project

#: The files of one language's email.
FILES = ("subject.txt", "body.txt", "body.html")
#: The language of the templates in templates/email/ itself.
DEFAULT_LANG = "en"


@dataclass(frozen=True)
class EmailTemplates:
    """The folder of an email's templates ("email/es", within templates/) and the language they are in."""

    folder: str
    lang: str

    def name(self, file: str) -> str:
        """A template's name for the Jinja loader: "email/es/subject.txt"."""
        return f"{self.folder}/{file}"


def languages(project: Project) -> tuple[str, ...]:
    """The project's languages: those content/documents.toml declares, else the topics' own language
    followed by each language a topic is translated into."""
    if project.settings.languages:
        return project.settings.languages
    source = project.settings.source_lang
    return (source, *sorted({t.lang for t in project.translations} - {source}))


def _primary(lang: str) -> str:
    """The language without its region: "es" for "es-MX"."""
    return lang.split("-")[0].lower()


def _folder(lang: str, sub: str = "") -> str:
    """The folder within templates/ of a language's email ("" for the English one in email/ itself),
    or of one of its follow-ups (``sub`` "follow-ups/day1")."""
    return "/".join(part for part in ("email", lang, sub) if part)


def missing(root: Path, lang: str, sub: str = "") -> list[str]:
    """The files of templates/email/LANG/ (or of its ``sub`` folder) found neither in the project nor
    built in; ``lang`` "" is the English folder, templates/email/ itself."""
    folders = search_path(root, "templates")
    where = _folder(lang, sub)
    return [f for f in FILES if not any((d / where / f).is_file() for d in folders)]


def templates_for(root: Path, lang: str, sub: str = "") -> EmailTemplates:
    """The templates an email in ``lang`` uses: the language's own folder ("es-MX", then "es"), when it
    has every file, else the English ones (of the follow-up ``sub``, when one is named)."""
    for candidate in dict.fromkeys([lang, _primary(lang)]):
        if candidate and not missing(root, candidate, sub):
            return EmailTemplates(_folder(candidate, sub), candidate)
        if _primary(candidate) == DEFAULT_LANG:
            break
    return EmailTemplates(_folder("", sub), DEFAULT_LANG)


def untranslated(project: Project) -> list[tuple[str, str]]:
    """(language, missing file as templates/email/LANG/FILE) for each language of the project whose
    emails would go in English."""
    found = []
    for lang in languages(project):
        if _primary(lang) == DEFAULT_LANG or templates_for(project.root, lang).lang != DEFAULT_LANG:
            continue
        # A regional tag with no folder of its own is named by its language's folder ("es" for "es-MX").
        own = lang if missing(project.root, lang) != list(FILES) else _primary(lang)
        found += [(lang, f"templates/email/{own}/{f}") for f in missing(project.root, own)]
    return found


# -- follow-up emails -------------------------------------------------------------

#: The folder (within templates/email/ or templates/email/LANG/) of follow-up emails.
FOLLOW_UPS = "follow-ups"
#: A follow-up's title for staff and its medical review, beside its three files.
ABOUT_FILE = "follow-up.toml"

_ABOUT_SCHEMA = {
    "title": Field(str, required=True, check=schema.not_blank, example='title = "Day-1 check-in"'),
    "reviewed_by": Field(str, default="", example='reviewed_by = "Medical director"'),
    "reviewed_on": Field(dt.date, example="reviewed_on = 2026-09-15"),
    "review_due": Field(dt.date, example="review_due = 2027-03-15"),
}


@dataclass(frozen=True)
class FollowUpEmail:
    """One follow-up email in one language: where its files are, its title, its review."""

    name: str  # "day1"
    templates: EmailTemplates
    title: str
    #: templates/email/.../follow-up.toml as shown in messages (the project's copy or the built-in one).
    shown: str
    reviewed_on: dt.date | None = None
    review_due: dt.date | None = None

    def overdue(self, today: dt.date) -> bool:
        """Whether its medical review date has passed: it is then held, not sent."""
        return self.review_due is not None and self.review_due < today


def follow_up(root: Path, name: str, lang: str) -> FollowUpEmail:
    """The follow-up email ``name`` in ``lang`` (the language's own folder when it has every file, else
    the English one); ConfigError, naming the folder and the fix, when there is none or its
    follow-up.toml is wrong."""
    sub = f"{FOLLOW_UPS}/{name}"
    found = templates_for(root, lang, sub)
    if found.folder == _folder("", sub) and missing(root, "", sub):
        raise ConfigError.at(
            f"templates/{_folder('', sub)}/",
            None,
            f"the follow-up email '{name}' is not there (it needs {', '.join(FILES)})",
            f"add the folder templates/email/{sub}/, or take '{name}' out of the topic's follow_ups",
        )
    for folder in search_path(root, "templates"):
        path = folder / found.folder / ABOUT_FILE
        if path.is_file():
            break
    else:
        raise ConfigError.at(
            f"templates/{found.folder}/{ABOUT_FILE}",
            None,
            "is missing: a follow-up needs its title and its medical review date",
            f"add it, like templates/email/{sub}/{ABOUT_FILE} in the sample",
        )
    shown = f"templates/{found.folder}/{ABOUT_FILE}"
    inside = path.resolve().is_relative_to(root.resolve())
    data, lines = read_toml(path, shown, root if inside else None)
    result = schema.validate(data, _ABOUT_SCHEMA, shown, lines, line_if_unknown=None)
    if result.errors:
        raise ConfigError(result.errors)
    v = result.values
    return FollowUpEmail(name, found, v["title"].strip(), shown, v["reviewed_on"], v["review_due"])
