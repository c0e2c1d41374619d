"""Personalised copies rendered: one or more handouts laid out for one patient, written as one PDF.

Each handout is laid out on its own, with its own page budget and fit, then
their pages are written as one PDF: WeasyPrint tags the combined pages when
it writes, so the packet keeps one PDF/UA structure tree, each handout still
starting on a page of its own.

A personalised copy starts from the extra CSS that made the blank copy fit
(kept per process, keyed by the document's inputs), so it normally costs one
layout. In a batch, the copies of one handout differ only in the words of
the "Your treatment" box: the process keeps the handout parsed, styled and
made into boxes with stand-in words there (see `_Stencil`), and each copy
only puts its words in and lays out. Nothing about the patient is kept:
not in those caches, not on disk.

This runs in a render server's worker or in the calling process
(brochure.deliver.packet decides which).
"""

from __future__ import annotations

import datetime as dt
import html as html_text
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brochure.base import caches
from brochure.base.errors import BrochureError

# -- rendering (in a render server's worker, or here) ---------------------------

_fitted: dict[str, tuple] = caches.kept("document.fitted copies")  # key: (fitted css, sections, engine)
_stencils: OrderedDict[tuple, _Stencil] = caches.ordered(
    "document.stencils"
)  # the last few, used last at the end

if TYPE_CHECKING:
    from brochure.project.model import Document, Project
STENCILS_KEPT = 24  # about 2 MB each
_lock = threading.Lock()


def render_packet(project: Project, names: list[str], context: dict | None, paper: str) -> tuple[bytes, int]:  # noqa: ANN001
    """Lay out each handout (personalised with ``context``), then write all their pages as one PDF."""
    from brochure.engine import pdf
    from brochure.project.model import select

    with _lock:  # WeasyPrint's font configuration and our caches are per process, not per thread
        layouts = [_lay_out(project, doc, paper, context) for doc in select(project, names)]
        rendered = pdf.write(pdf.combine(layouts), {project.brand.font_family})
    return rendered.pdf, rendered.pages


def _lay_out(project: Project, doc: Document, paper: str, context: dict | None):  # noqa: ANN001, ANN202 - pdf.Layout
    from markupsafe import escape

    from brochure.base.errors import RenderError
    from brochure.document.compose import document_html, document_sections, fit_document, layout_engine
    from brochure.document.templates import process_environment
    from brochure.engine import pdf
    from brochure.project.inputs import document_key, process_hasher

    hasher = process_hasher(project.root)
    # Kept by the key of every input (as the build's): the fitted settings, so a copy costs one
    # layout; the topics made HTML and the layout engine, which every copy of the handout shares.
    # The key is of content only: the same handout in another folder has its own pictures' addresses.
    key = f"{project.root}\n{document_key(project, doc, f'personalise paper={paper}', hasher)}"
    kept = _fitted.get(key)
    engine = kept[2] if kept else layout_engine(project, doc, paper, hasher)
    env = process_environment(project.root)

    def lay_out(html: str, extra_css: str) -> pdf.Layout:
        return engine(extra_css, html)

    def fitted(html: str) -> tuple[pdf.Layout, str]:
        layout, _measured, result = fit_document(project, doc, lambda css: lay_out(html, css))
        return layout, result.css

    layout: Any
    if kept is None:
        sections = document_sections(project, doc)
        layout, css = fitted(document_html(project, doc, paper, env, link_styles=False, sections=sections))
        if len(_fitted) > 200:
            _fitted.clear()
        _fitted[key] = css, sections, engine
        if context is None:
            return layout
    else:
        css, sections, _engine = kept

    def html_for(patient: dict | None) -> str:
        return document_html(
            project, doc, paper, env, link_styles=False, extra={"patient": patient}, sections=sections
        )

    html = html_for(context)
    if context is not None and str(escape(context["name"])) not in html:
        raise RenderError.at(
            f"templates/{doc.spec.template}",
            None,
            f"the template of {doc.name!r} shows no patient details",
            'keep {% block treatment %}{% include "_treatment.html" %}{% endblock %} in it',
        )
    layout = _from_stencil(key, engine, css, context, html, html_for) if context is not None else None
    layout = layout or lay_out(html, css)
    if not doc.budget.allows(layout.pages):
        # The patient's details took more room than the blank lines: fit this copy on its own.
        layout, _css = fitted(html)
    if not layout.pages:  # pragma: no cover - WeasyPrint always makes a page
        raise RenderError.at(doc.source, None, "rendered no page", "check the template")
    return layout


