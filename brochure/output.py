"""The output folder: one build at a time, atomic writes, and a manifest of what the build wrote.

The build only ever removes files its manifest says it wrote, and only while
they are as it wrote them (mkdocs once deleted a project by cleaning an
output folder: see its issue #346).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import BrochureError

MANIFEST = ".brochure-manifest.json"
LOCK = ".brochure.lock"
_TEMP = re.compile(r"^\..+\.pdf\.[a-z0-9_]+\.tmp$")


@dataclass
class Entry:
    """One PDF the build wrote: the key of its inputs, its file and the hash of its bytes."""

    key: str
    file: str
    sha256: str
    seconds: float = 0.0


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    A reader never sees half a PDF, and a failure leaves the old file as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Manifest:
    """out/.brochure-manifest.json: what the last builds wrote into this folder."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.entries: dict[str, Entry] = {}
        try:
            data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
            self.entries = {name: Entry(**entry) for name, entry in data.get("documents", {}).items()}
        except (OSError, ValueError, TypeError):
            self.entries = {}  # no manifest, or a damaged one: everything is rebuilt

    def up_to_date(self, name: str, key: str) -> bool:
        """Whether ``name``'s PDF was made from inputs with this key and is still as written."""
        entry = self.entries.get(name)
        if entry is None or entry.key != key:
            return False
        try:
            return digest((self.out / entry.file).read_bytes()) == entry.sha256
        except OSError:
            return False

    def record(self, name: str, key: str, data: bytes, seconds: float) -> None:
        self.entries[name] = Entry(key, f"{name}.pdf", digest(data), round(seconds, 3))

    def remove_others(self, keep: set[str]) -> list[str]:
        """Delete PDFs this manifest lists for documents no longer declared; only unchanged ones."""
        removed = []
        for name in sorted(set(self.entries) - keep):
            entry = self.entries.pop(name)
            path = self.out / entry.file
            with contextlib.suppress(OSError):
                if digest(path.read_bytes()) == entry.sha256:
                    path.unlink()
                    removed.append(name)
        return removed

    def save(self) -> None:
        data = {"documents": {name: asdict(entry) for name, entry in sorted(self.entries.items())}}
        write_atomic(self.out / MANIFEST, json.dumps(data, indent=1).encode())


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed build left behind (ours by their name)."""
    for path in out.glob(".*.tmp"):
        if _TEMP.match(path.name):
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(out: Path, timeout: float, on_wait=None) -> Iterator[None]:  # noqa: ANN001
    """Hold the output folder's lock: one build per folder at a time.

    The operating system releases the lock when the process ends, however it
    ends, so a crashed build never leaves a stale lock behind.
    """
    from filelock import FileLock, Timeout

    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait:
            on_wait()
        started = time.monotonic()
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            waited = time.monotonic() - started
            raise BrochureError.at(
                str(out),
                None,
                f"another build is writing to this folder (waited {waited:.0f} s)",
                "wait for it to finish, or build into another folder with --out",
            ) from None
    try:
        yield
    finally:
        lock.release()
