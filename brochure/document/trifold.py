"""A tri-fold: the brand's paper turned sideways, printed on both sides and folded in three.

The inside reads [panel | panel | fold-in], the fold-in a little narrower so
that it tucks in flat. The outside is its mirror, [back of the fold-in | back
panel | cover], so that once folded the cover is on top. Page 1 of the PDF is
the outside, page 2 the inside.

This module knows where the panels, folds and text columns are (from the
paper, base.paper); templates/trifold.html and styles/trifold.css draw them.
The topics flow through the three inside panels as three equal text
columns, each placed inside its panel; the panels themselves are drawn as
backgrounds at their exact edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from markupsafe import Markup

from brochure.base.paper import PX_PER_INCH
from brochure.base.paper import paper as paper_named
from brochure.document.fit import PAGE_SIDE_MARGIN_IN, Room

if TYPE_CHECKING:
    from brochure.engine.measure import Measure

#: No text comes closer to a fold than this (inches): a fold is never quite where it is meant to be.
FOLD_CLEARANCE_IN = 0.25
#: Where the text columns are placed: this far from each fold, where the panel widths allow.
COLUMN_CLEARANCE_IN = 0.3
#: The inside's top and bottom margins (inches).
TOP_IN, BOTTOM_IN = 0.45, 0.5
#: A run of text may stick out by a rounding error (CSS px).
TOLERANCE_PX = 1.0

ROOM = Room(
    pages="the six panels of a tri-fold (one sheet, both sides)",
    fix="choose fewer topics in its 'topics' in content/documents.toml, or shorter ones",
)


@dataclass(frozen=True)
class Sheet:
    """A tri-fold's sheet: its size, its panels and its text columns (inches)."""

    width_in: float
    height_in: float
    #: The panel widths as the inside reads, left to right: the fold-in last.
    inside_in: tuple[float, float, float]
    column_in: float
    gap_in: float

    @property
    def outside_in(self) -> tuple[float, float, float]:
        """The panel widths as the outside reads, left to right: the fold-in's back first, the cover last."""
        return self.inside_in[2], self.inside_in[1], self.inside_in[0]

    def panels(self, page: int) -> list[tuple[float, float]]:
        """The left and right edge of each panel on page 1 (the outside) or 2 (the inside), in inches.

        The panels are centred on the sheet: A4's 99 + 99 + 97 mm leave 1 mm at each side edge,
        unprinted (a printer leaves more than that blank anyway).
        """
        widths = self.outside_in if page == 1 else self.inside_in
        edges, left = [], (self.width_in - sum(widths)) / 2
        for width in widths:
            edges.append((left, left + width))
            left += width
        return edges

    def css(self) -> Markup:
        """The sheet's geometry as CSS: page margins, the panels' edges, the columns' gap (numbers only)."""
        m, h = PAGE_SIDE_MARGIN_IN, self.height_in
        outside = " ".join(f"{width:.4f}in" for width in self.outside_in)
        edge = self.panels(1)[0][0]  # the unprinted strip at each side edge, if any
        inside = self.panels(2)
        backs = "\n".join(
            f".panel-back-{n} {{ left: {left - m:.4f}in; width: {right - left:.4f}in; }}"
            for n, (left, right) in enumerate(inside, start=1)
        )
        # A print shop's file (html.press, --press-bleed): the panels that reach the paper's edge run
        # on into the bleed, the text inside them where it was.
        bleed, out = "var(--press-bleed)", edge
        press = f"""
html.press .sheet-outside .panel {{ margin: calc(-1 * {bleed}) 0; min-height: calc({h:.4f}in + 2 * {bleed});
  padding-top: calc(0.5in + {bleed}); padding-bottom: calc(0.45in + {bleed}); }}
html.press .sheet-outside .panel-flap {{ margin-left: calc(-{out:.4f}in - {bleed});
  padding-left: calc(0.4in + {out:.4f}in + {bleed}); }}
html.press .sheet-outside .panel-cover {{ margin-right: calc(-{out:.4f}in - {bleed});
  padding-right: calc(0.4in + {out:.4f}in + {bleed}); }}
html.press .panel-back {{ top: calc(-{TOP_IN}in - {bleed}); height: calc({h:.4f}in + 2 * {bleed}); }}
html.press .panel-back-1 {{ left: calc({inside[0][0] - m - out:.4f}in - {bleed});
  width: calc({inside[0][1] - inside[0][0] + out:.4f}in + {bleed}); }}
html.press .panel-back-3 {{ width: calc({inside[2][1] - inside[2][0] + out:.4f}in + {bleed}); }}"""
        # The side margins are auto-fit's own (fit.PAGE_SIDE_MARGIN_IN): tightening moves nothing.
        # Numbers computed here, nothing from content: safe to mark so.
        return Markup(f"""
@page trifold-outside {{ margin: 0 {m}in; }}
@page trifold-inside {{ margin: {TOP_IN}in {m}in {BOTTOM_IN}in; }}
.sheet-outside {{ margin: 0 -{m - edge:.4f}in; grid-template-columns: {outside}; }}
.sheet-outside .panel {{ box-sizing: border-box; min-height: {h:.4f}in; }}
.panel-back {{ top: -{TOP_IN}in; height: {h:.4f}in; }}
{backs}
.flow {{ column-gap: {self.gap_in:.4f}in; }}
{press}
""")  # noqa: S704

    def columns(self) -> list[tuple[float, float]]:
        """The left and right edge of each text column on the inside, in inches."""
        left = PAGE_SIDE_MARGIN_IN
        return [
            (
                left + n * (self.column_in + self.gap_in),
                left + n * (self.column_in + self.gap_in) + self.column_in,
            )
            for n in range(3)
        ]


def sheet(paper: str) -> Sheet:
    """The tri-fold sheet of the paper named ``paper`` ("letter": 3.6875 / 3.6875 / 3.625 in panels)."""
    width, height = paper_named(paper).size(landscape=True)
    inside = paper_named(paper).trifold_in
    m, clear = PAGE_SIDE_MARGIN_IN, COLUMN_CLEARANCE_IN
    edge = (width - sum(inside)) / 2
    fold1, fold2 = edge + inside[0], edge + inside[0] + inside[1]
    room = width - 2 * m  # three columns and two gaps: room = 3 * column + 2 * gap
    # The widest equal columns that keep `clear` from every fold (each bound solves one clearance).
    column = min(
        fold1 - m - clear,  # the first column's right side
        width - m - fold2 - clear,  # the third column's left side
        2 * (m + room / 2 - fold1 - clear),  # the middle column's left side
        2 * (fold2 - m - room / 2 - clear),  # the middle column's right side
    )
    return Sheet(width, height, inside, column, (room - 3 * column) / 2)


def crossings(measured: Measure, sheet: Sheet) -> list[str]:
    """Each run of text that crosses a fold or comes within FOLD_CLEARANCE_IN of one."""
    found = []
    clear = FOLD_CLEARANCE_IN * PX_PER_INCH
    for page, left, _top, right, _bottom, text in measured.texts:
        if page > 2:
            continue  # a third page is reported as not fitting
        panels = [(a * PX_PER_INCH, b * PX_PER_INCH) for a, b in sheet.panels(page)]
        if any(left >= a + clear - TOLERANCE_PX and right <= b - clear + TOLERANCE_PX for a, b in panels):
            continue
        side = "outside" if page == 1 else "inside"
        found.append(
            f"page {page} (the {side}): text '{text[:30]}' crosses a fold, "
            f"or comes within {FOLD_CLEARANCE_IN:g} in of one"
        )
    return found
