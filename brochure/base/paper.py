"""The paper sizes brochure prints on, each described once: its name, CSS size, pixels and CUPS media."""

from __future__ import annotations

from dataclasses import dataclass

#: CSS pixels to the inch (WeasyPrint's, as the browser's).
PX_PER_INCH = 96


@dataclass(frozen=True)
class Paper:
    """One paper size."""

    name: str  # as content/brand.toml and --paper write it
    css: str  # the @page size keyword
    width_in: float
    height_in: float
    cups_media: str  # the media name `lp -o media=` takes
    #: A tri-fold's panels on the sheet turned sideways, left to right as the inside reads (inches):
    #: two full panels, then the panel that folds in, a little narrower so it tucks in flat.
    trifold_in: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def pixels(self) -> tuple[float, float]:
        """Width and height in CSS pixels."""
        return self.width_in * PX_PER_INCH, self.height_in * PX_PER_INCH

    def size(self, landscape: bool = False) -> tuple[float, float]:
        """Width and height in inches, the long side across when ``landscape``."""
        return (self.height_in, self.width_in) if landscape else (self.width_in, self.height_in)

    def css_size(self, landscape: bool = False) -> str:
        """The @page size, turned sideways when ``landscape``."""
        return f"{self.css} landscape" if landscape else self.css


LETTER = Paper("letter", "letter", 8.5, 11, "Letter", (3.6875, 3.6875, 3.625))
A4 = Paper("a4", "A4", 210 / 25.4, 297 / 25.4, "A4", (99 / 25.4, 99 / 25.4, 97 / 25.4))
#: Every paper, by name; the first is the default.
PAPERS = {paper.name: paper for paper in (LETTER, A4)}
NAMES = tuple(PAPERS)
DEFAULT = LETTER.name


def paper(name: str) -> Paper:
    """The paper called ``name`` (a name from NAMES: brand.toml and --paper are checked against them)."""
    return PAPERS[name]
