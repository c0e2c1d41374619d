"""The audit trail: one line per event, append-only, each line carrying the hash of the one before.

Events are what staff do with handouts (print, email, draft, download,
reprint), the education documented for a delivery (education) and changes
of staff accounts (staff-add, staff-disable, staff-reset); sign-ins and
settings come with the clinic server. Each line says when, which staff member, from which desk, which
handouts in which content version, and the patient only as the number of the
delivery record's row: the audit's own text holds no patient detail, so it
can be read and kept by people who may not see the record.

The file is JSON lines, beside the delivery record (``audit.jsonl`` in the
record's folder), private to the user (0600). Each line's ``hash`` is the
SHA-256 of the line before's hash and its own fields, so `verify` finds a
line changed, removed or put out of order; a line is only ever added, under
a lock, so several desks at once never lose or interleave one. The last
line's number and hash are also kept in ``audit.head`` beside it, so a last
line removed shows too.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from brochure.base import clock
from brochure.base.errors import BrochureError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from brochure.deliver.settings import MachineSettings

#: The events the trail knows.
EVENTS = (
    "sign-in",
    "sign-in-failed",
    "lockout",
    "sign-out",
    "timeout",
    "preview",
    "print",
    "email",
    "draft",
    "download",
    "reprint",
    "education",
    "staff-add",
    "staff-disable",
    "staff-reset",
    "settings",
    "follow-up-sent",
    "follow-up-held",
    "follow-up-failed",
    "follow-up-cancelled",
)
FILE_NAME = "audit.jsonl"
HEAD_NAME = "audit.head"
#: The first line's ``prev``: there is no line before it.
START = "0" * 64
#: The columns of `report` and of its CSV, in order.
COLUMNS = ("seq", "at", "event", "staff", "desk", "handouts", "record", "detail")


class AuditError(BrochureError):
    """The audit trail cannot be read or written, or does not verify."""


@dataclass(frozen=True)
class Entry:
    """One line of the trail."""

    seq: int
    at: str  # ISO 8601 with the UTC offset, to the second
    event: str
    staff: str
    desk: str  # the client's address, or "terminal"
    handouts: tuple[tuple[str, str], ...]  # (document, content version)
    record: int | None  # the delivery record's row, the only mention of a patient
    detail: str  # what the event needs beside (a printer's name, "encrypted"): never a patient detail
    prev: str
    hash: str

    def fields(self) -> dict:
        return {
            "seq": self.seq,
            "at": self.at,
            "event": self.event,
            "staff": self.staff,
            "desk": self.desk,
            "handouts": [list(h) for h in self.handouts],
            "record": self.record,
            "detail": self.detail,
        }


def trail_file(settings: MachineSettings) -> Path:
    """Where this machine's trail is: beside the delivery record."""
    return settings.record_file.expanduser().with_name(FILE_NAME)


def _digest(prev: str, fields: dict) -> str:
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as file:
            yield from enumerate((line.rstrip("\n") for line in file), start=1)
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError.at(
            str(path), None, f"the audit trail cannot be read: {exc}", "check the file"
        ) from None


