"""Building: each document rendered to bytes within its budget, then written safely, only when stale."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BrochureError, Problem, RenderError
from .fit import FitResult
from .inputs import Hasher, document_key, fingerprint_options, project_fingerprint, style_chain
from .output import Manifest, locked, remove_stale_temporaries, write_atomic
from .paths import builtin_dir, default_font_dir, is_inside
from .project import Document, Project, select

if TYPE_CHECKING:
    from .workers import Renderer, Result

log = logging.getLogger(__name__)


BUILT, UP_TO_DATE, FAILED = "built", "up to date", "failed"


@dataclass
class Outcome:
    """What happened to one document in a build."""

    name: str
    status: str = FAILED
    path: Path | None = None
    pages: int = 0
    error: BrochureError | None = None
    warnings: list[str] = field(default_factory=list)
    fit: FitResult | None = None


def allowed_roots(project: Project) -> list[Path]:
    """What the renderer may read: the project, and the tool's own styles and default font."""
    return [project.root, builtin_dir("styles").resolve(), default_font_dir()]


def document_styles(project: Project, doc: Document) -> list[Path]:
    """The stylesheets of ``doc``: the project's own where it has them, else the built-in ones."""
    from . import render

    return [render.find_style(project.root, name) for name in doc.spec.styles]


def document_html(
    project: Project,
    doc: Document,
    paper: str,
    env=None,  # noqa: ANN001 - a Jinja environment
    padding: int = 0,
    *,
    link_styles: bool = True,
) -> str:
    """The HTML of ``doc``; with ``link_styles``, linking its stylesheets, as a browser needs."""
    from . import render

    env = env or render.environment(project.root)
    topics = {t.slug: t for t in project.topics}
    here = frozenset(t.slug for t in doc.topics)
    sections = [render.section(t, project.root, topics, here) for t in doc.topics]
    styles = document_styles(project, doc) if link_styles else []
    reviewed = [t.reviewed_on for t in doc.topics if t.reviewed_on]
    due = [t.review_due for t in doc.topics if t.review_due]
    first = doc.topics[0]
    info = {
        "name": doc.name,
        "kind": doc.spec.kind,
        "title": doc.title or project.brand.guide_title,
        "subtitle": doc.spec.subtitle,
        "subject": first.summary
        if doc.spec.kind == "handout"
        else f"{project.brand.clinic_name}: {doc.title or project.brand.guide_title}",
        # The brochure is as fresh as its oldest review, and due at the earliest.
        "reviewed_on": min(reviewed) if reviewed else None,
        "reviewed_by": first.reviewed_by if doc.spec.kind == "handout" else "",
        "review_due": min(due) if due else None,
        # Pages added before the back page so the page count is a multiple of N.
        "padding": padding,
        "pad_with": doc.spec.pad_with,
    }
    return render.render_html(
        env,
        project.root,
        template=doc.spec.template,
        styles=styles,
        brand=project.brand,
        paper=paper,
        document=info,
        sections=sections,
        created=max(reviewed) if reviewed else None,
        link_styles=link_styles,
    )


