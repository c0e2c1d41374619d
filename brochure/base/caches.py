"""The per-process caches, all held in one place.

Every cache that lives as long as a process (a render worker, the render
server, the desk) is made here with `kept`, or counted here with `register`,
by name, so one list says what a warm process holds between requests, and
`clear` empties them all (the tests do, to start from a cold process). None of them holds a patient's details:
the personalised copies' stencils keep stand-in words only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

TYPE_CHECKING = False  # typing is not loaded: a no-op build is timed
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")

#: name -> (the cache, how to empty it)
_kept: dict[str, tuple[Any, Callable[[], None]]] = {}


def kept(name: str, factory: Callable[[], T] = dict) -> T:  # type: ignore[assignment]
    """This process's cache called ``name``, made by ``factory`` the first time (a dict by default)."""
    if name not in _kept:
        cache = factory()
        _kept[name] = (cache, cache.clear)  # type: ignore[attr-defined]
    return _kept[name][0]


def ordered(name: str) -> OrderedDict:
    """An ordered cache (least recently used first), for a cache with a size cap."""
    return kept(name, OrderedDict)


def register(name: str, clear: Callable[[], None]) -> None:
    """Count a cache made elsewhere (functools.lru_cache) among this process's: ``clear`` empties it."""
    _kept[name] = (clear, clear)


def clear() -> None:
    """Empty every cache of this process."""
    for _cache, empty in _kept.values():
        empty()
