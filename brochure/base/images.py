"""Picture sizes read from file headers, so an oversized picture is refused before it is decoded."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from brochure.base.files import refusal

#: About 40 megapixels: far more than print needs (8 x 10 inches at 600 dpi
#: is 29 megapixels), far less than what exhausts memory when decoded.
MAX_IMAGE_PIXELS = 40_000_000


def pixel_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP picture; None for others (SVG is vector)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        # Start-of-frame markers carry the size (not DHT, JPG, DAC).
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def too_large(path_or_data: Path | bytes) -> str | None:
    """Why a picture is over the pixel cap, or None when it is fine."""
    if isinstance(path_or_data, Path):
        with path_or_data.open("rb") as handle:
            head = handle.read(256 * 1024)  # JPEG headers may sit behind metadata
    else:
        head = path_or_data
    size = pixel_size(head)
    if size and size[0] * size[1] > MAX_IMAGE_PIXELS:
        cap = MAX_IMAGE_PIXELS // 1_000_000
        return f"is {size[0]:,} x {size[1]:,} pixels, more than the {cap} megapixels allowed"
    return None


#: CSS pixels per unit, for an SVG's width and height.
_SVG_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4}
_SVG_TAG = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE)
_LENGTH = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*")
#: What a browser gives a picture that states no size of its own.
DEFAULT_SIZE = (300.0, 150.0)


def _svg_attribute(tag: bytes, name: str) -> str | None:
    found = re.search(rb"\s" + name.encode() + rb"""\s*=\s*["']([^"']*)["']""", tag)
    return found.group(1).decode("ascii", "replace") if found else None


def _svg_size(head: bytes) -> tuple[float, float] | None:
    tag = _SVG_TAG.search(head)
    if tag is None:
        return None
    sizes = []
    for name in ("width", "height"):
        value = _svg_attribute(tag.group(), name) or ""
        length = _LENGTH.fullmatch(value.lower())
        unit = length and _SVG_UNITS.get(length.group(2))
        sizes.append(float(length.group(1)) * unit if length and unit else None)
    box = (_svg_attribute(tag.group(), "viewBox") or "").replace(",", " ").split()
    if len(box) == 4:
        try:
            box_width, box_height = float(box[2]), float(box[3])
        except ValueError:
            box_width = box_height = 0.0
        if box_width > 0 and box_height > 0:
            width, height = sizes
            if width is None and height is None:
                return box_width, box_height
            if width is None and height is not None:
                return height * box_width / box_height, height
            if height is None and width is not None:
                return width, width * box_height / box_width
    width, height = sizes
    if width is None or height is None:
        return None
    return width, height


def natural_size(path: Path) -> tuple[float, float]:
    """A picture's own size in CSS pixels (one pixel of a bitmap is one CSS pixel, as in the engine).

    Read from the file's header, never decoded; DEFAULT_SIZE when the file does not say.
    """
    with path.open("rb") as handle:
        head = handle.read(256 * 1024)
    size = pixel_size(head) or _svg_size(head)
    if not size or size[0] <= 0 or size[1] <= 0:
        return DEFAULT_SIZE
    return float(size[0]), float(size[1])


_KINDS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WebP", ".svg": "SVG"}


def unreadable(path: Path) -> str | None:
    """Why a picture file cannot be drawn, judged from its header; None when it looks fine."""
    kind = _KINDS.get(path.suffix.lower())
    if kind is None:
        return None
    if why := refusal(path):  # a FIFO would block, a huge file is refused unread
        return "does not exist" if why == "file not found" else f"is {why}"
    with path.open("rb") as handle:
        head = handle.read(256 * 1024)
    if not head.strip():
        return "is an empty file"
    found = _SVG_TAG.search(head) if kind == "SVG" else pixel_size(head)
    if not found:
        article = "an" if kind == "SVG" else "a"
        return (
            f"is not {article} {kind} picture that can be read "
            "(the file is damaged, or its name has the wrong ending)"
        )
    return None
