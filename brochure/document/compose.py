"""One document made: its HTML from the project, then its PDF bytes within its page budget.

Below both the build (which decides what to make and writes it) and the
workers (which run this in warm processes): neither imports the other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brochure.base.errors import Problem, RenderError
from brochure.base.paper import paper as paper_named
from brochure.base.paths import builtin_dir, default_font_dir
from brochure.project.config import MAX_PAGES
from brochure.project.inputs import Hasher, process_hasher, style_chain
from brochure.project.model import Document, Project

if TYPE_CHECKING:
    from collections.abc import Callable

    from brochure.document.fit import FitHint, FitResult
    from brochure.engine import pdf, private
    from brochure.engine.measure import Measure


def allowed_roots(project: Project) -> list[Path]:
    """What the renderer may read: the project, and the tool's own styles and default font."""
    return [project.root, builtin_dir("styles").resolve(), default_font_dir()]


def document_styles(project: Project, doc: Document) -> list[Path]:
    """The stylesheets of ``doc``: the project's own where it has them, else the built-in ones."""
    from brochure.document import templates as render

    return [render.find_style(project.root, name) for name in doc.spec.styles]


def document_html(
    project: Project,
    doc: Document,
    paper: str,
    env=None,  # noqa: ANN001 - a Jinja environment
    padding: int = 0,
    *,
    link_styles: bool = True,
    extra: dict | None = None,
    sections: list | None = None,
) -> str:
    """The HTML of ``doc``; with ``link_styles``, linking its stylesheets, as a browser needs.

    ``sections`` are its topics made HTML (document_sections), when the caller kept them.
    """
    from brochure.document import templates as render

    env = env or render.environment(project.root)
    sections = sections if sections is not None else document_sections(project, doc)
    styles = document_styles(project, doc) if link_styles else []
    reviewed = [t.reviewed_on for t in doc.topics if t.reviewed_on]
    due = [t.review_due for t in doc.topics if t.review_due]
    first = doc.topics[0]
    from brochure.document import messages

    own_language = doc.lang == project.settings.source_lang
    if doc.spec.kind == "trifold":
        from brochure.document.trifold import sheet

        extra = {"sheet": sheet(paper), **(extra or {})}
    info = {
        "name": doc.name,
        "kind": doc.spec.kind,
        "lang": doc.lang,
        "large": doc.large,
        # The brand's disclaimer is in the project's language; a translation
        # prints its language's (content/messages/LANG.toml may change it).
        "disclaimer": project.brand.disclaimer
        if own_language
        else messages.load(project.root, doc.lang).disclaimer,
        # The tagline too: a translation prints content/messages/LANG.toml's, or none.
        "tagline": project.brand.tagline if own_language else messages.load(project.root, doc.lang).tagline,
        "online_url": first.online_url if doc.spec.kind == "handout" else None,
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
        "landscape": doc.landscape,
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
        extra=extra,
    )


def document_sections(project: Project, doc: Document) -> list:
    """``doc``'s topics, each made HTML from its Markdown (render.Section)."""
    from brochure.document import templates as render

    topics = project.link_targets(doc.lang)
    here = frozenset(t.slug for t in doc.topics)
    return [render.section(t, project.root, topics, here) for t in doc.topics]


def layout_engine(project: Project, doc: Document, paper: str, hasher: Hasher | None = None) -> Engine:
    """The engine that lays out ``doc`` with its stylesheets and fonts: ``engine(extra_css, html)``."""
    return Engine(project, doc, paper, hasher)


