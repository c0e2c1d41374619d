"""Education documented: the pad's strokes checked, the SVG written by the server, the record's
table, `brochure education`, `brochure history` and the audit trail that show it."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_sample

from brochure.cli.main import cli
from brochure.deliver import audit, education, service
from brochure.deliver.patient import Patient
from brochure.deliver.record import Record
from brochure.project.model import load_project

NAME = "Ingrid Okonkwo-Laurent"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "clinic", variants=True)


def given(clinic: Path, settings, name: str = NAME) -> int:  # noqa: ANN001
    """A real delivery (a download: nothing to print) in the record; its row."""
    project = load_project(clinic)
    patient = Patient(name=name, treated_on=dt.date(2026, 11, 20), injector="Dana Smith")
    done = service.deliver(project, service.Request(["aftercare"], patient, "download"), settings=settings)
    return done.recorded.id


# -- the strokes and the SVG -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("not json", "the signature did not arrive whole"),
        ('{"strokes": []}', "the signature did not arrive whole"),
        ('[[["10", 20], [30, 40]]]', "the signature did not arrive whole"),  # a number as text
        ("[[[true, 1], [2, 2]]]", "the signature did not arrive whole"),
        ("[[[NaN, 1], [2, 2]]]", "the signature did not arrive whole"),
        ("[[[1e999, 1], [2, 2]]]", "the signature did not arrive whole"),
        ("[[[1, 2, 3], [2, 2]]]", "the signature did not arrive whole"),
        ("[[[-1, 5], [20, 20]]]", "the signature goes outside the pad"),
        (f"[[[10, 5], [20, {education.PAD_HEIGHT + 1}]]]", "the signature goes outside the pad"),
        ("[]", "the signature is empty"),
        ("[[], []]", "the signature is empty"),
        ("[[[5, 5]]]", "the signature is empty"),  # one dot is not a signature
        (json.dumps([[[1, 1]] * (education.MAX_POINTS + 1)]), "the signature is too long to keep"),
        (json.dumps([[[1, 1], [2, 2]]] * (education.MAX_STROKES + 1)), "the signature has too many strokes"),
        ("[" * 30 + "]" * 30 + " " * education.MAX_STROKES_TEXT, "the signature is too long to keep"),
    ],
)
def test_bad_strokes_are_refused_in_plain_words(text, said):
    with pytest.raises(education.SignatureError) as caught:
        education.strokes_of(text)
    (problem,) = caught.value.problems
    assert problem.message == said
    assert problem.fix  # what to do: sign again, or tick the box


def test_the_svg_is_written_from_the_points_alone():
    strokes = education.strokes_of("[[[10, 20], [30.04, 40.06], [50, 60]], [[600, 200], [0, 0]]]")
    svg = education.signature_svg(strokes)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == f"0 0 {education.PAD_WIDTH} {education.PAD_HEIGHT}"
    assert [p.get("d") for p in root.iter(f"{SVG}path")] == ["M10 20 L30 40.1 L50 60", "M600 200 L0 0"]


@pytest.mark.parametrize(
    "sent",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '[[[10, 20], [30, 40]], "<script>alert(1)</script>"]',
        '[[[10, 20], [30, "40\\"/><script>alert(1)</script>"]]]',
        "[[[10, 20], [30, 40]]]<script>alert(1)</script>",
    ],
)
def test_svg_or_script_sent_by_a_browser_never_reaches_the_stored_svg(clinic, settings, sent):
    row = given(clinic, settings)
    with pytest.raises(education.SignatureError):
        education.check(strokes=sent, ticked=True)
    with Record.open(settings) as record:
        assert education.of(record, [row]) == {}
    # The only way in is numbers: whatever else a browser sends is refused, and what is kept is ours.
    answers = education.check(strokes="[[[10, 20], [30, 40]]]")
    assert "script" not in answers.signature
    assert [e.tag for e in ET.fromstring(answers.signature).iter()] == [
        f"{SVG}svg",
        f"{SVG}title",
        f"{SVG}path",
    ]


def test_a_bad_choice_or_nothing_chosen_is_refused():
    with pytest.raises(education.EducationError, match="unknown method 'sang'"):
        education.check(methods=["sang"])
    with pytest.raises(education.EducationError, match="unknown teach-back result"):
        education.check(teach_back="maybe")
    with pytest.raises(education.EducationError, match="unknown language 'fr'"):
        education.check(language="fr", languages=["en", "es"])
    with pytest.raises(education.EducationError, match="nothing was chosen"):
        education.check()


# -- the record, the trail and the commands that show it -----------------------------


def test_documented_in_the_record_replaced_when_saved_again_and_each_save_on_the_trail(clinic, settings):
    row = given(clinic, settings)
    other = given(clinic, settings, "Bo Andersen")
    first = education.check(language="es", methods=["printed", "in-person"], teach_back="voiced", ticked=True)
    saved = education.save(None, row, first, settings=settings, by="dana")
    assert saved.warnings == []
    assert saved.delivery.patient_name == NAME
    signed = education.check(teach_back="needs-review", strokes="[[[10, 20], [30, 40]]]")
    education.save(None, row, signed, settings=settings, by="luis", desk="10.0.0.7")
    with Record.open(settings) as record:
        kept = education.of(record, [row, other])
    assert list(kept) == [row]  # the other delivery has nothing documented
    latest = kept[row]
    assert (latest.language, latest.methods, latest.teach_back, latest.acknowledged, latest.staff) == (
        "",
        (),
        "needs-review",
        "signed",
        "luis",
    )
    assert ET.fromstring(latest.signature).find(f"{SVG}path").get("d") == "M10 20 L30 40"
    # The record's file: one row for the delivery (the latest), private as the record is.
    with sqlite3.connect(settings.record_file) as db:
        assert db.execute("SELECT count(*) FROM education").fetchone() == (1,)
    assert settings.record_file.stat().st_mode & 0o777 == 0o600
    # Each save a line of the trail, naming the row and the non-personal answers only.
    lines = [e for e in audit.entries(settings) if e.event == "education"]
    assert [(e.record, e.staff, e.desk, e.detail) for e in lines] == [
        (row, "dana", "terminal", "method printed+in-person; teach-back voiced; ticked"),
        (row, "luis", "10.0.0.7", "teach-back needs-review; signed"),
    ]
    assert lines[0].handouts == tuple((name, version) for name, version, _due in saved.delivery.documents)
    text = audit.trail_file(settings).read_text()
    for secret in (NAME, "Okonkwo", "<svg", "M10 20"):
        assert secret not in text
    assert audit.verify(settings) == (4, [])  # the two downloads and the two saves
    with pytest.raises(service.NotInRecord, match="no delivery 999"):
        education.save(None, 999, first, settings=settings)


def test_history_and_the_audit_report_show_what_was_documented(clinic, settings):
    row = given(clinic, settings)
    plain = given(clinic, settings, "Bo Andersen")
    answers = education.check(
        language="es", methods=["emailed"], teach_back="demonstrated", strokes="[[[1, 1], [9, 9]]]"
    )
    education.save(None, row, answers, settings=settings)
    shown = CliRunner().invoke(cli, ["history", "--project", str(clinic)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].split() == ["ROW", "WHEN", "PATIENT", "HOW", "TO", "BY", "HANDOUTS", "EDUCATION"]
    (documented,) = [line for line in lines if NAME in line]
    assert documented.startswith(str(row))
    assert documented.endswith("Spanish (es); emailed; demonstrated; signed")
    (other,) = [line for line in lines if "Bo Andersen" in line]
    assert other.startswith(str(plain))
    assert other.endswith("-")
    assert "<svg" not in shown.output
    exported = CliRunner().invoke(cli, ["history", "--project", str(clinic), "--format", "csv"])
    header, *rows = exported.stdout.splitlines()
    assert header.endswith(",changed since,language used,education method,teach-back,acknowledgement")
    (cells,) = [r.split(",") for r in rows if NAME in r]
    assert cells[-4:] == ["es", "emailed", "demonstrated", "signed"]
    report = CliRunner().invoke(cli, ["audit", "report"])
    assert report.exit_code == 0, report.output
    (line,) = [line for line in report.output.splitlines() if " education " in line]
    assert line.endswith("method emailed; teach-back demonstrated; signed")
    assert f" {row} " in line
    assert NAME not in report.output


def test_brochure_education_documents_from_the_terminal(clinic, settings):
    row = given(clinic, settings)
    command = ["education", "--project", str(clinic), str(row)]
    done = CliRunner().invoke(
        cli,
        [
            *command,
            "--language",
            "es",
            "--method",
            "printed",
            "--method",
            "in-person",
            "--teach-back",
            "voiced",
            "--ticked",
        ],
    )
    assert done.exit_code == 0, done.output
    assert (
        done.output
        == f"Education documented for row {row}: es; printed, explained in person; voiced understanding; ticked.\n"
    )
    with Record.open(settings) as record:
        assert education.of(record, [row])[row].acknowledged == "ticked"
    for wrong, said in [
        (["--teach-back", "maybe"], "Invalid value for '--teach-back'"),
        (["--language", "fr"], "unknown language 'fr' (use en, es)"),
        ([], "nothing was chosen"),
    ]:
        result = CliRunner().invoke(cli, [*command, *wrong])
        assert result.exit_code != 0
        assert said in result.output
        assert "Traceback" not in result.output
    missing = CliRunner().invoke(cli, ["education", "--project", str(clinic), "999", "--ticked"])
    assert missing.exit_code == 1
    assert "there is no delivery 999 in the record" in missing.output
