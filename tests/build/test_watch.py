"""`brochure watch`, run as a person would: save a file, see the PDF follow."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, copy_sample
from pypdf import PdfReader

from brochure.build.watch import watched_folders


class Watcher:
    """`brochure watch` in a subprocess, its output read line by line."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "brochure", "watch", "--project", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, text: str, timeout: float = 60) -> list[str]:
        """Lines up to and including the first that starts with ``text``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith(text):
                return seen
        pytest.fail(f"no line starting {text!r} within {timeout} s; saw {seen}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


def _text(pdf: Path) -> str:
    return " ".join(PdfReader(pdf).pages[0].extract_text().split())


def test_watch_rebuilds_what_a_change_affects_and_survives_mistakes(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    watcher = Watcher(root)
    try:
        first = watcher.until("Watching for changes")
        assert any(line.startswith("8 rebuilt, 0 up to date, 0 failed") for line in first)
        topic = root / "content/topics/aftercare.md"
        text = topic.read_text()
        topic.write_text(text.replace("We may ask you to come back", "We will ask you to come back"))
        lines = watcher.until("Watching for changes")
        assert lines[0] == "changed: content/topics/aftercare.md"
        assert sorted(line.split(" (")[0] for line in lines if line.startswith("built ")) == [
            f"built {root / 'out' / 'aftercare.pdf'}",
            f"built {root / 'out' / 'brochure.pdf'}",
        ]
        assert lines[-2].startswith("2 rebuilt, 6 up to date, 0 failed in ")
        assert "We will ask you" in _text(root / "out/aftercare.pdf")
        # A mistake: the error is shown, the old PDF stays, watching goes on.
        topic.write_text(
            text.replace('title: "Aftercare: what to expect and what to do"', "title: Aftercare: oops")
        )
        lines = watcher.until("Watching for changes")
        assert lines[1].startswith("Error: content/topics/aftercare.md:2: front matter is not valid YAML")
        assert "We will ask you" in _text(root / "out/aftercare.pdf")
        topic.write_text(text)
        lines = watcher.until("Watching for changes")
        assert lines[-2].startswith("2 rebuilt, 6 up to date, 0 failed in ")
        assert "We may ask you" in _text(root / "out/aftercare.pdf")
    finally:
        code = watcher.stop()
    assert code == 0
    assert watcher.until("Stopped.")[-1] == "Stopped."


def test_watched_folders_are_content_templates_and_styles(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    (root / "styles").mkdir()
    folders = watched_folders(root)
    assert root / "content" in folders
    assert root / "styles" in folders
    assert root / "out" not in folders
    # The repository is itself a project: its built-in folders are watched once.
    assert sorted(watched_folders(REPO)) == sorted({REPO / "content", REPO / "templates", REPO / "styles"})
