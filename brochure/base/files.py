"""Reading a file the one way brochure reads them: inside the allowed folders, a regular file, size capped.

The renderer's fetcher (pdf.py) and the input hasher (inputs.py) both read
through here, so a file one refuses the other never opens.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from brochure.base.paths import is_inside

#: The largest file brochure reads: a stylesheet, font or picture for print is far smaller.
MAX_FILE_BYTES = 20 * 1024 * 1024


class Refused(ValueError):
    """A file brochure will not read; the message says why, such as 'outside the project'."""


def resolve_inside(path: Path, roots: Sequence[Path]) -> Path:
    """``path`` with links and '..' resolved, when it lies in one of ``roots`` (already resolved)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise Refused("file not found") from None
    if not any(is_inside(real, root) for root in roots):
        raise Refused("outside the project")
    return real


def read_regular(real: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``real``, a resolved path, when it is a regular file of at most ``limit`` bytes.

    Anything else is refused before it is opened: a FIFO would block for
    ever, a device would never end. The file is opened without waiting and
    checked again once open, in case it was swapped in between.
    """
    try:
        info = os.stat(real)
    except OSError:
        raise Refused("file not found") from None
    _check(info, limit)
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    )
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise Refused(f"cannot be read: {exc.strerror or exc}") from None
    with open(fd, "rb") as handle:
        _check(os.fstat(fd), limit)
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise Refused(_too_large(limit))
    return data


def read_inside(path: Path, roots: Sequence[Path], limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` under both rules above; Refused says why not."""
    return read_regular(resolve_inside(path, roots), limit)


def refusal(path: Path | str, limit: int = MAX_FILE_BYTES) -> str | None:
    """Why ``path`` would be refused (not a regular file, or too large), without opening it; else None."""
    try:
        _check(os.stat(path), limit)
    except OSError:
        return "file not found"
    except Refused as exc:
        return str(exc)
    return None


def _check(info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise Refused("not a regular file")
    if info.st_size > limit:
        raise Refused(_too_large(limit))


def _too_large(limit: int) -> str:
    mib = 1024 * 1024
    return f"larger than {limit // mib} MiB" if limit >= mib else f"larger than {limit:,} bytes"
