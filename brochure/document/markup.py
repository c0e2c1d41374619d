"""Turn a topic's Markdown into HTML that is safe to render, and note what is wrong with it.

Raw HTML in Markdown is escaped, links are limited to a few schemes (or
other topics and headings), and images must be files inside the project
with alt text. Each problem is placed on its line in the topic file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
from markdown.extensions.toc import slugify
from markdown.treeprocessors import Treeprocessor

from brochure.base.errors import ContentError, Problem
from brochure.base.images import natural_size, too_large, unreadable
from brochure.base.paths import is_inside
from brochure.document import messages
from brochure.project.inputs import headings
from brochure.project.schema import unprintable
from brochure.project.topics import Topic

LINK_SCHEMES = ("http", "https", "mailto", "tel")
MAX_NESTING = 8  # lists and quotes; the engine's layout recurses out at about 100
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
#: Alt text that marks a picture as decoration, with nothing to describe.
DECORATIVE = "decorative"


_CALLOUT_TITLE = re.compile(r'^!!!\s*[\w-]+\s+"([^"]+)"', re.M)


def heading_ids(topic: Topic) -> set[str]:
    """The anchors of a topic's headings and callout titles, as links write them: '#what-to-ask'."""
    titles = [*headings(topic.body), *_CALLOUT_TITLE.findall(topic.body)]
    return {slugify(text, "-") for text in titles}


def anchor(topic_slug: str, heading: str | None = None) -> str:
    """The id a topic or one of its headings has in the rendered HTML (unique across a brochure)."""
    return f"topic-{topic_slug}" + (f"--{heading}" if heading else "")


@dataclass
class Converted:
    """A topic as HTML, with what is wrong with it: errors stop a build, warnings do not."""

    html: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _Found:
    """What the tree walk noticed, as (needle, message, fix, check) to be placed on lines later."""

    errors: list[tuple[str, str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str, str, str]] = field(default_factory=list)


class _Guard(Treeprocessor):
    """Check links, images and headings; point images at checked files inside the project."""

    def __init__(
        self,
        md: markdown.Markdown,
        topic: Topic,
        root: Path,
        topics: Mapping[str, Topic],
        here: frozenset[str],
        found: _Found,
    ) -> None:
        super().__init__(md)
        self.topic, self.root, self.topics, self.here, self.found = topic, root, topics, here, found

    def run(self, root: ET.Element) -> None:
        level = 1  # the topic's title is the page's h1
        for element in root.iter():
            if element.tag == "a":
                self._link(element)
            elif element.tag == "img":
                self._image(element)
            elif re.fullmatch(r"h[1-6]", element.tag):
                level = self._heading(element, level)

    def _link(self, element: ET.Element) -> None:
        href = element.get("href", "")
        parts = urlsplit(href)
        if parts.scheme.lower() in LINK_SCHEMES:
            return
        if parts.scheme or parts.netloc or (parts.path and not parts.path.endswith(".md")):
            self.found.errors.append(
                (
                    href,
                    f"link {href!r} is not allowed",
                    "links may start with http:, https:, mailto: or tel:, or '#' for a place in the page",
                    "links",
                )
            )
            element.attrib.pop("href", None)
            return
        slug = Path(unquote(parts.path)).stem if parts.path else self.topic.slug
        target = self.topics.get(slug)
        if target is None:
            known = ", ".join(f"{s}.md" for s in sorted(self.topics))
            self.found.errors.append(
                (href, f"link {href!r} points to a topic that does not exist", f"topics: {known}", "links")
            )
            element.attrib.pop("href", None)
            return
        heading = parts.fragment or None
        if heading and heading not in heading_ids(target):
            known = ", ".join(f"#{h}" for h in sorted(heading_ids(target))) or "none"
            self.found.errors.append(
                (
                    href,
                    f"link {href!r} points to a heading that does not exist",
                    f"headings there: {known}",
                    "links",
                )
            )
            element.attrib.pop("href", None)
            return
        if slug in self.here:
            element.set("href", "#" + anchor(slug, heading))
        else:
            # The other topic is not in this PDF (a one-page handout): keep the words, drop the link.
            element.attrib.pop("href", None)

    def _image(self, element: ET.Element) -> None:
        src = element.get("src", "")
        alt = (element.get("alt") or "").strip()
        element.set("src", "")
        if not alt:
            self.found.errors.append(
                (
                    src,
                    f"image {src!r} has no alt text",
                    f"describe it for people who cannot see it: ![what it shows]({src}), "
                    f"or mark a purely decorative picture ![{DECORATIVE}]({src})",
                    "alt-text",
                )
            )
        parts = urlsplit(src)
        if parts.scheme or parts.netloc:
            self._bad_image(
                src,
                "is not a file inside the project",
                "copy the picture into content/images/ and write ![what it shows](../images/name.png)",
            )
            return
        target = (self.topic.path.parent / unquote(parts.path)).resolve()
        if not is_inside(target, self.root):
            self._bad_image(src, "points outside the project", "copy the picture into content/images/")
        elif not target.is_file():
            self._bad_image(
                src, "does not exist", "check the file name; paths are relative to the topic file"
            )
        elif target.suffix.lower() not in IMAGE_SUFFIXES:
            self._bad_image(src, "is not a picture", "use a PNG, JPEG, GIF, WebP or SVG file")
        elif why := unreadable(target):
            self._bad_image(src, why, "open it in a picture editor and save it again as PNG, JPEG or SVG")
        elif why := too_large(target):
            self._bad_image(src, why, "resize it to at most a few thousand pixels on each side")
        elif alt.lower() == DECORATIVE:
            _decoration(element, target)
        else:
            element.set("src", target.as_uri())

    def _bad_image(self, src: str, what: str, fix: str) -> None:
        self.found.errors.append((src, f"image {src!r} {what}", fix, "images"))

    def _heading(self, element: ET.Element, previous: int) -> int:
        level = int(element.tag[1])
        text = "".join(element.itertext()).strip()
        if element.get("class") == "callout-title" and len(element) and element[0].tail:
            text = element[0].tail.strip()  # a callout's title, without its kind
        element.set("id", anchor(self.topic.slug, slugify(text, "-")))
        if level == 1:
            self.found.warnings.append(
                (
                    text,
                    f"heading '{text}' is a main heading (#), like the topic's title",
                    f"start sections with ##: '## {text}'",
                    "headings",
                )
            )
        elif level > previous + 1:
            marks = "#" * (previous + 1)
            self.found.warnings.append(
                (
                    text,
                    f"heading '{text}' skips from level {previous} to level {level}",
                    f"use '{marks} {text}', one level below the heading before it",
                    "headings",
                )
            )
        return level


