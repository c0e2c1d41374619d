"""What each document depends on, hashed: the key that says whether its PDF is up to date.

Everything here reads files and hashes them; nothing imports WeasyPrint,
Markdown or Jinja, so a build with nothing to do stays fast. Keys are
content hashes, never modification times.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from . import __version__
from .paths import builtin_dir, default_font_dir, is_inside

# Template names a template loads: {% extends "x" %}, {% include 'x' %},
# {% import "x" as y %}, {% from "x" import y %}
_TEMPLATE_REF = re.compile(r"""{%-?\s*(?:extends|include|import|from)\s+["']([^"']+)["']""")
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?["']?([^"')\s;]+)""")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


class Hasher:
    """Hashes files once per build (many documents share templates, styles and fonts)."""

    def __init__(self) -> None:
        self._files: dict[Path, str] = {}

    def file(self, path: Path) -> str:
        if path not in self._files:
            try:
                self._files[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                self._files[path] = "missing"
        return self._files[path]


@cache
def tool_fingerprint() -> str:
    """brochure's version and source, WeasyPrint's and Python's versions: a new tool rebuilds everything."""
    h = hashlib.sha256(f"brochure {__version__} python {sys.version_info[:3]}".encode())
    h.update(_engine_version().encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        h.update(source.name.encode())
        h.update(source.read_bytes())
    return h.hexdigest()


def _engine_version() -> str:
    """WeasyPrint's installed version, from its dist-info folder: importing it would cost half a second."""
    spec = importlib.util.find_spec("weasyprint")
    if spec is None or spec.origin is None:  # pragma: no cover - a broken install
        return "weasyprint ?"
    site = Path(spec.origin).parent.parent
    found = sorted(p.name for p in site.glob("weasyprint-*.dist-info"))
    return found[-1] if found else "weasyprint ?"


def template_file(root: Path, name: str) -> Path | None:
    """Where a template name resolves: 'builtin/NAME', else the project's, else the built-in one."""
    if name.startswith("builtin/"):
        candidates = [builtin_dir("templates") / name.removeprefix("builtin/")]
    else:
        candidates = [root / "templates" / name, builtin_dir("templates") / name]
    return next((c for c in candidates if c.is_file()), None)


def template_chain(root: Path, name: str) -> list[Path]:
    """A template and every template it extends, includes or imports, by name."""
    seen: dict[Path, None] = {}
    todo = [name]
    while todo:
        path = template_file(root, todo.pop())
        if path is None or path in seen:
            continue
        seen[path] = None
        todo += _TEMPLATE_REF.findall(path.read_text(encoding="utf-8", errors="replace"))
    return list(seen)


def style_file(root: Path, name: str) -> Path | None:
    """Where a stylesheet name resolves: the project's styles/, else the built-in ones."""
    return next((c for c in (root / "styles" / name, builtin_dir("styles") / name) if c.is_file()), None)


def style_chain(root: Path, names: Iterable[str]) -> list[Path]:
    """Stylesheets, the ones they @import, and local files their url()s name (fonts, pictures)."""
    seen: dict[Path, None] = {}
    todo = [p for p in (style_file(root, n) for n in names) if p]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = None
        if path.suffix != ".css":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for ref in {*_CSS_IMPORT.findall(text), *_CSS_URL.findall(text)}:
            if ref.startswith("builtin:"):
                todo.append(builtin_dir("styles") / ref.removeprefix("builtin:"))
            elif not urlsplit(ref).scheme:
                todo.append((path.parent / unquote(ref)).resolve())
    return [p for p in seen if p.is_file()]


def topic_images(path: Path, body: str, root: Path) -> list[Path]:
    """Local pictures a topic's Markdown names (where they live is checked when rendering)."""
    found = []
    for ref in _MD_IMAGE.findall(body):
        if not urlsplit(ref).scheme:
            target = (path.parent / unquote(ref)).resolve()
            if is_inside(target, root):
                found.append(target)
    return found


def headings(body: str) -> list[str]:
    """The text of every Markdown heading in a topic's body."""
    return _HEADING.findall(body)


def topic_index(topics: Iterable[object]) -> str:
    """Every topic's name and headings: what links from one topic to another are checked against."""
    return "\n".join(f"{t.slug}: {'|'.join(headings(t.body))}" for t in topics)


def document_key(project, doc, options: str, hasher: Hasher) -> str:  # noqa: ANN001 - build.Project, build.Document
    """The hash of everything ``doc``'s PDF is made from, with the build ``options``."""
    root = project.root
    parts: list[str] = [tool_fingerprint(), options, doc.name, repr(doc.spec)]
    config = [root / "content/brand.toml", root / "content/documents.toml", project.brand.logo]
    config += [face.path for face in project.brand.fonts]
    # The brochure's cover picture, and the project's labels in the document's language.
    config += [p for p in (getattr(project.brand, "cover_image", None),) if p]
    config.append(root / "content/messages" / f"{getattr(doc, 'lang', 'en')}.toml")
    files: list[Path] = [*config]
    files += template_chain(root, doc.spec.template)
    files += style_chain(root, doc.spec.styles)
    for topic in doc.topics:
        files.append(topic.path)
        files += topic_images(topic.path, topic.body, root)
    # Links are checked against every topic's headings; the brochure's order
    # and contents come from all of them.
    parts.append(topic_index(project.topics))
    for path in files:
        parts.append(f"{_label(path, root)}={hasher.file(path)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _label(path: Path, root: Path) -> str:
    """A path as the key records it: a project that moves stays up to date."""
    places = {
        "": root.resolve(),
        "builtin:": builtin_dir("templates").parent.resolve(),
        "font:": default_font_dir(),
    }
    for prefix, place in places.items():
        if path.is_relative_to(place):
            return prefix + path.relative_to(place).as_posix()
    return str(path)


def fingerprint_options(paper: str | None, strict: bool) -> str:
    """The build options as given (a paper left to the brand is covered by the brand file)."""
    return f"paper={paper or ''} strict={strict}"


def project_fingerprint(root: Path, options: str) -> str:
    """One hash of every file any document could read, with the options and the tool.

    After a fully successful build it is recorded; while it still matches,
    nothing can have changed, and the build needs to parse nothing at all.
    """
    root = root.resolve()
    h = hashlib.sha256(f"{tool_fingerprint()}\n{options}\n".encode())
    folders = [root / "content", root / "templates", root / "styles"]
    folders += [builtin_dir("templates"), builtin_dir("styles"), default_font_dir()]
    for folder in dict.fromkeys(f.resolve() for f in folders):
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(f"{_label(path, root)}\n".encode())
            h.update(path.read_bytes())
    return h.hexdigest()
