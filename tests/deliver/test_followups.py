"""Follow-up emails: scheduled by a consented email, sent once when due (a real SMTP server over
STARTTLS, a fixed clock), cancelled, held when their review is overdue."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, copy_sample
from servers import SMTP_PASSWORD, SmtpServer, free_port

from brochure.cli.main import cli

NAME = "Zelda Quistorp"
DAY0 = dt.date(2026, 12, 7)  # a Monday
ZONE = dt.timezone(dt.timedelta(hours=-5))


def at(day: dt.date, hour: int = 10) -> str:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=ZONE).isoformat()


def day(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


@pytest.fixture
def clinic(smtp_settings_file: Path, smtp_server: SmtpServer, monkeypatch):
    """The sample clinic with the test SMTP server; the clock on day 0, 10:00."""
    smtp_server.reset()
    monkeypatch.setenv("BROCHURE_NOW", at(DAY0))
    return smtp_settings_file


def brochure(*args: str, now: str | None = None, project: Path = REPO):
    if now:
        os.environ["BROCHURE_NOW"] = now
    result = CliRunner().invoke(cli, [*args, "--project", str(project)])
    return result


def email(name: str = NAME, to: str = "zq@example.org", *extra: str, project: Path = REPO):
    result = brochure(
        "email", "aftercare", "--to", to, "--patient-consented", "--patient", name,
        "--injector", "Dana Smith", "--treated-on", DAY0.isoformat(), "-y", *extra, project=project,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def record_rows(settings_file: Path, query: str) -> list[tuple]:
    path = settings_file.parent / "record" / "deliveries.sqlite"
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def follow_up_messages(server: SmtpServer) -> list:
    return [m for m in server.messages if not any(True for _ in m.iter_attachments())]


def test_a_consented_email_sends_the_day1_email_on_day1_once(clinic, smtp_server):
    given = email(NAME, "zq@example.org", "--follow-ups")
    assert "Follow-up emails:" in given.output
    assert "Tue 2026-12-08  Day-1 check-in" in given.output
    assert "Sat 2026-12-19  Review visit reminder" in given.output
    assert record_rows(clinic, "SELECT follow_ups FROM delivery") == [(1,)]
    # Nothing of the patient in the follow-up rows themselves.
    rows = record_rows(clinic, "SELECT * FROM follow_up")
    assert len(rows) == 2
    assert not any(NAME in str(r) or "zq@" in str(r) for r in rows)

    # Day 0: nothing is due yet.
    assert "No follow-ups waiting." in brochure("followups", "list", "--due", "today").output
    assert brochure("followups", "send").output.strip() == "0 sent."
    # Day 1 at 7:00: before the sending hours.
    early = brochure("followups", "send", now=at(day(1), 7))
    assert "Nothing sent: follow-ups go out from 09:00" in early.output
    assert follow_up_messages(smtp_server) == []

    listed = brochure("followups", "list", "--due", "today", now=at(day(1)))
    assert NAME in listed.output
    assert "Day-1 check-in" in listed.output
    assert "Review visit reminder" not in listed.output
    sent = brochure("followups", "send", now=at(day(1)))
    assert sent.exit_code == 0, sent.output
    assert sent.output.strip() == "1 sent."
    again = brochure("followups", "send", now=at(day(1), 15))
    assert again.output.strip() == "0 sent."
    (message,) = follow_up_messages(smtp_server)
    assert message["To"] == "zq@example.org"
    assert NAME.split()[0] not in message["Subject"]
    assert "Botox" not in message["Subject"]
    assert message["Content-Language"] == "en"
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hello Zelda,")
    assert NAME.split()[1] not in text  # first name only
    assert "Aftercare: what to expect and what to do" in text
    assert "Your review visit is on Monday, December 21, 2026." in text  # follow_up_days: 14
    html = message.get_body(("html",)).get_content()
    assert '<html lang="en">' in html

    # The review reminder on day 12, once; nothing is left.
    assert brochure("followups", "send", now=at(day(12))).output.strip() == "1 sent."
    assert [m["Subject"] for m in follow_up_messages(smtp_server)][1].startswith("A reminder from")
    assert "No follow-ups waiting." in brochure("followups", "list").output
    states = record_rows(clinic, "SELECT template, state FROM follow_up ORDER BY id")
    assert states == [("day1", "sent"), ("review-reminder", "sent")]

    # The trail names the delivery's row and the email, never the patient, and verifies.
    trail = (clinic.parent / "record" / "audit.jsonl").read_text()
    assert trail.count('"follow-up-sent"') == 2
    assert NAME not in trail
    assert "Zelda" not in trail
    assert "zq@" not in trail
    verify = CliRunner().invoke(cli, ["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_a_spanish_handout_gets_its_follow_ups_in_spanish(clinic, smtp_server):
    result = brochure(
        "email", "aftercare.es", "--to", "ana@example.org", "--patient-consented", "--patient", "Ana Núñez",
        "--injector", "Dana Smith", "--treated-on", DAY0.isoformat(), "-y", "--follow-ups",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Día 1: ¿cómo se siente?" in result.output
    assert brochure("followups", "send", now=at(day(1))).output.strip() == "1 sent."
    (message,) = follow_up_messages(smtp_server)
    assert message["Content-Language"] == "es"
    assert message["Subject"].startswith("¿Cómo se siente?")
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hola, Ana:")
    assert "lunes, 21 de diciembre de 2026" in text


def test_an_unconsented_delivery_schedules_nothing(clinic, smtp_server):
    email(NAME, "zq@example.org")  # no --follow-ups, no terminal to ask: no consent
    email("Ana Lima", "al@example.org", "--no-follow-ups")
    assert record_rows(clinic, "SELECT follow_ups FROM delivery") == [(0,), (0,)]
    assert record_rows(clinic, "SELECT * FROM follow_up") == []
    assert brochure("followups", "send", now=at(day(1))).output.strip() == "0 sent."
    # A draft or an unrecorded email cannot schedule any.
    refused = brochure(
        "email", "aftercare", "--draft", "--to", "zq@example.org", "--patient-consented", "--patient", NAME,
        "--injector", "Dana Smith", "-y", "--follow-ups",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "--follow-ups needs one patient's email, sent and recorded" in refused.output
    assert "Traceback" not in refused.output


def test_cancel_stops_the_rest(clinic, smtp_server):
    email(NAME, "zq@example.org", "--follow-ups")
    email("María José Núñez", "mj@example.org", "--follow-ups")
    assert brochure("followups", "send", now=at(day(1))).output.strip() == "2 sent."
    cancelled = brochure("followups", "cancel", "--patient", "maria jose", "--reason", "rebooked")
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.strip() == "Cancelled 1 follow-up."
    assert brochure("followups", "send", now=at(day(12))).output.strip() == "1 sent."
    reminders = [m["To"] for m in follow_up_messages(smtp_server) if m["Subject"].startswith("A reminder")]
    assert reminders == ["zq@example.org"]
    everything = brochure("followups", "list", "--all").output
    assert "cancelled" in everything
    assert "(rebooked)" in everything
    # Nothing left of hers to cancel.
    nothing = brochure("followups", "cancel", "--patient", "maria")
    assert nothing.exit_code == 1
    assert "no waiting follow-up matches" in nothing.output
    trail = (clinic.parent / "record" / "audit.jsonl").read_text()
    assert '"follow-up-cancelled"' in trail
    assert "rebooked" in trail
    assert "Mar" not in trail


def test_an_ambiguous_name_cancels_nothing(clinic):
    email("Ana Lima", "al@example.org", "--follow-ups")
    email("Ana Lopes", "alo@example.org", "--follow-ups")
    result = brochure("followups", "cancel", "--patient", "ana")
    assert result.exit_code == 1
    assert "2 patients' names hold that text: nothing was cancelled" in result.output
    assert "Ana Lima" not in result.output  # an error message names no patient
    assert record_rows(clinic, "SELECT DISTINCT state FROM follow_up") == [("scheduled",)]


def test_a_follow_up_whose_review_is_overdue_is_held_for_the_editor(
    clinic, smtp_server, tmp_path, monkeypatch
):
    project = copy_sample(tmp_path / "clinic")
    own = project / "templates" / "email" / "follow-ups" / "day1"
    own.mkdir(parents=True)
    about = (REPO / "templates" / "email" / "follow-ups" / "day1" / "follow-up.toml").read_text()
    (own / "follow-up.toml").write_text(about.replace("review_due = 2027-03-15", "review_due = 2026-12-01"))
    email(NAME, "zq@example.org", "--follow-ups", project=project)
    held = brochure("followups", "send", now=at(day(1)), project=project)
    assert held.exit_code == 0, held.output
    assert (
        "Held for the editor: Day-1 check-in (en): its medical review was due on 2026-12-01. "
        "Have the email reviewed, then move review_due on in templates/email/follow-ups/day1/follow-up.toml."
    ) in held.output.replace("\n", " ")
    assert follow_up_messages(smtp_server) == []
    assert "HELD" in brochure("followups", "list", project=project).output
    check = brochure("check", project=project)
    assert "templates/email/follow-ups/day1/follow-up.toml" in check.output
    assert "overdue" in check.output
    # Reviewed: the next run sends it.
    (own / "follow-up.toml").write_text(about)
    assert brochure("followups", "send", now=at(day(2)), project=project).output.strip() == "1 sent."
    trail = (clinic.parent / "record" / "audit.jsonl").read_text()
    assert trail.count('"follow-up-held"') == 1


def test_a_follow_up_more_than_a_week_late_is_not_sent(clinic, smtp_server):
    email(NAME, "zq@example.org", "--follow-ups")
    late = brochure("followups", "send", now=at(day(9)))
    assert late.output.strip() == "0 sent, 1 too late to send."
    assert follow_up_messages(smtp_server) == []


def test_a_treatment_days_ago_schedules_only_what_is_still_ahead(clinic):
    result = brochure(
        "email", "aftercare", "--to", "zq@example.org", "--patient-consented", "--patient", NAME,
        "--injector", "Dana Smith", "--treated-on", day(-5).isoformat(), "-y", "--follow-ups",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Day-1 check-in" not in result.output
    assert "Mon 2026-12-14  Review visit reminder" in result.output
    assert record_rows(clinic, "SELECT template, due FROM follow_up") == [("review-reminder", "2026-12-14")]


# -- two at once, and one killed half-way ------------------------------------------------


class _Gate:
    """An aiosmtpd handler that keeps messages, and can hold the first RCPT it sees until released
    (the sender is then stuck in the middle of an SMTP conversation)."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.armed = True
        self.reached = threading.Event()
        self.release = threading.Event()
        self.held_for: str | None = None
        #: "rcpt": hold before the message is sent; "data": after the server took it, before it answers.
        self.where = "rcpt"

    async def handle_RCPT(self, smtp, session, envelope, address, options):  # noqa: ANN001, N802
        if self.armed and self.where == "rcpt":
            self.armed = False
            self.held_for = address
            self.reached.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope) -> str:  # noqa: ANN001, N802
        from email import message_from_bytes, policy

        self.server.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        if self.armed and self.where == "data":
            self.armed = False
            self.held_for = envelope.rcpt_tos[0]
            self.reached.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return "250 OK"


