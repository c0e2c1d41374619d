"""The input hasher reads under the renderer's rules: nothing outside the project, only regular files, capped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import topic

from brochure.base.errors import BrochureError
from brochure.build.run import build_summary
from brochure.project.inputs import Hasher, fingerprint_options, project_fingerprint
from brochure.project.model import load_project

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
        from brochure.project.inputs import Hasher, document_key, project_fingerprint
        from brochure.project.model import documents, load_project
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


def test_a_stylesheet_chain_is_listed_in_the_same_order_in_every_process(make_project):
    root = make_project(
        {
            "styles/handout.css": '@import url("builtin:handout.css");\n@import url("a.css");\n'
            '@import url("b.css");\n@import url("c.css");\n',
            **{f"styles/{n}.css": f"/* {n} */\n" for n in "abc"},
        }
    )
    script = (
        "import sys; from pathlib import Path; from brochure.project.inputs import style_chain; "
        "print([p.name for p in style_chain(Path(sys.argv[1]), ['handout.css'])])"
    )
    orders = {
        subprocess.run(
            [sys.executable, "-c", script, str(root)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(orders) == 1, orders


def test_loading_a_project_never_opens_linked_files_outside_it_nor_a_fifo(make_project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "topic.md").write_text("---\ntitle: Not ours\nlang: en\n---\nSecret.\n")
    (outside / "documents.toml").write_text('[[document]]\nname = "{topic}"\n')
    (outside / "base.html").write_text("not the project's")
    root = make_project({"content/topics/a.md": topic("A", lang="en")})
    (root / "content/topics/b.md").symlink_to(outside / "topic.md")
    os.mkfifo(root / "content/topics/c.md")  # reading it would block for ever
    (root / "content/documents.toml").symlink_to(outside / "documents.toml")
    (root / "templates").mkdir()
    (root / "templates/base.html").symlink_to(outside / "base.html")

    def run() -> None:
        with pytest.raises(BrochureError) as raised:
            load_project(root)
        assert [str(p) for p in raised.value.problems] == [
            "content/documents.toml: cannot be read: outside the project "
            "(make it an ordinary text file inside the project)",
            "content/topics/b.md: cannot be read: outside the project "
            "(copy the file into content/topics/ instead of linking to it)",
            "content/topics/c.md: cannot be read: not a regular file "
            "(replace it with an ordinary Markdown file)",
        ]
        (root / "content/documents.toml").unlink()
        (root / "content/topics/b.md").unlink()
        (root / "content/topics/c.md").unlink()
        (outcome,) = [o for o in build_summary(load_project(root), root / "out").outcomes if o.name == "a"]
        assert "template 'base.html' cannot be used: outside the project" in str(outcome.error)

    opened = _files_opened(run)
    assert opened, "the audit hook saw no file opened"
    assert [p for p in opened if p.is_relative_to(outside)] == []


def test_a_file_changed_behind_the_cache_is_still_seen(make_project):
    import time

    root = make_project({"content/topics/a.md": topic("A", "Text one.\n", lang="en")})
    an_hour_ago = time.time() - 3600
    for path in root.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    build_summary(load_project(root), root / "out")
    # Same size, same modification time: only the change time (which no program can set) tells.
    path = root / "content/topics/a.md"
    info = path.stat()
    path.write_text(path.read_text().replace("Text one.", "Text two."))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_size == info.st_size
    summary = build_summary(load_project(root), root / "out")
    assert [o.name for o in summary.outcomes if o.status == "built"] == ["a", "brochure"]
