"""The delivery record: what was given to whom, when and how, in a private SQLite file outside the project.

It is the one place that keeps patient details (the clinic's record of
"education given"). The file is made 0600 in a 0700 folder, in the user's
data folder unless the settings name another place. Each delivery keeps the
content version of each document, so `brochure history` can say whether a
patient's copy still says what the current handout says.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from brochure.base import clock
from brochure.base.errors import BrochureError
from brochure.deliver.packet import Packet
from brochure.deliver.patient import Patient
from brochure.deliver.rules import AGAIN_MINUTES
from brochure.deliver.settings import MachineSettings

#: The record's schema: 2 added the patient's consent to follow-ups and the follow_up table.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,              -- when, ISO 8601 with the UTC offset
    method TEXT NOT NULL,          -- print, email or draft
    target TEXT NOT NULL,          -- printer or address
    user TEXT NOT NULL,            -- the operating-system user
    patient TEXT NOT NULL,         -- the patient's name
    fields TEXT NOT NULL,          -- every patient field, as JSON
    consent TEXT NOT NULL,         -- encrypted, consented or '' (printed)
    documents TEXT NOT NULL,       -- [[name, content version, review due], ...] as JSON
    follow_ups INTEGER NOT NULL DEFAULT 0  -- 1: the patient agreed to follow-up emails
);
CREATE INDEX IF NOT EXISTS delivery_at ON delivery (at);
"""


