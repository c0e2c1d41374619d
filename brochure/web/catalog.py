"""The handouts page's list: every document with what staff search for, grouped by treatment."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from brochure.project.model import Project, documents

GENERAL = "General"
OTHER = "Brochures"
#: Language names as staff read them on a card; any other language shows its code.
LANGUAGES = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "it": "Italiano",
    "pt": "Português",
    "nl": "Nederlands",
}


@dataclass(frozen=True)
class Entry:
    """One document as the handouts page shows it."""

    name: str
    title: str
    summary: str
    kind: str
    treatments: tuple[str, ...]
    keywords: tuple[str, ...]
    #: The language, when it is not the project's own ("" when it is), and whether it is large print.
    lang: str = ""
    large: bool = False

    @property
    def variant(self) -> str:
        """What tells this one from the other versions of its topic: "Español, large print", say."""
        parts = [LANGUAGES.get(self.lang, self.lang.upper())] if self.lang else []
        if self.large:
            parts.append("large print" if parts else "Large print")
        return ", ".join(parts)

    @property
    def group(self) -> str:
        if self.kind != "handout":
            return OTHER
        return self.treatments[0] if self.treatments else GENERAL

    @property
    def words(self) -> str:
        """Everything a search looks in, folded (lower case, no accents)."""
        return fold(" ".join([self.title, self.summary, self.variant, *self.treatments, *self.keywords]))


def fold(text: str) -> str:
    """Lower case without accents, so 'botox' finds 'Botox' and 'cafe' finds 'café'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def entries(project: Project) -> list[Entry]:
    """Every document of the project, in its config order."""
    found = []
    source = project.settings.source_lang
    for doc in documents(project):
        topics = doc.topics
        treatments = tuple(dict.fromkeys(t for topic in topics for t in topic.treatments))
        keywords = tuple(dict.fromkeys(k for topic in topics for k in topic.keywords))
        summary = topics[0].summary if doc.spec.kind == "handout" and topics else doc.spec.subtitle
        found.append(
            Entry(
                doc.name,
                doc.title or doc.name,
                summary or "",
                doc.spec.kind,
                treatments,
                keywords,
                "" if doc.lang == source else doc.lang,
                doc.large,
            )
        )
    return found


def matches(entry: Entry, query: str) -> bool:
    """Whether every word of the query is in the entry's title, summary, treatments or keywords."""
    return all(word in entry.words for word in fold(query).split())


def grouped(found: list[Entry], query: str = "") -> list[tuple[str, list[Entry]]]:
    """The entries matching ``query`` by group: treatments A to Z, then general handouts, then brochures."""
    groups: dict[str, list[Entry]] = {}
    for entry in found:
        if matches(entry, query):
            groups.setdefault(entry.group, []).append(entry)

    def order(name: str) -> tuple[int, str]:
        return ({GENERAL: 1, OTHER: 2}.get(name, 0), fold(name))

    return [(name, groups[name]) for name in sorted(groups, key=order)]
