"""Staff accounts: each person who gives handouts has a name, a role and a password or PIN.

The accounts are kept beside the delivery record (``accounts.sqlite``,
readable by this user only), never in the project. A password is kept only
as its argon2id hash. Five wrong passwords in a row lock an account for 15
minutes. Every change of an account is a line of the audit trail.

Roles: ``front-desk`` personalises and delivers; ``editor`` also sees the
content status; ``admin`` also manages staff and settings.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from brochure.base.errors import BrochureError, Problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from brochure.deliver.settings import MachineSettings

ROLES = ("front-desk", "editor", "admin")
FILE_NAME = "accounts.sqlite"
#: Wrong passwords in a row that lock an account, and for how long.
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
#: A PIN of four digits is the least a password may be.
MIN_PASSWORD = 4
MAX_NAME = 80

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account (
    name TEXT PRIMARY KEY,          -- as the person is known at the clinic
    folded TEXT NOT NULL UNIQUE,    -- the name without case or accents, for look-ups
    role TEXT NOT NULL,             -- front-desk, editor or admin
    hash TEXT NOT NULL,             -- argon2id
    active INTEGER NOT NULL,        -- 0 once disabled
    failures INTEGER NOT NULL,      -- wrong passwords in a row
    locked_until TEXT NOT NULL,     -- ISO 8601, '' when not locked
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS setting (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
#: Minutes without a click before the clinic server signs a person out, by default and at most.
IDLE_MINUTES = 10
IDLE_RANGE = (1, 60)


class AccountError(BrochureError):
    """A staff account cannot be made, changed or used; the message never repeats a password."""


class Locked(AccountError):
    """Too many wrong passwords: the account waits until ``until``."""

    def __init__(self, until: dt.datetime) -> None:
        message = f"this account is locked until {until:%H:%M} after {MAX_FAILURES} wrong passwords"
        super().__init__([Problem(None, None, message, "wait, or ask an admin to reset it")])
        self.until = until


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    active: bool
    locked_until: dt.datetime | None
    #: Changes when the password does (a short hash of its hash): a session opened before is stale.
    stamp: str = field(default="", compare=False, repr=False)


#: Wrong passwords for names that have no account, by a hash of the name, in this process only
#: (nothing typed is written): such a name locks like a real one, so a lock tells nobody who exists.
_strangers: dict[str, tuple[int, dt.datetime | None]] = {}
_strangers_lock = threading.Lock()


def accounts_file(settings: MachineSettings) -> Path:
    """Where this machine's accounts are: beside the delivery record."""
    return settings.record_file.expanduser().with_name(FILE_NAME)