#: The kinds of callout: ``!!! warning "When to call us"``, then the text indented by 4 spaces.
CALLOUT_KINDS = ("note", "tip", "warning")


class _Callouts(Treeprocessor):
    """Turn Markdown admonitions into callouts: a section whose heading starts with its kind, in words.

    The kind ("Warning:") is printed, so that it is read aloud and seen
    without colour; the heading keeps the callout in the PDF's outline and
    tags it as a section (Sect) with a heading.
    """

    def __init__(self, md: markdown.Markdown, labels: Mapping[str, str], found: _Found) -> None:
        super().__init__(md)
        self.labels, self.found = labels, found

    def run(self, root: ET.Element) -> None:
        for element in root.iter("div"):
            classes = element.get("class", "").split()
            if "admonition" not in classes:
                continue
            kind = next((c for c in classes if c != "admonition"), "note")
            if kind not in CALLOUT_KINDS:
                self.found.errors.append(
                    (
                        f"!!! {kind}",
                        f"callout kind {kind!r} is not known",
                        "use !!! note, !!! tip or !!! warning",
                        "callouts",
                    )
                )
                kind = "note"
            first = element[0] if len(element) else None
            title = ""
            if first is not None and first.tag == "p" and first.get("class") == "admonition-title":
                title = "".join(first.itertext()).strip()
                element.remove(first)
            if title.lower() == kind:
                title = ""  # "!!! note" alone: the kind is the whole heading
            label = self.labels[kind]
            element.tag = "section"
            element.attrib.clear()
            element.set("class", f"callout callout-{kind}")
            heading = ET.Element("h2", {"class": "callout-title"})
            kind_span = ET.SubElement(heading, "span", {"class": "callout-kind"})
            kind_span.text = f"{label}:" if title else label
            if title:
                kind_span.tail = " " + title
            element.insert(0, heading)


class _Figures(Treeprocessor):
    """Make a picture that stands alone in its paragraph and has a title a figure with a caption:
    ``![what it shows](../images/face.svg "The caption under it.")``. The alt text is for people who
    cannot see the picture; the caption is printed for everyone."""

    def run(self, root: ET.Element) -> None:
        for paragraph in root.iter("p"):
            children = list(paragraph)
            if len(children) != 1 or children[0].tag != "img" or (paragraph.text or "").strip():
                continue
            image = children[0]
            caption = (image.get("title") or "").strip()
            if not caption or (image.tail or "").strip():
                continue
            del image.attrib["title"]
            image.tail = None
            paragraph.tag = "figure"
            paragraph.set("class", "figure")
            text = ET.SubElement(paragraph, "figcaption")
            text.text = caption


def _decoration(element: ET.Element, target: Path) -> None:
    """Turn a decorative picture into a box with the picture as its background.

    The engine tags every <img> as a Figure, which PDF/UA requires to have
    alt text; a background is drawn as an artifact, which screen readers skip.
    The box takes the picture's own size, shrunk to fit the column.
    """
    width, height = natural_size(target)
    element.tag = "span"
    element.attrib.clear()
    element.set("class", "decorative")
    element.set("aria-hidden", "true")
    element.set(
        "style",
        f"width: {width:.2f}px; height: {height:.2f}px; "
        f'background-image: url("{target.as_uri()}"); background-size: contain',
    )


