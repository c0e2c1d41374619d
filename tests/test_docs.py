"""The README stays true: its commands exist, and its set-up works on a fresh clone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import REPO
from pypdf import PdfReader

from brochure.cli.main import cli

README = (REPO / "README.md").read_text()


def test_every_command_is_in_the_readme():
    for name in cli.commands:
        assert re.search(rf"^brochure {name}\b", README, re.MULTILINE), name


def test_readme_setup_commands_are_makefile_targets():
    makefile = (REPO / "Makefile").read_text()
    for target in ("sample", "test", "lint", "bench"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_ci_installs_every_package_the_readme_installs():
    ci = (REPO / ".ci" / "run").read_text()
    installed = set(re.search(r'^packages="([^"]+)"', ci, re.MULTILINE).group(1).split())
    lines = re.findall(r"^ *sudo apt install (.+)$", README, re.MULTILINE)
    assert len(lines) >= 2  # "Set up and try it", and the clinic server's set-up
    wanted = {word for line in lines for word in line.split() if not word.startswith("-")}
    assert wanted <= installed, wanted - installed


def test_readme_preview_picture_exists():
    src = re.search(r'<img src="([^"]+)"', README).group(1)
    assert (REPO / src).is_file()


@pytest.mark.slow
def test_make_sample_works_on_a_fresh_clone(tmp_path):
    """`make sample` exactly as the README says, in a fresh clone of what is committed."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    # As a person would run it: not inside our virtual environment, nor inside
    # the `make test` that may be running this suite.
    outer = ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outer)}
    result = subprocess.run(
        ["make", "sample"], cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pdfs = sorted(p.stem for p in (clone / "out").glob("*.pdf"))
    topics = sorted(p.stem for p in (clone / "content" / "topics").glob("*.md"))
    # Every topic and translation, each also in large print (the sample declares it).
    assert pdfs == sorted([*topics, *(f"{t}.large" for t in topics), "brochure", "aftercare-trifold"])
    assert all(len(PdfReader(clone / "out" / f"{t}.pdf").pages) == 1 for t in topics)
    assert (
        result.stdout.strip().splitlines()[-1].startswith(f"{len(pdfs)} rebuilt, 0 up to date, 0 failed in ")
    )


def _apt_packages(text: str) -> set[str]:
    line = re.search(r"apt(?:-get)? install ([^\n\\]+(?:\\\n[^\n\\]+)*)", text).group(1)
    line = line.replace("\\\n", " ").split("&&")[0]
    return {word for word in line.split() if not word.startswith("-")}


def test_the_dockerfile_installs_the_readmes_packages_and_runs_brochure_serve():
    import shlex

    from brochure.cli.serve import serve

    dockerfile = (REPO / "Dockerfile").read_text()
    readme_packages = _apt_packages(README)
    installed = _apt_packages(dockerfile)
    runtime = readme_packages - {"chromium", "cups"}  # the browser is for the tests; CUPS is the host's
    assert runtime <= installed, runtime - installed
    assert installed - readme_packages <= {"python3", "python3-venv", "ca-certificates", "tzdata"}
    assert re.search(r'^VOLUME \["/clinic", "/data"\]$', dockerfile, re.MULTILINE)
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE).group(1)
    command = json.loads(entry)
    assert command[:2] == ["brochure", "serve"]
    serve.make_context("serve", [*command[2:], "--host-name", "desk.clinic.lan"])  # the options exist
    assert "docker run" in dockerfile  # its own example
    assert "docker build -t brochure ." in README
    unit = (REPO / "docs" / "brochure.service").read_text()
    exec_start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1))
    assert exec_start[0].endswith("/brochure")
    assert exec_start[1] == "serve"
    serve.make_context("serve", exec_start[2:])
    assert "docs/brochure.service" in README
    if shutil.which("systemd-analyze"):
        # The unit's syntax (not its paths or user, which are the server's).
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(REPO / "docs" / "brochure.service")],
            capture_output=True,
            text=True,
        )
        syntax = [
            line
            for line in result.stderr.splitlines()
            if "Unknown key" in line
            or "Unknown section" in line
            or "Invalid" in line
            or "Failed to parse" in line
        ]
        assert not syntax, syntax


def test_the_follow_up_timer_runs_brochure_followups_send():
    import shlex

    from brochure.cli.followups import followups

    unit = (REPO / "docs" / "brochure-followups.service").read_text()
    exec_start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1))
    assert exec_start[0].endswith("/brochure")
    assert exec_start[1:3] == ["followups", "send"]
    followups.make_context("followups", exec_start[2:])  # the options exist
    timer = (REPO / "docs" / "brochure-followups.timer").read_text()
    assert re.search(r"^OnCalendar=\S+$", timer, re.MULTILINE)
    for name in ("brochure-followups.service", "brochure-followups.timer"):
        assert f"docs/{name}" in README
    if shutil.which("systemd-analyze"):
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(REPO / "docs" / "brochure-followups.timer")],
            capture_output=True,
            text=True,
            cwd=REPO / "docs",
        )
        syntax = [
            line
            for line in result.stderr.splitlines()
            if any(w in line for w in ("Unknown key", "Unknown section", "Invalid", "Failed to parse"))
        ]
        assert not syntax, syntax
