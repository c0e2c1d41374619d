"""Patient fields, the staff list and the machine's settings file: every problem named, no value repeated."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from click.testing import CliRunner
from conftest import REPO, copy_sample
from pypdf import PdfReader

from brochure.base.errors import BrochureError, ConfigError
from brochure.cli.main import cli
from brochure.deliver import PatientError, check_patient, follow_up_date, load_settings, personalise, staff
from brochure.project.model import load_project

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def sample():
    return load_project(REPO)


def refused(project, **fields: str) -> dict[str, str]:
    with pytest.raises(PatientError) as caught:
        check_patient(project, {"name": "Ana Lima", "injector": "Dana Smith", **fields}, today=TODAY)
    return caught.value.fields


def test_good_fields_are_tidied(sample):
    patient = check_patient(
        sample,
        {"name": "  Jose\u0301 Nu\u0301n\u0303ez ", "treated_on": "2026-11-20", "injector": "Dana Smith"},
        today=TODAY,
    )
    assert patient.name == "Jos\u00e9 N\u00fa\u00f1ez"  # NFC: one code point per letter, stripped
    assert patient.treated_on == dt.date(2026, 11, 20)
    assert check_patient(sample, {"name": "Ana", "injector": "Dana Smith"}, today=TODAY).treated_on == TODAY


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Ana\u202eamiL", "holds an invisible or control character (U+202E)"),
        ("name", "Ana\x00Lima", "holds an invisible or control character (U+0000)"),
        ("name", "Ana\u200bLima", "holds an invisible or control character (U+200B)"),
        ("note", "broken \ud800 text", "holds an invisible or control character (U+D800)"),
        ("note", "so happy \U0001f600", "holds a character the brand font does not have (U+1F600)"),
        ("name", "x" * 500, "is 500 characters long, more than the 60 that fit"),
        ("treated_on", "21/11/2026", "is not a date written as YYYY-MM-DD"),
        ("treated_on", "20261121", "is not a date written as YYYY-MM-DD"),
        ("treated_on", "2026-02-30", "is not a real date"),
        ("treated_on", "1999-01-01", "is more than a year away from today"),
        ("injector", "Somebody Else", "is not on the clinic's staff list"),
        ("name", "", "is required"),
    ],
)
def test_hostile_fields_get_a_field_level_message_that_never_repeats_the_value(sample, field, value, message):
    bad = refused(sample, **{field: value})
    assert bad == {field: message}
    with pytest.raises(PatientError) as caught:
        check_patient(sample, {"name": "Ana Lima", "injector": "Dana Smith", field: value}, today=TODAY)
    if len(value) > 2:
        assert value not in str(caught.value)


def test_every_bad_field_is_listed_at_once(sample):
    bad = refused(sample, name="\u202e", treated_on="soon", injector="Nobody")
    assert set(bad) == {"name", "treated_on", "injector"}


def test_html_in_a_field_prints_literally(sample):
    patient = check_patient(sample, {"name": "<b>x</b> & Co", "injector": "Dana Smith"}, today=TODAY)
    packet = personalise(sample, ["aftercare"], patient)
    text = " ".join(PdfReader(io.BytesIO(packet.pdf)).pages[0].extract_text().split())
    assert "<b>x</b> & Co" in text


def test_the_cli_reports_a_bad_field_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("BROCHURE_SETTINGS", str(tmp_path / "settings.toml"))
    (tmp_path / "settings.toml").write_text(f'[record]\npath = "{tmp_path / "r.sqlite"}"\n')
    result = CliRunner().invoke(
        cli,
        [
            "print",
            "aftercare",
            "--project",
            str(REPO),
            "--patient",
            "Ana\u202eLima",
            "--injector",
            "Dana Smith",
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: patient name: holds an invisible or control character (U+202E)")
    assert "Traceback" not in result.output
    assert "Lima" not in result.output


def test_follow_up_is_the_earliest_of_the_handouts(sample):
    assert follow_up_date(sample, ["aftercare"], TODAY) == dt.date(2026, 12, 5)
    assert follow_up_date(sample, ["side-effects"], TODAY) is None
    assert follow_up_date(sample, ["side-effects", "results"], TODAY) == dt.date(2026, 12, 5)


def test_staff_list_and_its_errors(sample, tmp_path):
    assert [p.label for p in staff(sample)] == ["Dana Smith, RN", "Priya Raman, MD", "Luis Ortega, NP"]
    clinic = copy_sample(tmp_path / "clinic")
    (clinic / "content/staff.toml").write_text('[[injector]]\ncredentials = "RN"\n\n[[injector]]\nname = 3\n')
    with pytest.raises(ConfigError) as caught:
        staff(load_project(clinic))
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("content/staff.toml: key 'injector.0.name' is required")
    assert lines[1].startswith("content/staff.toml:5: key 'injector.1.name' must be text")
    (clinic / "content/staff.toml").unlink()
    project = load_project(clinic)
    assert staff(project) == []
    assert check_patient(project, {"name": "Ana"}, today=TODAY).injector == ""  # no list: free to leave out


def test_settings_file_is_checked_with_line_key_and_fix(tmp_path, monkeypatch):
    path = tmp_path / "settings.toml"
    path.write_text(
        '[smtp]\nhost = "mail.example.com"\nport = 99999\ntls = "plain"\n[record]\npath = "relative.db"\n'
    )
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).splitlines() == [
        f"{path}:3: key 'smtp.port' must be a port number from 1 to 65535, not 99999 (write it like 'port = 587')",
        f"{path}:4: key 'smtp.tls' must be one of starttls, implicit, not 'plain' (write it like 'tls = \"starttls\"')",
        f"{path}:6: key 'record.path' must be an absolute path (start it with / or ~/)",
    ]
    result = CliRunner().invoke(cli, ["settings"])
    assert result.exit_code == 1
    assert f"Error: {path}:3: key 'smtp.port'" in result.output


def test_settings_command_shows_the_file_and_values_never_the_password(tmp_path, monkeypatch):
    path = tmp_path / "settings.toml"
    path.write_text('[printer]\nname = "front-desk"\n[smtp]\nhost = "mail.example.com"\nuser = "desk"\n')
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    monkeypatch.setenv("BROCHURE_SMTP_PASSWORD", "hunter2-secret")
    result = CliRunner().invoke(cli, ["settings"])
    assert result.exit_code == 0, result.output
    assert f"Settings file: {path}" in result.output
    assert "printer.name      front-desk" in result.output
    assert "smtp.port         587" in result.output
    assert "follow_ups.hours  09:00-19:00" in result.output
    assert "from BROCHURE_SMTP_PASSWORD" in result.output
    assert "hunter2" not in result.output


def test_missing_settings_file_means_defaults_unless_named(tmp_path, monkeypatch):
    monkeypatch.delenv("BROCHURE_SETTINGS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.file == tmp_path / "config/brochure/settings.toml"
    assert settings.record_file == tmp_path / "data/brochure/deliveries.sqlite"
    monkeypatch.setenv("BROCHURE_SETTINGS", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="settings file not found"):
        load_settings()


def test_no_patient_given_without_a_terminal_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BROCHURE_SETTINGS", str(tmp_path / "s.toml"))
    (tmp_path / "s.toml").write_text("")
    result = CliRunner().invoke(cli, ["print", "aftercare", "--project", str(REPO)])
    assert result.exit_code == 1
    assert (
        "Error: no patient name given (give --patient NAME, or --no-personalise for a blank box)"
        in result.output
    )


def test_the_longest_fields_still_fit_on_one_page(sample):
    fields = {
        "name": "Maria Fernanda Maximiliana Gonzalez de la Cruz Rodriguez-Lopez"[:60],
        "injector": "Priya Raman",
        "treatment": "Botox and Dysport, forehead, frown lines and crow's feet, both"[:60],
        "note": ("20 units forehead, 12 units each side for the crow's feet; come back if uneven " * 2)[:100],
    }
    patient = check_patient(sample, fields, today=TODAY)
    for name in ("side-effects",):  # the fullest handout
        packet = personalise(sample, [name], patient)
        assert packet.pages == 1
        text = " ".join(PdfReader(io.BytesIO(packet.pdf)).pages[0].extract_text().split())
        assert "Maximiliana" in text
        assert "come back" in text


def test_a_handout_template_without_the_box_is_an_error_not_a_copy_without_the_name(tmp_path):
    clinic = copy_sample(tmp_path / "clinic")
    (clinic / "templates").mkdir()
    (clinic / "templates/handout.html").write_text(
        '{% extends "builtin/handout.html" %}{% block treatment %}{% endblock %}'
    )
    project = load_project(clinic)
    patient = check_patient(project, {"name": "Ana Lima", "injector": "Dana Smith"})
    with pytest.raises(BrochureError) as caught:
        personalise(project, ["aftercare"], patient)
    assert str(caught.value) == (
        "templates/handout.html: the template of 'aftercare' shows no patient details "
        '(keep {% block treatment %}{% include "_treatment.html" %}{% endblock %} in it)'
    )
    assert personalise(project, ["aftercare"], None).pages == 1  # a blank copy needs no box


def test_spanish_and_large_print_copies_are_personalised_in_their_own_language_and_size(sample, tmp_path):
    from conftest import pdf_text_sizes

    patient = check_patient(sample, {"name": "Ana Núñez", "injector": "Priya Raman"}, today=TODAY)
    spanish = personalise(sample, ["aftercare.es"], patient)
    text = " ".join(PdfReader(io.BytesIO(spanish.pdf)).pages[0].extract_text().split())
    assert spanish.pages == 1
    assert "Ana Núñez" in text
    assert "Su tratamiento" in text
    assert "21 de noviembre de 2026" in text  # the treatment date, in Spanish
    assert "5 de diciembre de 2026" in text  # and the follow-up, 14 days later
    large = personalise(sample, ["aftercare.es.large"], patient)
    assert 1 <= large.pages <= 2
    path = tmp_path / "copy.pdf"  # pdf_text_sizes reads a file
    path.write_bytes(large.pdf)
    sizes = [size for page in range(large.pages) for size, _ in pdf_text_sizes(path, page)]
    assert min(sizes) >= 16
    assert "Ana Núñez" in " ".join(PdfReader(path).pages[0].extract_text().split())