def render_document(project: Project, doc: Document, paper: str, env=None, *, strict: bool = False):  # noqa: ANN001, ANN201
    """Render ``doc`` to PDF bytes within its page budget (auto-fitting if need be); touches no file."""
    from . import pdf
    from .fit import fit
    from .measure import MIN_TEXT_PT
    from .render import brand_css

    base_url = (project.root / "content").as_uri() + "/"
    roots = allowed_roots(project)
    # Stylesheets go to the engine parsed, and each worker keeps them parsed
    # between documents: keyed by the content of each and all it imports.
    hasher = Hasher()
    chains = {path: style_chain(project.root, [path.name]) for path in document_styles(project, doc)}
    styles = [(path, "|".join(f"{p}={hasher.file(p)}" for p in chain)) for path, chain in chains.items()]
    # Workers start a new font configuration when the project or a font file changes.
    font_files = [face.path for face in project.brand.fonts]
    font_files += [p for chain in chains.values() for p in chain if p.suffix.lower() in pdf.FONT_SUFFIXES]
    fonts = "\n".join([str(project.root), *sorted({f"{f}={hasher.file(f)}" for f in font_files})])

    brand = brand_css(project.brand, paper)

    def lay_out(extra_css: str, html: str) -> pdf.Layout:
        layout = pdf.lay_out(
            html,
            base_url=base_url,
            roots=roots,
            document=doc.name,
            brand_css=brand,
            stylesheets=styles,
            extra_css=extra_css,
            fonts=fonts,
        )
        if layout.pages > MAX_PAGES:
            raise RenderError.at(
                doc.source,
                None,
                f"document {doc.name!r} has {layout.pages} pages, more than brochure makes ({MAX_PAGES})",
                "split it into several documents",
            )
        return layout

    html = document_html(project, doc, paper, env, link_styles=False)
    layout, measured, fitted = fit(
        lambda css: lay_out(css, html),
        doc.budget,
        floor_pt=project.settings.body_floor_pt,
        source=doc.source,
        name=doc.name,
    )
    problems = [
        Problem(
            doc.source, None, f"document {doc.name!r}: {where}", _MARGIN_FIX if in_margin else _OUTSIDE_FIX
        )
        for where, in_margin in measured.outside
    ]
    if measured.smallest_pt and measured.smallest_pt < MIN_TEXT_PT:
        problems.append(
            Problem(
                doc.source,
                None,
                f"document {doc.name!r} has text at {measured.smallest_pt:g} pt "
                f"('{measured.smallest_text}'), "
                f"below the {MIN_TEXT_PT:g} pt that stays readable",
                "raise the font-size in the stylesheet that sets it",
            )
        )
    if problems:
        raise RenderError(problems)
    every = doc.spec.multiple_of
    if every and layout.pages % every:
        padding = every - layout.pages % every
        padded = lay_out(
            fitted.css, document_html(project, doc, paper, env, padding=padding, link_styles=False)
        )
        if padded.pages != layout.pages + padding:  # pragma: no cover - a template without padding support
            raise RenderError.at(
                doc.source,
                None,
                f"document {doc.name!r} could not be padded to a multiple of {every} pages",
                "keep the padding block of the built-in brochure template in your override",
            )
        layout = padded
    rendered = pdf.write(layout, {project.brand.font_family})
    if strict and rendered.warnings:
        raise RenderError(
            [
                Problem(doc.source, None, f"document {doc.name!r}: {w}", "fix it, or build without --strict")
                for w in rendered.warnings
            ]
        )
    rendered.fit = fitted
    return rendered


_OUTSIDE_FIX = "make the picture or table smaller, or break the long line"
_MARGIN_FIX = (
    "shorten the disclaimer or contact details in content/brand.toml, "
    "or give the footer more room (the page's bottom margin) in styles/"
)
MAX_PAGES = 100


def check_out_dir(project: Project, out: Path) -> Path:
    """Refuse an output folder that is, or contains, the project (or sits inside content/)."""
    out = out.resolve()
    if is_inside(project.root, out):
        raise BrochureError.at(
            str(out),
            None,
            "cannot be the output folder: it is or contains the project",
            "choose a folder inside the project such as out/",
        )
    for keep in ("content", "templates", "styles"):
        if is_inside(out, project.root / keep):
            raise BrochureError.at(
                str(out),
                None,
                f"cannot be the output folder: it is inside {keep}/",
                "choose a folder such as out/",
            )
    return out


@dataclass
class Summary:
    """What a build did, for its closing line."""

    outcomes: list[Outcome]
    removed: list[str]
    seconds: float

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def describe(self) -> str:
        parts = [
            f"{self.count(BUILT)} rebuilt",
            f"{self.count(UP_TO_DATE)} up to date",
            f"{self.count(FAILED)} failed",
        ]
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        return f"{', '.join(parts)} in {self.seconds:.2f} s"


