"""The one module that uses WeasyPrint's internals: personalised copies from a stencil.

Copies of a handout differ only in the words of the "Your treatment" box.
`prepare` does the first half of what ``HTML.render`` does (parse, styles,
boxes) once, with stand-in words in the box; `lay_out_prepared` puts one
copy's words into the cached text boxes and does the second half (layout).
Per copy that saves parsing, the cascade and box building: about a third of
a copy's time (see the README's benchmark, deliver3).

These functions are WeasyPrint 70's own (``Document._build_layout_context``,
``build_formatting_structure``, ``LayoutContext``, ``layout_document``, a
hand-made ``Document``), which change between major versions. So they are
used only when `enabled` says so: on a WeasyPrint major listed in
SUPPORTED, and unless ``BROCHURE_ENGINE_PRIVATE=off``. Otherwise, or when
they raise AttributeError, TypeError, ImportError, KeyError or IndexError
(an internal that moved or changed), `prepare` returns None and `lay_out_prepared` raises
`Unavailable`, and the caller lays each copy out whole through the public
API (brochure.engine.pdf): slower, never a failed build.

Reading a laid-out page's boxes (`page_box`, for brochure.engine.measure)
is here for the same reason: ``Page._page_box`` is not public.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from brochure.engine.pdf import (
    PDF_VARIANT,
    Layout,
    _engine,
    _fonts,
    import_engine,
    languages,
    parsing,
)

#: The WeasyPrint majors whose internals this module was written against and tested with.
SUPPORTED = (70,)
#: Set to "off" to lay every copy out through the public API (slower; the tests run so too).
SWITCH = "BROCHURE_ENGINE_PRIVATE"


#: What an internal that moved or changed raises: the public path is taken instead.
MOVED = (AttributeError, TypeError, ImportError, KeyError, IndexError)


class Unavailable(Exception):
    """The internals are switched off, or are not what this module expects: use the public path."""


@functools.cache
def _version_supported() -> bool:
    import weasyprint

    try:
        major = int(str(weasyprint.__version__).split(".")[0])
    except ValueError:
        return False
    return major in SUPPORTED


def enabled() -> bool:
    """Whether the internals may be used: a supported WeasyPrint, and not switched off."""
    if os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "no", "false"):
        return False
    import_engine()
    return _version_supported()


def page_box(page: Any) -> Any:  # noqa: ANN401 - WeasyPrint's
    """The box tree of a laid-out page (WeasyPrint's Page keeps it private), or None if it has none."""
    return getattr(page, "_page_box", None)


@dataclass
class Prepared:
    """A document parsed, styled and made into boxes: the work before layout.

    It can be laid out more than once (`lay_out_prepared`), each time with
    other text in its slots: the words given to `prepare` that stand in the
    HTML for text to come. Only the text of a slot changes between layouts,
    so its parsing, styles and boxes are done once.
    """

    html: Any  # weasyprint.HTML
    context: Any  # the weasyprint LayoutContext its styles were computed in
    root: Any  # its box tree
    footnotes: list[Any]
    get_image: Any  # WeasyPrint's image loader, with its cache of the images loaded so far
    document: str
    scope: str
    font_config: Any
    warnings: list[str]
    refused: list[str]
    time_limit: float
    #: Seconds that preparing it took (see lay_out).
    spent: float
    output_intent: Any
    color_profiles: dict[str, Any]
    #: Each text box with a slot in it, and its text with the slots' names.
    slots: list[tuple[Any, str]] = field(default_factory=list)
    #: How many times each slot's name is in the text boxes.
    found: dict[str, int] = field(default_factory=dict)
    #: False when a slot's name is also somewhere a text box is not (an
    #: attribute, a bookmark, a string-set) or in transformed text, or when a
    #: layout changes the boxes themselves (::first-letter): it cannot be filled.
    fillable: bool = True
    #: How many boxes the tree has: a layout that changed it spoils the next.
    boxes: int = 0

    def current(self) -> bool:
        """Whether the fonts it was styled with are still this process's (see _use_fonts)."""
        from brochure.engine import pdf

        return self.scope == pdf._scope and self.font_config is pdf._font_config


def _prepare(html: str, *, slots: Sequence[str] = (), **settings: Any) -> Prepared:  # noqa: ANN401
    """Parse ``html``, compute its styles and make its boxes (``settings`` as engine.pdf.parsing's).

    ``slots`` are words in the HTML's text that later layouts fill in. The
    time limit is for this and each layout of it.
    """
    from weasyprint import DEFAULT_OPTIONS
    from weasyprint.css.counters import CounterStyle
    from weasyprint.document import VARIANTS, Document
    from weasyprint.formatting_structure.build import build_formatting_structure

    started = time.monotonic()
    with parsing(html, **settings) as source:
        parsed = source.html
        # What HTML.render does, in two steps: styles and boxes here, layout in lay_out_prepared.
        options = {**DEFAULT_OPTIONS, "stylesheets": source.sheets, "pdf_variant": PDF_VARIANT}
        for key, value in VARIANTS[PDF_VARIANT][1].items():
            if options.get(key) is None:
                options[key] = value
        counter_style = CounterStyle()
        color_profiles: dict[str, Any] = {}  # filled by @color-profile rules, read when written
        context = Document._build_layout_context(parsed, _fonts(), counter_style, color_profiles, options)
        root = build_formatting_structure(
            parsed.etree_element,
            context.style_for,
            context.get_image_from_uri,
            parsed.base_url,
            context.target_collector,
            counter_style,
            context.footnotes,
        )
    loader = context.get_image_from_uri
    prepared = Prepared(
        html=parsed,
        context=context,
        root=root,
        footnotes=list(context.footnotes),
        # The loader without the layout context it was bound to: each layout binds its own.
        get_image=functools.partial(
            loader.func, *loader.args, **{k: v for k, v in loader.keywords.items() if k != "context"}
        ),
        document=source.document,
        scope=settings.get("fonts", ""),
        font_config=_fonts(),
        warnings=list(source.messages.warnings),
        refused=source.refused,
        time_limit=source.time_limit,
        spent=time.monotonic() - started,
        output_intent=options["output_intent"],
        color_profiles=color_profiles,
    )
    if slots:
        _find_slots(prepared, slots)
    return prepared


def _find_slots(prepared: Prepared, slots: Sequence[str]) -> None:
    from weasyprint.formatting_structure import boxes

    pattern = re.compile("|".join(re.escape(s) for s in slots))
    found = dict.fromkeys(slots, 0)
    # In an attribute, a slot would reach a link, an alt text or an id unfilled.
    for element in prepared.html.etree_element.iter():
        if any(pattern.search(str(value)) for value in element.attrib.values()):
            prepared.fillable = False
    stack = [prepared.root]
    while stack:
        box = stack.pop()
        prepared.boxes += 1
        stack.extend(getattr(box, "children", ()))
        if getattr(box, "first_letter_style", None) is not None:
            prepared.fillable = False  # its layout moves the first letter into a box of its own
        if isinstance(box, boxes.TextBox) and pattern.search(box.text):
            prepared.slots.append((box, box.text))
            for name in pattern.findall(box.text):
                found[name] += 1
            if box.style["text_transform"] != "none":
                prepared.fillable = False
        label = getattr(box, "bookmark_label", None)
        strings = getattr(box, "string_set", None) or ()
        if (label and pattern.search(str(label))) or any(pattern.search(str(s)) for s in strings):
            prepared.fillable = False
    prepared.found = found


def _lay_out_prepared(
    prepared: Prepared, values: dict[str, str] | None = None, *, first: bool = False
) -> Layout:
    """Lay out a prepared document, its slots filled with ``values`` (slot -> text) for this layout only.

    Each value must be text as the HTML's whitespace rules leave it (no
    leading, trailing or repeated spaces) and the slots fillable. The
    ``first`` layout shares the time limit with the preparing; later ones
    have it whole.
    """
    from weasyprint.document import Document, DocumentMetadata, Page
    from weasyprint.html import get_html_metadata
    from weasyprint.layout import LayoutContext, layout_document

    if values and not prepared.fillable:
        raise ValueError("the slots of this document cannot be filled")
    built = prepared.context
    pattern = re.compile("|".join(re.escape(s) for s in values)) if values else None
    del prepared.refused[:]
    try:
        for box, text in prepared.slots:
            box.text = pattern.sub(lambda m: values[m.group()], text) if pattern and values else text
        spent = prepared.spent if first else 0.0
        with _engine(prepared.document, prepared.refused, prepared.time_limit, spent) as messages:
            context = LayoutContext(
                built.style_for,
                prepared.get_image,
                prepared.font_config,
                built.counter_style,
                built.target_collector,
            )
            context.footnotes = list(prepared.footnotes)
            pages = layout_document(prepared.html, prepared.root, context)
            doc = Document(
                [Page(box) for box in pages],
                DocumentMetadata(**get_html_metadata(prepared.html)),
                prepared.html.url_fetcher,
                prepared.font_config,
                prepared.color_profiles,
                prepared.output_intent,
            )
            doc._html = prepared.html
    finally:
        # The boxes keep their slots' names, not what filled them.
        for box, text in prepared.slots:
            box.text = text
    if prepared.slots and _count_boxes(prepared.root) != prepared.boxes:
        prepared.fillable = False  # this layout changed the tree: it cannot be laid out again
    warnings = prepared.warnings + [w for w in messages.warnings if w not in prepared.warnings]
    return Layout(doc, prepared.document, warnings, languages(prepared.html.etree_element, doc))


def _count_boxes(root: Any) -> int:  # noqa: ANN401
    count, stack = 0, [root]
    while stack:
        count += 1
        stack.extend(getattr(stack.pop(), "children", ()))
    return count


def prepare(html: str, **settings: Any) -> Prepared | None:  # noqa: ANN401
    """``html`` parsed, styled and boxed (see _prepare), or None when the internals cannot be used."""
    if not enabled():
        return None
    try:
        return _prepare(html, **settings)
    except MOVED:
        return None


def lay_out_prepared(
    prepared: Prepared, values: dict[str, str] | None = None, *, first: bool = False
) -> Layout:
    """Lay out ``prepared`` with ``values`` in its slots (see _lay_out_prepared); Unavailable if it cannot."""
    if not enabled():
        raise Unavailable("switched off")
    try:
        return _lay_out_prepared(prepared, values, first=first)
    except MOVED as exc:
        prepared.fillable = False
        raise Unavailable(str(exc)) from None
