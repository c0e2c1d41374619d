"""One document made: its HTML from the project, then its PDF bytes within its page budget.

Below both the build (which decides what to make and writes it) and the
workers (which run this in warm processes): neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

from .errors import Problem, RenderError
from .inputs import Hasher, style_chain
from .paths import builtin_dir, default_font_dir
from .project import Document, Project


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
    extra: dict | None = None,
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
        extra=extra,
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
