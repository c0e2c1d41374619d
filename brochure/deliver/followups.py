"""Follow-up emails after a visit: scheduled by a delivery, sent once when due, cancelled by staff.

A topic's front matter lists its follow-ups (``follow_ups: [{after_days: 1,
template: day1}]``). When handouts are emailed to a patient who agreed to
follow-up emails, `schedule` adds a row per follow-up to the ``follow_up``
table of the delivery record, due ``after_days`` after the treatment. The
row holds no patient detail: it points at the delivery's row, which has
the patient's name and address.

`send_due` sends what is due, exactly once, however many `send` run at once
and whatever stops one half-way:

1. a row is claimed by one statement, ``UPDATE ... SET state = 'sending'
   WHERE id = ? AND state IN ('scheduled', 'held')``: of two processes, one
   changes the row and the other changes nothing and leaves it;
2. the claim is written (with the claimant, the time, and the email's
   Message-ID, chosen once) before the email leaves, and ``sent`` after the
   mail server took it;
3. a row left ``sending`` by a process that is gone (this computer: its
   process id no longer runs; another: after LEASE) is sent again with the
   same Message-ID, so a mail system that did get the first try keeps one.

A follow-up whose email's medical review is overdue is held (and named for
the editor) until the review date moves on; one more than LATE_DAYS late is
not sent at all. Every send, hold, failure and cancel is an audit-trail line
that names the delivery's row, never the patient.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.base import clock
from brochure.base.errors import BrochureError

if TYPE_CHECKING:
    from brochure.deliver.record import Delivery, Record
    from brochure.deliver.settings import MachineSettings
    from brochure.document.emails import FollowUpEmail
    from brochure.project.model import Project

log = logging.getLogger(__name__)

#: A follow-up's states. Waiting: scheduled, held (its email's review is overdue). Being sent:
#: sending. Done: sent, cancelled (by staff), missed (too late to send), failed (MAX_TRIES failures).
STATES = ("scheduled", "held", "sending", "sent", "cancelled", "missed", "failed")
WAITING = ("scheduled", "held")
#: A follow-up not sent this many days after it was due is not sent at all.
LATE_DAYS = 7
#: A claim by a process on another computer is taken over after this long.
LEASE = dt.timedelta(minutes=15)
#: Failed tries (the mail server refused, say) before a follow-up is given up.
MAX_TRIES = 5
#: Why staff cancel one, as the desk offers it.
REASONS = {"rebooked": "rebooked", "declined": "the patient declined", "other": "other"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS follow_up (
    id INTEGER PRIMARY KEY,
    delivery INTEGER NOT NULL,     -- the delivery's row: the patient, their address, the handouts
    template TEXT NOT NULL,        -- templates/email/follow-ups/TEMPLATE/
    lang TEXT NOT NULL,            -- the language the delivery's email went in
    due TEXT NOT NULL,             -- YYYY-MM-DD
    state TEXT NOT NULL,           -- see STATES
    reason TEXT NOT NULL DEFAULT '',  -- why held, failed, missed or cancelled: never a patient detail
    tries INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,               -- chosen at the first try, kept for every try after
    claimant TEXT,                 -- host:pid:start of the process sending it
    claimed_at TEXT,
    done_at TEXT,
    by TEXT NOT NULL DEFAULT ''    -- who cancelled it
);
CREATE INDEX IF NOT EXISTS follow_up_due ON follow_up (state, due);
CREATE INDEX IF NOT EXISTS follow_up_delivery ON follow_up (delivery);
"""
_COLUMNS = (
    "id, delivery, template, lang, due, state, reason, tries, message_id, claimant, claimed_at, done_at"
)


class FollowUpError(BrochureError):
    """Follow-ups cannot be listed, sent or cancelled as asked."""


def create(db: sqlite3.Connection) -> None:
    """Make the follow_up table in the record (the record does, when it opens)."""
    db.executescript(_SCHEMA)