@pytest.fixture
def gated(smtp_ca, smtp_ca_file, tmp_path, monkeypatch):  # noqa: ANN001
    from aiosmtpd.controller import Controller
    from servers import _authenticator, _server_context, write_settings

    server = SmtpServer("127.0.0.1", free_port(), smtp_ca_file)
    gate = _Gate(server)
    controller = Controller(
        gate,
        hostname=server.host,
        port=server.port,
        authenticator=_authenticator(server),
        tls_context=_server_context(smtp_ca),
        require_starttls=True,
        auth_require_tls=True,
    )
    controller.start()
    from servers import SMTP_USER

    settings = write_settings(
        tmp_path / "settings.toml",
        f'[smtp]\nhost = "{server.host}"\nport = {server.port}\nuser = "{SMTP_USER}"\n'
        f'sender = "Test Clinic <desk@clinic.test>"\ncafile = "{server.cafile}"\n'
        f'[record]\npath = "{tmp_path / "record" / "deliveries.sqlite"}"\n',
    )
    monkeypatch.setenv("BROCHURE_SETTINGS", str(settings))
    monkeypatch.setenv("BROCHURE_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("BROCHURE_NOW", at(DAY0))
    gate.armed = False  # the handouts themselves go through
    try:
        yield server, gate, settings
    finally:
        gate.release.set()
        controller.stop()


def test_two_sends_at_once_and_one_killed_half_way_send_each_follow_up_once(gated):
    server, gate, settings = gated
    patients = {f"p{i}@example.org": f"Patient Number{i}" for i in range(4)}
    for address, name in patients.items():
        email(name, address, "--follow-ups")
    server.messages.clear()
    gate.armed = True
    env = {**os.environ, "BROCHURE_NOW": at(day(1))}
    command = [sys.executable, "-m", "brochure", "followups", "send", "--project", str(REPO)]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    assert gate.reached.wait(60), "no send reached the mail server"
    # The run stuck in the middle of its conversation is the one whose claim is on that address.
    (claimant,) = record_rows(
        settings,
        "SELECT f.claimant FROM follow_up f JOIN delivery d ON d.id = f.delivery"
        f" WHERE f.state = 'sending' AND d.target = '{gate.held_for}'",
    )[0]
    message_id = record_rows(
        settings,
        f"SELECT f.message_id FROM follow_up f JOIN delivery d ON d.id = f.delivery WHERE d.target = '{gate.held_for}'",
    )[0][0]
    pid = int(claimant.split(":")[1])
    stuck = next(run for run in runs if run.pid == pid)
    other = next(run for run in runs if run.pid != pid)
    os.kill(pid, signal.SIGKILL)
    stuck.wait(30)
    out, _ = other.communicate(timeout=120)
    assert other.returncode == 0, out
    # It left the stuck one to its claimant, or (started later) found that claimant gone and took it over.
    assert "being sent by another run" in out or "left half-sent by a process that stopped" in out
    gate.release.set()
    # The next run (the clinic server's, or the timer's) finds the claim of a process that is gone.
    time.sleep(0.2)
    last = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert last.returncode == 0, last.stdout + last.stderr
    received = sorted(m["To"] for m in server.messages)
    assert received == sorted(patients), received  # each once: none lost, none twice
    again = [m for m in server.messages if m["To"] == gate.held_for]
    assert again[0]["Message-ID"] == message_id  # the retry is the same message
    assert record_rows(settings, "SELECT DISTINCT state FROM follow_up WHERE template = 'day1'") == [
        ("sent",)
    ]
    trail = (settings.parent / "record" / "audit.jsonl").read_text()
    assert trail.count('"follow-up-sent"') == 4


def test_the_clinic_server_sends_what_is_due_by_itself(clinic, smtp_server):
    from brochure.deliver import accounts, load_settings

    email(NAME, "zq@example.org", "--follow-ups")
    smtp_server.reset()
    accounts.add(load_settings(), "Ada Admin", "admin", "ada-pass-5")
    command = [sys.executable, "-m", "brochure", "serve", "--project", str(REPO), "--bind", "127.0.0.1:0"]
    command += ["--host-name", "localhost", "--follow-ups-every", "30"]
    env = {**os.environ, "BROCHURE_NOW": at(day(1))}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logged: list[str] = []
    threading.Thread(target=lambda: logged.extend(iter(process.stderr.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not any("follow-ups:" in line for line in logged) and time.monotonic() < deadline:
            assert process.poll() is None, "".join(logged)
            time.sleep(0.1)
        (message,) = smtp_server.messages
        assert message["To"] == "zq@example.org"
        assert message["Subject"].startswith("How are you feeling?")
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    err = "".join(logged)
    assert "Follow-up emails: sent when due, checked every 30 min" in out
    assert "follow-ups: 1 sent, 0 held, 0 failed, 0 too late" in err
    assert NAME not in err
    assert "Zelda" not in err
    assert "zq@" not in err
    trail = (clinic.parent / "record" / "audit.jsonl").read_text()
    assert '"staff": "brochure (automatic)"' in trail
    assert '"desk": "server"' in trail


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (
            "[{after_days: 0, template: day1}]",
            "item 1 needs 'after_days', a whole number of days from 1 to 365",
        ),
        ("[{after_days: 2}]", "item 1 needs 'template'"),
        ("[{after_days: 2, template: Day One}]", "item 1 needs 'template'"),
        ("[{after_days: 2, template: day1, when: soon}]", "item 1 has an unknown key 'when'"),
        ("[day1]", "must be a list of a table"),
    ],
)
def test_a_wrong_follow_ups_line_is_named_with_its_line_and_the_fix(tmp_path, value, said):
    project = copy_sample(tmp_path / "clinic")
    topic = project / "content" / "topics" / "aftercare.md"
    lines = topic.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith("follow_ups:"))
    lines[number] = f"follow_ups: {value}"
    topic.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["check", "--project", str(project)])
    assert result.exit_code == 1
    assert f"content/topics/aftercare.md:{number + 1} " in result.output
    assert said in result.output
    assert "Traceback" not in result.output