@dataclass
class _Stencil:
    """A handout prepared once with a stand-in word for each of the patient's details (private.Prepared).

    ``html`` is the handout's HTML with the stand-ins. ``pattern`` matches
    the HTML of a copy whose details differ only in those words, and finds
    each detail's text in it. ``prepared`` is None when the template uses a
    detail somewhere other than the box's text (an attribute, a bookmark,
    upper-cased) or needs more than its text (a date's year): then each copy
    is laid out whole.
    """

    prepared: Any  # engine.private.Prepared | None
    html: str = ""
    pattern: re.Pattern[str] | None = None
    slots: dict[str, str] = field(default_factory=dict)  # stand-in word -> group name in pattern


def _stand_ins(context: dict) -> dict[str, object] | None:
    """The context a stencil is made with: a stand-in word for each detail with text, dates left out.

    The box then shows each date as text too (the handout's template writes
    it in its own language): its stand-in is that of the text. None when a
    detail is of a kind a stand-in cannot take.
    """
    if len(context) > 26:
        return None
    stand_in: dict[str, object] = {}
    for index, (key, value) in enumerate(context.items()):
        if key.endswith("_day") and (value is None or isinstance(value, dt.date)):
            stand_in[key] = None
        elif isinstance(value, str):
            # Lower-case letters only: a filter that changes the text (upper, title, truncate) shows.
            stand_in[key] = f"zqx{chr(ord('a') + index)}slotxqz" if value else ""
        else:
            return None
    return stand_in


def _from_stencil(key: str, engine: Any, css: str, context: dict, html: str, html_for: Any) -> Any:  # noqa: ANN401
    """Lay out the copy whose HTML is ``html`` from the handout's stencil, or None to lay it out whole."""
    from brochure.engine import private

    stand_in = _stand_ins(context)
    if stand_in is None or not private.enabled():
        return None
    shape = (key, css, tuple((k, bool(v)) for k, v in stand_in.items()))
    stencil = _stencils.get(shape)
    made = stencil is None or (stencil.prepared is not None and not stencil.prepared.current())
    if made:
        try:
            stand_in_html = html_for(stand_in)
        except Exception:  # noqa: BLE001 - the template needs the details themselves (a date's year, say)
            stencil = _Stencil(None)
        else:
            try:
                stencil = _make_stencil(engine, css, stand_in_html, stand_in)
            except BrochureError:  # out of time, say: not kept, and the copy laid out whole says why
                return None
        _stencils[shape] = stencil
        while len(_stencils) > STENCILS_KEPT:
            _stencils.popitem(last=False)
    assert stencil is not None  # found, or made just now
    _stencils.move_to_end(shape)
    if stencil.prepared is None or not stencil.prepared.fillable:
        return None
    values = _details(stencil, html)
    if values is None:  # the template shows these details in some other way
        return None
    try:
        layout = engine.again(stencil.prepared, values, first=made)
    except (BrochureError, private.Unavailable):
        del _stencils[shape]  # WeasyPrint may have left its boxes half changed
        return None
    if not stencil.prepared.fillable:  # the layout changed the boxes (and may have kept some text)
        _stencils[shape] = _Stencil(None)
    return layout


def _details(stencil: _Stencil, html: str) -> dict[str, str] | None:
    """Each stand-in's text in ``html``, or None if ``html`` is not the stencil's with other text."""
    from markupsafe import escape

    found = stencil.pattern.fullmatch(html) if stencil.pattern else None
    if found is None:
        return None
    values = {}
    for word, group in stencil.slots.items():
        value = html_text.unescape(found.group(group))
        # As the HTML's whitespace rules leave it: otherwise the box's text would differ.
        if not value or value != " ".join(value.split()):
            return None
        values[word] = value
    # The copy is the stencil with each stand-in replaced by its text, escaped as the template escapes.
    words = re.compile("|".join(stencil.slots)) if stencil.slots else None
    if words is None or words.sub(lambda m: str(escape(values[m.group()])), stencil.html) != html:
        return None
    return values


def _make_stencil(engine: Any, css: str, html: str, stand_in: dict) -> _Stencil:  # noqa: ANN401
    words = [w for w in stand_in.values() if isinstance(w, str) and w]
    slots = {word: f"s{index}" for index, word in enumerate(words)}
    parts = re.split("(" + "|".join(words) + ")", html) if words else [html]
    seen: set[str] = set()
    pattern = []
    for part in parts:
        if part in slots:
            # Text between tags only (a detail is escaped, so it has no < or >), and whole entities.
            group = slots[part]
            pattern.append(f"(?P={group})" if part in seen else f"(?P<{group}>(?:[^<>&]|&#?\\w+;)*?)")
            seen.add(part)
        else:
            pattern.append(re.escape(part))
    prepared = engine.prepare(css, html, words)
    # Every stand-in in the HTML must be in the box tree's text, once each time it is in the HTML.
    if prepared is not None and (
        not prepared.fillable or any(html.count(w) != prepared.found.get(w, 0) for w in words)
    ):
        prepared = None
    shown = {word: group for word, group in slots.items() if word in seen}
    return _Stencil(prepared, html, re.compile("".join(pattern), re.DOTALL), shown)