def _expected_seconds(doc: Document, manifest: Manifest) -> float:
    """How long a document took last time; a guess from its size before that."""
    entry = manifest.entries.get(doc.name)
    if entry and entry.seconds:
        return entry.seconds
    return 0.05 * len(doc.topics) + sum(len(t.body) for t in doc.topics) / 100_000


def build(project: Project, out: Path, **options: object) -> list[Outcome]:
    """Build the chosen documents into ``out/NAME.pdf``; the options are build_summary's."""
    return build_summary(project, out, **options).outcomes


def build_summary(
    project: Project,
    out: Path,
    *,
    names: Iterable[str] = (),
    paper: str | None = None,
    strict: bool = False,
    force: bool = False,
    jobs: int | None = None,
    renderer: Renderer | None = None,
    lock_timeout: float = 300.0,
    on_wait: Callable[[], None] | None = None,
    on_done: Callable[[Outcome, float], None] | None = None,
) -> Summary:
    """Render the documents whose inputs changed, in worker processes, and write each good one.

    A document is rebuilt only when the hash of its inputs (topics, templates,
    styles, fonts, pictures, config, options, tool versions) differs from the
    one its PDF was made from. A document that fails is reported in its
    Outcome; its old PDF is left untouched and the others still build. With
    nothing to do, WeasyPrint is never imported.
    """
    started = time.perf_counter()
    out = check_out_dir(project, out)
    names = list(names)
    docs = select(project, names)
    paper_option = paper
    paper = paper or project.brand.paper
    with locked(out, lock_timeout, on_wait):
        remove_stale_temporaries(out)
        manifest = Manifest(out)
        hasher = Hasher()
        options = f"paper={paper} strict={strict}"
        keys = {doc.name: document_key(project, doc, options, hasher) for doc in docs}
        outcomes = {doc.name: Outcome(doc.name) for doc in docs}
        todo = []
        for doc in docs:
            if not force and manifest.up_to_date(doc.name, keys[doc.name]):
                outcomes[doc.name].status = UP_TO_DATE
                outcomes[doc.name].path = out / manifest.entries[doc.name].file
            else:
                todo.append(doc)
        todo.sort(key=lambda d: _expected_seconds(d, manifest), reverse=True)
        changed = bool(todo)
        if todo:
            from .workers import Renderer

            pool = renderer or Renderer(jobs)
            try:
                for result in pool.render(project, todo, paper, strict):
                    outcome = outcomes[result.name]
                    _finish(outcome, result, out, manifest, keys[result.name])
                    if on_done:
                        on_done(outcome, result.seconds)
            finally:
                if renderer is None:
                    pool.close()
        removed: list[str] = []
        if not names:
            removed = manifest.remove_others({d.name for d in docs})
            changed = changed or bool(removed)
        # Only a build of everything, with everything now good, may vouch for the whole project.
        everything_good = not names and all(o.status != FAILED for o in outcomes.values())
        fingerprint = (
            project_fingerprint(project.root, fingerprint_options(paper_option, strict))
            if everything_good
            else ""
        )
        if fingerprint != manifest.fingerprint:
            manifest.fingerprint = fingerprint
            changed = True
        if changed:
            manifest.save()
    return Summary([outcomes[d.name] for d in docs], removed, time.perf_counter() - started)


def _finish(outcome: Outcome, result: Result, out: Path, manifest: Manifest, key: str) -> None:
    """Write a rendered document into place, or record why it failed."""
    if result.error is not None:
        outcome.status, outcome.error = FAILED, result.error
        return
    path = out / f"{result.name}.pdf"
    try:
        write_atomic(path, result.pdf)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        fix = "check the output folder's permissions and free space, or choose another with --out"
        outcome.status, outcome.error = (
            FAILED,
            BrochureError.at(path, None, f"cannot be written: {reason}", fix),
        )
        return
    manifest.record(result.name, key, result.pdf, result.seconds)
    outcome.status, outcome.path, outcome.pages = BUILT, path, result.pages
    outcome.warnings, outcome.fit = list(result.warnings), result.fit
