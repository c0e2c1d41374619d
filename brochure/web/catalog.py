"""The handouts page's list: one card per topic, its languages and large print as choices on the
card, and one per brochure; with what staff search for, grouped by treatment."""

from __future__ import annotations

from dataclasses import dataclass

from brochure.base.text import fold
from brochure.project.model import Project, documents

GENERAL = "General"
OTHER = "Brochures"
#: Language names in English: staff search for these as well as for the names in the language.
ENGLISH_NAMES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
}
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
    #: The project's own language (the one a version with no ``lang`` is in).
    source: str = "en"

    @property
    def variant(self) -> str:
        """What tells this one from the other versions of its topic: "Español, large print", say."""
        parts = [LANGUAGES.get(self.lang, self.lang.upper())] if self.lang else []
        if self.large:
            parts.append("large print" if parts else "Large print")
        return ", ".join(parts)

    @property
    def choice(self) -> str:
        """This version's name among its topic's: "English", "Español", "English, large print"."""
        label = LANGUAGES.get(self.lang or self.source, (self.lang or self.source).upper())
        return f"{label}, large print" if self.large else label

    @property
    def family(self) -> str:
        """The name of the topic's own handout, of which this is a version ("aftercare" for
        "aftercare.es.large"); a brochure is its own."""
        name = self.name.removesuffix(".large") if self.large else self.name
        return name.removesuffix(f".{self.lang}") if self.lang else name

    @property
    def language_words(self) -> str:
        """What staff may type to find this version: its language in English and in the language."""
        lang = self.lang or self.source
        words = [ENGLISH_NAMES.get(lang, lang), LANGUAGES.get(lang, lang)]
        return " ".join([*words, "large print"] if self.large else words)

    @property
    def group(self) -> str:
        if self.kind != "handout":
            return OTHER
        return self.treatments[0] if self.treatments else GENERAL

    @property
    def words(self) -> str:
        """Everything a search looks in, folded (lower case, no accents)."""
        return fold(" ".join([self.title, self.summary, self.variant, *self.treatments, *self.keywords]))


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
                source,
            )
        )
    return found


@dataclass(frozen=True)
class Card:
    """A topic as the handouts page shows it: its versions (the project's language first, large
    print after each language), one of which is given; or a brochure, alone."""

    versions: tuple[Entry, ...]

    @property
    def main(self) -> Entry:
        return self.versions[0]

    @property
    def key(self) -> str:
        return self.main.family

    @property
    def group(self) -> str:
        return self.main.group

    @property
    def words(self) -> str:
        """Everything a search looks in, in every version: titles in each language, the language
        names in English and in the language, large print, treatments, keywords."""
        return fold(" ".join(v.words + " " + v.language_words for v in self.versions))


def cards(found: list[Entry]) -> list[Card]:
    """One card per topic (its handout in each language and in large print) and per brochure, in
    the order of each topic's first document."""
    families: dict[str, list[Entry]] = {}
    for entry in found:
        families.setdefault(entry.family if entry.kind == "handout" else f"\0{entry.name}", []).append(entry)
    return [
        Card(tuple(sorted(versions, key=lambda e: (e.lang != "", e.lang, e.large))))
        for versions in families.values()
    ]


def versions(found: list[Entry]) -> dict[str, Card]:
    """Each handout's card by the name of any of its versions."""
    return {v.name: card for card in cards(found) if card.main.kind == "handout" for v in card.versions}


def matches(item: Entry | Card, query: str) -> bool:
    """Whether every word of the query is in the words of a card or entry (see ``words``)."""
    return all(word in item.words for word in fold(query).split())


def grouped(found: list[Entry], query: str = "") -> list[tuple[str, list[Card]]]:
    """The cards matching ``query`` by group: treatments A to Z, then general handouts, then brochures."""
    groups: dict[str, list[Card]] = {}
    for card in cards(found):
        if matches(card, query):
            groups.setdefault(card.group, []).append(card)

    def order(name: str) -> tuple[int, str]:
        return ({GENERAL: 1, OTHER: 2}.get(name, 0), fold(name))

    return [(name, groups[name]) for name in sorted(groups, key=order)]