class Engine:
    """Lays out one document's HTML with the document's stylesheets and fonts.

    Every layout is checked for the brand's paper and the page cap. Both the
    build and personalised copies lay out through here.
    """

    def __init__(self, project: Project, doc: Document, paper: str, hasher: Hasher | None = None) -> None:
        from brochure.document.templates import brand_css
        from brochure.engine import pdf

        self.project, self.doc, self.paper = project, doc, paper
        # Stylesheets go to the engine parsed, and each worker keeps them parsed
        # between documents: keyed by the content of each and all it imports.
        hasher = hasher or process_hasher(project.root)
        self.chains = {path: style_chain(project.root, [path.name]) for path in document_styles(project, doc)}
        styles = [
            (path, "|".join(f"{p}={hasher.file(p)}" for p in chain)) for path, chain in self.chains.items()
        ]
        # Workers start a new font configuration when the project or a font file changes.
        font_files = [face.path for face in project.brand.fonts]
        font_files += [
            p for chain in self.chains.values() for p in chain if p.suffix.lower() in pdf.FONT_SUFFIXES
        ]
        self.settings: dict[str, Any] = {
            "base_url": (project.root / "content").as_uri() + "/",
            "roots": allowed_roots(project),
            "document": doc.name,
            "brand_css": brand_css(project.brand, paper, doc.landscape),
            "stylesheets": styles,
            "fonts": "\n".join([str(project.root), *sorted({f"{f}={hasher.file(f)}" for f in font_files})]),
        }

    def __call__(self, extra_css: str, html: str) -> pdf.Layout:
        """Lay out ``html`` with auto-fit's ``extra_css``."""
        from brochure.engine import pdf

        return self._checked(pdf.lay_out(html, extra_css=extra_css, **self.settings))

    def press(self, extra_css: str, html: str) -> pdf.Layout:
        """Lay out ``html`` for the print shop (engine.press): bleed, CMYK output intent, PDF/X-4."""
        from brochure.engine import pdf

        return self._checked(pdf.lay_out(html, extra_css=extra_css, press=True, **self.settings))

    def prepare(self, extra_css: str, html: str, slots: Sequence[str]) -> private.Prepared | None:
        """``html`` made ready to lay out, perhaps many times with ``slots`` filled in
        (see engine.private.prepare); None where WeasyPrint's internals cannot be used."""
        from brochure.engine import private

        return private.prepare(html, extra_css=extra_css, slots=slots, **self.settings)

    def again(self, prepared: private.Prepared, values: dict[str, str], *, first: bool = False) -> pdf.Layout:
        """Lay out ``prepared`` (from `prepare`) with ``values`` in its slots
        (see engine.private.lay_out_prepared, which raises Unavailable when it cannot)."""
        from brochure.engine import private

        return self._checked(private.lay_out_prepared(prepared, values, first=first))

    def _checked(self, layout: pdf.Layout) -> pdf.Layout:
        doc = self.doc
        _check_paper(layout, self.paper, self.chains, self.project, doc)
        if layout.pages > MAX_PAGES:
            raise RenderError.at(
                doc.source,
                None,
                f"document {doc.name!r} has {layout.pages} pages, more than brochure makes ({MAX_PAGES})",
                "split it into several documents",
            )
        return layout


