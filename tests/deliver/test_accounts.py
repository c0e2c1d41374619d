"""Staff accounts: argon2id hashes, a lockout after five wrong passwords, and deliveries that name the person."""

from __future__ import annotations

import re
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import build_ok, copy_sample

from brochure.cli.main import cli
from brochure.deliver import accounts, audit

PASSWORD = "correct-horse-7"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("accounts") / "clinic")
    build_ok(root)
    return root


def run(*args: str, typed: str | None = None):
    return CliRunner().invoke(cli, list(args), input=typed)


def test_staff_add_list_disable_reset_from_the_terminal(settings):
    added = run("staff", "add", "Dana Smith", "--role", "front-desk", typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert added.output.endswith("Added Dana Smith (front-desk).\n")
    assert PASSWORD not in added.output  # asked for hidden, never echoed
    assert run("staff", "add", "José Núñez", "--role", "admin", typed="4321\n4321\n").exit_code == 0
    taken = run("staff", "add", "DANA SMITH", typed=f"{PASSWORD}\n{PASSWORD}\n")
    assert (taken.exit_code, taken.output.splitlines()[-1]) == (
        1,
        "Error: there is already an account named 'DANA SMITH' (choose another name, or reset it)",
    )
    short = run("staff", "add", "Al", typed="12\n12\n")
    assert "Error: the password is shorter than 4 characters (choose a longer one)" in short.output
    listed = run("staff", "list").output.splitlines()
    assert listed[1:] == ["Dana Smith  front-desk  active", "José Núñez  admin       active"]

    stored = accounts.accounts_file(settings)
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(stored) as db:
        hashes = [h for (h,) in db.execute("SELECT hash FROM account")]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD.encode() not in stored.read_bytes()

    assert run("staff", "disable", "jose nunez").output == "Disabled José Núñez.\n"  # any case or accents
    with pytest.raises(accounts.AccountError, match="this account is disabled"):
        accounts.sign_in(settings, "José Núñez", "4321")
    assert run("staff", "reset", "José Núñez", typed="9876\n9876\n").exit_code == 0
    assert accounts.sign_in(settings, "jose núñez", "9876").name == "José Núñez"
    unknown = run("staff", "reset", "Nobody")
    assert unknown.output == "Error: there is no staff account with that name (see 'brochure staff list')\n"

    events = [(e.event, e.detail) for e in audit.entries(settings)]
    assert events == [
        ("staff-add", "Dana Smith (front-desk)"),
        ("staff-add", "José Núñez (admin)"),
        ("staff-disable", "José Núñez"),
        ("sign-in-failed", "account disabled"),
        ("staff-reset", "José Núñez"),
        ("sign-in", ""),
    ]
    assert PASSWORD not in audit.trail_file(settings).read_text()


def test_five_wrong_passwords_lock_the_account_until_a_reset(settings):
    accounts.add(settings, "Priya Raman", "editor", PASSWORD)
    assert accounts.sign_in(settings, "Priya Raman", PASSWORD).role == "editor"
    for _ in range(accounts.MAX_FAILURES - 1):
        with pytest.raises(accounts.AccountError, match="the name or the password is not right"):
            accounts.sign_in(settings, "Priya Raman", "wrong", desk="10.0.0.7")
    with pytest.raises(accounts.Locked, match=r"locked until \d\d:\d\d after 5 wrong passwords"):
        accounts.sign_in(settings, "Priya Raman", "wrong", desk="10.0.0.7")  # the fifth locks it
    with pytest.raises(accounts.Locked, match=r"locked until \d\d:\d\d after 5 wrong passwords"):
        accounts.sign_in(settings, "Priya Raman", PASSWORD)  # even the right one, for 15 minutes
    assert "locked until" in run("staff", "list").output
    # An unknown name gets the same words as a wrong password: no list of who has an account.
    with pytest.raises(accounts.AccountError, match="the name or the password is not right"):
        accounts.sign_in(settings, "Nobody", PASSWORD)
    accounts.reset(settings, "Priya Raman", "new-pin-2468")
    assert accounts.sign_in(settings, "Priya Raman", "new-pin-2468").name == "Priya Raman"
    # Each attempt is a line of the trail; what was typed for an unknown name is not.
    seen = [
        (e.event, e.staff, e.desk)
        for e in audit.entries(settings)
        if e.event not in ("staff-add", "staff-reset")
    ]
    assert seen == [
        ("sign-in", "Priya Raman", "terminal"),
        *[("sign-in-failed", "Priya Raman", "10.0.0.7")] * 4,
        ("lockout", "Priya Raman", "10.0.0.7"),
        ("sign-in-failed", "Priya Raman", "terminal"),  # the right password while locked
        ("sign-in-failed", "(unknown name)", "terminal"),
        ("sign-in", "Priya Raman", "terminal"),
    ]
    assert "Nobody" not in audit.trail_file(settings).read_text()
    assert audit.verify(settings)[1] == []


def test_the_idle_sign_out_is_a_setting_from_1_to_60_minutes(settings):
    assert accounts.idle_minutes(settings) == accounts.IDLE_MINUTES == 10
    accounts.set_idle_minutes(settings, 3, by="Admin Person", desk="10.0.0.9")
    assert accounts.idle_minutes(settings) == 3
    for bad in (0, 61):
        with pytest.raises(accounts.AccountError, match="the idle sign-out must be 1 to 60 minutes"):
            accounts.set_idle_minutes(settings, bad)
    assert accounts.idle_minutes(settings) == 3
    [line] = [e for e in audit.entries(settings) if e.event == "settings"]
    assert (line.staff, line.desk, line.detail) == (
        "Admin Person",
        "10.0.0.9",
        "idle sign-out 10 -> 3 minutes",
    )


def test_a_delivery_names_the_staff_account_given_with_staff(sample, settings, cups_env):
    cups_env.add_queue("frontdesk")
    args = ["print", "aftercare", "--project", str(sample), "--printer", "frontdesk"]
    args += ["--patient", "Ana Lima", "--injector", "Dana Smith", "--yes"]
    anyone = run(*args, "--staff", "Front Desk 2")  # no accounts yet: the name as given
    assert anyone.exit_code == 0, anyone.output
    cups_env.queues["frontdesk"].wait_job()
    accounts.add(settings, "Dana Smith", "front-desk", PASSWORD)
    printed = run(*args, "--staff", "dana smith")
    assert printed.exit_code == 0, printed.output
    cups_env.queues["frontdesk"].wait_job()
    unknown = run(*args, "--staff", "Someone")
    assert unknown.exit_code == 1
    assert unknown.output == "Error: there is no staff account with that name (see 'brochure staff list')\n"
    accounts.disable(settings, "Dana Smith")
    assert "that staff account is disabled" in run(*args, "--staff", "Dana Smith").output
    with sqlite3.connect(settings.record_file) as db:
        assert [u for (u,) in db.execute("SELECT user FROM delivery ORDER BY id")] == [
            "Front Desk 2",
            "Dana Smith",
        ]
    printed_by = [e.staff for e in audit.entries(settings) if e.event == "print"]
    assert printed_by == ["Front Desk 2", "Dana Smith"]
    history = run("history", "--project", str(sample)).output
    assert "Dana Smith" in history


def test_wrong_passwords_from_several_desks_at_once_still_lock_the_account(settings):
    import threading

    accounts.add(settings, "Luis Ortega", "front-desk", PASSWORD)
    refused = []

    def attempt() -> None:
        try:
            accounts.sign_in(settings, "Luis Ortega", "wrong")
        except accounts.AccountError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == 8
    with pytest.raises(accounts.AccountError, match="locked until"):
        accounts.sign_in(settings, "Luis Ortega", PASSWORD)


def test_a_hash_made_with_other_settings_is_remade_at_the_next_sign_in(settings):
    import sqlite3

    from argon2 import PasswordHasher, Type

    accounts.add(settings, "Old Hash", "front-desk", PASSWORD)
    older = PasswordHasher(type=Type.ID, memory_cost=65536, time_cost=3, parallelism=4).hash(PASSWORD)
    with sqlite3.connect(accounts.accounts_file(settings)) as db:
        db.execute("UPDATE account SET hash = ? WHERE name = 'Old Hash'", (older,))
    assert accounts.sign_in(settings, "Old Hash", PASSWORD).name == "Old Hash"  # the old one still works
    with sqlite3.connect(accounts.accounts_file(settings)) as db:
        [(now,)] = db.execute("SELECT hash FROM account WHERE name = 'Old Hash'")
    assert now != older
    assert now.startswith("$argon2id$v=19$m=47104,t=1,p=1$")
    assert accounts.sign_in(settings, "Old Hash", PASSWORD).name == "Old Hash"


def test_a_name_without_an_account_locks_like_a_real_one(settings, monkeypatch):
    monkeypatch.setattr(accounts, "_strangers", {})
    accounts.add(settings, "Priya Raman", "editor", PASSWORD)
    answers = {}
    for name in ("Priya Raman", "Nobody Here"):  # the same words, the same fifth time: no one is told apart
        said = []
        for _ in range(accounts.MAX_FAILURES):
            with pytest.raises(accounts.AccountError) as caught:
                accounts.sign_in(settings, name, "wrong")
            said.append((type(caught.value).__name__, re.sub(r"\d\d:\d\d", "HH:MM", str(caught.value))))
        answers[name] = said
    assert answers["Priya Raman"] == answers["Nobody Here"]
    assert answers["Nobody Here"][-1][0] == "Locked"
    with pytest.raises(accounts.Locked):
        accounts.sign_in(settings, "nobody here", "anything")  # any case: the same name
    lockouts = [(e.staff, e.detail[:16]) for e in audit.entries(settings) if e.event == "lockout"]
    assert lockouts == [("Priya Raman", "5 wrong password"), ("(unknown name)", "5 wrong password")]
    assert "Nobody" not in audit.trail_file(settings).read_text()
    assert "Nobody" not in accounts.accounts_file(settings).read_bytes().decode("latin-1")


def test_no_sign_in_without_its_line_on_the_trail(settings):
    accounts.add(settings, "Priya Raman", "editor", PASSWORD)
    trail = audit.trail_file(settings)
    trail.rename(trail.with_name("moved.jsonl"))
    trail.mkdir()  # a folder where the trail should be: it cannot be written
    with pytest.raises(audit.AuditError, match="the audit trail cannot be written"):
        accounts.sign_in(settings, "Priya Raman", PASSWORD)


def test_a_busy_account_file_is_a_plain_error(settings, monkeypatch):
    accounts.add(settings, "Priya Raman", "editor", PASSWORD)
    original = accounts._open

    def busy(settings):  # noqa: ANN001, ANN202 - another desk holds the write lock past the timeout
        db = original(settings)
        db.execute("PRAGMA busy_timeout = 50")
        return db

    blocker = sqlite3.connect(accounts.accounts_file(settings), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(accounts, "_open", busy)
    try:
        with pytest.raises(
            accounts.AccountError, match="the staff accounts cannot be read: database is locked"
        ):
            accounts.sign_in(settings, "Priya Raman", PASSWORD)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_an_accounts_stamp_changes_with_its_password(settings):
    accounts.add(settings, "Priya Raman", "editor", PASSWORD)
    before = accounts.sign_in(settings, "Priya Raman", PASSWORD).stamp
    assert before == accounts.find(settings, "Priya Raman").stamp
    assert len(before) == 16
    accounts.reset(settings, "Priya Raman", "new-pin-2468")
    after = accounts.find(settings, "Priya Raman").stamp
    assert after != before
    assert accounts.sign_in(settings, "Priya Raman", "new-pin-2468").stamp == after
