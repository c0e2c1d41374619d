"""`brochure history --format fhir` and `--format csv`: the record for other systems.

Real deliveries go through the delivery service (a print job on the private
CUPS scheduler, downloads) into a private record; the export is read back,
every line checked against the FHIR models (fhir.resources, R4B:
Communication and DocumentReference are as in R4), and each handout's
version held up against the content the patient got.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_sample
from fhir.resources.R4B import get_fhir_model_class

from brochure.cli.main import cli
from brochure.deliver import check_patient, service
from brochure.deliver.packet import content_version
from brochure.deliver.patient import Patient
from brochure.project.model import load_project, select

NAME = "Oriane Pettersen-Mbeki"
OTHER = "Tomás Ekwueme"
TREATMENT = "Botox for frown lines"
NOTE = "Ring us if the left brow droops"
INJECTOR = "Dana Smith"


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "clinic", variants=True)


def versions(clinic: Path, names: list[str]) -> dict[str, str]:
    """Each handout's content version as the service computes it, from the files as they are now."""
    project = load_project(clinic)
    return {doc.name: content_version(project, doc) for doc in select(project, names)}


def validated(lines: list[str]) -> list[dict]:
    """Each line parsed and checked against its FHIR model; the resources as written."""
    resources = []
    for line in lines:
        data = json.loads(line)
        get_fhir_model_class(data["resourceType"]).model_validate(data)  # raises on anything not FHIR
        resources.append(data)
    return resources


def test_fhir_export_validates_and_each_version_is_the_content_the_patient_got(clinic, settings, cups_env):
    cups_env.add_queue("frontdesk")
    project = load_project(clinic)
    first = versions(clinic, ["aftercare", "results", "aftercare.es"])
    patient = check_patient(
        project, {"name": NAME, "injector": INJECTOR, "treatment": TREATMENT, "note": NOTE}
    )
    printed = service.deliver(
        project,
        service.Request(["aftercare", "results"], patient, "print", printer="frontdesk"),
        settings=settings,
    )
    assert printed.job is not None
    assert printed.recorded is not None
    other = check_patient(project, {"name": OTHER, "injector": INJECTOR})
    service.deliver(project, service.Request(["aftercare.es"], other, "download"), settings=settings)

    # The aftercare handout changes; the same patient is given the new one.
    aftercare = clinic / "content/topics/aftercare.md"
    aftercare.write_text(aftercare.read_text().replace("Stay upright.", "Stay upright for 4 hours."))
    second = versions(clinic, ["aftercare"])["aftercare"]
    assert second != first["aftercare"]
    service.deliver(
        load_project(clinic),
        service.Request(["aftercare"], patient, "download", again=True),
        settings=settings,
    )

    out = clinic.parent / "export.ndjson"
    out.write_text("an older export\n")
    out.chmod(0o644)
    result = CliRunner().invoke(
        cli, ["history", "--project", str(clinic), "--format", "fhir", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".export")] == []  # no temporary left
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()
    resources = validated(lines)

    to_stdout = CliRunner().invoke(cli, ["history", "--project", str(clinic), "--format", "fhir"])
    assert to_stdout.exit_code == 0
    assert to_stdout.stdout == text

    references = {r["id"]: r for r in resources if r["resourceType"] == "DocumentReference"}
    sent = [r for r in resources if r["resourceType"] == "Communication"]
    assert len(references) == 4
    assert len(sent) == 3
    assert len(lines) == 7
    got = {(r["identifier"][0]["value"], r["masterIdentifier"]["value"]): r for r in references.values()}
    assert set(got) == {
        ("aftercare", first["aftercare"]),
        ("results", first["results"]),
        ("aftercare.es", first["aftercare.es"]),
        ("aftercare", second),
    }
    assert printed.recorded.documents[0][1] == first["aftercare"]  # what the record kept is what was printed
    old, new = got["aftercare", first["aftercare"]], got["aftercare", second]
    assert (old["status"], new["status"]) == ("superseded", "current")
    spanish = got["aftercare.es", first["aftercare.es"]]
    assert spanish["content"][0]["attachment"]["language"] == "es"
    assert new["content"][0]["attachment"] == {
        "contentType": "application/pdf",
        "title": select(project, ["aftercare"])[0].title,
        "language": "en",
    }
    review = {r["identifier"][0]["value"]: r["extension"][0]["valueDate"] for r in references.values()}
    assert review == {"aftercare": "2027-03-15", "results": "2027-09-15", "aftercare.es": "2027-03-15"}

    # Oldest first; each DocumentReference comes before the first Communication that points at it.
    assert [r["id"] for r in sent] == [f"delivery-{n}" for n in (1, 2, 3)]
    seen: set[str] = set()
    for resource in resources:
        if resource["resourceType"] == "DocumentReference":
            seen.add(resource["id"])
            continue
        for item in resource["payload"]:
            assert item["contentReference"]["reference"].removeprefix("DocumentReference/") in seen
    print_, download, again = sent
    assert print_["status"] == "completed"
    assert print_["category"][0]["coding"][0]["code"] == "instruction"
    assert print_["medium"][0]["coding"][0]["code"] == "WRITTEN"
    assert download["medium"][0]["coding"][0]["code"] == "ELECTRONIC"
    assert print_["subject"] == {"display": NAME}
    assert download["subject"] == {"display": OTHER}
    assert print_["sent"] == printed.recorded.when.isoformat(timespec="seconds")
    assert [p["contentReference"]["reference"] for p in print_["payload"]] == [
        f"DocumentReference/{old['id']}",
        f"DocumentReference/{got['results', first['results']]['id']}",
    ]
    assert again["payload"][0]["contentReference"]["reference"] == f"DocumentReference/{new['id']}"

    # The treatment only as the reason of that patient's deliveries; the note and the injector nowhere.
    assert NOTE not in text
    assert INJECTOR not in text
    assert print_["reasonCode"] == [{"text": TREATMENT}]
    assert "reasonCode" not in download
    for resource in resources:
        rest = {k: v for k, v in resource.items() if k not in ("reasonCode", "subject")}
        assert TREATMENT not in json.dumps(rest, ensure_ascii=False)
        assert NAME not in json.dumps(rest, ensure_ascii=False)
        assert OTHER not in json.dumps(rest, ensure_ascii=False)


