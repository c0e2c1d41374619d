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
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from brochure.base.errors import BrochureError
from brochure.base.paths import is_inside

TYPE_CHECKING = False  # typing is not loaded: a no-op build is timed
if TYPE_CHECKING:
    from typing import IO, Any

MANIFEST = ".brochure-manifest.json"
#: PDFs written since the manifest was saved, one line each: merged into it at the end of a build.
JOURNAL = ".brochure-manifest.journal"
LOCK = ".brochure.lock"
_TEMP = re.compile(r"^\..+\.(pdf|json)\.[a-z0-9_]+\.tmp$")


class Entry:
    """One PDF the build wrote: the key of its inputs, its file and the hash of its bytes.

    A plain class, not a dataclass (a no-op build is timed, and loads this
    module): ``vars(entry)`` is its record in the manifest.
    """

    def __init__(
        self,
        key: str,
        file: str,
        sha256: str,
        seconds: float = 0.0,
        project: str = "",
        stamp: str = "",
        fit: list | None = None,
    ) -> None:
        self.key = key
        self.file = file
        self.sha256 = sha256
        self.seconds = seconds
        #: The folder of the project that wrote it (resolved); "" in a manifest from before this was kept.
        self.project = project
        #: The file's size, modification time and inode as written: while they hold, its bytes need no
        #: hashing.
        self.stamp = stamp
        #: How auto-fit made it fit: [body size or None, stylesheet's size, look key] (fit.FitResult.hint).
        self.fit = fit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entry) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Entry({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def _stamp(path: Path) -> str:
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    A reader never sees half a PDF, and a failure leaves the old file as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temporary(path: Path) -> tuple[int, str]:
    """A new, empty temporary file beside ``path``, named so that a later build can sweep it.

    Made with the usual permissions (0666 less the umask, as any new file),
    so that other staff accounts can open the PDFs, not mkstemp's 0600.
    """
    for _attempt in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"
        try:
            return os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
            ), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Manifest:
    """out/.brochure-manifest.json: what the builds of one or more projects wrote into this folder.

    Each PDF is recorded with the project that wrote it. A build of one
    project treats only its own PDFs as its own: it never removes or
    replaces another project's.
    """

    def __init__(self, out: Path, root: Path) -> None:
        self.out = out
        self.root = str(root.resolve())
        self.entries: dict[str, Entry] = {}
        #: Each project's fingerprint after its last fully successful build (see inputs.project_fingerprint).
        self.fingerprints: dict[str, str] = {}
        #: Each project's input files as last hashed, with their identities (see inputs.Hasher.known).
        self.hashes: dict[str, dict[str, list]] = {}
        try:
            data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
            self.entries = {name: Entry(**entry) for name, entry in data.get("documents", {}).items()}
            self.fingerprints = {str(k): str(v) for k, v in data.get("projects", {}).items()}
            self.hashes = {str(k): dict(v) for k, v in data.get("hashes", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            # No manifest, or a damaged one: everything is rebuilt.
            self.entries, self.fingerprints, self.hashes = {}, {}, {}
        #: Whether the journal held entries not yet in the manifest (a build was killed).
        self.dirty = self._merge_journal()
        self._journal: IO[str] | None = None
        self._ours = self._own_projects()

    def _merge_journal(self) -> bool:
        """Add what a killed build wrote to the journal; a line cut short by the kill is skipped."""
        try:
            lines = (self.out / JOURNAL).read_bytes().splitlines()
        except OSError:
            return False
        for line in lines:
            try:
                data = json.loads(line)
                name = data.pop("name")
                self.entries[name] = Entry(**data)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
            # That project changed since its fingerprint was recorded.
            self.fingerprints.pop(self.entries[name].project, None)
        return True

    def _own_projects(self) -> set[str]:
        """The project names in the manifest that stand for this project.

        Besides this project's folder: PDFs recorded before projects were
        recorded, PDFs of a project whose folder is gone (it moved, or was
        deleted), and everything in an output folder inside this project
        (a copied project takes over the PDFs copied with it).
        """
        ours = {self.root, ""}
        inside = is_inside(self.out.resolve(), Path(self.root))
        for owner in {e.project for e in self.entries.values()} - ours:
            if inside or not (Path(owner) / "content").is_dir():
                ours.add(owner)
        return ours

    @property
    def fingerprint(self) -> str:
        """This project's fingerprint after its last fully successful build here; "" if none."""
        return self.fingerprints.get(self.root, "")

    @fingerprint.setter
    def fingerprint(self, value: str) -> None:
        if value:
            self.fingerprints[self.root] = value
        else:
            self.fingerprints.pop(self.root, None)

    def ours(self) -> dict[str, Entry]:
        """The PDFs this project wrote here."""
        return {name: e for name, e in self.entries.items() if e.project in self._ours}

    def owner(self, name: str) -> str | None:
        """The folder of the other project that wrote ``name``'s PDF here, if another did."""
        entry = self.entries.get(name)
        return None if entry is None or entry.project in self._ours else entry.project

    def others(self) -> dict[str, int]:
        """How many PDFs each other project wrote here."""
        counts: dict[str, int] = {}
        for entry in self.entries.values():
            if entry.project not in self._ours:
                counts[entry.project] = counts.get(entry.project, 0) + 1
        return counts

    def all_unchanged(self) -> bool:
        """Whether this project wrote PDFs here, and every one is still as the build wrote it."""
        mine = self.ours()
        return bool(mine) and all(self.up_to_date(name, e.key) for name, e in mine.items())

    def up_to_date(self, name: str, key: str) -> bool:
        """Whether ``name``'s PDF was made from inputs with this key and is still as written."""
        entry = self.entries.get(name)
        if entry is None or entry.key != key:
            return False
        path = self.out / entry.file
        try:
            # Size, time and inode as written: no one replaced or edited it. Else compare the bytes.
            return (entry.stamp and _stamp(path) == entry.stamp) or digest(path.read_bytes()) == entry.sha256
        except OSError:
            return False

    def record(self, name: str, key: str, data: bytes, seconds: float, fit: list | None = None) -> None:
        """Note a PDF just written, in the journal at once: a build killed later does not forget it."""
        path = self.out / f"{name}.pdf"
        stamp = ""
        with contextlib.suppress(OSError):
            stamp = _stamp(path)
        entry = Entry(key, path.name, digest(data), round(seconds, 3), self.root, stamp, fit)
        self.entries[name] = entry
        line = json.dumps({"name": name, **vars(entry)}) + "\n"
        try:
            if self._journal is None:
                self._journal = open(self.out / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115 - see close
            self._journal.write(line)
            self._journal.flush()  # to the system, which keeps it however the process ends
        except OSError:
            pass  # the manifest, saved at the end, still records it

    def remove_others(self, keep: set[str]) -> list[str]:
        """Delete this project's PDFs of documents it no longer declares; only unchanged ones."""
        removed = []
        for name in sorted(set(self.ours()) - keep):
            entry = self.entries.pop(name)
            path = self.out / entry.file
            with contextlib.suppress(OSError):
                if digest(path.read_bytes()) == entry.sha256:
                    path.unlink()
                    removed.append(name)
        return removed

    def save(self) -> None:
        """Write the manifest in one piece; a failure (a full disk, say) is reported, the old one kept."""
        data = {
            "projects": dict(sorted(self.fingerprints.items())),
            "documents": {name: dict(vars(entry)) for name, entry in sorted(self.entries.items())},
            "hashes": {where: dict(sorted(files.items())) for where, files in sorted(self.hashes.items())},
        }
        try:
            # No indent: only the C encoder is fast enough for a large library, and it writes none.
            write_atomic(self.out / MANIFEST, json.dumps(data, separators=(",", ":")).encode())
        except OSError as exc:
            raise unwritable(self.out / MANIFEST, exc) from None
        finally:
            self.close()
        with contextlib.suppress(OSError):
            (self.out / JOURNAL).unlink(missing_ok=True)  # all in the manifest now

    def close(self) -> None:
        """Close the journal (a build that stops early keeps it for the next one)."""
        if self._journal is not None:
            with contextlib.suppress(OSError):
                self._journal.close()
            self._journal = None


def unwritable(path: Path, exc: OSError) -> BrochureError:
    """The error for a file or folder in the output that cannot be written."""
    return BrochureError.at(path, None, f"cannot be written: {exc.strerror or exc}", WRITE_FIX)


WRITE_FIX = "make the folder writable, free some disk space, or choose another folder with --out"


def check_writable(out: Path) -> None:
    """Fail once, naming the folder, when no file can be made in it (read-only, say)."""
    try:
        fd, tmp = _temporary(out / "write-check.pdf")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise unwritable(out, exc) from None


def nothing_to_do(root: Path, out: Path, options: str, hasher=None) -> int | None:  # noqa: ANN001
    """How many documents are up to date, when nothing at all changed since the last full build; else None.

    Parses nothing (no YAML, no templates, no engine): a build with nothing
    to do answers in a few hundredths of a second. Give it the build's
    ``hasher`` (inputs.Hasher), and what it read is not read again.
    """
    from brochure.project.inputs import Hasher, project_fingerprint

    manifest = Manifest(out, root)
    hasher = hasher or Hasher(root)
    hasher.known = manifest.hashes.get(manifest.root, {})
    if not manifest.fingerprint or not manifest.all_unchanged():
        return None
    if project_fingerprint(root, options, hasher) != manifest.fingerprint:
        return None
    # Documents, not files: a print-shop file (NAME.press) goes with its document.
    return sum(not name.endswith(".press") for name in manifest.ours())


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed build left behind (ours by their name)."""
    for path in out.glob(".*.tmp"):
        if _TEMP.match(path.name):
            with contextlib.suppress(OSError):  # a read-only folder is reported when written to
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(out: Path, timeout: float, on_wait=None) -> Iterator[None]:  # noqa: ANN001
    """Hold the output folder's lock: one build per folder at a time.

    The operating system releases the lock when the process ends, however it
    ends, so a crashed build never leaves a stale lock behind.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(out / LOCK)
        lock.open()
    except OSError as exc:
        raise unwritable(out, exc) from None
    with lock:
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
        self.handle: Any = None  # the open lock file

    def open(self) -> None:
        """Open the lock file; in a read-only folder, the one already there (flock needs no write)."""
        if self.handle is None:
            try:
                self.handle = open(self.path, "a+b")  # noqa: SIM115 - closed in __exit__
            except OSError:
                if not self.path.is_file():
                    raise
                self.handle = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> FileLock:
        self.open()
        return self

    def acquire(self, wait: bool = False) -> bool:
        """Take the lock; without ``wait``, say False at once if another process holds it."""
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows
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
            if sys.platform == "win32":  # pragma: no cover - Windows
                import msvcrt

                msvcrt.locking(self.handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                import fcntl

                fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        except OSError:
            pass
        self.handle.close()
