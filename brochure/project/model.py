"""A clinic's project: its brand, topics and settings, and the documents they make."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.base.errors import BrochureError, ConfigError, Problem
from brochure.project.config import (
    LARGE_PRINT_FLOOR_PT,
    TRIFOLD_FLOOR_PT,
    Brand,
    DocumentSpec,
    Settings,
    load_brand,
    load_documents,
)
from brochure.project.topics import Topic, load_topics

if TYPE_CHECKING:  # auto-fit's, kept with a document between builds
    from brochure.document.fit import FitHint


@dataclass(frozen=True)
class Budget:
    """How many pages a document may have."""

    exact: int | None = None
    maximum: int | None = None

    def allows(self, pages: int) -> bool:
        if self.exact is not None and pages != self.exact:
            return False
        return self.maximum is None or pages <= self.maximum

    @property
    def limit(self) -> int | None:
        return self.exact if self.exact is not None else self.maximum

    def __str__(self) -> str:
        if self.exact is not None:
            return f"exactly {self.exact}"
        return f"at most {self.maximum}" if self.maximum is not None else "any"


@dataclass(frozen=True)
class Project:
    """A clinic's project folder, read and checked."""

    root: Path
    brand: Brand
    specs: tuple[DocumentSpec, ...]
    topics: tuple[Topic, ...]
    settings: Settings = Settings()
    warnings: tuple[Problem, ...] = ()
    #: Translations of topics (aftercare.es.md), kept apart: ``topics`` are the sources.
    translations: tuple[Topic, ...] = ()

    def link_targets(self, lang: str) -> dict[str, Topic]:
        """The topics a text in ``lang`` may link to: each in that language where it is translated."""
        targets = {t.slug: t for t in self.topics}
        targets.update({t.slug: t for t in self.translations if t.lang == lang})
        return targets

    def translations_of(self, topic: Topic) -> list[Topic]:
        """The translations of a source topic, by language."""
        return sorted((t for t in self.translations if t.slug == topic.slug), key=lambda t: t.lang)


@dataclass(frozen=True)
class Document:
    """One PDF to make: a handout for a topic, or the brochure."""

    name: str
    spec: DocumentSpec
    topics: tuple[Topic, ...]
    #: The language it is printed in: labels, dates, hyphenation, the PDF's /Lang.
    lang: str = "en"
    #: How it fitted in the last build, where auto-fit starts (set by the build; no part of its key).
    fit_hint: FitHint | None = field(default=None, compare=False, repr=False)
    #: Also make the print shop's file, NAME.press.pdf (set by `build --print-shop`; no part of its key).
    press: bool = field(default=False, compare=False, repr=False)

    @property
    def pressable(self) -> bool:
        """Whether a print-shop file is made of it: every kind but the handout (a desk prints those)."""
        return self.spec.kind != "handout"

    @property
    def large(self) -> bool:
        """Whether this is a large-print variant (NAME.large.pdf)."""
        return self.spec.large

    def floor_pt(self, settings: Settings) -> float:
        """The smallest body size auto-fit may use."""
        if self.large:
            return LARGE_PRINT_FLOOR_PT
        if self.spec.kind == "trifold":
            # A panel is a narrow column: tri-folds are set smaller than a page-wide handout.
            return min(settings.body_floor_pt, TRIFOLD_FLOOR_PT)
        return settings.body_floor_pt

    @property
    def landscape(self) -> bool:
        """Whether its pages are the brand's paper turned sideways (a tri-fold's sheet)."""
        return self.spec.kind == "trifold"

    @property
    def title(self) -> str:
        if self.spec.title:
            return self.spec.title
        return self.topics[0].title if self.spec.kind in ("handout", "trifold") else ""

    @property
    def budget(self) -> Budget:
        """How many pages the document may have."""
        return Budget(exact=self.spec.pages, maximum=self.spec.max_pages)

    @property
    def source(self) -> str:
        """The file a reader would edit to change this document."""
        return self.topics[0].shown if self.spec.kind == "handout" else "content/documents.toml"


def load_project(root: Path | str) -> Project:
    """Read a project's brand, documents and topics; raise BrochureError listing every problem."""
    root = Path(root).resolve()
    if not (root / "content").is_dir():
        raise ConfigError.at(
            str(root),
            None,
            "is not a brochure project: it has no content/ folder",
            "run the command in your project folder, or pass --project DIR",
        )
    problems: list[Problem] = []

    def attempt(load, *args):  # noqa: ANN001, ANN202
        try:
            return load(*args)
        except BrochureError as exc:
            problems.extend(exc.problems)
            return None

    brand = attempt(load_brand, root)
    docs = attempt(load_documents, root)
    topics = attempt(load_topics, root)
    if problems:
        raise BrochureError(problems)
    (brand, brand_warnings), (specs, settings, doc_warnings), (topics, topic_warnings) = brand, docs, topics
    warnings = (*brand_warnings, *doc_warnings, *topic_warnings)
    sources = tuple(t for t in topics if not t.translation)
    translations = tuple(t for t in topics if t.translation)
    _check_translations(sources, translations)
    project = Project(root, brand, tuple(specs), sources, settings, warnings, translations)
    documents(project)  # check names and topic references now, not mid-build
    return project


