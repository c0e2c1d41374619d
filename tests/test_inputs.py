"""The input hasher reads under the renderer's rules: nothing outside the project, only regular files, capped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import topic

from brochure.build import build_summary
from brochure.inputs import Hasher, fingerprint_options, project_fingerprint
from brochure.project import load_project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, symlinks and sparse files")

_opened: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def _files_opened(run) -> list[Path]:  # noqa: ANN001
    """Every file this process opened while ``run()`` ran, resolved (Python's audit hook sees each open)."""
    global _opened
    _opened = []
    try:
        run()
    finally:
        opened, _opened = _opened, None
    return [Path(p).resolve() for p in opened]


def test_the_hasher_never_opens_files_outside_the_project(make_project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("hostname", "secret.html", "secret.png"):
        (outside / name).write_text("not the project's")
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "content/documents.toml": '[[document]]\nname = "{topic}"\n',
            "templates/handout.html": (
                '{% extends "builtin/handout.html" %}\n'
                f'{{% block after_topic %}}{{% include "{outside}/secret.html" %}}{{% endblock %}}\n'
            ),
            "styles/handout.css": (
                f'@import url("builtin:handout.css");\nbody {{ background: url({outside}/secret.png) }}\n'
            ),
        }
    )
    (root / "content/notes.txt").symlink_to(outside / "hostname")
    project = load_project(root)

    def run() -> None:
        build_summary(project, root / "out")
        project_fingerprint(root, fingerprint_options(None, False))

    opened = _files_opened(run)
    assert opened, "the audit hook saw no file opened"
    assert [p for p in opened if p.is_relative_to(outside)] == []


def test_a_fifo_named_as_a_picture_fails_its_document_and_never_hangs(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", "![A picture](../images/pic.png)\n"),
            "content/topics/b.md": topic("B"),
            "content/documents.toml": '[[document]]\nname = "{topic}"\n',
        }
    )
    os.mkfifo(root / "content/images/pic.png")
    command = [sys.executable, "-m", "brochure", "build", "--project", str(root)]
    # Opening the FIFO would block for ever: the timeout only keeps a regression from hanging the suite.
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "content/topics/a.md" in result.stderr
    assert "../images/pic.png" in result.stderr
    assert (root / "out/b.pdf").exists()
    assert not (root / "out/a.pdf").exists()
    # The lock went with the build: the next one starts at once.
    summary = build_summary(load_project(root), root / "out", names=["b"], lock_timeout=0)
    assert summary.count("up to date") == 1


def test_a_huge_sparse_picture_is_never_read_whole(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", "![A picture](../images/big.png)\n"),
            "content/documents.toml": '[[document]]\nname = "{topic}"\n',
        }
    )
    with open(root / "content/images/big.png", "wb") as handle:
        handle.truncate(2 * 1024**3)  # 2 GiB, all of it a hole: costs no disk
    # Hash the project in a process whose memory is capped well below 2 GiB.
    script = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        from brochure.inputs import Hasher, document_key, project_fingerprint
        from brochure.project import documents, load_project
        status = Path("/proc/self/status").read_text()
        size = int(next(l for l in status.splitlines() if l.startswith("VmSize:")).split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + 512 * 1024**2, resource.RLIM_INFINITY))
        project = load_project(sys.argv[1])
        hasher = Hasher(project.root)
        for doc in documents(project):
            document_key(project, doc, "", hasher)
        project_fingerprint(project.root, "", hasher)
        print(hasher.file(project.root / "content/images/big.png"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "refused: larger than 20 MiB"
    # And the build says so, naming the picture.
    (outcome,) = build_summary(load_project(root), root / "out").outcomes
    assert "'../images/big.png' is larger than 20 MiB" in str(outcome.error)


def test_each_file_is_read_once_and_refusals_are_part_of_the_key(make_project):
    root = make_project({"content/topics/a.md": topic("A")})
    hasher = Hasher(root)
    first = hasher.file(root / "content/topics/a.md")
    assert hasher.file(root / "content/topics/a.md") == first
    assert hasher.reads == [root / "content/topics/a.md"]
    assert hasher.file(root / "nope.png") == "refused: file not found"
    assert hasher.file(Path("/etc/hostname")) == "refused: outside the project"
