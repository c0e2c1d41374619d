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
    import tempfile

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
        #: The project fingerprint after the last fully successful build (see inputs.project_fingerprint).
        self.fingerprint = ""
        try:
            data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
            self.entries = {name: Entry(**entry) for name, entry in data.get("documents", {}).items()}
            self.fingerprint = str(data.get("fingerprint", ""))
        except (OSError, ValueError, TypeError):
            self.entries = {}  # no manifest, or a damaged one: everything is rebuilt

    def all_unchanged(self) -> bool:
        """Whether every PDF listed is still as the build wrote it."""
        return bool(self.entries) and all(self.up_to_date(name, e.key) for name, e in self.entries.items())

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
        data = {
            "fingerprint": self.fingerprint,
            "documents": {name: asdict(entry) for name, entry in sorted(self.entries.items())},
        }
        write_atomic(self.out / MANIFEST, json.dumps(data, indent=1).encode())


def nothing_to_do(root: Path, out: Path, options: str) -> int | None:
    """How many documents are up to date, when nothing at all changed since the last full build; else None.

    Parses nothing (no YAML, no templates, no engine): a build with nothing
    to do answers in a few hundredths of a second.
    """
    from .inputs import project_fingerprint

    manifest = Manifest(out)
    if not manifest.fingerprint or not manifest.all_unchanged():
        return None
    if project_fingerprint(root, options) != manifest.fingerprint:
        return None
    return len(manifest.entries)


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
    out.mkdir(parents=True, exist_ok=True)
    with FileLock(out / LOCK) as lock:
        if not lock.acquire():
            if on_wait:
                on_wait()
            started = time.monotonic()
            while not lock.acquire():
                waited = time.monotonic() - started
                if waited >= timeout:
                    raise BrochureError.at(
                        str(out),
                        None,
                        f"another build is writing to this folder (waited {waited:.0f} s)",
                        "wait for it to finish, or build into another folder with --out",
                    )
                time.sleep(0.05)
        yield


class FileLock:
    """An advisory lock on a file, held by this process until release or exit (flock or msvcrt)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None

    def __enter__(self) -> FileLock:
        self.handle = open(self.path, "a+b")  # noqa: SIM115 - closed in __exit__
        return self

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock; without ``wait``, say False at once if another process holds it."""
        try:
            if os.name == "nt":  # pragma: no cover - Windows
                import msvcrt

                msvcrt.locking(self.handle.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        # Unlock explicitly: worker processes forked while the lock was held
        # share its open file, so closing ours alone would not release it.
        # A process that ends, however it ends, releases it too.
        try:
            if os.name == "nt":  # pragma: no cover - Windows
                import msvcrt

                msvcrt.locking(self.handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        except OSError:
            pass
        self.handle.close()
