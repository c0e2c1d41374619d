"""Safe output: one build per folder, nothing partial after a kill, the same bytes every time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_sample, topic
from pypdf import PdfReader

from brochure.base.errors import BrochureError
from brochure.build.output import LOCK, MANIFEST, locked
from brochure.build.run import build, build_summary
from brochure.project.model import load_project
from brochure.warm import workers


def _pdfs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.pdf"))}


def test_same_inputs_give_byte_identical_pdfs(tmp_path):
    first = copy_sample(tmp_path / "one")
    second = copy_sample(tmp_path / "two")
    build_summary(load_project(first), first / "out")
    build_summary(load_project(second), second / "out", jobs=1)
    assert len(_pdfs(first / "out")) == 8
    assert _pdfs(first / "out") == _pdfs(second / "out")


def test_second_build_refuses_while_the_folder_is_locked(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    (root / "out").mkdir()
    waited = []
    with locked(root / "out", timeout=0):
        with pytest.raises(BrochureError) as caught:
            build(
                load_project(root),
                root / "out",
                names=["aftercare"],
                lock_timeout=0.3,
                on_wait=lambda: waited.append(1),
            )
    assert waited == [1]
    assert str(caught.value) == (
        f"{root / 'out'}: another build is writing to this folder (waited 0 s) "
        "(wait for it to finish, or build into another folder with --out)"
    )
    assert not (root / "out" / "aftercare.pdf").exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from brochure.build.output import locked
with locked(Path(sys.argv[1]), timeout=0):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_second_build_waits_for_the_first(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    (root / "out").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(root / "out"), "1.5"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    result = subprocess.run(
        [sys.executable, "-m", "brochure", "build", "aftercare", "--project", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    holder.wait()
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"Waiting for another build writing to {root / 'out'} ...")
    assert (root / "out/aftercare.pdf").exists()


@pytest.mark.parametrize("delay", [0.4, 0.8, 1.2, 1.6])
def test_a_killed_build_leaves_every_pdf_whole_and_no_stale_lock(tmp_path, delay):
    root = copy_sample(tmp_path / "clinic")
    build_summary(load_project(root), root / "out")
    before = _pdfs(root / "out")
    # Change every document, so that a forced build rewrites them all.
    brand = root / "content/brand.toml"
    brand.write_text(brand.read_text().replace("555-0142", "555-0199"))
    process = subprocess.Popen(
        [sys.executable, "-m", "brochure", "build", "--project", str(root), "--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    after = _pdfs(root / "out")
    assert set(after) == set(before)
    for name, data in after.items():
        text = PdfReader(root / "out" / name).pages[-1].extract_text()
        if data != before[name]:
            assert "555-0199" in text, name  # a new PDF is whole
        else:
            assert "555-0142" in text, name  # an old one untouched
    # No stale lock: the next build starts at once, and clears what the killed one left.
    summary = build_summary(load_project(root), root / "out", lock_timeout=0)
    assert not summary.failed
    assert all("555-0199" in PdfReader(p).pages[-1].extract_text() for p in (root / "out").glob("*.pdf"))
    assert sorted(p.name for p in (root / "out").iterdir() if p.name.startswith(".")) == sorted(
        [LOCK, MANIFEST]
    )


def test_a_render_over_the_memory_cap_fails_alone(make_project, monkeypatch):
    from conftest import png_bytes as _png

    root = make_project(
        {
            "content/topics/small.md": topic("Small"),
            # 36 megapixels: under the pixel cap, but some 140 MB once decoded.
            "content/topics/big.md": topic("Big", "![A large test picture](../images/big.png)\n"),
            "content/images/big.png": _png(6000, 6000),
            "content/documents.toml": '[[document]]\nname = "{topic}"\n',
        }
    )
    monkeypatch.setattr(workers, "MAX_RENDER_MEMORY_MB", 64)
    outcomes = {o.name: o for o in build(load_project(root), root / "out", jobs=1)}
    message = str(outcomes["big"].error)
    assert message.startswith("big: ")
    assert "memory" in message
    assert "Traceback" not in message
    assert outcomes["small"].error is None
    assert (root / "out/small.pdf").exists()
    assert not (root / "out/big.pdf").exists()


HANDOUTS_ONLY = '[[document]]\nname = "{topic}"\n'


def test_two_projects_in_one_folder_keep_each_others_pdfs(make_project, tmp_path):
    first = make_project(
        {
            "content/topics/a1.md": topic("A one"),
            "content/topics/a2.md": topic("A two"),
            "content/documents.toml": HANDOUTS_ONLY,
        },
        name="a",
    )
    second = make_project(
        {
            "content/topics/b1.md": topic("B one"),
            "content/topics/a1.md": topic("B's own a1"),
            "content/documents.toml": HANDOUTS_ONLY,
        },
        name="b",
    )
    shared = tmp_path / "shared"
    assert not build_summary(load_project(first), shared).failed
    a1, a2 = (shared / "a1.pdf").read_bytes(), (shared / "a2.pdf").read_bytes()
    summary = build_summary(load_project(second), shared)
    assert summary.removed == []
    assert (shared / "a1.pdf").read_bytes() == a1
    assert (shared / "a2.pdf").read_bytes() == a2
    assert (shared / "b1.pdf").exists()
    # b's a1 would replace a's: it fails and says why.
    (failed,) = summary.failed
    assert str(failed.error) == (
        f"{shared / 'a1.pdf'}: was written by another project ({first}); this build does not replace it "
        "(build each project into a folder of its own with --out, or rename the document)"
    )
    assert [str(n) for n in summary.notes] == [
        f"{shared}: also holds 2 PDFs of another project ({first}); this build leaves them alone "
        "(build each project into a folder of its own with --out)"
    ]
    # Each project still sees its own PDFs as up to date, and removes only its own.
    again = build_summary(load_project(first), shared)
    assert again.count("up to date") == 2
    assert again.removed == []
    (second / "content/topics/b1.md").unlink()
    (second / "content/topics/a1.md").unlink()
    (second / "content/topics/b2.md").write_text(topic("B two"))
    assert build_summary(load_project(second), shared).removed == ["b1"]
    assert (shared / "a1.pdf").read_bytes() == a1
    assert (shared / "a2.pdf").read_bytes() == a2


def test_a_copied_project_takes_over_the_pdfs_copied_with_it(tmp_path):
    import shutil

    first = copy_sample(tmp_path / "first")
    build_summary(load_project(first), first / "out", names=["aftercare", "results"])
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    (copy / "content/topics/results.md").unlink()
    (copy / "content/topics/aftercare.md").write_text(
        (copy / "content/topics/aftercare.md").read_text() + "\nOne more line.\n"
    )
    summary = build_summary(load_project(copy), copy / "out", names=["aftercare"])
    assert summary.count("built") == 1
    assert summary.notes == []


def _mount(*args: str) -> bool:
    """Run mount (the tests run as root); False where this machine does not allow it."""
    done = subprocess.run(["mount", *args], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` as a read-only bind mount of itself: refused even to root, unlike chmod 555."""
    if not _mount("--bind", str(folder), str(folder)):
        pytest.skip("mount is not allowed here")
    try:
        assert _mount("-o", "remount,ro,bind", str(folder))
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _cli_build(root: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "brochure", "build", "--project", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_a_read_only_output_folder_is_one_clear_error(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", lang="en"),
            "content/topics/b.md": topic("B", lang="en"),
            "content/documents.toml": HANDOUTS_ONLY,
        }
    )
    out = root / "out"
    build_summary(load_project(root), out)
    before = _pdfs(out)
    (root / "content/topics/a.md").write_text(topic("A changed", lang="en"))
    with _read_only(out):
        result = _cli_build(root)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: {out}: cannot be written: Read-only file system "
        "(make the folder writable, free some disk space, or choose another folder with --out)\n"
    )
    assert _pdfs(out) == before


