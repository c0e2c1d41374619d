"""Fixtures: small projects built in tmp_path from a dict, the sample built once, PDF readers."""

from __future__ import annotations

import os
import re
import shutil
import struct
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
from pypdf import PdfReader

from brochure.build.run import Outcome, build
from brochure.project.model import load_project

# Real print and mail servers (a private cupsd, aiosmtpd with TLS): see tests/servers.py.
pytest_plugins = ["servers"]

# Builds in tests render in their own workers; test_server.py turns the
# render server on, in a folder of its own, and stops it again.
os.environ["BROCHURE_SERVER"] = "off"
# Parsed topics are cached between runs (content.TopicCache): in a folder of the test run's own,
# not the user's cache folder.
if "BROCHURE_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["BROCHURE_CACHE_DIR"] = tempfile.mkdtemp(prefix="brochure-test-cache-")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_LOGO = (REPO / "content" / "images" / "logo.svg").read_text()

MINIMAL_BRAND = """\
clinic_name = "Test Clinic"
logo = "images/logo.svg"
disclaimer = "General information only."

[contact]
address = "1 Test Road, Testville"
phone = "555-0100"
"""


def topic(title: str, body: str = "Some text.", **meta: object) -> str:
    """A topic file's text with front matter."""
    lines = [f"title: {title}"] + [f"{k}: {v}" for k, v in meta.items()]
    return "---\n" + "\n".join(lines) + "\n---\n\n" + textwrap.dedent(body)


ProjectMaker = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectMaker:
    """Make a project folder from {relative path: text}; a minimal brand and logo are added unless given."""

    def make(
        files: dict[str, str | bytes] | None = None, *, name: str = "clinic", brand: bool = True
    ) -> Path:
        root = tmp_path / name
        defaults: dict[str, str | bytes] = {}
        if brand:
            defaults = {"content/brand.toml": MINIMAL_BRAND, "content/images/logo.svg": SAMPLE_LOGO}
        for rel, data in {**defaults, **(files or {})}.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data, encoding="utf-8")
        return root

    return make


def build_ok(root: Path, out: Path | None = None, **kwargs: object) -> dict[str, Outcome]:
    """Build a project and fail the test if any document failed."""
    outcomes = build(load_project(root), out or root / "out", **kwargs)
    failed = {o.name: str(o.error) for o in outcomes if o.error}
    assert not failed, failed
    return {o.name: o for o in outcomes}


@pytest.fixture(scope="session")
def sample_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project built once (into a temporary out folder)."""
    out = tmp_path_factory.mktemp("sample-out")
    build_ok(REPO, out)
    return out


@pytest.fixture(scope="session")
def sample_topics() -> list:
    return list(load_project(REPO).topics)


def pdf_text(path: Path) -> list[str]:
    """The text of each page, whitespace folded."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(path).pages]


def pdf_text_sizes(path: Path, page: int = 0) -> list[tuple[float, str]]:
    """Each run of text on a page with its size in points, as drawn."""
    runs: list[tuple[float, str]] = []

    def visit(text: str, cm: list, tm: list, font: dict, size: float) -> None:
        if text.strip():
            runs.append((round(abs(size * tm[3] * cm[3]), 2), text))

    PdfReader(path).pages[page].extract_text(visitor_text=visit)
    return runs


def pdf_fonts(path: Path) -> dict[str, bool]:
    """Every font in the PDF: base name -> whether its file is embedded."""
    fonts: dict[str, bool] = {}
    with pikepdf.open(path) as pdf:
        for page in pdf.pages:
            for _, font in (page.Resources.get("/Font") or {}).items():
                descendants = font.get("/DescendantFonts")
                base = descendants[0] if descendants else font
                descriptor = base.get("/FontDescriptor", {})
                embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                fonts[str(font.BaseFont)] = embedded
    return fonts


def copy_sample(dest: Path, variants: bool = False) -> Path:
    """A copy of the sample project's content (no templates or styles of its own).

    Without ``variants``, the copy makes the 8 documents of the English sample:
    its translations, large print and tri-fold are left out, to keep the tests
    that build it fast (test_variants.py, test_trifold.py and the tests on
    ``sample_out`` cover them).
    """
    shutil.copytree(REPO / "content", dest / "content")
    if not variants:
        for translation in (dest / "content/topics").glob("*.*.md"):
            translation.unlink()
        documents = dest / "content/documents.toml"
        text = re.sub(r"(?m)^(languages|large_print\w*) = .*$", "", documents.read_text())
        entries = text.split("[[document]]")
        text = "[[document]]".join(e for e in entries if 'kind = "trifold"' not in e)
        documents.write_text(text)
    return dest


def structure(path: Path) -> list[dict]:
    """Every structure element of the PDF, in order: its type, /Alt and /Lang."""
    found: list[dict] = []

    def visit(element: object) -> None:
        if isinstance(element, pikepdf.Array):
            for kid in element:
                visit(kid)
        elif isinstance(element, pikepdf.Dictionary) and "/S" in element:
            found.append(
                {
                    "type": str(element.S),
                    "alt": str(element.Alt) if "/Alt" in element else None,
                    "lang": str(element.Lang) if "/Lang" in element else None,
                }
            )
            visit(element.get("/K"))

    with pikepdf.open(path) as pdf:
        visit(pdf.Root.StructTreeRoot.K)
    return found


def grow(path: Path, share: float) -> None:
    """Make a topic's body longer by ``share`` of itself (whole paragraphs and lists)."""
    head, body = path.read_text().split("\n---\n", 1)
    blocks = body.strip().split("\n\n")
    extra, size = [], 0
    while size < share * len(body):
        block = blocks[len(extra) % len(blocks)].replace("## ", "## More: ")
        extra.append(block)
        size += len(block) + 2
    path.write_text(head + "\n---\n" + body.rstrip() + "\n\n" + "\n\n".join(extra) + "\n")


def png_bytes(width: int, height: int) -> bytes:
    """A real PNG, 1-bit grey, all white; small on disk whatever its size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """This machine's delivery settings, named by BROCHURE_SETTINGS, with the delivery record (and
    so the audit trail and the staff accounts beside it) in tmp_path, never the user's own."""
    from brochure.deliver.settings import load_settings

    path = tmp_path / "settings.toml"
    path.write_text(f'[record]\npath = "{tmp_path / "private" / "deliveries.sqlite"}"\n')
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    return load_settings()
