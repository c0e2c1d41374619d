"""Read a laid-out document back: text sizes, what lies outside the page, how much overflows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brochure.engine import private
from brochure.engine.pdf import Layout

PX_PER_PT = 96 / 72
MIN_TEXT_PT = 9.0
# A box may stick out by rounding errors; more than this is visible.
EDGE_TOLERANCE_PX = 1.0
#: Text this large (and four times the body size) is a mistake, not a heading or a cover title.
GIANT_TEXT_PT = 60.0
#: Elements of this class paint a background meant to reach the paper's edge (a tri-fold's panels),
#: and into the bleed of a print-shop file: the edge checks look at their text, not their paint.
BLEED_CLASS = "bleed"


@dataclass
class Measure:
    """What one layout looks like on paper."""

    pages: int
    body_pt: float  # the root font size, which body text uses
    smallest_pt: float  # the smallest text anywhere on any page
    smallest_text: str
    #: What lies outside the paper: ("page 1: text 'xxxx' runs past the right edge ...", in a page margin?)
    outside: list[tuple[str, bool]] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)  # (page number, heading)
    lines: list[int] = field(default_factory=list)  # lines of body text on each page
    fill: list[float] = field(default_factory=list)  # share of each page's body area in use
    #: Things that overflow whatever is cut: a picture or block taller than the page, giant text.
    oversized: list[str] = field(default_factory=list)
    #: Every run of text outside the page margins: (page number, left, top, right, bottom in CSS px, text).
    texts: list[tuple[int, float, float, float, float, str]] = field(default_factory=list)

    def overflow(self, budget: int) -> tuple[int, float]:
        """Lines, and share of a page, beyond the first ``budget`` pages."""
        return sum(self.lines[budget:]), sum(self.fill[budget:])

    def last_heading_within(self, budget: int) -> str | None:
        inside = [text for page, text in self.headings if page <= budget]
        return inside[-1] if inside else None


def _boxes():  # noqa: ANN202
    from weasyprint.formatting_structure import boxes

    return boxes


def measure(layout: Layout, safe_px: float = 0.0) -> Measure:
    """Measure every page of ``layout``; marks closer than ``safe_px`` to the paper's edge are outside.

    The boxes are WeasyPrint's own (engine.private.page_box): a WeasyPrint
    whose boxes are not what this reads gets the page count alone (auto-fit
    can then tighten the spacing but not lower the size, and the text and
    edge checks are skipped), never a failed build.
    """
    doc = layout.doc
    pages = len(doc.pages)
    if all(private.page_box(page) is not None for page in doc.pages):
        try:
            return _measure(layout, safe_px)
        except private.MOVED:
            pass
    return Measure(pages, 0.0, 0.0, "", lines=[0] * pages, fill=[1.0] * pages)


def _measure(layout: Layout, safe_px: float) -> Measure:
    boxes = _boxes()
    doc = layout.doc
    root_style = private.page_box(doc.pages[0]).children[0].style if doc.pages else None
    body_pt = root_style["font_size"] / PX_PER_PT if root_style else 0.0
    result = Measure(pages=len(doc.pages), body_pt=round(body_pt, 2), smallest_pt=1e9, smallest_text="")
    for number, page in enumerate(doc.pages, start=1):
        page_box = private.page_box(page)
        width, height = page_box.margin_width(), page_box.margin_height()
        lines = 0
        for box, in_margin in _descendants(page_box, boxes.MarginBox):
            if isinstance(box, boxes.LineBox) and not in_margin:
                lines += 1
            if not in_margin and not (isinstance(box, boxes.BlockBox) and _bleeds(box)):
                _check_height(box, boxes, page_box.height, result)
            if isinstance(box, boxes.TextBox) and box.text.strip():
                size = box.style["font_size"] / PX_PER_PT
                if not in_margin and size > max(GIANT_TEXT_PT, 4 * body_pt):
                    words = (
                        " ".join("".join(box.element.itertext()).split()) if box.element is not None else ""
                    )
                    words = words or box.text.strip()
                    words = words if len(words) <= 40 else words[:37].rstrip() + "..."
                    _note(result, f"text '{words}' is set at {size:g} pt")
                if size < result.smallest_pt:
                    result.smallest_pt, result.smallest_text = round(size, 2), box.text.strip()[:40]
                if not in_margin:
                    left, top = box.position_x, box.position_y
                    right, bottom = left + box.margin_width(), top + box.margin_height()
                    result.texts.append((number, left, top, right, bottom, box.text.strip()[:40]))
                _check_edges(
                    box,
                    (width, height, safe_px),
                    number,
                    f"text '{box.text.strip()[:30]}'",
                    in_margin,
                    result.outside,
                )
            elif isinstance(box, boxes.ReplacedBox):
                alt = box.element.get("alt") if box.element is not None else None
                what = f"picture '{alt}'" if alt else "a picture"
                _check_edges(box, (width, height, safe_px), number, what, in_margin, result.outside)
            elif _drawn(box, boxes) and not _bleeds(box):
                what = f"the border or background of <{box.element_tag}>"
                _check_edges(
                    box, (width, height, safe_px), number, what, in_margin, result.outside, border=True
                )
        result.lines.append(lines)
        flow = [child for child in page_box.children if not isinstance(child, boxes.MarginBox)]
        used = sum(child.margin_height() for child in flow)
        result.fill.append(round(used / page_box.height, 3) if page_box.height else 0.0)
        result.headings += [(number, label) for _level, label, _target, _state in page.bookmarks]
    if result.smallest_pt == 1e9:
        result.smallest_pt = 0.0
    return result


def _note(result: Measure, what: str) -> None:
    if what not in result.oversized:
        result.oversized.append(what)


def _check_height(box: Any, boxes: Any, room: float, result: Measure) -> None:  # noqa: ANN401
    """Note a picture, line or fixed-height block taller than the page's text area: it cannot be split."""
    if not room or box.margin_height() <= room + EDGE_TOLERANCE_PX:
        return
    tall = f"{box.margin_height() / 96:.3g} in tall, more than the page's {room / 96:.3g} in of room"
    if isinstance(box, boxes.ReplacedBox):
        alt = box.element.get("alt") if box.element is not None else None
        _note(result, f"picture '{alt}' is {tall}" if alt else f"a picture is {tall}")
    elif isinstance(box, boxes.LineBox):
        text = " ".join(t.text for t in _descendants_of(box, boxes.TextBox)).strip()
        if text:  # a line holding only a picture: the picture is noted
            _note(result, f"a line ('{text[:30]}') is {tall}")
    elif isinstance(box, boxes.BlockBox) and box.style["height"] != "auto" and box.element is not None:
        _note(result, f"a <{box.element_tag}> block with a fixed height is {tall}")


