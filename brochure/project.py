"""A clinic's project: its brand, topics and settings, and the documents they make."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import Brand, DocumentSpec, Settings, load_brand, load_documents
from .content import Topic, load_topics
from .errors import BrochureError, ConfigError, Problem
from .fit import Budget


@dataclass(frozen=True)
class Project:
    """A clinic's project folder, read and checked."""

    root: Path
    brand: Brand
    specs: tuple[DocumentSpec, ...]
    topics: tuple[Topic, ...]
    settings: Settings = Settings()
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Document:
    """One PDF to make: a handout for a topic, or the brochure."""

    name: str
    spec: DocumentSpec
    topics: tuple[Topic, ...]

    @property
    def title(self) -> str:
        if self.spec.title:
            return self.spec.title
        return self.topics[0].title if self.spec.kind == "handout" else ""

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
    project = Project(root, brand, tuple(specs), tuple(topics), settings, warnings)
    documents(project)  # check names and topic references now, not mid-build
    return project


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
                        spec.line,
                        f"document {spec.name!r} names topic {slug!r}, which does not exist",
                        f"use a file name from content/topics/ without '.md': {', '.join(sorted(by_slug))}",
                    )
                )
            else:
                chosen.append(by_slug[slug])
        if spec.name == "{topic}":
            result += [Document(t.slug, spec, (t,)) for t in chosen]
        elif spec.kind == "handout" and len(chosen) != 1:
            errors.append(
                Problem(
                    "content/documents.toml",
                    spec.line,
                    f"handout {spec.name!r} must have exactly one topic",
                    'set topics = ["one-topic"], or name = "{topic}" for one handout per topic',
                )
            )
        else:
            result.append(Document(spec.name, spec, tuple(chosen)))
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
