"""Printing personalised handouts through a real, private CUPS scheduler (tests/servers.py)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, build_ok, copy_sample
from pypdf import PdfReader

from brochure.cli.main import cli
from brochure.deliver import PrintError, check_patient, personalise, print_packet, printers
from brochure.deliver.printing import JOB_TITLE
from brochure.project.model import load_project

NAME = "Zelda Quistorp"
FIELDS = {
    "name": NAME,
    "treated_on": "2026-11-20",
    "injector": "Dana Smith",
    "treatment": "Botox",
    "note": "20 units, forehead",
}


def text_of(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def sample():
    return load_project(REPO)


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings with the record in tmp_path (never the user's own)."""
    path = tmp_path / "settings.toml"
    path.write_text(f'[record]\npath = "{tmp_path / "record.sqlite"}"\n')
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    return path


def run(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_personalised_aftercare_prints_as_one_job_with_the_details_and_no_name_in_its_title(
    cups_env, sample, settings_file
):
    desk = cups_env.add_queue("desk")
    patient = check_patient(sample, FIELDS, today=__import__("datetime").date(2026, 11, 21))
    packet = personalise(sample, ["aftercare"], patient)
    job = print_packet(packet, printer="desk")
    printed = desk.wait_job()
    (page,) = text_of(printed.pdf)
    assert NAME in page
    assert "November 20, 2026" in page  # treatment date
    assert "Dana Smith, RN" in page  # injector with credentials, from content/staff.toml
    assert "December 4, 2026" in page  # follow-up: aftercare says follow_up_days: 14
    assert "20 units, forehead" in page
    assert job.printer == "desk"
    assert job.job_id.startswith("desk-")
    assert f'JOB NAME = "{JOB_TITLE}"' in printed.header
    assert "Zelda" not in printed.header
    assert "Quistorp" not in printed.header
    assert "PAPER=LETTER" in printed.header
    assert "DUPLEX=OFF" in printed.header
    assert b"Quistorp" not in cups_env.logs()


def test_a_packet_of_three_handouts_prints_as_one_job_of_three_pages(cups_env, sample, settings_file):
    desk = cups_env.add_queue("desk")
    patient = check_patient(sample, {**FIELDS, "treated_on": ""})
    packet = personalise(sample, ["aftercare", "results", "side-effects"], patient)
    assert packet.pages == 3
    assert [name for name, _ in packet.documents] == ["aftercare", "results", "side-effects"]
    print_packet(packet, printer="desk", duplex=True, copies=1)
    printed = desk.wait_job()
    pages = text_of(printed.pdf)
    assert len(pages) == 3
    assert "Example Aesthetics Clinic" in pages[0]
    assert "Aftercare" in pages[0]
    assert "Your results" in pages[1]
    assert "Side effects" in pages[2]
    assert all(NAME in page for page in pages)
    assert "DUPLEX=ON" in printed.header
    # Still one tagged PDF: one structure tree covering the three pages.
    import pikepdf

    with pikepdf.open(io.BytesIO(packet.pdf)) as pdf:
        assert pdf.Root.MarkInfo.Marked
        assert "/StructTreeRoot" in pdf.Root
        assert all("/StructParents" in page.obj for page in pdf.pages)


def test_blank_copy_has_the_box_with_lines_to_fill_in(sample):
    packet = personalise(sample, ["aftercare"], None, paper="a4")
    (page,) = text_of(packet.pdf)
    assert "Your treatment" in page
    assert "Name" in page
    assert "Follow-up" in page
    assert NAME not in page
    assert not packet.personalised


def test_print_command_with_options_and_a4(cups_env, settings_file):
    desk = cups_env.add_queue("desk")
    result = run(
        "print", "results", "--project", REPO, "--printer", "desk", "--paper", "a4", "--copies", "2",
        "--patient", NAME, "--injector", "Priya Raman", "--no-record",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Printed 1 page, 2 copies on desk (job desk-" in result.output
    assert NAME not in result.output
    printed = desk.wait_job()
    assert "PAPER=A4" in printed.header
    assert "Priya Raman, MD" in text_of(printed.pdf)[0]


def test_printers_lists_the_queues_and_the_default(cups_env, settings_file):
    cups_env.add_queue("desk")
    cups_env.add_queue("back-office")
    cups_env.run("lpadmin", "-d", "desk")
    queues, default = printers()
    assert {"desk", "back-office"} <= set(queues)
    assert default == "desk"
    result = run("printers")
    assert result.exit_code == 0
    assert "desk  (default)" in result.output
    assert "back-office" in result.output


def test_unknown_printer_not_accepting_and_paused(cups_env, sample, settings_file):
    cups_env.add_queue("desk")
    packet = personalise(sample, ["aftercare"], None)
    with pytest.raises(PrintError, match=r"there is no printer named 'nowhere' \(printers: .*desk"):
        print_packet(packet, printer="nowhere")
    cups_env.add_queue("closed")
    cups_env.run("cupsreject", "closed")
    try:
        with pytest.raises(PrintError, match="printer 'closed' is not accepting jobs"):
            print_packet(packet, printer="closed")
    finally:
        cups_env.run("cupsaccept", "closed")
    paused = cups_env.add_queue("paused")
    cups_env.run("cupsdisable", "paused")
    try:
        job = print_packet(packet, printer="paused")
        assert job.warnings == [
            "printer 'paused' is paused: the job waits until it is resumed (cupsenable paused)"
        ]
    finally:
        cups_env.run("cupsenable", "paused")
    assert paused.wait_job().pdf.startswith(b"%PDF-")


def test_no_print_service_says_so(monkeypatch, sample, settings_file, cups_server):
    from servers import free_port

    monkeypatch.setenv("CUPS_SERVER", f"127.0.0.1:{free_port()}")
    packet = personalise(sample, ["aftercare"], None)
    with pytest.raises(PrintError, match=r"the print service \(CUPS\) is not running at 127\.0\.0\.1:"):
        print_packet(packet, printer="desk")
    result = run("printers")
    assert result.exit_code == 1
    assert "Error: the print service (CUPS) is not running" in result.output
    assert "Traceback" not in result.output


def _cmdlines() -> bytes:
    found = b""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found += (entry / "cmdline").read_bytes() + b"\n"
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_no_patient_detail_in_out_cache_logs_job_title_or_process_list(cups_server, tmp_path):
    """A delivery from the command line, fields typed at its prompts, rendered by the render server."""
    clinic = copy_sample(tmp_path / "clinic")
    build_ok(clinic)
    desk = cups_server.add_queue("desk")
    # Short: a socket's path has a limit of about 100 bytes.
    runtime = Path(tempfile.mkdtemp(prefix="br-"))
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    record = tmp_path / "private" / "record.sqlite"
    (tmp_path / "settings.toml").write_text(f'[printer]\nname = "desk"\n[record]\npath = "{record}"\n')
    env = {
        **os.environ,
        "CUPS_SERVER": cups_server.address,
        "BROCHURE_SERVER": "on",
        "BROCHURE_SERVER_IDLE": "120",
        "BROCHURE_RUNTIME_DIR": str(runtime),
        "BROCHURE_SETTINGS": str(tmp_path / "settings.toml"),
        "BROCHURE_CACHE_DIR": str(tmp_path / "cache"),
        "TMPDIR": str(temporary),  # the render server's and its workers' temporary files, scanned below
    }
    import pty

    leader, follower = pty.openpty()
    seen: list[bytes] = []
    process = subprocess.Popen(
        [sys.executable, "-m", "brochure", "-v", "print", "aftercare", "results", "--project", str(clinic)],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    os.write(leader, f"{NAME}\n2026-11-20\nDana Smith\nBotox\nforehead\n".encode())
    scanning = threading.Event()

    def scan() -> None:
        while not scanning.is_set():
            seen.append(_cmdlines())
            time.sleep(0.01)

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        out, err = process.communicate(timeout=120)
    finally:
        scanning.set()
        scanner.join()
        os.close(leader)
    try:
        assert process.returncode == 0, err.decode()
        assert b"starting the render server" in err  # rendered by the server, not in the command's process
        printed = desk.wait_job()
        assert all(NAME in page for page in text_of(printed.pdf))
        secret = [NAME.encode(), b"Quistorp"]
        assert len(seen) > 3
        assert not [s for s in secret for cmdlines in seen if s in cmdlines], (
            "a patient detail in /proc/*/cmdline"
        )
        assert not [s for s in secret if s in out or s in err], "a patient detail in the output or log"
        assert not [s for s in secret if s in printed.header.encode()]
        assert not [s for s in secret if s in cups_server.logs()]
        # The topic cache, and the temporary files of the render server and its workers (the projects
        # they were given, WeasyPrint's copies of the fonts), hold none either.
        shared = list(temporary.rglob("*"))
        assert [p for p in shared if p.name.startswith("brochure-workers-")], (
            "no private folder of the workers"
        )
        assert list((tmp_path / "cache").iterdir())
        for path in [*clinic.rglob("*"), *runtime.rglob("*"), *(tmp_path / "cache").rglob("*"), *shared]:
            if path.is_file():
                data = path.read_bytes()
                assert not [s for s in secret if s in data], f"a patient detail in {path}"
        # Only the record keeps it, private: not the audit trail, nor anything else beside it.
        assert record.stat().st_mode & 0o777 == 0o600
        assert NAME.encode() in record.read_bytes()
        beside = [p for p in record.parent.iterdir() if p.is_file() and p != record]
        assert {p.name for p in beside} >= {"audit.jsonl", "audit.head"}
        for path in beside:
            assert not [s for s in secret if s in path.read_bytes()], f"a patient detail in {path}"
    finally:
        subprocess.run(
            [sys.executable, "-m", "brochure", "server", "stop"], env=env, capture_output=True, timeout=60
        )
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.slow
def test_many_packets_through_the_render_server_come_back_in_order(sample, monkeypatch):
    from brochure.deliver import personalise_many
    from brochure.warm import control as server

    runtime = Path(tempfile.mkdtemp(prefix="br-"))
    monkeypatch.setenv("BROCHURE_SERVER", "on")
    monkeypatch.setenv("BROCHURE_SERVER_IDLE", "120")
    monkeypatch.setenv("BROCHURE_RUNTIME_DIR", str(runtime))
    # More than the server keeps in flight (two a worker): the rest go out as results come back.
    from brochure.warm.workers import default_jobs

    names = [f"Patient Number{i}" for i in range(2 * default_jobs() + 3)]
    patients = [check_patient(sample, {"name": n, "injector": "Dana Smith"}) for n in names]
    requests = [(["aftercare"], p) for p in patients] + [(["brochure"], patients[0])]
    try:
        results = list(personalise_many(sample, requests))
        assert [s for s in server.status() if s["current"]], "the render server did not run"
    finally:
        server.stop()
        shutil.rmtree(runtime, ignore_errors=True)
    *packets, refused = results
    assert [text_of(p.pdf)[0].count(n) for p, n in zip(packets, names, strict=True)] == [1] * len(names)
    assert str(refused) == (
        "'brochure' is not a handout (print it from out/ instead; only handouts have a 'Your treatment' box)"
    )


@pytest.mark.parametrize("command", ["print", "email", "printers", "history", "settings"])
def test_every_front_desk_command_has_help_with_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
