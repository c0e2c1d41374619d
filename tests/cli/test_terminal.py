"""The print command at a real terminal (a pseudo-terminal), answered as a person at the desk would.

The questions come only after the handouts and the printer are known to be
right; each answer that is wrong is asked again, with the reason, and the
answers before it are kept.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_sample
from pypdf import PdfReader

from brochure.cli.answers import match_injector, parse_date
from brochure.deliver.patient import Injector
from brochure.document.messages import long_date

BROCHURE = Path(sys.executable).with_name("brochure")
PATIENT = "María José Núñez"


class Terminal:
    """A command on a pseudo-terminal: what it printed so far, and typing into it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            [str(BROCHURE), *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 60.0) -> str:
        """Read until ``pattern`` (a regex) shows; what came before it. A hang guard, not a timing check."""
        end = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.seen)
            if found:
                before, self.seen = self.seen[: found.end()], self.seen[found.end() :]
                return before
            left = end - time.monotonic()
            assert left > 0, f"never saw {pattern!r}; the terminal shows: {self.seen!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the command ended
                    chunk = b""
                if not chunk:
                    assert re.search(pattern, self.seen), f"ended before {pattern!r}: {self.seen!r}"
                    continue
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self) -> tuple[int, str]:
        """The exit code, and everything the command printed after the last expect."""
        try:
            while True:
                ready, _, _ = select.select([self.master], [], [], 60)
                chunk = os.read(self.master, 4096) if ready else b""
                if not chunk:
                    break
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        except OSError:
            pass
        os.close(self.master)
        return self.process.wait(60), self.seen


@pytest.fixture
def desk_terminal(tmp_path, cups_env):
    """The sample clinic, a printer in the private CUPS and a private record; the environment to run in."""
    cups_env.add_queue("frontdesk")
    root = copy_sample(tmp_path / "clinic")
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[record]\npath = "{tmp_path / "record.sqlite"}"\n')
    env = {**os.environ, "BROCHURE_SETTINGS": str(settings), "LANG": "en_US.UTF-8", "TERM": "dumb"}
    env.pop("LC_ALL", None)
    env.pop("LC_TIME", None)
    return root, env, cups_env


def test_a_wrong_handout_name_fails_before_any_question(desk_terminal):
    root, env, _cups = desk_terminal
    term = Terminal(["print", "aftercar", "--project", str(root), "--printer", "frontdesk"], env)
    code, said = term.finish()
    assert code == 1
    assert "Error: no document named 'aftercar'" in said
    assert "Patient name" not in said  # nothing was asked
    term = Terminal(["print", "aftercare", "--project", str(root), "--printer", "nowhere"], env)
    code, said = term.finish()
    assert code == 1
    assert "there is no printer named 'nowhere'" in said
    assert "Patient name" not in said


def test_a_wrong_answer_is_asked_again_and_the_others_are_kept(desk_terminal):
    root, env, cups = desk_terminal
    term = Terminal(["print", "aftercare", "--project", str(root), "--printer", "frontdesk"], env)
    term.expect(r"Patient name: ")
    term.type(PATIENT)
    term.expect(r"Treatment date \[today\]: ")
    term.type("31/31")  # no such day
    said = term.expect(r"Treatment date \[today\]: ")
    assert "There is no such day. Try again." in said
    term.type("next week")
    said = term.expect(r"Treatment date \[today\]: ")
    assert "Type a date such as 4/12, today or tomorrow. Try again." in said
    term.type("yesterday")
    yesterday = dt.date.today() - dt.timedelta(days=1)
    said = term.expect(r"Injector \(number or name\): ")
    assert long_date(yesterday, "en", "full") in said  # what it understood, in words
    assert "1  Dana Smith, RN" in said
    term.type("dana")  # the start of one name, in another case
    said = term.expect(r"Treatment: ")
    assert "Dana Smith, RN" in said
    term.type("Botox, forehead")
    term.expect(r"Note: ")
    term.type("")
    code, said = term.finish()
    assert code == 0, said
    assert "Printed 1 page on frontdesk" in said
    job = cups.queues["frontdesk"].wait_job()
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in PdfReader(io.BytesIO(job.pdf)).pages)
    assert f"Name {PATIENT}" in text  # the name typed first was kept through the date asked three times
    assert "Injector Dana Smith, RN" in text
    assert long_date(yesterday, "en") in text
    assert "Botox, forehead" in text
    # The record finds her without the accents or the capitals.
    term = Terminal(["history", "--patient", "maria", "--project", str(root)], env)
    code, said = term.finish()
    assert code == 0
    assert PATIENT in said
    term = Terminal(["history", "--patient", "NUNEZ", "--project", str(root)], env)
    assert PATIENT in term.finish()[1]


def test_an_injector_by_number_by_a_unique_start_in_any_case_or_asked_again():
    people = [Injector("Dana Smith", "RN"), Injector("Dan Lee"), Injector("Priya Raman", "MD")]
    assert match_injector(people, "2")[0].name == "Dan Lee"
    assert match_injector(people, "PRI")[0].name == "Priya Raman"
    assert match_injector(people, "raman")[0].name == "Priya Raman"  # a surname
    assert match_injector(people, "dana smith, rn")[0].name == "Dana Smith"
    person, why = match_injector(people, "dan")
    assert person is None
    assert why == "that could be Dana Smith, Dan Lee: type more of the name"
    assert match_injector(people, "4") == (
        None,
        "no injector is called that: type a number from 1 to 3 or a name",
    )


@pytest.mark.parametrize(
    ("lang", "typed", "expected"),
    [
        ("en_US.UTF-8", "4/12", dt.date(2027, 4, 12)),  # month first; the nearest April 12
        ("en_US.UTF-8", "12/1", dt.date(2026, 12, 1)),
        ("en_US.UTF-8", "12/1/25", dt.date(2025, 12, 1)),
        ("es_ES.UTF-8", "4/12", dt.date(2026, 12, 4)),  # day first in Spain
        ("en_GB.UTF-8", "4.12.2026", dt.date(2026, 12, 4)),
        ("C", "today", dt.date(2026, 12, 5)),
        ("C", "Tomorrow", dt.date(2026, 12, 6)),
        ("C", "ayer", dt.date(2026, 12, 4)),
        ("C", "2026-11-30", dt.date(2026, 11, 30)),
    ],
)
def test_dates_in_the_short_forms_of_the_locale(monkeypatch, lang, typed, expected):
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_TIME", raising=False)
    monkeypatch.setenv("LANG", lang)
    assert parse_date(typed, today=dt.date(2026, 12, 5)) == (expected, "")


def test_a_date_that_is_no_day_says_so():
    assert parse_date("2/30", today=dt.date(2026, 12, 5)) == (None, "there is no such day")
    assert parse_date("soon", today=dt.date(2026, 12, 5))[1] == "type a date such as 4/12, today or tomorrow"