#: The columns a Delivery is read from, in its order.
_COLUMNS = "id, at, method, target, user, fields, consent, documents, follow_ups"


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a record made by an older brochure up to this schema (new columns only: nothing is lost)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(delivery)")}
    if "follow_ups" not in columns:
        try:
            db.execute("ALTER TABLE delivery ADD COLUMN follow_ups INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError as exc:  # another process added it a moment ago
            if "duplicate column" not in str(exc):
                raise


class RecordError(BrochureError):
    """The delivery record cannot be opened or written."""


@dataclass(frozen=True)
class Delivery:
    """One recorded delivery."""

    id: int
    when: dt.datetime
    documents: list[tuple[str, str, str | None]]  # (name, content version, review due YYYY-MM-DD)
    method: str
    target: str
    user: str
    patient: dict[str, str]
    consent: str
    #: The patient agreed to follow-up emails (see brochure.deliver.followups).
    follow_ups: bool = False
    #: Names of recorded documents whose content has changed since (or that are gone).
    changed: list[str] = field(default_factory=list)
    #: Whether every document is still the current version; None when no project was given to compare.
    current: bool | None = None

    @property
    def patient_name(self) -> str:
        return self.patient.get("name", "")


def _private_file(path: Path) -> None:
    """Make ``path``'s folder (0700, when made here) and the file itself (0600) before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class Record:
    """The record, open; use it as a context manager or call close()."""

    def __init__(self, path: Path, connection: sqlite3.Connection, project=None) -> None:  # noqa: ANN001
        self.path = path
        self.project = project
        self._db = connection

    @classmethod
    def open(cls, settings: MachineSettings, project=None) -> Record:  # noqa: ANN001 - project.Project
        """Open (or make) the record the settings name; with ``project``, search() compares versions."""
        path = settings.record_file.expanduser()
        if project is not None and path.resolve().is_relative_to(Path(project.root).resolve()):
            raise RecordError.at(
                str(settings.file),
                None,
                "the delivery record cannot be inside the project (it holds patient details)",
                "set [record] path to a file outside the project, or remove it for the default",
            )
        try:
            _private_file(path)
            db = sqlite3.connect(path, timeout=10, isolation_level=None)
            db.executescript(_SCHEMA)
            _upgrade(db)
            from brochure.deliver import followups

            followups.create(db)
            _education_table(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise RecordError.at(
                str(path),
                None,
                f"the delivery record cannot be opened: {exc}",
                "check [record] path in the settings",
            ) from None
        return cls(path, db, project)

    @property
    def connection(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; BEGIN for a transaction), for the record's other
        tables (follow-ups)."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Record:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self,
        packet: Packet,
        patient: Patient | None,
        *,
        method: str,
        target: str,
        consent: str = "",
        when: dt.datetime | None = None,
        by: str | None = None,
        follow_ups: bool = False,
    ) -> Delivery:
        """Record one delivery of ``packet``, given by ``by`` (default: this computer's user);
        ``follow_ups``: the patient agreed to follow-up emails."""
        when = when or clock.now()
        fields = patient.fields() if patient else {}
        documents = [
            [name, version, due.isoformat() if due else None]
            for (name, version), due in zip(
                packet.documents, packet.review_due or [None] * len(packet.documents), strict=False
            )
        ]
        try:
            cursor = self._db.execute(
                "INSERT INTO delivery (at, method, target, user, patient, fields, consent, documents,"
                " follow_ups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    when.isoformat(timespec="seconds"),
                    method,
                    target,
                    by or _user(),
                    fields.get("name", ""),
                    json.dumps(fields),
                    consent,
                    json.dumps(documents),
                    int(follow_ups),
                ),
            )
        except sqlite3.Error as exc:
            raise RecordError.at(
                str(self.path), None, f"the delivery could not be recorded: {exc}", None
            ) from None
        found = self.get(cursor.lastrowid or 0)
        assert found is not None, "a row just added"
        return found

    def get(self, delivery_id: int) -> Delivery | None:
        """The delivery recorded as row ``delivery_id``, if there is one."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM delivery WHERE id = ?", (delivery_id,)).fetchone()
        return self._delivery(row) if row else None

    def search(self, patient: str | None = None, since: dt.date | None = None) -> list[Delivery]:
        """Deliveries, newest first, to patients whose name holds ``patient`` (any case, with or without
        accents: "maria" finds "María"), since ``since``."""
        query, args = f"SELECT {_COLUMNS} FROM delivery WHERE 1", []
        if since is not None:
            query += " AND at >= ?"
            args.append(since.isoformat())
        query += " ORDER BY at DESC, id DESC"
        rows = [self._delivery(row) for row in self._db.execute(query, args)]
        if patient:
            from brochure.base.text import fold

            wanted = fold(patient)
            rows = [d for d in rows if wanted in fold(d.patient_name)]
        return rows

    def today(self) -> list[Delivery]:
        return self.search(since=clock.today())

    def recent(
        self, patient: Patient, names: Sequence[str], minutes: int = AGAIN_MINUTES, method: str | None = None
    ) -> Delivery | None:
        """A delivery of the same handouts to the same patient in the last ``minutes`` (by ``method``
        when one is named), if there is one."""
        since = clock.now() - dt.timedelta(minutes=minutes)
        for delivery in self.search(patient.name):
            if delivery.when < since:
                break
            same_patient = delivery.patient_name.casefold() == patient.name.casefold()
            if method is not None and delivery.method != method:
                continue
            if same_patient and sorted(d[0] for d in delivery.documents) == sorted(names):
                return delivery
        return None

    def _delivery(self, row: tuple) -> Delivery:
        id_, at, method, target, user, fields, consent, documents, follow_ups = row
        docs = [tuple(d) for d in json.loads(documents)]
        changed = self._changed(docs) if self.project is not None else []
        return Delivery(
            id=id_,
            when=dt.datetime.fromisoformat(at),
            documents=docs,
            method=method,
            target=target,
            user=user,
            patient=json.loads(fields),
            consent=consent,
            follow_ups=bool(follow_ups),
            changed=changed,
            current=(not changed) if self.project is not None else None,
        )

    def _changed(self, docs: list[tuple]) -> list[str]:
        from brochure.deliver.packet import content_version
        from brochure.project.model import documents

        if not hasattr(self, "_versions"):
            self._versions = {doc.name: content_version(self.project, doc) for doc in documents(self.project)}
        return [name for name, version, *_ in docs if self._versions.get(name) != version]


def _education_table(db: sqlite3.Connection) -> None:
    """The table of education documented for each delivery (brochure.deliver.education)."""
    from brochure.deliver import education

    education.create(db)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no user name in this environment
        return str(os.getuid())