def _line_of(topic: Topic, needle: str) -> int:
    for index, line in enumerate(topic.body.split("\n")):
        if needle and needle in line:
            return topic.body_line + index
    return topic.body_line


_QUOTE = re.compile(r"^\s{0,3}((?:>\s?)+)")
_ITEM = re.compile(r"^( *)(?:[-*+]|\d+[.)])\s")


_CALLOUT = re.compile(r"^!!!\s*([\w-]*)")


def widen_list_indents(body: str) -> str:
    """Widen list indents (see ``_widen``), inside a callout's indented block too."""
    lines = body.split("\n")
    out: list[str] = []
    plain: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not _CALLOUT.match(line):
            plain.append(line)
            continue
        out += [*_widen("\n".join(plain)).split("\n"), line] if plain else [line]
        plain = []
        block: list[str] = []
        while index < len(lines) and (lines[index].startswith("    ") or not lines[index].strip()):
            if not lines[index].strip() and not (
                index + 1 < len(lines) and lines[index + 1].startswith("    ")
            ):
                break
            block.append(lines[index][4:])
            index += 1
        if block:
            out += ["    " + b if b else b for b in widen_list_indents("\n".join(block)).split("\n")]
    if plain:
        out += _widen("\n".join(plain)).split("\n")
    return "\n".join(out)


def _widen(body: str) -> str:
    """Indent nested list items by 4 spaces a level, as Markdown needs, when they use 2 or 3.

    Most editors and Markdown tools nest a list item indented by 2 spaces;
    Python-Markdown needs 4 and would flatten it without a word. Each item's
    level comes from the indents of the items above it; lines that continue
    an item follow it. Line numbers do not change.
    """
    out: list[str] = []
    levels: list[int] = []  # the indent of each open list level
    blank = False  # whether the line before was blank
    for line in body.split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        if item := _ITEM.match(line):
            indent = len(item.group(1))
            while levels and indent < levels[-1]:
                levels.pop()
            if not levels or indent > levels[-1]:
                levels.append(indent)
            out.append(" " * 4 * (len(levels) - 1) + line[indent:])
        elif levels and indent and line.strip():
            # A continued item: it belongs to the deepest item indented less than it.
            depth = sum(1 for level in levels if level < indent)
            out.append(" " * 4 * depth + line[indent:])
        else:
            if blank and line.strip() and not line[0].isspace():
                levels = []  # a paragraph after a blank line ends the list
            out.append(line)
        blank = not line.strip()
    return "\n".join(out)


def _check_nesting(topic: Topic, body: str) -> None:
    """Refuse lists and quotes nested deeper than MAX_NESTING, before Markdown recurses into them."""
    for index, line in enumerate(body.split("\n")):
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


def _check_characters(topic: Topic) -> None:
    """Refuse control characters in the body: they print as boxes, or not at all."""
    for index, line in enumerate(topic.body.split("\n")):
        if code := unprintable(line):
            raise ContentError.at(
                topic.shown,
                topic.body_line + index,
                f"holds a character that cannot be printed ({code})",
                "delete it; it may have come in with text pasted from another program",
            )


def convert(
    topic: Topic,
    root: Path,
    topics: Mapping[str, Topic] | None = None,
    here: frozenset[str] | None = None,
) -> Converted:
    """The topic's body as HTML, with its problems.

    ``topics`` are those links may point to; ``here`` are the topics in the
    same PDF, which links become internal to.
    """
    _check_characters(topic)
    body = widen_list_indents(topic.body)
    _check_nesting(topic, body)
    topics = topics if topics is not None else {topic.slug: topic}
    here = here if here is not None else frozenset({topic.slug})
    md = markdown.Markdown(extensions=["tables", "sane_lists", "admonition"], output_format="html")
    # Raw HTML is shown as text, never passed through (see ENGINE-NOTES.md).
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    found = _Found()
    labels = messages.load(root, topic.lang)
    md.treeprocessors.register(
        _Callouts(md, {kind: getattr(labels, kind) for kind in CALLOUT_KINDS}, found), "brochure_callouts", 5
    )
    md.treeprocessors.register(_Figures(md), "brochure_figures", 3)
    md.treeprocessors.register(_Guard(md, topic, root, topics, here, found), "brochure_guard", 0)
    try:
        html = md.convert(body)
    except RecursionError:
        raise ContentError.at(
            topic.shown, topic.body_line, "is nested too deeply to read", "flatten nested lists and quotes"
        ) from None

    def place(items: list[tuple[str, str, str, str]]) -> list[Problem]:
        return [
            Problem(topic.shown, _line_of(topic, needle), what, fix, check)
            for needle, what, fix, check in items
        ]

    return Converted(html, place(found.errors), place(found.warnings))


def to_html(
    topic: Topic,
    root: Path,
    topics: Mapping[str, Topic] | None = None,
    here: frozenset[str] | None = None,
) -> str:
    """The topic's body as HTML; raise ContentError for unsafe links and bad images."""
    converted = convert(topic, root, topics, here)
    if converted.errors:
        raise ContentError(converted.errors)
    return converted.html
