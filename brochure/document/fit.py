"""Auto-fit: make a document that overflows its page budget fit, while it stays readable.

First tighten the spacing, then lower the body size in small steps down to a
floor. The body size is found by bisection, so a one-pager needs at most a
handful of extra layouts; each is counted and reported.

A build remembers how each document fitted (in its manifest) and starts
there next time: made from the very same inputs (a forced build), the
search would end at the same size, so one layout does; after an edit of the
words alone, the remembered size is checked against the next size up, two
layouts instead of up to five; when the remembered size overflows now, the
search looks only below it. Anything else searches afresh. Layouts spent on
a check count among the extra layouts reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from brochure.base.errors import BudgetError
from brochure.project.model import Budget

if TYPE_CHECKING:  # the engine is imported only when something is rendered
    from brochure.engine.measure import Measure
    from brochure.engine.pdf import Layout

STEP_PT = 0.25
#: The left and right page margins of a tightened layout (inches). A tri-fold keeps its sheet's
#: margins at this value, so that tightening never moves its columns off their panels.
PAGE_SIDE_MARGIN_IN = 0.5

#: Spacing used once a document overflows: less air between lines and blocks.
#: WeasyPrint gives stylesheets passed to render() the user origin, which
#: loses to the document's own rules unless marked !important.
_SIDES = (
    f"margin-left: {PAGE_SIDE_MARGIN_IN:g}in !important; margin-right: {PAGE_SIDE_MARGIN_IN:g}in !important;"
)
TIGHT_CSS = (
    f"\n@page {{ {_SIDES} }}\n"
    + """html { line-height: 1.2 !important; }