def append(
    settings: MachineSettings,
    event: str,
    *,
    staff: str | None = None,
    desk: str = "terminal",
    handouts: Sequence[tuple[str, str]] = (),
    record: int | None = None,
    detail: str = "",
    when: dt.datetime | None = None,
) -> Entry:
    """Add one event to the trail (0600) and return it; ``staff`` defaults to this computer's user.
    Whatever stops it is an AuditError."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r}")
    path = trail_file(settings)
    try:
        return _append(path, event, staff, desk, handouts, record, detail, when)
    except AuditError:
        raise
    except (OSError, ValueError) as exc:  # a full disk, a folder in the way, text that cannot be written
        raise AuditError.at(str(path), None, f"the audit trail cannot be written: {exc}", None) from None


def _append(
    path: Path,
    event: str,
    staff: str | None,
    desk: str,
    handouts: Sequence[tuple[str, str]],
    record: int | None,
    detail: str,
    when: dt.datetime | None,
) -> Entry:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as file:
        _lock(file)
        text = file.read()
        prev, seq = START, 1
        last = next((line for line in reversed(text.splitlines()) if line.strip()), None)
        if last is not None:
            try:
                before = json.loads(last)
                prev, seq = str(before["hash"]), int(before["seq"]) + 1
            except (ValueError, KeyError, TypeError):
                # A line torn by a crash: go on from the last line written whole (verify names the torn one).
                head = _read_head(path.with_name(HEAD_NAME))
                if head is None:
                    raise AuditError.at(
                        str(path),
                        None,
                        "the audit trail's last line is damaged",
                        "run 'brochure audit verify'",
                    ) from None
                seq, prev = head[0] + 1, head[1]
        at = (when or clock.now()).isoformat(timespec="seconds")
        fields = {
            "seq": seq,
            "at": at,
            "event": event,
            "staff": staff or _user(),
            "desk": desk,
            "handouts": [list(h) for h in handouts],
            "record": record,
            "detail": detail,
        }
        digest = _digest(prev, fields)
        line = json.dumps({**fields, "prev": prev, "hash": digest})  # ASCII: any text can be written
        file.write(("\n" if text and not text.endswith("\n") else "") + line + "\n")
        file.flush()
        os.fsync(file.fileno())
        _write_head(path.with_name(HEAD_NAME), seq, digest)  # still under the lock
    return _entry({**fields, "prev": prev, "hash": digest})


def _read_head(path: Path) -> tuple[int, str] | None:
    """The last line's number and hash as the head file keeps them; None when it is missing or damaged."""
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
        return int(head["seq"]), str(head["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_head(path: Path, seq: int, digest: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(json.dumps({"seq": seq, "hash": digest}) + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _lock(file: io.TextIOWrapper, shared: bool = False) -> None:
    """Hold the file while a line is added (or, ``shared``, while it is read to be verified): several
    desks (threads or processes) append in turn, and a check never sees a line half added."""
    try:
        import fcntl

        fcntl.flock(file.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    except (ImportError, OSError):  # pragma: no cover - Windows: appends are short and O_APPEND
        pass


def _entry(data: dict) -> Entry:
    dt.datetime.fromisoformat(str(data["at"]))  # a ValueError for a damaged line
    return Entry(
        seq=int(data["seq"]),
        at=str(data["at"]),
        event=str(data["event"]),
        staff=str(data["staff"]),
        desk=str(data["desk"]),
        handouts=tuple((str(n), str(v)) for n, v in data["handouts"]),
        record=data["record"] if data["record"] is None else int(data["record"]),
        detail=str(data["detail"]),
        prev=str(data["prev"]),
        hash=str(data["hash"]),
    )


def entries(settings: MachineSettings) -> list[Entry]:
    """Every line of the trail, in order; AuditError naming the line that cannot be read."""
    path = trail_file(settings)
    found = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            found.append(_entry(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            raise AuditError.at(
                str(path), number, "this line of the audit trail is damaged", "run 'brochure audit verify'"
            ) from None
    return found


def verify(settings: MachineSettings) -> tuple[int, list[Problem]]:
    """How many lines the trail has, and each line that was changed, removed, moved or damaged.

    It reads the trail and its head under a shared lock, so a line being added meanwhile is never
    taken for a removed one.
    """
    path = trail_file(settings)
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            _lock(file, shared=True)
            text = file.read()
            head = _read_head(path.with_name(HEAD_NAME))
    except FileNotFoundError:
        text, head = "", _read_head(path.with_name(HEAD_NAME))
    except OSError as exc:
        raise AuditError.at(
            str(path), None, f"the audit trail cannot be read: {exc}", "check the file"
        ) from None
    shown = str(path)
    problems: list[Problem] = []
    prev: str | None = START
    seq: int | None = 0
    count = 0
    fix = "the trail was changed outside brochure: keep this file as evidence and tell the practice manager"
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        try:
            data = json.loads(line)
            fields = {key: data[key] for key in COLUMNS}
            stored_prev, stored_hash = data["prev"], data["hash"]
            if not (
                isinstance(fields["seq"], int)
                and isinstance(stored_prev, str)
                and isinstance(stored_hash, str)
            ):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            problems.append(Problem(shown, number, "this line is damaged", fix))
            prev, seq = None, None
            continue
        if seq is not None and fields["seq"] != seq + 1:
            gap = f"lines {seq + 1} to {fields['seq'] - 1} are missing" if fields["seq"] > seq + 1 else ""
            problems.append(
                Problem(shown, number, gap or f"line {fields['seq']} is out of order (after {seq})", fix)
            )
        elif prev is not None and stored_prev != prev:
            problems.append(Problem(shown, number, "the line before this one was changed or removed", fix))
        if _digest(stored_prev, fields) != stored_hash:
            problems.append(Problem(shown, number, f"line {fields['seq']} was changed", fix))
        prev, seq = stored_hash, fields["seq"]
    if head is None and (count or path.with_name(HEAD_NAME).exists()):
        problems.append(Problem(shown, None, f"{HEAD_NAME} is missing or damaged", fix))
    elif head is not None and head != (seq, prev):
        problems.append(
            Problem(
                shown, None, f"the trail ends at line {seq or 0}, but line {head[0]} was written last", fix
            )
        )
    return count, problems


def report(
    settings: MachineSettings, since: dt.date | None = None, until: dt.date | None = None
) -> list[Entry]:
    """The lines from ``since`` to ``until`` (both days included), in order."""
    chosen = []
    for entry in entries(settings):
        day = dt.datetime.fromisoformat(entry.at).date()
        if (since is None or day >= since) and (until is None or day <= until):
            chosen.append(entry)
    return chosen


def as_csv(rows: Sequence[Entry]) -> str:
    """The rows as CSV for a spreadsheet (see spreadsheet)."""
    cells = []
    for entry in rows:
        handouts = " ".join(f"{name}@{version}" for name, version in entry.handouts)
        cells.append(
            [entry.seq, entry.at, entry.event, entry.staff, entry.desk, handouts, entry.record, entry.detail]
        )
    return spreadsheet(COLUMNS, cells)


def spreadsheet(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV for a spreadsheet; a cell that a spreadsheet would run as a formula
    (= + - @, a tab or a carriage return first) is written with a ' in front."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(c) for c in row])
    return out.getvalue()


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: still recorded
        return "unknown"
