"""The command line: exit codes, error lines, and that a failed build harms nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import copy_sample, pdf_text, topic

from brochure.cli.main import cli


def run(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "clinic")


def test_build_named_documents(clinic):
    result = run("build", "aftercare", "results", "--project", clinic, "--progress")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split(" (")[0] for line in lines[:2]) == [
        f"built {clinic / 'out' / 'aftercare.pdf'}",
        f"built {clinic / 'out' / 'results.pdf'}",
    ]
    assert re.fullmatch(r"2 rebuilt, 0 up to date, 0 failed in \d+\.\d\d s", lines[-1])
    assert result.stderr == ""
    pdfs = sorted(p.name for p in (clinic / "out").iterdir() if not p.name.startswith("."))
    assert pdfs == ["aftercare.pdf", "results.pdf"]
    # Not on a terminal and without --progress: only the summary.
    again = run("build", "aftercare", "--project", clinic, "--force")
    assert re.fullmatch(r"1 rebuilt, 0 up to date, 0 failed in \d+\.\d\d s\n", again.stdout)


def test_bad_front_matter_exits_1_and_leaves_out_untouched(clinic):
    assert run("build", "aftercare", "results", "--project", clinic).exit_code == 0
    out = clinic / "out"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    page = clinic / "content/topics/aftercare.md"
    page.write_text(
        page.read_text().replace(
            'title: "Aftercare: what to expect and what to do"', "title: Aftercare: what to expect"
        )
    )
    result = run("build", "--project", clinic)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: content/topics/aftercare.md:2: front matter is not valid YAML: mapping values are not allowed here "
        "(put text that contains ':' or '#' in double quotes, and indent nested lines evenly)\n"
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_usage_errors_exit_2(clinic):
    assert run("build", "--paper", "legal", "--project", clinic).exit_code == 2
    assert run("build", "--nope").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_unknown_document_name(clinic):
    result = run("build", "botox-party", "--project", clinic)
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: no document named 'botox-party' (run 'brochure list' to see the documents)\n"
    )


def test_not_a_project(tmp_path):
    result = run("list", "--project", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path}: is not a brochure project: it has no content/ folder "
        "(run the command in your project folder, or pass --project DIR)\n"
    )


def test_list_shows_titles_languages_large_print_and_budgets(clinic, tmp_path):
    result = run("list", "--project", clinic)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "LANGUAGE", "PRINT", "PAGES", "TITLE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert len(rows) == 8
    assert (
        rows["aftercare"].split()
        == "aftercare handout en regular exactly 1 Aftercare: what to expect and what to do".split()
    )
    assert rows["brochure"].split()[:6] == ["brochure", "brochure", "en", "regular", "at", "most"]
    assert rows["brochure"].endswith("Your guide to Botox treatment")
    variants = run("list", "--project", copy_sample(tmp_path / "variants", variants=True)).stdout
    row = next(line for line in variants.splitlines() if line.startswith("aftercare.es.large "))
    assert row.split()[1:6] == ["handout", "es", "large", "at", "most"]
    assert row.endswith("Cuidados después del tratamiento")


def test_html_writes_what_would_be_rendered(clinic, tmp_path):
    target = tmp_path / "page.html"
    result = run("html", "side-effects", "--project", clinic, "-o", target)
    assert result.exit_code == 0, result.stderr
    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<h1>Side\u00a0effects</h1>" in html  # the last two words of a title kept together
    assert 'rel="stylesheet"' in html
    assert "font-family" in html


def test_warnings_go_to_stderr_and_do_not_fail(clinic):
    brand = clinic / "content/brand.toml"
    brand.write_text('favourite_colour = "teal"\n' + brand.read_text())
    result = run("build", "aftercare", "--project", clinic)
    assert result.exit_code == 0
    assert result.stderr.startswith(
        "Warning: content/brand.toml:1: unknown key 'favourite_colour' is ignored (known keys here: "
    )


def test_out_option_and_default_out(clinic, tmp_path):
    result = run("build", "aftercare", "--project", clinic, "--out", tmp_path / "handouts")
    assert result.exit_code == 0, result.stderr
    (text,) = pdf_text(tmp_path / "handouts" / "aftercare.pdf")
    assert "Aftercare" in text
    cwd = os.getcwd()
    try:
        os.chdir(clinic)
        assert run("build", "results").exit_code == 0
    finally:
        os.chdir(cwd)
    assert (clinic / "out" / "results.pdf").exists()


def test_refuses_out_that_contains_the_project(clinic):
    result = run("build", "--project", clinic, "--out", clinic.parent)
    assert result.exit_code == 1
    assert "cannot be the output folder: it is or contains the project" in result.stderr


@pytest.mark.parametrize("command", [[], ["build"], ["list"], ["html"]])
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout


def test_template_typo_is_an_error_not_an_empty_string(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", lang="en"),
            "templates/handout.html": '{% extends "builtin/handout.html" %}{% block after_topic %}{{ brand.clinc_name }}{% endblock %}',
        }
    )
    result = run("build", "--project", root, "a")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: handout.html: template uses something undefined:")
    assert "clinc_name" in result.stderr


def test_ctrl_c_stops_a_build_without_a_traceback(clinic):
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "brochure", "build", "--project", str(clinic)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the build is under way (it holds the output folder's lock), not a
    # fixed time: on a busy machine that could still be Python's own start-up,
    # before any program can handle a signal.
    lock = clinic / "out" / ".brochure.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the build finished before Ctrl-C arrived")
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "Stopped."
    assert "Traceback" not in err
    for pdf in (clinic / "out").glob("*.pdf"):
        assert pdf.read_bytes().startswith(b"%PDF-")


def test_the_build_command_ends_with_all_it_says_and_leaves_no_temporary_files(clinic, tmp_path):
    """The real command (not CliRunner): it ends its process at once after a build (brochure/__main__.py),
    with its summary, its errors and its exit code, and its workers' copies of the fonts removed."""
    import subprocess
    import sys

    temporary = tmp_path / "temporary"
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary), "BROCHURE_SERVER": "off"}
    command = [sys.executable, "-m", "brochure", "build", "--project", str(clinic), "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\d+ rebuilt, 0 up to date, 0 failed in [\d.]+ s\n", done.stdout)
    assert sorted(p.name for p in temporary.iterdir()) == []

    page = clinic / "content/topics/aftercare.md"
    page.write_text(page.read_text().replace("title: ", "title: Aftercare: ", 1))
    failed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: content/topics/aftercare.md:2: front matter is not valid YAML")
    assert "Traceback" not in failed.stderr