p, ul, ol, table, blockquote { margin-bottom: 0.3em !important; }
li { margin-bottom: 0 !important; }
h1 { margin-bottom: 0.15em !important; }
h2 { margin-top: 0.5em !important; margin-bottom: 0.12em !important; }
h3 { margin-top: 0.4em !important; margin-bottom: 0.08em !important; }
.summary { margin-bottom: 0.3em !important; }
.brand-header { margin-bottom: 6pt !important; padding-bottom: 4pt !important; }
"""
)


@dataclass(frozen=True)
class FitResult:
    """How a document came to fit."""

    extra_layouts: int  # layouts beyond the first
    body_pt: float
    tightened: bool
    css: str = ""  # the extra CSS of the layout that fitted
    #: The body size the fit set; None: the stylesheet's own (``base_pt``), with tighter spacing.
    size_pt: float | None = None
    #: The body size the stylesheet gave, before fitting.
    base_pt: float = 0.0
    #: Whether a remembered fit was used (see FitHint).
    remembered: bool = False

    def describe(self) -> str:
        if not self.tightened:
            return ""
        size = f"{self.body_pt:g} pt body"
        if self.remembered and not self.extra_layouts:
            return f"auto-fit: tighter spacing, {size}, as fitted last time"
        layouts = f"{self.extra_layouts} extra layout{'s' * (self.extra_layouts != 1)}"
        return f"auto-fit: tighter spacing, {size}, {layouts}"

    def hint(self, look: str) -> list | None:
        """What a manifest keeps of this fit for the next build (see FitHint); None if nothing was fitted."""
        return [self.size_pt, self.base_pt, look] if self.tightened else None


@dataclass(frozen=True)
class FitHint:
    """How a document fitted in the last build, where auto-fit starts this time."""

    size_pt: float | None  # as FitResult.size_pt
    base_pt: float
    #: Made from the very same inputs: the search would end here again, so no check is needed.
    same_inputs: bool
    #: The next size up is being laid out elsewhere (another worker, at the same time): the
    #: check leaves it out, and the caller settles it (see workers.Renderer.render).
    up_elsewhere: bool = False

    def up_css(self) -> str:
        """The extra CSS of the next size up from the remembered one: the search's next step, or the
        normal spacing."""
        if self.size_pt is None:
            return ""
        if self.size_pt + STEP_PT < self.base_pt - 1e-9:
            return fit_css(self.size_pt + STEP_PT)
        return fit_css(None)


LayOut = Callable[[str], "Layout"]


def fit_css(body_pt: float | None) -> str:
    """The extra CSS for a fitted layout: tight spacing, and a body size when given."""
    size = f"html {{ font-size: {body_pt:g}pt !important; }}\n" if body_pt is not None else ""
    return TIGHT_CSS + size


def fit(
    lay_out: LayOut,
    budget: Budget,
    *,
    floor_pt: float,
    source: str,
    name: str,
    safe_px: float = 0.0,
    hint: FitHint | None = None,
    room: Room | None = None,
) -> tuple[Layout, Measure, FitResult]:
    """Lay out with ``lay_out(extra_css)`` until the document fits ``budget``.

    With a ``hint``, start from the size that fitted last time (see FitHint).
    Raises BudgetError naming the last heading that fits, how much overflows,
    and the ways out (``room``'s, when given), when even the tightest
    readable layout does not fit.
    """
    from brochure.engine.measure import MIN_TEXT_PT, measure

    floor = max(floor_pt, MIN_TEXT_PT)

    extra = -1  # layouts beyond the first
    overflowing: float | None | object = _UNKNOWN  # a size known to be too big
    if hint is not None:
        checked = _remembered(lay_out, budget, hint, floor, safe_px)
        if isinstance(checked, tuple):
            return checked
        # The layouts spent checking count; an overflow seen there bounds the search below.
        extra += checked.layouts
        overflowing = checked.overflowing

    def attempt(size: float | None) -> tuple[Layout, Measure, str]:
        nonlocal extra
        extra += 1
        css = fit_css(size)
        layout = lay_out(css)
        return layout, measure(layout, safe_px), css

    if overflowing is _UNKNOWN:
        first = lay_out("")
        extra += 1
        first_measure = measure(first, safe_px)
        if budget.allows(first.pages):
            return first, first_measure, FitResult(extra, first_measure.body_pt, False, "")
        if budget.limit is not None and first.pages < budget.limit:
            # Too short for an exact budget: shrinking would not help.
            raise BudgetError.at(
                source,
                None,
                f"document {name!r} has {first.pages} page{'s' * (first.pages != 1)}, "
                f"but its budget is {budget}",
                f"add content, or set its page budget to {first.pages} in content/documents.toml",
            )
        base = first_measure.body_pt
    else:
        assert hint is not None  # a remembered fit bounded the search
        base = hint.base_pt  # the same look (the hint's key says so): the same stylesheet size

    if overflowing is _UNKNOWN:
        best = attempt(None)  # tighter spacing at the normal size
        if budget.allows(best[0].pages):
            return best[0], best[1], FitResult(extra, base, True, best[2], None, base)
        if floor >= base:
            _too_long(best[1], budget, floor, source, name, room)
    elif overflowing is None and floor >= base:
        _too_long(attempt(None)[1], budget, floor, source, name, room)  # for the message's figures
    smallest = attempt(floor)
    if not budget.allows(smallest[0].pages):
        _too_long(smallest[1], budget, floor, source, name, room)
    # Bisection over sizes on a STEP_PT grid: `low` fits, `high` does not.
    high = base if overflowing is _UNKNOWN or overflowing is None else cast(float, overflowing)
    low, best = floor, smallest
    while high - low > STEP_PT + 1e-9:
        middle = round(((low + high) / 2) / STEP_PT) * STEP_PT
        if middle <= low or middle >= high:
            break
        tried = attempt(middle)
        if budget.allows(tried[0].pages):
            low, best = middle, tried
        else:
            high = middle
    return best[0], best[1], FitResult(extra, low, True, best[2], low, base)


#: No size is known to be too big (see _Checked).
_UNKNOWN = object()


@dataclass(frozen=True)
class _Checked:
    """What checking a remembered fit learnt when it no longer holds."""

    layouts: int
    #: The size that overflowed: a number, None for tight spacing at the normal size, or _UNKNOWN.
    overflowing: float | None | object = _UNKNOWN


def _remembered(
    lay_out: LayOut, budget: Budget, hint: FitHint, floor: float, safe_px: float
) -> tuple[Layout, Measure, FitResult] | _Checked:
    """The layout at the remembered fit, if it is still the one the search would find; else what was learnt.

    Under the same inputs it is. Otherwise it is when it still fits and the
    next size up (on the search's grid, or the normal spacing) does not.
    When the remembered size now overflows, the search looks only below it.
    """
    from brochure.engine.measure import measure

    size, base = hint.size_pt, hint.base_pt
    if size is not None and not floor <= size < base:
        return _Checked(0)  # the floor moved: search afresh
    css = fit_css(size)
    layout = lay_out(css)
    if not budget.allows(layout.pages):
        if budget.limit is not None and layout.pages > budget.limit:
            return _Checked(1, size)
        return _Checked(1)  # too short now (an exact budget): the search says so
    extra = 0
    if not (hint.same_inputs or hint.up_elsewhere):
        up = hint.up_css()
        extra = 1
        bigger = lay_out(up)
        if budget.allows(bigger.pages):
            if not up:  # the normal spacing fits again: where the search would stop at once
                bigger_measure = measure(bigger, safe_px)
                return bigger, bigger_measure, FitResult(1, bigger_measure.body_pt, False, "")
            return _Checked(2)  # there is room for more now: search afresh
    result = FitResult(extra, base if size is None else size, True, css, size, base, remembered=True)
    return layout, measure(layout, safe_px), result


@dataclass(frozen=True)
class Room:
    """What a document's pages are, and the way out when it does not fit, in its own words."""

    pages: str  # "the six panels of a tri-fold (one sheet, both sides)"
    fix: str


def _too_long(m: Measure, budget: Budget, floor: float, source: str, name: str, room: Room | None) -> None:
    limit = budget.limit or m.pages
    pages = room.pages if room else f"{limit} page{'s' * (limit != 1)}"
    if m.oversized:
        # Counting lines would mislead: one thing is too big for any page.
        raise BudgetError.at(
            source,
            None,
            f"document {name!r} does not fit on {pages}: {'; '.join(m.oversized[:3])}",
            "make it smaller: resize the picture, or lower the size the stylesheet gives it",
        )
    lines, share = m.overflow(limit)
    heading = m.last_heading_within(limit)
    after = f"; the last heading that fits is '{heading}'" if heading else ""
    raise BudgetError.at(
        source,
        None,
        f"document {name!r} does not fit on {pages}, even with tight spacing and {floor:g} pt text: "
        f"about {lines} lines ({share:.1f} of a page) too many{after}",
        room.fix
        if room
        else f"shorten it by about {lines} lines, split it into two topics, "
        "or raise its page budget in content/documents.toml",
    )
