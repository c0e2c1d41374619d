"""Where the built-in templates, styles and default font live."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # brochure/


@cache
def builtin_dir(name: str) -> Path:
    """The built-in ``templates`` or ``styles`` folder.

    A wheel carries them in ``brochure/_builtin/``; an editable install (the
    README's set-up) reads them from the top of the checkout.
    """
    inside = _PACKAGE / "_builtin" / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


@cache
def default_font_dir() -> Path:
    """The folder of the default theme's font files (Lato, from the font-lato package)."""
    spec = importlib.util.find_spec("font_lato")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise RuntimeError("the font-lato package is missing: reinstall brochure")
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "files"


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (already resolved) lies in ``root`` (already resolved)."""
    return path == root or path.is_relative_to(root)
