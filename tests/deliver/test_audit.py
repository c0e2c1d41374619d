"""The audit trail: real deliveries add lines that name no patient, and an edited or cut trail is found."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from click.testing import CliRunner
from conftest import build_ok, copy_sample

from brochure.cli.main import cli
from brochure.deliver import audit

NAME = "Wilhelmina Okonkwo-Braithwaite"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("audit") / "clinic")
    build_ok(root)
    return root


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def lines(settings) -> list[dict]:
    return [json.loads(line) for line in audit.trail_file(settings).read_text().splitlines()]


def rewrite(settings, changed: list[dict]) -> None:
    audit.trail_file(settings).write_text("".join(json.dumps(line) + "\n" for line in changed))


def test_a_print_and_a_download_are_lines_that_name_the_record_row_and_no_patient(sample, settings, cups_env):
    cups_env.add_queue("frontdesk")
    args = ["print", "aftercare", "results", "--project", str(sample), "--printer", "frontdesk"]
    result = run(
        *args, "--patient", NAME, "--injector", "Dana Smith", "--treatment", "Botox", "--note", "20 units"
    )
    assert result.exit_code == 0, result.output
    cups_env.queues["frontdesk"].wait_job()
    (line,) = lines(settings)
    assert line["event"] == "print"
    assert line["seq"] == 1
    assert line["prev"] == audit.START
    assert line["desk"] == "terminal"
    assert line["detail"] == "frontdesk"
    assert [name for name, _version in line["handouts"]] == ["aftercare", "results"]
    assert all(len(version) == 16 for _name, version in line["handouts"])
    assert line["record"] == 1  # the delivery record's row stands for the patient
    text = audit.trail_file(settings).read_text()
    for detail in (NAME, "Okonkwo", "Botox", "20 units", "Dana"):
        assert detail not in text
    assert oct(audit.trail_file(settings).stat().st_mode & 0o777) == "0o600"
    verified = run("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("1 line in ")


def test_verify_names_a_changed_a_removed_and_a_cut_line(settings):
    for number in range(5):
        audit.append(settings, "print", staff=f"staff{number}", handouts=[("aftercare", "v1")], record=number)
    count, problems = audit.verify(settings)
    assert (count, problems) == (5, [])
    original = lines(settings)

    changed = [dict(line) for line in original]
    changed[2]["staff"] = "someone else"
    rewrite(settings, changed)
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert f"{audit.trail_file(settings)}:3: line 3 was changed" in result.output

    rewrite(settings, original[:1] + original[2:])  # the second line removed
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert ":2: lines 2 to 2 are missing" in result.output

    rewrite(settings, original[:4])  # the last line cut
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "the trail ends at line 4, but line 5 was written last" in result.output

    rewrite(settings, original)
    assert run("audit", "verify").exit_code == 0


def test_desks_appending_at_once_lose_no_line(settings):
    def desk(number: int) -> None:
        for _ in range(20):
            audit.append(settings, "print", staff=f"desk{number}", desk=f"10.0.0.{number}")

    threads = [threading.Thread(target=desk, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    count, problems = audit.verify(settings)
    assert (count, problems) == (60, [])
    assert [line["seq"] for line in lines(settings)] == list(range(1, 61))


def test_the_report_picks_days_and_its_csv_runs_no_formula(settings):
    day = dt.datetime(2026, 11, 20, 10, 0).astimezone()
    audit.append(settings, "email", staff="=HYPERLINK(1)", desk="@desk", detail="+encrypted", when=day)
    audit.append(settings, "print", staff="-2+3", when=day + dt.timedelta(days=3))
    assert [e.seq for e in audit.report(settings, dt.date(2026, 11, 20), dt.date(2026, 11, 21))] == [1]
    result = run("audit", "report", "--since", "2026-11-20", "--until", "2026-11-30", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[0] == "seq,at,event,staff,desk,handouts,record,detail"
    assert ",'=HYPERLINK(1),'@desk,," in rows[1]
    assert rows[1].endswith(",'+encrypted")
    assert ",'-2+3," in rows[2]
    assert (
        run("audit", "report", "--since", "2026-12-01").output
        == "No lines in the audit trail for those days.\n"
    )
    bad = run("audit", "report", "--since", "20th")
    assert (bad.exit_code, bad.output) == (1, "Error: --since is not a date (write it as YYYY-MM-DD)\n")


def test_a_line_torn_by_a_crash_is_named_and_the_trail_goes_on(settings):
    audit.append(settings, "print", staff="a")
    with audit.trail_file(settings).open("a") as file:
        file.write('{"seq": 2, "at": "2026-12-04T10')  # the process died while writing
    audit.append(settings, "print", staff="b")
    count, problems = audit.verify(settings)
    assert count == 3
    assert [(p.line, p.message) for p in problems] == [(2, "this line is damaged")]
    last = audit.trail_file(settings).read_text().splitlines()[-1]
    assert json.loads(last)["seq"] == 2
    assert json.loads(last)["staff"] == "b"


def test_a_head_that_is_not_what_was_written_is_named(settings):
    audit.append(settings, "print", staff="a")
    audit.trail_file(settings).with_name(audit.HEAD_NAME).write_text("null\n")
    _count, problems = audit.verify(settings)
    assert [p.message for p in problems] == ["audit.head is missing or damaged"]


def test_a_delivery_whose_trail_cannot_be_written_still_counts_and_says_so(sample, settings, cups_env):
    cups_env.add_queue("frontdesk")
    audit.trail_file(settings).mkdir(parents=True)  # a folder where the trail should be
    args = ["print", "aftercare", "--project", str(sample), "--printer", "frontdesk", "--patient", NAME]
    result = run(*args, "--injector", "Dana Smith")
    assert result.exit_code == 0, result.output  # printed and recorded: not an error
    assert "Warning: the audit trail could not be written" in result.output
    assert NAME not in result.output
    cups_env.queues["frontdesk"].wait_job()