@dataclass(frozen=True)
class FollowUp:
    """One follow-up email of one delivery, as the record keeps it."""

    id: int
    delivery: int
    template: str
    lang: str
    due: dt.date
    state: str
    reason: str = ""
    tries: int = 0
    message_id: str | None = None
    claimant: str | None = None
    claimed_at: dt.datetime | None = None
    done_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: Sequence) -> FollowUp:
        id_, delivery, template, lang, due, state, reason, tries, message_id, claimant, claimed, done = row
        return cls(
            id_,
            delivery,
            template,
            lang,
            dt.date.fromisoformat(due),
            state,
            reason,
            tries,
            message_id,
            claimant,
            dt.datetime.fromisoformat(claimed) if claimed else None,
            dt.datetime.fromisoformat(done) if done else None,
        )


@dataclass(frozen=True)
class Listed:
    """A follow-up with its delivery (the patient) and its email's title, for a list."""

    follow_up: FollowUp
    delivery: Delivery | None
    title: str


# -- scheduling ------------------------------------------------------------------


def planned(project: Project, names: Sequence[str]) -> list[tuple[int, str]]:
    """(after_days, template) of every follow-up the handouts ``names`` ask for, each template once
    (the first topic that names it decides its day), in the order they fall."""
    from brochure.project.model import select

    seen: dict[str, int] = {}
    for doc in select(project, list(names)):
        for topic in doc.topics:
            for wanted in topic.follow_ups:
                seen.setdefault(wanted.template, wanted.after_days)
    return sorted(((days, name) for name, days in seen.items()), key=lambda p: (p[0], p[1]))


def schedule(
    record: Record, delivery: Delivery, project: Project, *, lang: str, today: dt.date | None = None
) -> list[FollowUp]:
    """Add the follow-ups of an emailed ``delivery`` whose patient agreed to them: each due its
    ``after_days`` after the treatment date. One due before today is not added (too late), nor one
    the same patient at the same address already has waiting for the same day."""
    if delivery.method != "email" or not delivery.follow_ups:
        return []
    today = today or clock.today()
    treated_on = dt.date.fromisoformat(delivery.patient.get("treated_on") or today.isoformat())
    names = [name for name, *_rest in delivery.documents]
    db = record.connection
    added = []
    for days, template in planned(project, names):
        due = treated_on + dt.timedelta(days=days)
        if due < today:
            continue
        twin = db.execute(
            "SELECT 1 FROM follow_up f JOIN delivery d ON d.id = f.delivery WHERE f.template = ?"
            " AND f.due = ? AND f.state IN ('scheduled', 'held') AND lower(d.target) = lower(?)"
            " AND lower(d.patient) = lower(?)",
            (template, due.isoformat(), delivery.target, delivery.patient_name),
        ).fetchone()
        if twin:
            continue
        cursor = db.execute(
            "INSERT INTO follow_up (delivery, template, lang, due, state) VALUES (?, ?, ?, ?, 'scheduled')",
            (delivery.id, template, lang, due.isoformat()),
        )
        added.append(_get(db, cursor.lastrowid or 0))
    return added


def _get(db: sqlite3.Connection, follow_up_id: int) -> FollowUp:
    row = db.execute(f"SELECT {_COLUMNS} FROM follow_up WHERE id = ?", (follow_up_id,)).fetchone()
    return FollowUp.of(row)


# -- lists -------------------------------------------------------------------------


def listing(
    record: Record,
    project: Project | None = None,
    *,
    due_by: dt.date | None = None,
    states: Sequence[str] = (*WAITING, "sending"),
    patient: str | None = None,
) -> list[Listed]:
    """Follow-ups in ``states`` (waiting or being sent, unless asked), due by ``due_by`` when given,
    to patients whose name holds ``patient`` (any case, any accents), soonest first."""
    from brochure.base.text import fold

    query = f"SELECT {_COLUMNS} FROM follow_up WHERE state IN ({', '.join('?' * len(states))})"
    args: list[object] = list(states)
    if due_by is not None:
        query += " AND due <= ?"
        args.append(due_by.isoformat())
    rows = [FollowUp.of(r) for r in record.connection.execute(query + " ORDER BY due, id", args)]
    deliveries: dict[int, Delivery | None] = {}
    found = []
    for row in rows:
        if row.delivery not in deliveries:
            deliveries[row.delivery] = record.get(row.delivery)
        delivery = deliveries[row.delivery]
        if patient and (delivery is None or fold(patient) not in fold(delivery.patient_name)):
            continue
        found.append(Listed(row, delivery, title(project, row)))
    return found


