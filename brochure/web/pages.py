"""PDF pages as PNG pictures (pypdfium2): handout thumbnails, cached on disk, and previews, kept in memory.

A thumbnail shows an unpersonalised handout from out/, which holds no
patient detail, so it is cached in out/.cache/desk/ under the hash of the
PDF's bytes. The handouts page asks for every thumbnail at once, so the
build's manifest and each PDF's hash are kept in memory while their files
stay the same (same inode, size and modification time).

A preview of a personalised packet is made from bytes in memory and
never written anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

from brochure.base import caches
from brochure.build.output import JOURNAL, MANIFEST, Entry, Manifest, write_atomic

THUMB_WIDTH = 192
#: A preview is shown about 800 px wide (the patient's name then about 13 px tall) and can be zoomed.
PREVIEW_WIDTH = 1224
CACHE = Path(".cache") / "desk"
#: pdfium is not thread-safe: one render at a time in this process.
_pdfium = threading.Lock()
#: What was last read, with the state of the files it came from: manifests by (out, root), hashes by path.
_known: dict[object, tuple[tuple, object]] = caches.kept("web.pictures")
_known_lock = threading.Lock()


@dataclass(frozen=True)
class Page:
    """One page drawn: the picture, and its text for people who cannot see the picture."""

    png: bytes
    text: str
    #: Where on the page (0 top, 1 bottom) the text looked for was found; None when it was not.
    found: float | None = None

    @property
    def data_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def draw(
    pdf: bytes, width: int, *, first: int | None = None, text: bool = False, find: str = ""
) -> list[Page]:
    """Each page (or the ``first`` N) of a PDF as a PNG ``width`` pixels wide, with its text if asked,
    and where on each page ``find`` first is."""
    import pypdfium2 as pdfium

    drawn = []
    with _pdfium:
        document = pdfium.PdfDocument(pdf)
        try:
            count = len(document) if first is None else min(first, len(document))
            for index in range(count):
                page = document[index]
                try:
                    image = page.render(scale=width / page.get_width()).to_pil()
                    words = ""
                    found = None
                    if text:
                        textpage = page.get_textpage()
                        words = textpage.get_text_bounded()
                        found = _where(textpage, find, page.get_height()) if find else None
                        textpage.close()
                finally:
                    page.close()
                buffer = io.BytesIO()
                image.save(buffer, "PNG", compress_level=1)  # fast; the picture stays in memory
                drawn.append(Page(buffer.getvalue(), " ".join(words.split()), found))
        finally:
            document.close()
    return drawn


def _where(textpage, find: str, height: float) -> float | None:  # noqa: ANN001 - a pdfium text page
    """How far down the page ``find`` first is (0 top, 1 bottom), or None."""
    searcher = textpage.search(find, match_case=False)
    try:
        hit = searcher.get_next()
        if hit is None:
            return None
        _left, _bottom, _right, top = textpage.get_charbox(hit[0])
        return max(0.0, min(1.0, 1 - top / height))
    finally:
        searcher.close()


def preview(pdf: bytes, width: int = PREVIEW_WIDTH, find: str = "") -> list[Page]:
    """Every page of a personalised packet, drawn in memory, with its text and where ``find`` is."""
    return draw(pdf, width, text=True, find=find)


def built(out: Path, root: Path) -> dict[str, Entry]:
    """The PDFs the project at ``root`` built into ``out``, by document name (from the build's manifest)."""
    stamp = _stamp(out / MANIFEST, out / JOURNAL)
    ours = _recall((out, root), stamp)
    if ours is None:
        ours = Manifest(out, root).ours()
        _remember((out, root), stamp, ours)
    return dict(ours)


def pdf_version(out: Path, root: Path, name: str) -> str | None:
    """A short hash of out/NAME.pdf as the build wrote it; None when there is none."""
    entry = built(out, root).get(name)
    return entry.sha256[:16] if entry else None


def thumbnail(out: Path, root: Path, name: str) -> bytes | None:
    """The first page of out/NAME.pdf as a small PNG, from the cache when its PDF has not changed."""
    entry = built(out, root).get(name)
    if entry is None:
        return None
    path = out / entry.file
    stamp = _stamp(path)
    key = _recall(path, stamp)
    if key is not None:
        with contextlib.suppress(OSError):
            return (out / CACHE / f"{key}.png").read_bytes()
    try:
        pdf = path.read_bytes()
    except OSError:
        return None
    key = hashlib.sha256(pdf).hexdigest()
    if None not in stamp:
        _remember(path, stamp, key)
    cached = out / CACHE / f"{key}.png"
    with contextlib.suppress(OSError):
        return cached.read_bytes()
    png = draw(pdf, THUMB_WIDTH, first=1)[0].png
    with contextlib.suppress(OSError):
        write_atomic(cached, png)
    return png


def _stamp(*paths: Path) -> tuple:
    """Each file's inode, size and modification time (None for a missing one): a write changes it."""
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(stamps)


def _recall(key: object, stamp: tuple):  # noqa: ANN202 - whatever _remember kept
    """What was kept for ``key``, if its files still have the ``stamp`` they had; else None."""
    with _known_lock:
        kept = _known.get(key)
    return kept[1] if kept is not None and kept[0] == stamp else None


def _remember(key: object, stamp: tuple, value: object) -> None:
    """Keep ``value``, read from files that had ``stamp`` just before they were read."""
    with _known_lock:
        _known[key] = (stamp, value)


def refresh(out: Path, root: Path, names: list[str]) -> None:
    """Make the thumbnails of freshly built documents now, and drop those no PDF has any more."""
    for name in names:
        thumbnail(out, root, name)
    folder = out / CACHE
    keep = {e.sha256 for e in Manifest(out, root).entries.values()}
    with contextlib.suppress(OSError):
        for path in folder.glob("*.png"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