def _descendants_of(box: Any, kind: type) -> list[Any]:  # noqa: ANN401
    return [b for b, _ in _descendants(box, type(None)) if isinstance(b, kind)]


def _descendants(box: Any, margin_type: type, in_margin: bool = False):  # noqa: ANN202
    """Every box below ``box``, and whether it sits in a page margin (header, footer)."""
    in_margin = in_margin or isinstance(box, margin_type)
    yield box, in_margin
    for child in getattr(box, "children", ()):
        yield from _descendants(child, margin_type, in_margin)


def _bleeds(box: Any) -> bool:  # noqa: ANN401
    """Whether a box is a background meant to reach the paper's edge (see BLEED_CLASS)."""
    element = getattr(box, "element", None)
    return element is not None and BLEED_CLASS in (element.get("class") or "").split()


def _drawn(box: Any, boxes: Any) -> bool:  # noqa: ANN401
    """Whether a box paints a border or a background of its own (a rule, a shaded note)."""
    if isinstance(box, boxes.PageBox | boxes.MarginBox) or box.element_tag in ("html", "body"):
        return False
    style = box.style
    for side in ("top", "right", "bottom", "left"):
        if getattr(box, f"border_{side}_width", 0) and style[f"border_{side}_style"] not in (
            "none",
            "hidden",
        ):
            return True
    background = getattr(box, "background", None)
    return bool(
        background is not None
        and (background.color.alpha > 0 or any(layer.image for layer in background.layers))
    )


def _painted(box: Any) -> tuple[float, float, float, float]:  # noqa: ANN401
    """Left, top, right and bottom of what a box paints: all of it with a background, else its borders."""
    left, top = box.border_box_x(), box.border_box_y()
    right, bottom = left + box.border_width(), top + box.border_height()
    background = getattr(box, "background", None)
    if background is not None and (
        background.color.alpha > 0 or any(layer.image for layer in background.layers)
    ):
        return left, top, right, bottom
    strips = []
    for side in ("top", "right", "bottom", "left"):
        size = getattr(box, f"border_{side}_width", 0)
        if size and box.style[f"border_{side}_style"] not in ("none", "hidden"):
            strips.append(
                {
                    "top": (left, top, right, top + size),
                    "bottom": (left, bottom - size, right, bottom),
                    "left": (left, top, left + size, bottom),
                    "right": (right - size, top, right, bottom),
                }[side]
            )
    if not strips:
        return left, top, right, bottom
    return (
        min(s[0] for s in strips),
        min(s[1] for s in strips),
        max(s[2] for s in strips),
        max(s[3] for s in strips),
    )


def _check_edges(
    box: Any,  # noqa: ANN401
    paper: tuple[float, float, float],
    page: int,
    what: str,
    in_margin: bool,
    found: list[tuple[str, bool]],
    *,
    border: bool = False,
) -> None:
    """Note ``box`` when it runs past the paper, or into the strip along its edges printers leave blank."""
    width, height, safe = paper
    if border:
        left, top, right, bottom = _painted(box)
    else:
        left, top = box.position_x, box.position_y
        right, bottom = left + box.margin_width(), top + box.margin_height()
    where = " in the page's header or footer" if in_margin else ""
    for limit, verb in ((0.0, "runs past"), (safe, "comes within {inches} in of")):
        sides = []
        if left < limit - EDGE_TOLERANCE_PX:
            sides.append("left")
        if right > width - limit + EDGE_TOLERANCE_PX:
            sides.append("right")
        if top < limit - EDGE_TOLERANCE_PX:
            sides.append("top")
        if bottom > height - limit + EDGE_TOLERANCE_PX:
            sides.append("bottom")
        if sides:
            edge = f"{' and '.join(sides)} edge{'s' * (len(sides) > 1)} of the paper"
            if limit:
                message = f"{verb.format(inches=f'{safe / 96:g}')} the {edge}, where printers cannot print"
            else:
                message = f"{verb} the {edge}"
            found.append((f"page {page}: {what}{where} {message}", in_margin))
            return
