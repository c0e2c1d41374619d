"""Turn a topic's Markdown into HTML that is safe to render.

Raw HTML in Markdown is escaped, links are limited to a few schemes, and
images must be files inside the project: they are checked here, with the
topic's file and line, before WeasyPrint ever sees them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
from markdown.treeprocessors import Treeprocessor

from .content import Topic
from .errors import ContentError, Problem
from .images import too_large
from .paths import is_inside

LINK_SCHEMES = ("http", "https", "mailto", "tel")
MAX_NESTING = 8  # lists and quotes; the engine's layout recurses out at about 100
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


@dataclass
class _Found:
    """What the tree walk noticed, as (kind, url) pairs, to be placed on lines later."""

    bad_links: list[str] = field(default_factory=list)
    bad_images: list[tuple[str, str, str]] = field(default_factory=list)  # url, what, fix


class _Guard(Treeprocessor):
    """Drop unsafe links and point images at checked files inside the project."""

    def __init__(self, md: markdown.Markdown, topic: Topic, root: Path, found: _Found) -> None:
        super().__init__(md)
        self.topic, self.root, self.found = topic, root, found

    def run(self, root: ET.Element) -> None:
        for element in root.iter():
            if element.tag == "a":
                self._link(element)
            elif element.tag == "img":
                self._image(element)

    def _link(self, element: ET.Element) -> None:
        href = element.get("href", "")
        scheme = urlsplit(href).scheme.lower()
        if scheme in LINK_SCHEMES or (not scheme and href.startswith("#")):
            return
        self.found.bad_links.append(href)
        element.attrib.pop("href", None)

    def _image(self, element: ET.Element) -> None:
        src = element.get("src", "")
        parts = urlsplit(src)
        if parts.scheme or parts.netloc:
            self.found.bad_images.append(
                (
                    src,
                    "is not a file inside the project",
                    "copy the picture into content/images/ and write ![what it shows](../images/name.png)",
                )
            )
            element.set("src", "")
            return
        target = (self.topic.path.parent / unquote(parts.path)).resolve()
        if not is_inside(target, self.root):
            self.found.bad_images.append(
                (src, "points outside the project", "copy the picture into content/images/")
            )
        elif not target.is_file():
            self.found.bad_images.append(
                (src, "does not exist", "check the file name; paths are relative to the topic file")
            )
        elif target.suffix.lower() not in IMAGE_SUFFIXES:
            self.found.bad_images.append((src, "is not a picture", "use a PNG, JPEG, GIF, WebP or SVG file"))
        elif why := too_large(target):
            self.found.bad_images.append(
                (src, why, "resize it to at most a few thousand pixels on each side")
            )
        else:
            element.set("src", target.as_uri())
            return
        element.set("src", "")


def _line_of(topic: Topic, needle: str) -> int:
    for index, line in enumerate(topic.body.split("\n")):
        if needle and needle in line:
            return topic.body_line + index
    return topic.body_line


_QUOTE = re.compile(r"^\s{0,3}((?:>\s?)+)")
_ITEM = re.compile(r"^( *)(?:[-*+]|\d+[.)])\s")


def _check_nesting(topic: Topic) -> None:
    """Refuse lists and quotes nested deeper than MAX_NESTING, before Markdown recurses into them."""
    for index, line in enumerate(topic.body.split("\n")):
        depth = 0
        if quote := _QUOTE.match(line):
            depth = quote.group(1).count(">")
            line = line[quote.end() :]
        if item := _ITEM.match(line.expandtabs(4)):
            depth += len(item.group(1)) // 4 + 1
        if depth > MAX_NESTING:
            raise ContentError.at(
                topic.shown,
                topic.body_line + index,
                f"lists or quotes are nested {depth} levels deep; at most {MAX_NESTING} are allowed",
                "flatten the list: split it, or turn inner levels into sentences",
            )


def to_html(topic: Topic, root: Path) -> str:
    """The topic's body as HTML; raise ContentError for unsafe links and bad images."""
    _check_nesting(topic)
    md = markdown.Markdown(extensions=["tables", "sane_lists"], output_format="html")
    # Raw HTML is shown as text, never passed through (see ENGINE-NOTES.md).
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    found = _Found()
    md.treeprocessors.register(_Guard(md, topic, root, found), "brochure_guard", 0)
    try:
        html = md.convert(topic.body)
    except RecursionError:
        raise ContentError.at(
            topic.shown, topic.body_line, "is nested too deeply to read", "flatten nested lists and quotes"
        ) from None
    problems = [
        Problem(
            topic.shown,
            _line_of(topic, href),
            f"link {href!r} is not allowed",
            "links may start with http:, https:, mailto: or tel:, or '#' for a place in the page",
        )
        for href in found.bad_links
    ]
    problems += [
        Problem(topic.shown, _line_of(topic, src), f"image {src!r} {what}", fix)
        for src, what, fix in found.bad_images
    ]
    if problems:
        raise ContentError(problems)
    return html
