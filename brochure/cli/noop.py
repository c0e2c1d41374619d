"""`brochure build` with nothing to do, answered before the command line's framework loads.

Loading click and what it brings costs more than checking a library of a
thousand topics, so the brochure command first looks at its arguments
here. Only the plain forms are answered (`build`, with `--project`,
`--out` and `--progress/--no-progress`); anything else, and any project
that changed, goes on to the full command, which reuses what was hashed
here rather than reading it again.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

TYPE_CHECKING = False  # typing itself is not loaded: it costs time here
if TYPE_CHECKING:
    from brochure.project.inputs import Hasher

_VALUED = ("--project", "--out")
_FLAGS = ("--progress", "--no-progress")

#: The check this process made and its hasher, for the full command when something changed.
_checked: tuple[tuple[str, str, str], Hasher] | None = None


def plain_build(args: list[str]) -> dict[str, str] | None:
    """The options of a plain `build` command line; None for any other command line."""
    if not args or args[0] != "build":
        return None
    given: dict[str, str] = {}
    rest = iter(args[1:])
    for arg in rest:
        name, equals, value = arg.partition("=")
        if name in _VALUED:
            if not equals:
                following = next(rest, None)
                if following is None:
                    return None
                value = following
            if not value or value.startswith("-"):
                return None  # the full command says what is wrong
            given[name] = value
        elif arg not in _FLAGS:
            return None  # a document name, --force, --paper, --help, ...: the full command
    return given


def answer(args: list[str]) -> bool:
    """Say '0 rebuilt, N up to date' and return True when a plain build has nothing to do."""
    global _checked
    given = plain_build(args)
    if given is None:
        return False
    started = time.perf_counter()
    project = Path(given.get("--project", "."))
    out = Path(given["--out"]) if "--out" in given else project / "out"
    if not os.path.isdir(project) or os.path.exists(out) and not os.path.isdir(out):
        return False
    from brochure.project.inputs import fingerprint_options

    options = fingerprint_options(None, False)
    try:
        count, hasher = check(project, out, options)
    except Exception:  # noqa: BLE001 - the full command reports it, with its message
        return False
    if count is None:
        _checked = ((str(project), str(out), options), hasher)
        return False
    sys.stdout.write(said(count, started) + "\n")
    return True


def check(project: Path, out: Path, options: str) -> tuple[int | None, Hasher]:
    """How many documents are up to date when nothing changed (else None), and the hasher that read
    the project, for the build that follows. A check this process made already is not made again."""
    from brochure.build.output import nothing_to_do
    from brochure.project.inputs import Hasher

    global _checked
    found, _checked = _checked, None  # used once: a later build in this process checks afresh
    if found is not None and found[0] == (str(project), str(out), options):
        return None, found[1]
    hasher = Hasher(project)
    return nothing_to_do(project, out, options, hasher), hasher


def said(count: int, started: float) -> str:
    """The line a build with nothing to do prints."""
    return f"0 rebuilt, {count} up to date, 0 failed in {time.perf_counter() - started:.2f} s"