def test_fhir_export_follows_the_history_filters(clinic, settings):
    project = load_project(clinic)
    for name in (NAME, OTHER):
        patient = check_patient(project, {"name": name, "injector": INJECTOR})
        service.deliver(project, service.Request(["results"], patient, "download"), settings=settings)
    result = CliRunner().invoke(
        cli, ["history", "--project", str(clinic), "--format", "fhir", "--patient", "ekwueme"]
    )
    assert result.exit_code == 0, result.output
    resources = validated(result.stdout.splitlines())
    assert [r["resourceType"] for r in resources] == ["DocumentReference", "Communication"]
    assert resources[1]["subject"] == {"display": OTHER}
    assert NAME not in result.stdout

    empty = CliRunner().invoke(
        cli, ["history", "--project", str(clinic), "--format", "fhir", "--since", "2099-01-01"]
    )
    assert empty.exit_code == 0
    assert empty.stdout == ""


def test_history_csv_neutralises_formulas_and_writes_a_private_file(clinic, settings):
    project = load_project(clinic)
    # A name typed with a formula in front: checked as any name, kept as typed.
    patient = Patient(name="=HYPERLINK(1)", treated_on=dt.date(2026, 11, 20), injector=INJECTOR)
    given = service.deliver(project, service.Request(["aftercare"], patient, "download"), settings=settings)
    out = clinic.parent / "deliveries.csv"
    result = CliRunner().invoke(cli, ["history", "--project", str(clinic), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    header, row = out.read_text(encoding="utf-8").splitlines()
    assert header == (
        "when,patient,how,to,by,handouts,changed since,language used,education method,teach-back,acknowledgement"
    )
    cells = row.split(",")
    assert cells[1] == "'=HYPERLINK(1)"
    assert cells[2:4] == ["download", "this computer"]
    assert cells[5] == f"aftercare@{given.packet.documents[0][1]}"


def test_export_errors_are_plain(clinic, settings):
    table = CliRunner().invoke(cli, ["history", "--project", str(clinic), "-o", str(clinic.parent / "x.txt")])
    assert table.exit_code != 0
    assert "--format csv or --format fhir" in table.output
    assert "Traceback" not in table.output
    missing = clinic.parent / "no such folder" / "out.ndjson"
    result = CliRunner().invoke(
        cli, ["history", "--project", str(clinic), "--format", "fhir", "-o", str(missing)]
    )
    assert result.exit_code != 0
    assert "cannot write the file" in result.output
    assert "Traceback" not in result.output
    assert not missing.parent.exists()
