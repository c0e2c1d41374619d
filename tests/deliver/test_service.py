"""The one delivery service: the command line and the desk page follow the same rules, in the same order.

Each test changes or breaks a rule in brochure.deliver (the service or its
rules) and sees both front ends follow, with real print jobs on the private
CUPS scheduler and the real delivery record.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import build_ok, copy_sample
from pypdf import PdfReader

from brochure.build.run import build_summary
from brochure.cli.main import cli
from brochure.deliver import rules, service
from brochure.project.model import load_project
from brochure.web.app import create_app
from brochure.web.live import Live

NAME = "Quentin Vasquez-Ortiz"
FIELDS = {"name": NAME, "treated_on": "2026-11-20", "injector": "Dana Smith"}
HOST = {"Host": "127.0.0.1:8765"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = copy_sample(tmp_path_factory.mktemp("service") / "clinic")
    build_ok(root)
    return root


@pytest.fixture
def record_file(tmp_path, monkeypatch):
    """Settings with the delivery record in tmp_path (never the user's own)."""
    record = tmp_path / "record.sqlite"
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[record]\npath = "{record}"\n')
    monkeypatch.setenv("BROCHURE_SETTINGS", str(settings))
    return record


@pytest.fixture
def queue(cups_env):
    return cups_env.add_queue("frontdesk")


def recorded(record_file) -> list[tuple]:
    if not record_file.exists():
        return []
    with sqlite3.connect(record_file) as db:
        return db.execute("SELECT method, target, patient FROM delivery ORDER BY id").fetchall()


def cli_print(sample, copies: int):
    args = ["print", "aftercare", "--project", str(sample), "--printer", "frontdesk", "--copies", str(copies)]
    args += ["--patient", NAME, "--injector", "Dana Smith", "--yes"]
    return CliRunner().invoke(cli, args)


def desk(sample):
    """The desk page's app, its status settled after one real build (as the watcher would leave it)."""
    live = Live(sample)
    live.built(build_summary(load_project(sample), sample / "out"), None)
    return create_app(sample, watch=False, live=live).test_client()


def desk_print(sample, copies: int):
    client = desk(sample)
    page = client.get("/personalise", query_string={"d": ["aftercare"]}, headers=HOST).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "d": ["aftercare"], **FIELDS, "action": "print", "printer": "frontdesk"}
    response = client.post("/personalise", data={**data, "copies": str(copies), "again": "1"}, headers=HOST)
    return response.status_code, response.get_data(as_text=True)


def test_the_copies_limit_is_one_rule_for_the_command_line_and_the_desk(
    sample, queue, record_file, monkeypatch
):
    # As shipped: 4 copies is within the limit on both.
    assert cli_print(sample, 4).exit_code == 0
    assert NAME in " ".join(p.extract_text() for p in PdfReader(io.BytesIO(queue.wait_job().pdf)).pages)
    status, html = desk_print(sample, 4)
    assert status == 200, html
    assert "Printed 4 copies of Aftercare: what to expect and what to do on frontdesk for" in html
    queue.wait_job()
    assert [row[0] for row in recorded(record_file)] == ["print", "print"]

    # The limit changed in the one place it is written: both front ends refuse 4, before printing.
    monkeypatch.setattr(rules, "MAX_COPIES", 3)
    result = cli_print(sample, 4)
    assert result.exit_code == 1
    assert "Error: copies must be a whole number from 1 to 3" in result.output
    assert "Traceback" not in result.output
    status, html = desk_print(sample, 4)
    assert status == 422
    assert "Copies must be a whole number from 1 to 3." in html
    assert 'max="3"' in html  # the copies box says so too
    assert len(recorded(record_file)) == 2  # nothing printed, nothing recorded
    assert not queue.output.read_bytes()

    # And both accept what the new limit allows.
    assert cli_print(sample, 3).exit_code == 0
    queue.wait_job()
    assert desk_print(sample, 3)[0] == 200
    queue.wait_job()
    assert len(recorded(record_file)) == 4
    # Each recorded delivery is a line of the audit trail, with the desk it came from.
    trail = [json.loads(line) for line in (record_file.parent / "audit.jsonl").read_text().splitlines()]
    assert [(line["event"], line["desk"], line["record"]) for line in trail] == [
        ("print", "terminal", 1),
        ("print", "127.0.0.1", 2),
        ("print", "terminal", 3),
        ("print", "127.0.0.1", 4),
    ]