def title(project: Project | None, row: FollowUp) -> str:
    """The follow-up email's title for staff ("Day-1 check-in"); its folder's name if it has none."""
    if project is None:
        return row.template
    from brochure.document.emails import follow_up

    try:
        return follow_up(project.root, row.template, row.lang).title
    except BrochureError:
        return row.template


# -- cancelling --------------------------------------------------------------------


def cancel(
    record: Record,
    ids: Sequence[int],
    *,
    reason: str,
    by: str,
    settings: MachineSettings,
    desk: str = "terminal",
) -> tuple[list[FollowUp], list[str]]:
    """Cancel the waiting follow-ups ``ids`` (one being sent, or already done, is left as it is);
    the ones cancelled, and warnings (an audit trail that cannot be written)."""
    from brochure.deliver.service import _noted

    db = record.connection
    now = clock.now().isoformat(timespec="seconds")
    done, warnings = [], []
    for follow_up_id in ids:
        changed = db.execute(
            "UPDATE follow_up SET state = 'cancelled', reason = ?, by = ?, done_at = ?"
            " WHERE id = ? AND state IN ('scheduled', 'held')",
            (reason, by, now, follow_up_id),
        ).rowcount
        if changed:
            row = _get(db, follow_up_id)
            done.append(row)
            warnings += _noted(
                settings,
                "follow-up-cancelled",
                staff=by,
                desk=desk,
                handouts=(),
                record=row.delivery,
                detail=f"{row.template} ({row.lang}): {reason}",
            )
    return done, warnings


# -- sending -----------------------------------------------------------------------


@dataclass
class Sent:
    """What one `send_due` did; each list holds (follow-up, what to say) pairs, nothing personal."""

    sent: list[FollowUp] = field(default_factory=list)
    held: list[tuple[FollowUp, str, str]] = field(default_factory=list)  # (row, why, fix)
    failed: list[tuple[FollowUp, str]] = field(default_factory=list)
    missed: list[FollowUp] = field(default_factory=list)
    #: Due follow-ups another process is sending right now.
    busy: int = 0
    #: Set when it is outside the sending hours: when sending starts again.
    waiting_until: dt.time | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a log: counts only."""
        if self.waiting_until is not None:
            return f"follow-ups: outside the sending hours (next from {self.waiting_until:%H:%M})"
        parts = [
            f"{len(self.sent)} sent",
            f"{len(self.held)} held",
            f"{len(self.failed)} failed",
            f"{len(self.missed)} too late",
        ]
        if self.busy:
            parts.append(f"{self.busy} being sent by another process")
        return "follow-ups: " + ", ".join(parts)


def _me() -> str:
    """This process, as a claim names it: host, process id and the process's start (a reused id is
    another process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}"


