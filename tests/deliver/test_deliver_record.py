"""The delivery record and `brochure history`; CSV batches checked whole before anything goes out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_sample
from servers import SMTP_PASSWORD, SMTP_USER

from brochure.base.errors import BrochureError
from brochure.cli.main import cli
from brochure.deliver import Record, check_patient, load_settings, personalise, read_rows
from brochure.deliver.record import RecordError
from brochure.project.model import load_project

NAME = "Zelda Quistorp"


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "clinic")


def test_record_keeps_each_delivery_with_its_content_version_and_history_flags_changes(clinic, settings):
    project = load_project(clinic)
    patient = check_patient(project, {"name": NAME, "injector": "Dana Smith", "treatment": "Botox"})
    packet = personalise(project, ["aftercare", "results"], patient)
    with Record.open(settings, project) as record:
        delivery = record.add(packet, patient, method="print", target="desk")
    path = settings.record_file
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert [d[0] for d in delivery.documents] == ["aftercare", "results"]
    assert delivery.documents[0][1] == packet.documents[0][1]
    assert delivery.documents[0][2] == "2027-03-15"  # the aftercare topic's review_due
    assert delivery.patient["name"] == NAME
    assert delivery.patient["treatment"] == "Botox"
    assert delivery.user

    result = CliRunner().invoke(cli, ["history", "--project", str(clinic)])
    assert result.exit_code == 0, result.output
    assert NAME in result.output
    assert "aftercare, results" in result.output
    assert "changed" not in result.output

    aftercare = clinic / "content/topics/aftercare.md"
    aftercare.write_text(aftercare.read_text().replace("Stay upright.", "Stay upright for 4 hours."))
    result = CliRunner().invoke(cli, ["history", "--project", str(clinic)])
    assert "aftercare (changed), results" in result.output
    assert "1 delivery had a handout that has changed since." in result.output
    with Record.open(settings, load_project(clinic)) as record:
        (found,) = record.search()
    assert found.current is False
    assert found.changed == ["aftercare"]


def test_history_filters_by_patient_and_date(clinic, settings):
    project = load_project(clinic)
    packet = personalise(project, ["aftercare"], None)
    with Record.open(settings, project) as record:
        for name, when in [
            ("Ana Lima", dt.datetime(2026, 10, 1, 9, 0)),
            ("Bo Chen", dt.datetime(2026, 11, 2, 9)),
        ]:
            patient = check_patient(project, {"name": name, "injector": "Dana Smith"})
            record.add(packet, patient, method="print", target="desk", when=when.astimezone())
        assert [d.patient_name for d in record.search(patient="LIMA")] == ["Ana Lima"]
        assert [d.patient_name for d in record.search(since=dt.date(2026, 11, 1))] == ["Bo Chen"]
        assert len(record.search()) == 2
    result = CliRunner().invoke(cli, ["history", "--project", str(clinic), "--since", "2026-11-01"])
    assert "Bo Chen" in result.output
    assert "Ana Lima" not in result.output
    result = CliRunner().invoke(cli, ["history", "--project", str(clinic), "--since", "yesterday"])
    assert result.exit_code == 1
    assert "Error: --since is not a date (write it as YYYY-MM-DD)" in result.output


def test_duplicate_within_minutes_asks_and_no_record_leaves_no_trace(clinic, settings, cups_env):
    cups_env.add_queue("desk").output.write_bytes(b"")
    args = ["print", "aftercare", "--project", str(clinic), "--printer", "desk", "--patient", NAME]
    args += ["--injector", "Dana Smith"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    cups_env.queues["desk"].wait_job()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert (
        "Error: the same handouts went to this patient 1 min ago (run it again with --yes to confirm)"
        in again.output
    )
    assert CliRunner().invoke(cli, [*args, "--yes"]).exit_code == 0
    cups_env.queues["desk"].wait_job()
    with Record.open(settings) as record:
        assert len(record.search()) == 2
    before = settings.record_file.read_bytes()
    other = [a if a != NAME else "Xavier Untraced" for a in args]
    assert CliRunner().invoke(cli, [*other, "--no-record"]).exit_code == 0
    cups_env.queues["desk"].wait_job()
    assert settings.record_file.read_bytes() == before
    assert b"Untraced" not in before


def test_the_record_may_not_be_inside_the_project(clinic, tmp_path, monkeypatch):
    path = tmp_path / "settings.toml"
    path.write_text(f'[record]\npath = "{clinic / "out" / "record.sqlite"}"\n')
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    with pytest.raises(RecordError, match="cannot be inside the project"):
        Record.open(load_settings(), load_project(clinic))


CSV_HEADER = "name,treated_on,injector,treatment,note,handouts,email,consent\n"


def _rows(count: int, bad: dict[int, str] | None = None) -> str:
    lines = [CSV_HEADER]
    for i in range(count):
        line = f"Patient Number{i},2026-11-20,Dana Smith,Botox,,aftercare,p{i}@example.org,yes\n"
        lines.append((bad or {}).get(i, line))
    return "".join(lines)


def test_a_batch_with_three_bad_rows_lists_them_and_sends_nothing_fixed_it_delivers_all(
    clinic, tmp_path, monkeypatch, smtp_server
):
    smtp_server.reset()
    settings_path = tmp_path / "batch.toml"
    settings_path.write_text(
        f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\nuser = "{SMTP_USER}"\n'
        f'sender = "desk@clinic.test"\ncafile = "{smtp_server.cafile}"\n'
        f'[record]\npath = "{tmp_path / "r.sqlite"}"\n'
    )
    monkeypatch.setenv("BROCHURE_SETTINGS", str(settings_path))
    monkeypatch.setenv("BROCHURE_SMTP_PASSWORD", SMTP_PASSWORD)
    bad = {
        4: "Patient Four,2026-13-01,Dana Smith,Botox,,aftercare,p4@example.org,yes\n",
        17: "Patient \u202eSeventeen,2026-11-20,Dana Smith,Botox,,aftercare,p17@example.org,yes\n",
        33: "Patient ThirtyThree,2026-11-20,Dana Smith,Botox,,no-such-handout,not-an-address,yes\n",
    }
    batch = tmp_path / "today.csv"
    batch.write_text(_rows(50, bad))
    result = CliRunner().invoke(cli, ["email", "--csv", str(batch), "--project", str(clinic)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {batch}:6: column 'treated_on': is not a real date (write the date as YYYY-MM-DD, for example 2026-11-21)",
        f"Error: {batch}:19: column 'name': holds an invisible or control character (U+202E) "
        "(type the name as it should print, in letters the brand font has)",
        f"Error: {batch}:35: column 'handouts': 'no-such-handout' is not a handout (see 'brochure list' for the names)",
        f"Error: {batch}:35: column 'email': is not a valid email address "
        "(one address such as name@example.com, or leave it empty)",
    ]
    assert smtp_server.messages == []
    batch.write_text(_rows(50))
    result = CliRunner().invoke(cli, ["email", "--csv", str(batch), "--project", str(clinic)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("50 delivered, 0 failed.\n")
    assert "Patient Number" not in result.output
    assert len(smtp_server.messages) == 50
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(f"p{i}@example.org" for i in range(50))
    with Record.open(load_settings()) as record:
        assert len(record.search()) == 50


def test_a_failed_row_does_not_stop_the_others(clinic, tmp_path, settings, cups_env):
    desk = cups_env.add_queue("batch-desk")
    batch = tmp_path / "print.csv"
    batch.write_text(
        "name,injector,handouts\nAna Lima,Dana Smith,aftercare\nBo Chen,Dana Smith,results side-effects\n"
    )
    result = CliRunner().invoke(
        cli, ["print", "--csv", str(batch), "--project", str(clinic), "--printer", "batch-desk"]
    )
    assert result.exit_code == 0, result.output
    assert "2 delivered, 0 failed." in result.output
    desk.wait_job()
    cups_env.run("cupsreject", "batch-desk")
    try:
        result = CliRunner().invoke(
            cli, ["print", "--csv", str(batch), "--project", str(clinic), "--printer", "batch-desk", "--yes"]
        )
    finally:
        cups_env.run("cupsaccept", "batch-desk")
    assert result.exit_code == 1
    assert f"{batch}:2: FAILED: printer 'batch-desk' is not accepting jobs" in result.output
    assert "0 delivered, 2 failed." in result.output


def test_a_batch_repeating_recent_deliveries_names_the_rows_and_sends_nothing_without_yes(
    clinic, tmp_path, settings, cups_env
):
    desk = cups_env.add_queue("again-desk")
    batch = tmp_path / "print.csv"
    batch.write_text("name,injector,handouts\nAna Lima,Dana Smith,aftercare\nBo Chen,Dana Smith,results\n")
    command = ["print", "--csv", str(batch), "--project", str(clinic), "--printer", "again-desk"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    desk.wait_job()
    # Minutes later the same file again, with a new row and a row repeated inside the file.
    batch.write_text(
        "name,injector,handouts\nAna Lima,Dana Smith,aftercare\nCruz Díaz,Dana Smith,results\n"
        "Cruz Díaz,Dana Smith,results\n"
    )
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Error: {batch}:2: the same handouts went to this patient ")
    assert lines[0].endswith(" min ago (print) (remove the row, or run again with --yes)")
    assert lines[1] == (
        f"Error: {batch}:4: the same handouts for the same patient as row 3 "
        "(remove the row, or run again with --yes)"
    )
    assert len(lines) == 2
    # Rows by number, never by name.
    assert "Ana" not in result.output
    assert "Cruz" not in result.output
    with Record.open(load_settings()) as record:
        assert len(record.search()) == 2  # nothing more was sent
    result = CliRunner().invoke(cli, [*command, "--yes"])
    assert result.exit_code == 0, result.output
    assert "3 delivered, 0 failed." in result.output
    desk.wait_job()
    with Record.open(load_settings()) as record:
        assert len(record.search()) == 5


def test_csv_header_problems(clinic, tmp_path):
    project = load_project(clinic)
    path = tmp_path / "x.csv"
    path.write_text("name,colour\nAna,blue\n")
    with pytest.raises(BrochureError) as caught:
        read_rows(project, path)
    assert str(caught.value).splitlines() == [
        f"{path}:1: unknown column 'colour' (use only: name, treated_on, injector, treatment, note, handouts, email, consent, follow_ups)",
        f"{path}:1: the column 'handouts' is missing (add it to the header row)",
    ]


def test_an_email_batch_needs_an_address_and_consent_or_encryption_on_every_row(clinic, tmp_path):
    project = load_project(clinic)
    path = tmp_path / "mail.csv"
    path.write_text(
        "name,injector,handouts,email,consent\nAna Lima,Dana Smith,aftercare,,yes\nBo Chen,Dana Smith,aftercare,bo@example.org,\n"
    )
    with pytest.raises(BrochureError) as caught:
        read_rows(project, path, email=True)
    assert str(caught.value).splitlines() == [
        f"{path}:2: column 'email': is empty (give the patient's address on each row)",
        f"{path}:3: column 'consent': an unencrypted PDF may only be emailed with the patient's consent "
        "(write yes once the patient agreed, or send the batch with --encrypt)",
    ]
    path.write_text("name,injector,handouts,email\nBo Chen,Dana Smith,aftercare,bo@example.org\n")
    (row,) = read_rows(project, path, email=True, encrypt=True)
    assert row.email == "bo@example.org"
    assert row.handouts == ("aftercare",)
