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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.document.templates import search_path

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


def missing(root: Path, lang: str) -> list[str]:
    """The files of templates/email/LANG/ found neither in the project nor built in."""
    folders = search_path(root, "templates")
    return [f for f in FILES if not any((d / "email" / lang / f).is_file() for d in folders)]


def templates_for(root: Path, lang: str) -> EmailTemplates:
    """The templates an email in ``lang`` uses: the language's own folder ("es-MX", then "es"), when it
    has every file, else the English ones."""
    for candidate in dict.fromkeys([lang, _primary(lang)]):
        if candidate and not missing(root, candidate):
            return EmailTemplates(f"email/{candidate}", candidate)
        if _primary(candidate) == DEFAULT_LANG:
            break
    return EmailTemplates("email", DEFAULT_LANG)


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