def test_check_names_a_follow_up_email_that_is_not_there(tmp_path):
    project = copy_sample(tmp_path / "clinic")
    topic = project / "content" / "topics" / "aftercare.md"
    topic.write_text(topic.read_text().replace("template: day1}", "template: day-one}"))
    result = CliRunner().invoke(cli, ["check", "--project", str(project)])
    assert result.exit_code == 1
    assert "the follow-up email 'day-one' is not there" in result.output
    assert "add the folder templates/email/follow-ups/day-one/" in result.output


def test_a_batch_row_says_whether_the_patient_agreed(clinic, tmp_path):
    batch = tmp_path / "today.csv"
    batch.write_text(
        "name,treated_on,injector,handouts,email,consent,follow_ups\n"
        f"Ana Lima,{DAY0},Dana Smith,aftercare,al@example.org,yes,yes\n"
        f"Ben Ode,{DAY0},Dana Smith,aftercare,bo@example.org,yes,\n"
    )
    result = brochure("email", "--csv", str(batch), "-y")
    assert result.exit_code == 0, result.output
    rows = record_rows(
        clinic,
        "SELECT d.target, f.template FROM follow_up f JOIN delivery d ON d.id = f.delivery ORDER BY f.id",
    )
    assert rows == [("al@example.org", "day1"), ("al@example.org", "review-reminder")]
    batch.write_text("name,injector,handouts,consent,follow_ups\nCy Eno,Dana Smith,aftercare,yes,maybe\n")
    wrong = brochure("print", "--csv", str(batch))
    assert wrong.exit_code == 1
    assert f"{batch}:2" in wrong.output
    assert "column 'follow_ups': must be yes, no or empty" in wrong.output