def test_a_full_disk_at_the_manifest_is_a_clear_error(make_project, tmp_path):
    root = make_project({"content/topics/a.md": topic("A"), "content/documents.toml": HANDOUTS_ONLY})
    out = tmp_path / "small-disk"
    out.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(out)):
        pytest.skip("mount is not allowed here")
    try:
        # A build of named documents records no fingerprint: the next full build saves the manifest.
        build_summary(load_project(root), out, names=["a"])
        before = _pdfs(out)
        fd = os.open(out / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        result = _cli_build(root, "--out", str(out))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"Error: {out / MANIFEST}: cannot be written: No space left on device "
            "(make the folder writable, free some disk space, or choose another folder with --out)"
        )
        assert _pdfs(out) == before
        assert not list(out.glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(out)], check=True)


def test_pdfs_get_the_usual_permissions(make_project):
    root = make_project({"content/topics/a.md": topic("A"), "content/documents.toml": HANDOUTS_ONLY})
    old = os.umask(0o022)
    try:
        build_summary(load_project(root), root / "out")
    finally:
        os.umask(old)
    assert (root / "out/a.pdf").stat().st_mode & 0o777 == 0o644


CTRL_C_WHILE_IMPORTING = """
import importlib.abc, os, runpy, signal, sys

module = sys.argv[1]

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == module:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, arriving while this module loads
        return None

# As on a terminal: a test runner started in the background may ignore SIGINT.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.meta_path.insert(0, CtrlC())
sys.argv = ["brochure", *sys.argv[2:]]
runpy.run_module("brochure", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "module", ["click", "brochure.cli.main", "brochure.build.run", "brochure.warm.workers"]
)
def test_ctrl_c_at_any_moment_says_stopped(tmp_path, module):
    root = copy_sample(tmp_path / "clinic")
    command = [sys.executable, "-c", CTRL_C_WHILE_IMPORTING, module, "build", "--project", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "Stopped."
    assert result.returncode == 130


def test_a_killed_build_remembers_the_pdfs_it_wrote(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    build_summary(load_project(root), root / "out")
    before = _pdfs(root / "out")
    brand = root / "content/brand.toml"
    brand.write_text(brand.read_text().replace("555-0142", "555-0199"))
    process = subprocess.Popen(
        [sys.executable, "-m", "brochure", "build", "--project", str(root), "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it once two new PDFs are in place: the first was surely recorded before the second was written.
    new: set[str] = set()
    while len(new) < 2 and process.poll() is None:
        new = {name for name, data in _pdfs(root / "out").items() if data != before[name]}
        time.sleep(0.02)
    process.kill()
    process.wait()
    if len(new) >= len(before):
        pytest.skip("the build finished before it was killed")
    # What a killed build leaves behind: a temporary file of the manifest, say.
    (root / "out" / f".{MANIFEST}.1a2b3c4d.tmp").write_text("{")
    summary = build_summary(load_project(root), root / "out")
    assert not summary.failed
    assert summary.count("built") <= len(before) - (len(new) - 1)
    assert summary.count("up to date") >= len(new) - 1
    assert sorted(p.name for p in (root / "out").iterdir() if p.name.startswith(".")) == sorted(
        [LOCK, MANIFEST]
    )


def test_html_into_a_read_only_folder_is_one_clear_error(make_project):
    root = make_project({"content/topics/a.md": topic("A", lang="en")})
    out = root / "out"
    out.mkdir()
    with _read_only(out):
        result = subprocess.run(
            [sys.executable, "-m", "brochure", "html", "a", "--project", str(root)],
            capture_output=True,
            text=True,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {out}")
    assert "Read-only file system (check the folder's permissions and free space" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(out.iterdir()) == []