def fold(name: str) -> str:
    """A name as it is looked up: case and accents do not matter ('María' is 'maria')."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


#: argon2id's cost: 46 MiB of memory, one pass, one lane, the first of OWASP's recommended
#: settings (Password Storage Cheat Sheet): about 45 ms a check here, so that signing in stays quick
#: on a two-core clinic server while a browser runs beside it. A hash made with other settings is
#: remade with these at its next sign-in.
HASH_COST = {"memory_cost": 47104, "time_cost": 1, "parallelism": 1}


def _hasher():  # noqa: ANN202 - argon2.PasswordHasher
    from argon2 import PasswordHasher, Type

    return PasswordHasher(type=Type.ID, **HASH_COST)


def _open(settings: MachineSettings) -> sqlite3.Connection:
    path = accounts_file(settings)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        db = sqlite3.connect(path, timeout=10, isolation_level=None)
        db.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as exc:
        raise AccountError.at(str(path), None, f"the staff accounts cannot be opened: {exc}", None) from None
    return db


def _checked_name(name: str) -> str:
    name = unicodedata.normalize("NFC", " ".join((name or "").split()))
    if not name:
        raise AccountError.at(None, None, "the name is empty", "give the person's name")
    if len(name) > MAX_NAME or any(unicodedata.category(c)[0] == "C" for c in name):
        raise AccountError.at(
            None, None, f"the name must be at most {MAX_NAME} printable characters", "type it again"
        )
    return name


def _checked_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError.at(
            None, None, f"the password is shorter than {MIN_PASSWORD} characters", "choose a longer one"
        )
    return password


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError.at(None, None, f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
    return role


def add(
    settings: MachineSettings,
    name: str,
    role: str,
    password: str,
    *,
    by: str | None = None,
    desk: str = "terminal",
) -> Account:
    """Make an account; AccountError when the name is taken (any case or accents)."""
    from brochure.deliver import audit

    name, role = _checked_name(name), _checked_role(role)
    digest = _hasher().hash(_checked_password(password))
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    db = _open(settings)
    try:
        db.execute(
            "INSERT INTO account VALUES (?, ?, ?, ?, 1, 0, '', ?)", (name, fold(name), role, digest, now)
        )
    except sqlite3.IntegrityError:
        raise AccountError.at(
            None, None, f"there is already an account named {name!r}", "choose another name, or reset it"
        ) from None
    finally:
        db.close()
    audit.append(settings, "staff-add", staff=by, desk=desk, detail=f"{name} ({role})")
    return Account(name, role, True, None)


def accounts(settings: MachineSettings) -> list[Account]:
    """Every account, by name."""
    db = _open(settings)
    try:
        rows = db.execute(
            "SELECT name, role, active, locked_until, hash FROM account ORDER BY folded"
        ).fetchall()
    finally:
        db.close()
    return [Account(n, r, bool(a), _locked(u), _stamp(h)) for n, r, a, u, h in rows]


def _stamp(digest: str) -> str:
    import hashlib

    return hashlib.sha256(digest.encode()).hexdigest()[:16]


def _locked(value: str) -> dt.datetime | None:
    if not value:
        return None
    until = dt.datetime.fromisoformat(value)
    return until if until > dt.datetime.now().astimezone() else None


def find(settings: MachineSettings, name: str) -> Account:
    """The account called ``name`` (any case or accents); AccountError when there is none."""
    for account in accounts(settings):
        if fold(account.name) == fold(name):
            return account
    raise AccountError.at(None, None, "there is no staff account with that name", "see 'brochure staff list'")


def disable(
    settings: MachineSettings, name: str, *, by: str | None = None, desk: str = "terminal"
) -> Account:
    """Stop an account from signing in or being named for a delivery (its deliveries keep its name)."""
    from brochure.deliver import audit

    account = find(settings, name)
    db = _open(settings)
    try:
        db.execute("UPDATE account SET active = 0 WHERE name = ?", (account.name,))
    finally:
        db.close()
    audit.append(settings, "staff-disable", staff=by, desk=desk, detail=account.name)
    return Account(account.name, account.role, False, account.locked_until)


def reset(
    settings: MachineSettings, name: str, password: str, *, by: str | None = None, desk: str = "terminal"
) -> Account:
    """Give an account a new password; it is active and unlocked again."""
    from brochure.deliver import audit

    account = find(settings, name)
    digest = _hasher().hash(_checked_password(password))
    db = _open(settings)
    try:
        db.execute(
            "UPDATE account SET hash = ?, active = 1, failures = 0, locked_until = '' WHERE name = ?",
            (digest, account.name),
        )
    finally:
        db.close()
    audit.append(settings, "staff-reset", staff=by, desk=desk, detail=account.name)
    return Account(account.name, account.role, True, None)


def sign_in(settings: MachineSettings, name: str, password: str, *, desk: str = "terminal") -> Account:
    """The account, when ``password`` is its own and it may sign in; AccountError otherwise, which
    says the same for an unknown name as for a wrong password: five wrong ones in a row lock either
    (Locked). Each attempt is a line of the audit trail, naming the account but never what was typed
    for a name that has none; a sign-in that cannot be put on the trail does not happen (AuditError)."""
    from brochure.deliver import audit

    try:
        result, event, who, outcome = _attempt(settings, name, password)
    except sqlite3.Error as exc:  # busy past the timeout, a damaged file
        raise AccountError.at(
            str(accounts_file(settings)), None, f"the staff accounts cannot be read: {exc}", "try again"
        ) from None
    audit.append(settings, event, staff=who, desk=desk, detail=outcome)
    if isinstance(result, AccountError):
        raise result
    return result


def _attempt(
    settings: MachineSettings, name: str, password: str
) -> tuple[Account | AccountError, str, str, str]:
    """Check one sign-in: (the account or the error to raise, the audit event, whom it names, detail)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    wrong = AccountError.at(None, None, "the name or the password is not right", "type them again")
    db = _open(settings)
    try:
        # One attempt at a time, from reading the count of failures to writing it: attempts made
        # at once from several desks never lose a failure, nor clear a lock another one set.
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "SELECT name, role, hash, active, failures, locked_until FROM account WHERE folded = ?",
            (fold(name),),
        ).fetchone()
        if row is None:
            return _stranger(name, password, wrong)
        account_name, role, digest, active, failures, locked = row
        until = _locked(locked)
        if until is not None:
            _hasher().hash(password or "-")  # the same time as a check
            return Locked(until), "sign-in-failed", account_name, "while locked"
        try:
            _hasher().verify(digest, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            failures, until = _failed(failures)
            lock = until.isoformat(timespec="seconds") if until else ""
            db.execute(
                "UPDATE account SET failures = ?, locked_until = ? WHERE name = ?",
                (failures, lock, account_name),
            )
            if until is not None:
                return Locked(until), "lockout", account_name, _lock_detail(until)
            return wrong, "sign-in-failed", account_name, ""
        if not active:
            disabled = AccountError.at(None, None, "this account is disabled", "ask an admin to reset it")
            return disabled, "sign-in-failed", account_name, "account disabled"
        db.execute("UPDATE account SET failures = 0, locked_until = '' WHERE name = ?", (account_name,))
        if _hasher().check_needs_rehash(digest):
            # Its other sessions see a new stamp, and end at the server's next sweep (once, on upgrade).
            digest = _hasher().hash(password)
            db.execute("UPDATE account SET hash = ? WHERE name = ?", (digest, account_name))
        return Account(account_name, role, True, None, _stamp(digest)), "sign-in", account_name, ""
    finally:
        if db.in_transaction:
            db.execute("COMMIT")  # a failure counted is kept, whatever happens next
        db.close()


def _failed(failures: int) -> tuple[int, dt.datetime | None]:
    """One more wrong password after ``failures``: the new count, and the lock's end if it locks."""
    if failures + 1 >= MAX_FAILURES:
        return 0, dt.datetime.now().astimezone() + LOCKOUT
    return failures + 1, None


def _lock_detail(until: dt.datetime) -> str:
    return f"{MAX_FAILURES} wrong passwords; locked until {until:%H:%M}"


def _stranger(name: str, password: str, wrong: AccountError) -> tuple[AccountError, str, str, str]:
    """A name with no account: the same time, the same answers and the same lock as a real one."""
    import hashlib

    _hasher().hash(password or "-")  # the same time as a check
    key = hashlib.sha256(fold(name).encode()).hexdigest()
    now = dt.datetime.now().astimezone()
    with _strangers_lock:
        failures, until = _strangers.get(key, (0, None))
        if until is not None and until > now:
            return Locked(until), "sign-in-failed", "(unknown name)", "while locked"
        failures, until = _failed(failures)
        _strangers[key] = (failures, until)
    if until is not None:
        return Locked(until), "lockout", "(unknown name)", _lock_detail(until)
    return wrong, "sign-in-failed", "(unknown name)", ""


def idle_minutes(settings: MachineSettings) -> int:
    """Minutes without a click after which the clinic server signs a person out."""
    db = _open(settings)
    try:
        row = db.execute("SELECT value FROM setting WHERE key = 'idle_minutes'").fetchone()
    finally:
        db.close()
    try:
        minutes = int(row[0]) if row else IDLE_MINUTES
    except ValueError:
        minutes = IDLE_MINUTES
    return min(max(minutes, IDLE_RANGE[0]), IDLE_RANGE[1])


def set_idle_minutes(
    settings: MachineSettings, minutes: int, *, by: str | None = None, desk: str = "terminal"
) -> None:
    """Change the idle sign-out time (1 to 60 minutes); the change is a line of the audit trail."""
    from brochure.deliver import audit

    low, high = IDLE_RANGE
    if not low <= minutes <= high:
        raise AccountError.at(
            None,
            None,
            f"the idle sign-out must be {low} to {high} minutes",
            f"choose a number from {low} to {high}",
        )
    before = idle_minutes(settings)
    db = _open(settings)
    try:
        db.execute("INSERT OR REPLACE INTO setting VALUES ('idle_minutes', ?)", (str(minutes),))
    finally:
        db.close()
    audit.append(
        settings, "settings", staff=by, desk=desk, detail=f"idle sign-out {before} -> {minutes} minutes"
    )


def staff_member(settings: MachineSettings, name: str) -> str:
    """The name to record for a delivery given by ``name``: an active account's, when the clinic has
    accounts; AccountError for an unknown or disabled one."""
    name = _checked_name(name)
    known = accounts(settings)
    if not known:
        return name
    for account in known:
        if fold(account.name) == fold(name):
            if not account.active:
                raise AccountError.at(
                    None, None, "that staff account is disabled", "ask an admin to reset it"
                )
            return account.name
    raise AccountError.at(None, None, "there is no staff account with that name", "see 'brochure staff list'")
