"""Rendering safety: nothing outside the project is read, nothing is fetched, nothing attached."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest
from conftest import pdf_text, topic

from brochure.base.errors import RenderError
from brochure.build.run import build
from brochure.engine import pdf as pdf_module
from brochure.engine.pdf import render_pdf
from brochure.project.model import documents, load_project

_opened: list[str] = []
_recording = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if _recording.is_set() and event == "open" and isinstance(args[0], str | bytes | Path):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every file Python opens while the test runs."""
    _opened.clear()
    _recording.set()
    yield _opened
    _recording.clear()


class Listener:
    """A TCP listener on loopback that counts the connections it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


HOSTILE = """\
Before <img src="file:///etc/passwd"> after.

<link rel="attachment" href="file:///etc/hostname">

<script>alert(1)</script>
"""


def test_raw_html_in_markdown_shows_as_text_and_reads_nothing(make_project, opened):
    root = make_project({"content/topics/a.md": topic("A", HOSTILE)})
    outcome = build(load_project(root), root / "out", names=["a"])[0]
    assert outcome.error is None, outcome.error
    (text,) = pdf_text(root / "out" / "a.pdf")
    assert '<img src="file:///etc/passwd">' in text
    assert '<link rel="attachment" href="file:///etc/hostname">' in text
    assert "<script>alert(1)</script>" in text
    assert not [p for p in opened if p.startswith("/etc/")]
    with pikepdf.open(root / "out" / "a.pdf") as doc:
        assert "/EmbeddedFiles" not in doc.Root.get("/Names", {})
        assert not doc.attachments


def test_remote_image_in_markdown_fails_cleanly_and_is_never_fetched(make_project, listener, opened):
    root = make_project(
        {
            "content/topics/a.md": topic("A", f"Intro.\n\n![x](http://127.0.0.1:{listener.port}/x.png)\n"),
        }
    )
    outcome = build(load_project(root), root / "out", names=["a"])[0]
    assert str(outcome.error) == (
        f"content/topics/a.md:7: image 'http://127.0.0.1:{listener.port}/x.png' is not a file inside the project "
        "(copy the picture into content/images/ and write ![what it shows](../images/name.png))"
    )
    assert listener.connections == 0
    assert not (root / "out" / "a.pdf").exists()


def test_the_hostile_topic_of_issue_2(make_project, listener, opened):
    """One topic with raw HTML and a loopback image: fails on the image, reads and fetches nothing."""
    image = f"![x](http://127.0.0.1:{listener.port}/x.png)\n"
    root = make_project({"content/topics/a.md": topic("A", HOSTILE + "\n" + image)})
    outcome = build(load_project(root), root / "out", names=["a"])[0]
    assert f"image 'http://127.0.0.1:{listener.port}/x.png' is not a file inside the project" in str(
        outcome.error
    )
    assert listener.connections == 0
    assert not [p for p in opened if p.startswith("/etc/")]
    assert not (root / "out" / "a.pdf").exists()


def _html(body: str) -> str:
    return f'<!DOCTYPE html><html lang="en"><head><title>T</title></head><body>{body}</body></html>'


@pytest.mark.parametrize(
    "element",
    [
        '<img src="file:///etc/passwd" alt="x">',
        '<img src="file:///dev/urandom" alt="x">',
        '<img src="../../../../../../etc/passwd" alt="x">',
        '<img src="http://127.0.0.1:{port}/x.png" alt="x">',
        '<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">',
        '<style>@import url("http://127.0.0.1:{port}/y.css");</style>',
    ],
)
def test_fetcher_refuses_everything_outside_the_project(tmp_path, listener, opened, element):
    """Even HTML that skipped the Markdown guard (a template, say) reads nothing outside."""
    html = _html("<p>Hello</p>" + element.format(port=listener.port))
    with pytest.raises(
        RenderError, match=r"^doc: cannot use .*(outside the project|only files inside the project)"
    ):
        render_pdf(
            html, base_url=tmp_path.as_uri() + "/", roots=[tmp_path], document="doc", allowed_fonts=None
        )
    assert listener.connections == 0
    assert not [p for p in opened if p.startswith(("/etc/", "/dev/"))]


def test_attachment_links_are_never_embedded(tmp_path):
    inside = tmp_path / "notes.txt"
    inside.write_text("private")
    html = _html(f'<link rel="attachment" href="{inside.as_uri()}"><p>Hello</p>')
    rendered = render_pdf(
        html, base_url=tmp_path.as_uri() + "/", roots=[tmp_path], document="doc", allowed_fonts=None
    )
    out = tmp_path / "a.pdf"
    out.write_bytes(rendered.pdf)
    with pikepdf.open(out) as doc:
        assert not doc.attachments
    assert b"private" not in rendered.pdf


def test_data_uris_and_project_files_are_allowed(tmp_path):
    pixel = "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>"
    (tmp_path / "a.css").write_text("p { color: red }")
    html = _html(f'<link rel="stylesheet" href="a.css"><img src="{pixel}" alt="dot"><p>Hello</p>')
    rendered = render_pdf(
        html, base_url=tmp_path.as_uri() + "/", roots=[tmp_path], document="doc", allowed_fonts=None
    )
    assert rendered.pages == 1


def test_oversized_resource_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_module, "MAX_RESOURCE_BYTES", 100)
    (tmp_path / "big.css").write_text("p { color: red }\n" * 20)
    html = _html('<link rel="stylesheet" href="big.css"><p>Hello</p>')
    with pytest.raises(RenderError, match="big.css: larger than"):
        render_pdf(
            html, base_url=tmp_path.as_uri() + "/", roots=[tmp_path], document="doc", allowed_fonts=None
        )


def test_missing_stylesheet_fails_with_its_path(tmp_path):
    html = _html('<link rel="stylesheet" href="nope.css"><p>Hello</p>')
    with pytest.raises(RenderError, match=r"cannot use file://.*/nope.css: file not found"):
        render_pdf(
            html, base_url=tmp_path.as_uri() + "/", roots=[tmp_path], document="doc", allowed_fonts=None
        )


def test_a_picture_the_engine_cannot_decode_is_reported_with_a_reason(make_project):
    # The header looks like SVG, so only the engine finds out: it logs an empty reason.
    root = make_project(
        {
            "content/images/broken.svg": '<svg xmlns="http://www.w3.org/2000/svg"><g>\n',
            "content/topics/a.md": topic("A", "Text.\n\n![a chart](../images/broken.svg)\n", lang="en"),
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert str(outcome.error).endswith(
        "broken.svg': the file is empty or damaged, or is not what its name says "
        "(fix the content or template it names)"
    ), outcome.error


def test_a_logo_that_is_not_a_picture_is_refused_in_the_brand(make_project):
    from brochure.base.errors import ConfigError
    from brochure.project.config import load_brand

    root = make_project({"content/images/logo.svg": "just some words\n"})
    with pytest.raises(ConfigError) as caught:
        load_brand(root)
    assert str(caught.value) == (
        "content/brand.toml:2: 'logo' is not an SVG picture that can be read (the file is damaged, "
        "or its name has the wrong ending) (export the logo again as SVG)"
    )


def test_without_page_boxes_a_document_is_still_made_going_by_its_page_count(
    make_project, monkeypatch, tmp_path
):
    """A WeasyPrint that keeps a page's boxes elsewhere (engine.private.page_box finds none)."""
    from brochure.document.compose import render_document
    from brochure.engine import private

    root = make_project({"content/topics/a.md": topic("A", "Some text.\n\n" + "More words here. " * 30)})
    project = load_project(root)
    (doc,) = [d for d in documents(project) if d.name == "a"]
    monkeypatch.setattr(private, "page_box", lambda page: None)
    rendered = render_document(project, doc, "letter")
    assert doc.budget.allows(rendered.pages)  # still fitted, by its page count
    out = tmp_path / "a.pdf"
    out.write_bytes(rendered.pdf)
    assert "More words here" in " ".join(pdf_text(out))