def test_the_given_again_question_comes_from_the_service_for_both(sample, queue, record_file, monkeypatch):
    """The 'given minutes ago' rule holds on the command line and the page, and changes for both at once."""
    args = ["print", "aftercare", "--project", str(sample), "--printer", "frontdesk"]
    args += ["--patient", NAME, "--injector", "Dana Smith"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    queue.wait_job()
    # Within minutes, without --yes and without a terminal: refused before anything is printed.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert "Error: the same handouts went to this patient 1 min ago" in again.output
    # The page asks too (no 'again' in the form).
    client = desk(sample)
    page = client.get("/personalise", query_string={"d": ["aftercare"]}, headers=HOST).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "d": ["aftercare"], **FIELDS, "action": "print", "printer": "frontdesk"}
    html = client.post("/personalise", data=data, headers=HOST).get_data(as_text=True)
    assert "These handouts were printed for" in html
    assert len(recorded(record_file)) == 1

    # No question once the rule's window is closed, for both.
    monkeypatch.setattr(rules, "AGAIN_MINUTES", 0)
    assert CliRunner().invoke(cli, args).exit_code == 0
    queue.wait_job()
    response = client.post("/personalise", data=data, headers=HOST)
    assert response.status_code == 200
    assert "Printed 1 copy of Aftercare: what to expect and what to do on frontdesk" in response.get_data(
        as_text=True
    )
    queue.wait_job()
    assert len(recorded(record_file)) == 3


def test_options_are_checked_once_for_every_rule_before_anything_goes(sample, record_file):
    delivery = service.Request(
        ["aftercare"], None, "email", to="not an address", to_again="x@example.com", copies=99
    )
    with pytest.raises(rules.OptionsError) as caught:
        service.deliver(None, delivery)  # no project needed: nothing is rendered
    assert set(caught.value.fields) == {"to", "consent"}  # copies are a print job's
    assert "not an address" not in str(caught.value)
    assert recorded(record_file) == []
    with pytest.raises(rules.OptionsError) as caught:
        service.check(service.Request(["aftercare"], None, "print", copies=0))
    assert caught.value.fields == {"copies": "copies must be a whole number from 1 to 20"}
    checked = service.check(service.Request(["aftercare"], None, "draft", to=" A@Example.com ", encrypt=True))
    assert checked.to == "A@Example.com"


def test_an_encrypted_batch_takes_rows_that_say_the_patient_consented(sample, tmp_path):
    from brochure.base.errors import BrochureError
    from brochure.deliver.batch import read_rows

    rows = tmp_path / "today.csv"
    rows.write_text(
        "name,handouts,injector,email,consent\n"
        "Ana Lima,aftercare,Dana Smith,ana@example.org,yes\n"
        "Bo Li,aftercare,Dana Smith,bo@example.org,\n"
    )
    assert [row.number for row in read_rows(load_project(sample), rows, email=True, encrypt=True)] == [2, 3]
    with pytest.raises(BrochureError) as caught:
        read_rows(load_project(sample), rows, email=True)  # unencrypted: row 3 has no consent
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (3, "column 'consent': an unencrypted PDF may only be emailed with the patient's consent")
    ]


def test_encrypt_and_consent_together_are_refused_in_each_front_ends_words(sample, record_file):
    args = ["email", "aftercare", "--project", str(sample), "--encrypt", "--patient-consented"]
    result = CliRunner().invoke(cli, [*args, "--patient", NAME, "--to", "q@example.org", "--yes"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: encrypt the PDF or send it unencrypted with the patient's consent, not both "
        "(give one of --encrypt and --patient-consented)\n"
    )
    client = desk(sample)
    page = client.get("/personalise", query_string={"d": ["aftercare"]}, headers=HOST).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {
        "csrf_token": token,
        "d": ["aftercare"],
        **FIELDS,
        "action": "email",
        "encrypt": "1",
        "consent": "1",
    }
    data |= {"to": "q@example.org", "to_again": "q@example.org"}
    html = client.post("/personalise", data=data, headers=HOST).get_data(as_text=True)
    assert "Choose one: encrypt the PDF, or send it unencrypted with consent." in html
    assert recorded(record_file) == []