def test_a_send_killed_after_the_server_took_the_email_sends_it_again_as_the_same_message(gated):
    server, gate, settings = gated
    email(NAME, "zq@example.org", "--follow-ups")
    server.messages.clear()
    gate.where, gate.armed = "data", True
    env = {**os.environ, "BROCHURE_NOW": at(day(1))}
    command = [sys.executable, "-m", "brochure", "followups", "send", "--project", str(REPO)]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert gate.reached.wait(60), "the send never reached the mail server"
    run.kill()  # the server has the email; the process never heard "250 OK"
    run.wait(30)
    gate.release.set()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 sent." in again.stdout
    first, second = server.messages
    # The mail system got it twice, as the same message: a mailbox keeps one (RFC 5322 Message-ID).
    assert first["Message-ID"] == second["Message-ID"]
    assert first.get_body(("plain",)).get_content() == second.get_body(("plain",)).get_content()
    assert record_rows(settings, "SELECT state FROM follow_up WHERE template = 'day1'") == [("sent",)]


def test_a_mail_server_out_of_reach_is_tried_again_and_a_refused_address_given_up(clinic, smtp_server):
    email(NAME, "zq@example.org", "--follow-ups")
    settings_text = clinic.read_text()
    clinic.write_text(settings_text.replace(f"port = {smtp_server.port}", f"port = {free_port()}"))
    for attempt in range(7):  # more than MAX_TRIES: a server out of reach never gives a follow-up up
        down = brochure("followups", "send", now=at(day(1), 9 + attempt))
        assert down.exit_code == 1
        assert "cannot reach the mail server" in down.output
        assert "Traceback" not in down.output
    assert record_rows(clinic, "SELECT state, tries FROM follow_up WHERE template = 'day1'") == [
        ("scheduled", 7)
    ]
    waiting = brochure("followups", "list").output
    assert "cannot reach the mail server" in waiting
    clinic.write_text(settings_text)
    assert brochure("followups", "send", now=at(day(1), 17)).output.strip() == "1 sent."


def test_a_record_made_before_follow_ups_is_brought_up_to_date(tmp_path, settings):
    from brochure.deliver.record import Record

    path = settings.record_file
    path.parent.mkdir(mode=0o700, parents=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE delivery (id INTEGER PRIMARY KEY, at TEXT NOT NULL, method TEXT NOT NULL,"
            " target TEXT NOT NULL, user TEXT NOT NULL, patient TEXT NOT NULL, fields TEXT NOT NULL,"
            " consent TEXT NOT NULL, documents TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO delivery VALUES (1, '2026-11-20T10:00:00-05:00', 'email', 'al@example.org', 'desk',"
            " 'Ana Lima', '{\"name\": \"Ana Lima\"}', 'consented', '[[\"aftercare\", \"abc\", null]]')"
        )
    with Record.open(settings) as record:
        (old,) = record.search()
        assert (old.patient_name, old.follow_ups, old.consent) == ("Ana Lima", False, "consented")
        assert record.connection.execute("SELECT count(*) FROM follow_up").fetchone() == (0,)