def _check_translations(sources: tuple[Topic, ...], translations: tuple[Topic, ...]) -> None:
    """A translation needs its source beside it, in another language."""
    by_slug = {t.slug: t for t in sources}
    problems = []
    for t in translations:
        source = by_slug.get(t.slug)
        if source is None:
            problems.append(
                Problem(
                    t.shown,
                    None,
                    f"is a translation of {t.slug}.md, which does not exist",
                    f"name the file after the topic it translates, then its language: {{topic}}.{t.lang}.md",
                )
            )
        elif source.lang == t.lang:
            problems.append(
                Problem(
                    t.shown,
                    dict(t.key_lines).get("lang"),
                    f"is in {t.lang!r}, the language of its source {source.shown}",
                    "a translation is in another language: fix its 'lang' or its file name",
                )
            )
    if problems:
        raise BrochureError(problems)


def _large(spec: DocumentSpec) -> DocumentSpec:
    """The large-print variant of a handout's spec: the large stylesheet last, its own page budget."""
    return replace(
        spec,
        styles=(*spec.styles, "large.css"),
        pages=None,
        max_pages=spec.large_print_pages,
        large_print=False,
        large=True,
    )


def _handouts(project: Project, name: str, spec: DocumentSpec, topic: Topic) -> list[Document]:
    """A topic's handouts: in its own language and each translation, each also in large print if asked."""
    made = []
    for text in [topic, *project.translations_of(topic)]:
        base = name if text is topic else f"{name}.{text.lang}"
        made.append(Document(base, spec, (text,), text.lang))
        if spec.large_print:
            made.append(Document(f"{base}.large", _large(spec), (text,), text.lang))
    return made


def _brochures(project: Project, spec: DocumentSpec, chosen: list[Topic]) -> list[Document]:
    """A brochure in the project's language, and in each language its spec names."""
    source = project.settings.source_lang
    made = []
    for lang in spec.languages or (source,):
        if lang == source:
            made.append(Document(spec.name, spec, tuple(chosen), source))
            continue
        texts = {t.slug: t for t in project.translations if t.lang == lang}
        # A topic not yet translated is left out; `brochure check` names it.
        topics = tuple(texts[t.slug] for t in chosen if t.slug in texts)
        if topics:
            made.append(Document(f"{spec.name}.{lang}", spec, topics, lang))
    return made


def documents(project: Project) -> list[Document]:
    """Expand the documents config into the documents to make, in config order."""
    by_slug = {t.slug: t for t in project.topics}
    result: list[Document] = []
    errors: list[Problem] = []
    for spec in project.specs:
        chosen: list[Topic] = []
        for slug in spec.topics or [t.slug for t in project.topics]:
            if slug not in by_slug:
                errors.append(
                    Problem(
                        "content/documents.toml",
                        spec.topics_line or spec.line,
                        f"document {spec.name!r} names topic {slug!r} in 'topics', "
                        f"but content/topics/{slug}.md does not exist",
                        f"use a file name from content/topics/ without '.md': {', '.join(sorted(by_slug))}",
                    )
                )
            else:
                chosen.append(by_slug[slug])
        if spec.name == "{topic}":
            result += [d for t in chosen for d in _handouts(project, t.slug, spec, t)]
        elif spec.kind == "handout" and len(chosen) != 1:
            errors.append(
                Problem(
                    "content/documents.toml",
                    spec.line,
                    f"handout {spec.name!r} must have exactly one topic",
                    'set topics = ["one-topic"], or name = "{topic}" for one handout per topic',
                )
            )
        elif spec.kind == "handout":
            result += _handouts(project, spec.name, spec, chosen[0])
        else:
            result += _brochures(project, spec, chosen)
    names: dict[str, Document] = {}
    for doc in result:
        if doc.name in names:
            errors.append(
                Problem(
                    "content/documents.toml",
                    doc.spec.line,
                    f"two documents are named {doc.name!r}",
                    "rename the document or the topic file",
                )
            )
        names[doc.name] = doc
    if errors:
        raise ConfigError(errors)
    return result


def select(project: Project, names: Iterable[str]) -> list[Document]:
    """The documents named, all of them when none is; an unknown name is an error."""
    docs = documents(project)
    wanted = list(names)
    if not wanted:
        return docs
    by_name = {d.name: d for d in docs}
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise BrochureError.at(
            None,
            None,
            f"no document named {', '.join(repr(n) for n in unknown)}",
            "run 'brochure list' to see the documents",
        )
    return [by_name[n] for n in dict.fromkeys(wanted)]