def _started(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (Linux); "" when unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _gone(claimant: str | None, claimed_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether the process that claimed a row is no longer there to finish it (or is this one, whose
    earlier round left it: a round sends one row at a time and leaves none claimed when it ends)."""
    if not claimant or claimant == _me():
        return True
    host, _, rest = claimant.partition(":")
    pid, _, started = rest.partition(":")
    if host == socket.gethostname() and pid.isdigit() and os.path.isdir("/proc"):
        return _started(int(pid)) != started
    return claimed_at is None or now - claimed_at > LEASE


def _recover(db: sqlite3.Connection, now: dt.datetime) -> None:
    """Put rows left 'sending' by a process that is gone back in line (their Message-ID kept)."""
    for row in [
        FollowUp.of(r) for r in db.execute(f"SELECT {_COLUMNS} FROM follow_up WHERE state = 'sending'")
    ]:
        if _gone(row.claimant, row.claimed_at, now):
            db.execute(
                "UPDATE follow_up SET state = 'scheduled', claimant = NULL"
                " WHERE id = ? AND state = 'sending' AND claimant IS ?",
                (row.id, row.claimant),
            )
            log.warning("follow-up %d was left half-sent by a process that stopped: it is sent again", row.id)


def in_hours(settings: MachineSettings, now: dt.datetime) -> dt.time | None:
    """None when follow-ups may go out at ``now``; else the time they start again."""
    from brochure.deliver.settings import FOLLOW_UP_HOURS, parse_hours

    start, end = parse_hours(settings.follow_up_hours) or parse_hours(FOLLOW_UP_HOURS)  # type: ignore[misc]
    return None if start <= now.time() <= end else start


def send_due(
    project: Project,
    settings: MachineSettings,
    *,
    record: Record | None = None,
    by: str | None = None,
    desk: str = "terminal",
) -> Sent:
    """Send every follow-up that is due (see the module's text for how each goes exactly once)."""
    from brochure.deliver.record import Record

    if record is None:
        with Record.open(settings, project) as opened:
            return send_due(project, settings, record=opened, by=by, desk=desk)
    now = clock.now()
    done = Sent()
    if (start := in_hours(settings, now)) is not None:
        done.waiting_until = start
        return done
    db = record.connection
    _recover(db, now)
    due = listing(record, None, due_by=now.date(), states=("scheduled", "held", "sending"))
    for item in due:
        row = item.follow_up
        if row.state == "sending":
            done.busy += 1
            continue
        _send_one(project, settings, record, item, now, done, by=by, desk=desk)
    return done


def _send_one(
    project: Project,
    settings: MachineSettings,
    record: Record,
    item: Listed,
    now: dt.datetime,
    done: Sent,
    *,
    by: str | None,
    desk: str,
) -> None:
    from email.utils import make_msgid

    from brochure.deliver.mail import MailError, compose_follow_up, send, sender_domain
    from brochure.deliver.service import _noted
    from brochure.document.emails import follow_up

    db = record.connection
    row, delivery = item.follow_up, item.delivery
    stamp = now.isoformat(timespec="seconds")

    def note(event: str, detail: str) -> None:
        done.warnings.extend(
            _noted(settings, event, staff=by, desk=desk, handouts=(), record=row.delivery, detail=detail)
        )

    def finish(state: str, reason: str) -> bool:
        return bool(
            db.execute(
                "UPDATE follow_up SET state = ?, reason = ?, done_at = ?, claimant = NULL"
                " WHERE id = ? AND state IN ('scheduled', 'held')",
                (state, reason, stamp, row.id),
            ).rowcount
        )

    if delivery is None:
        finish("cancelled", "its delivery is no longer in the record")
        return
    if (now.date() - row.due).days > LATE_DAYS:
        if finish("missed", f"more than {LATE_DAYS} days late"):
            done.missed.append(row)
        return
    try:
        email: FollowUpEmail = follow_up(project.root, row.template, row.lang)
    except BrochureError as exc:
        _hold(db, row, str(exc.problems[0].message), exc.problems[0].file or "", note)
        done.held.append((row, exc.problems[0].message, exc.problems[0].fix or "fix the follow-up email"))
        return
    if email.overdue(now.date()):
        why = f"its medical review was due on {email.review_due}"
        fix = f"have the email reviewed, then move review_due on in {email.shown}"
        _hold(db, row, why, email.shown, note)
        done.held.append((row, f"{email.title} ({email.templates.lang}): {why}", fix))
        return
    # The claim: one statement, so of two processes only one changes the row.
    message_id = make_msgid(domain=sender_domain(settings.smtp_sender or settings.smtp_user))
    claimed = db.execute(
        "UPDATE follow_up SET state = 'sending', claimant = ?, claimed_at = ?, tries = tries + 1,"
        " message_id = COALESCE(message_id, ?) WHERE id = ? AND state IN ('scheduled', 'held')",
        (_me(), clock.now().isoformat(timespec="seconds"), message_id, row.id),
    ).rowcount
    if not claimed:
        done.busy += 1
        return
    row = _get(db, row.id)
    try:
        message = compose_follow_up(project, email, delivery, settings=settings, message_id=row.message_id)
        send(message, settings)
    except BrochureError as exc:
        why = str(exc.problems[0].message)
        # A message or address the server refused is given up after a few tries; a server that
        # cannot be reached (or a setting to mend) is tried again each round until it is too late.
        given_up = not isinstance(exc, MailError) or (exc.refused and row.tries >= MAX_TRIES)
        state = "failed" if given_up else "scheduled"
        db.execute(
            "UPDATE follow_up SET state = ?, reason = ?, claimant = NULL WHERE id = ? AND claimant = ?",
            (state, why, row.id, row.claimant),
        )
        done.failed.append((row, why))
        if state == "failed":
            note("follow-up-failed", f"{row.template} ({row.lang}): {why}")
        return
    except BaseException:
        # Anything else (the record busy, Ctrl-C) before the server took it: back in line at once.
        db.execute(
            "UPDATE follow_up SET state = 'scheduled', claimant = NULL WHERE id = ? AND claimant = ?",
            (row.id, row.claimant),
        )
        raise
    db.execute(
        "UPDATE follow_up SET state = 'sent', reason = '', done_at = ?, claimant = NULL"
        " WHERE id = ? AND claimant = ?",
        (clock.now().isoformat(timespec="seconds"), row.id, row.claimant),
    )
    done.sent.append(row)
    note("follow-up-sent", f"{row.template} ({email.templates.lang})")


def _hold(db: sqlite3.Connection, row: FollowUp, why: str, where: str, note) -> None:  # noqa: ANN001
    """Hold a follow-up (once: its first hold is the trail's line)."""
    changed = db.execute(
        "UPDATE follow_up SET state = 'held', reason = ? WHERE id = ? AND state = 'scheduled'", (why, row.id)
    ).rowcount
    if changed:
        note("follow-up-held", f"{row.template} ({row.lang}): {why} ({where})")
        log.warning("a follow-up is held: %s (%s)", why, where)


# -- on a schedule (the clinic server) ------------------------------------------------

#: Who the trail says sent a follow-up when the clinic server did it by itself.
AUTOMATIC = "brochure (automatic)"


def keep_sending(root: Path, minutes: float, stop: threading.Event) -> threading.Thread:
    """Run `send_due` for the project at ``root`` now and then every ``minutes`` until ``stop`` is
    set, in a daemon thread (the clinic server's). Its log says what happened, in counts and in the
    editor's words for a held email: never who it went to."""

    def run() -> None:
        from brochure.deliver.settings import load_settings
        from brochure.project.model import load_project

        while not stop.is_set():
            try:
                done = send_due(load_project(root), load_settings(), by=AUTOMATIC, desk="server")
            except BrochureError as exc:
                log.warning("follow-ups: not sent this time: %s", exc.problems[0])
            except Exception:  # noqa: BLE001 - the next round tries again; the desk goes on
                log.exception("follow-ups: not sent this time")
            else:
                busy = done.sent or done.held or done.failed or done.missed
                log.log(logging.INFO if busy else logging.DEBUG, "%s", done.summary())
                for _row, why, fix in done.held:
                    log.warning("follow-up held for the editor: %s: %s", why, fix)
                for row, why in done.failed:
                    log.warning("follow-up %d not sent: %s", row.id, why)
            stop.wait(minutes * 60)

    thread = threading.Thread(target=run, name="follow-ups", daemon=True)
    thread.start()
    return thread