def render_document(project: Project, doc: Document, paper: str, env=None, *, strict: bool = False):  # noqa: ANN001, ANN201
    """Render ``doc`` to PDF bytes within its page budget (auto-fitting if need be); touches no file."""
    from brochure.engine import pdf
    from brochure.engine.measure import MIN_TEXT_PT

    lay_out = layout_engine(project, doc, paper)
    html = document_html(project, doc, paper, env, link_styles=False)
    layout, measured, fitted = fit_document(project, doc, lambda css: lay_out(css, html), doc.fit_hint)
    problems = [
        Problem(
            doc.source, None, f"document {doc.name!r}: {where}", _MARGIN_FIX if in_margin else _OUTSIDE_FIX
        )
        for where, in_margin in measured.outside
    ]
    if doc.spec.kind == "trifold":
        from brochure.document import trifold

        problems += [
            Problem(doc.source, doc.spec.line, f"document {doc.name!r}: {where}", _FOLD_FIX)
            for where in trifold.crossings(measured, trifold.sheet(paper))
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
        html = document_html(project, doc, paper, env, padding=padding, link_styles=False)
        padded = lay_out(fitted.css, html)
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
    if doc.press and doc.pressable:
        try:
            rendered.press = _press(project, doc, lay_out, fitted.css, html, layout.pages)
        except RenderError as exc:  # the PDF is good: it is still written, and this reported
            rendered.press_error = exc
    return rendered


def _press(project: Project, doc: Document, engine: Engine, css: str, html: str, pages: int) -> bytes:
    """The print shop's file of ``doc``, laid out as its PDF was (same auto-fit, same padding)."""
    from brochure.engine import pdf

    layout = engine.press(css, html)
    if layout.pages != pages:  # pragma: no cover - the bleed does not change the page area
        raise RenderError.at(
            doc.source,
            None,
            f"document {doc.name!r}: its print-shop file has {layout.pages} pages, not {pages}",
            "please report it",
        )
    return pdf.write(layout, {project.brand.font_family}, press_inks(project)).pdf


def press_inks(project: Project):  # noqa: ANN201 - engine.press.Inks
    """How the brand's colours print in CMYK: the values in brand.toml, else the press profile's."""
    from brochure.engine import press

    exact: dict[tuple[int, int, int], Any] = {}
    for key, hex_colour in project.brand.colors.items():
        given = project.brand.colors_cmyk.get(key)
        percent = given if given is not None else press.default_cmyk(hex_colour)
        exact[press.rgb_of(hex_colour)] = tuple(v / 100 for v in percent)
    return press.Inks(exact)


def fit_document(
    project: Project, doc: Document, lay_out: Callable[[str], pdf.Layout], hint: FitHint | None = None
) -> tuple[pdf.Layout, Measure, FitResult]:
    """``doc`` laid out by ``lay_out(extra_css)`` within its page budget, at a size its readers can
    still read (see fit.fit): for the build and for personalised copies alike."""
    from brochure.document.fit import fit
    from brochure.document.trifold import ROOM

    return fit(
        lay_out,
        doc.budget,
        floor_pt=doc.floor_pt(project.settings),
        source=doc.source,
        name=doc.name,
        safe_px=project.brand.safe_margin_in * 96,
        hint=hint,
        room=ROOM if doc.spec.kind == "trifold" else None,
    )


def fits_with(project: Project, doc: Document, paper: str, css: str, env=None) -> bool:  # noqa: ANN001
    """Whether ``doc`` laid out with the extra ``css`` (auto-fit's) keeps within its page budget.

    One layout, nothing drawn: a worker checks a remembered fit's next size
    up with it while another lays out the remembered size (workers.Renderer).
    """
    html = document_html(project, doc, paper, env, link_styles=False)
    return doc.budget.allows(layout_engine(project, doc, paper)(css, html).pages)


_PAGE_SIZE = re.compile(r"@page[^{]*\{[^}]*?\bsize\s*:", re.IGNORECASE | re.DOTALL)


def _check_paper(layout, paper: str, chains: dict[Path, list[Path]], project: Project, doc: Document) -> None:  # noqa: ANN001
    """Fail a document whose pages, as laid out, are not the brand's paper (a stylesheet set @page size)."""
    width_in, height_in = paper_named(paper).size(doc.landscape)
    want_w, want_h = width_in * 96, height_in * 96
    for number, page in enumerate(layout.doc.pages, start=1):
        if abs(page.width - want_w) <= 0.5 and abs(page.height - want_h) <= 0.5:
            continue
        setter = next(
            (
                path
                for chain in chains.values()
                for path in chain
                if path.suffix.lower() == ".css"
                and path.is_relative_to(project.root)
                and _PAGE_SIZE.search(path.read_text(encoding="utf-8", errors="replace"))
            ),
            None,
        )
        where = setter.relative_to(project.root).as_posix() if setter else doc.source
        raise RenderError.at(
            where,
            None,
            f"document {doc.name!r}: page {number} is {page.width / 96:.4g} x {page.height / 96:.4g} in, "
            f"not {paper} paper ({want_w / 96:.4g} x {want_h / 96:.4g} in)",
            "remove 'size' from the @page rules in your stylesheets; "
            "the paper is set by 'paper' in content/brand.toml",
        )


_FOLD_FIX = "make the picture or table smaller, or break the long line; panels are narrow"
_OUTSIDE_FIX = "make the picture or table smaller, or break the long line"
_MARGIN_FIX = (
    "shorten the disclaimer or contact details in content/brand.toml, "
    "or give the footer more room (the page's bottom margin) in styles/"
)
