"""What each document depends on, hashed: the key that says whether its PDF is up to date.

Everything here reads files and hashes them; nothing imports WeasyPrint,
Markdown or Jinja, so a build with nothing to do stays fast. Keys are
content hashes, never modification times.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import stat
import sys
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from brochure import __version__
from brochure.base import caches
from brochure.base.files import Refused, read_regular, resolve_inside
from brochure.base.paths import builtin_dir, default_font_dir, is_inside

# Template names a template loads: {% extends "x" %}, {% include 'x' %},
# {% import "x" as y %}, {% from "x" import y %}
_TEMPLATE_REF = re.compile(r"""{%-?\s*(?:extends|include|import|from)\s+["']([^"']+)["']""")
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?["']?([^"')\s;]+)""")
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)

TYPE_CHECKING = False  # typing is not loaded: a no-op build is timed
if TYPE_CHECKING:
    from brochure.project.model import Document, Project
    from brochure.project.topics import Topic


def readable_roots(root: Path) -> list[Path]:
    """Where a project's inputs may be read: the project, the built-in templates and styles, the default font.

    The renderer's fetcher allows the same places (compose.allowed_roots),
    and Jinja finds templates only in the project's and the built-in ones.
    """
    return [
        root.resolve(),
        builtin_dir("templates").resolve(),
        builtin_dir("styles").resolve(),
        default_font_dir(),
    ]


#: Files up to this size are kept in memory during a build (topics, templates, stylesheets).
_KEEP_BYTES = 64 * 1024


class Hasher:
    """Hashes a project's files, each read once per build (documents share templates, styles and fonts).

    A file is read under the renderer's rules (files.read_inside): inside
    the project or brochure's own folders, a regular file, at most 20 MiB.
    Anything else is never opened; its hash says why, and the renderer
    reports it when a document uses it.
    """

    def __init__(self, root: Path, known: dict[str, list] | None = None) -> None:
        self.roots = readable_roots(root)
        #: Hashes from the last build, by file, with each file's identity (device, inode, size and
        #: times) when it was read: a file whose identity is unchanged is not read again, as git's
        #: index does. Keys stay hashes of content.
        self.known = known or {}
        #: The identities and hashes of the files this hasher hashed, for the next build.
        self.seen: dict[str, list] = {}
        self._files: dict[str, str] = {}  # by path as given
        self._kept: dict[str, bytes] = {}  # small files' bytes: a template hashed first may be parsed later
        self._texts: dict[Path, str] = {}
        self._folders: dict[str, str] = {}
        self._prefixes = tuple(os.path.join(str(r), "") for r in self.roots)
        #: Every file read, in order: each at most once.
        self.reads: list[Path] = []

    def _real(self, text: str) -> str:
        """Where the path ``text`` leads, when inside the allowed folders (files.resolve_inside, with
        each folder resolved once per build rather than once per file)."""
        if not os.path.isabs(text) or f"{os.sep}..{os.sep}" in text or text.endswith(f"{os.sep}.."):
            return str(resolve_inside(Path(text), self.roots))
        parent, name = os.path.split(text)
        folder = self._folders.get(parent)
        if folder is None:
            try:
                folder = self._folders[parent] = os.path.join(str(Path(parent).resolve(strict=True)), "")
            except (OSError, RuntimeError):
                raise Refused("file not found") from None
        try:
            if stat.S_ISLNK(os.lstat(text).st_mode):
                return str(resolve_inside(Path(text), self.roots))
        except OSError:
            raise Refused("file not found") from None
        if not folder.startswith(self._prefixes):
            raise Refused("outside the project")
        return folder + name

    def _read(self, path: Path | str) -> bytes | None:
        text = os.fspath(path)
        try:
            real = self._real(text)
            before = _identity(real)  # taken before reading: a change while reading is seen next time
            data = read_regular(real)
        except Refused as exc:
            self._files[text] = f"refused: {exc}"
            return None
        self.reads.append(Path(text))
        self._files[text] = hashlib.sha256(data).hexdigest()
        if before and before[3] < time.time_ns() - 2_000_000_000:  # not one still being written
            self.seen[text] = [*before, self._files[text]]
        if len(data) <= _KEEP_BYTES:
            self._kept[text] = data
        return data

    def file(self, path: Path | str) -> str:
        """The hash of ``path``'s bytes, or why it is not read ('refused: outside the project', say)."""
        text = os.fspath(path)
        if text not in self._files and not self._known(text):
            self._read(text)
        return self._files[text]

    def _known(self, text: str) -> bool:
        """Take the hash from the last build when the file is still the very one it read."""
        entry = self.known.get(text)
        if not entry:
            return False
        try:
            identity = _identity(self._real(text))
        except Refused:
            return False
        if identity is None or identity != entry[:-1]:
            return False
        self._files[text] = entry[-1]
        self.seen[text] = entry
        return True

    def text(self, path: Path) -> str:
        """A template's or stylesheet's text (to find what it loads), hashed as it is read; "" if refused."""
        if path not in self._texts:
            data = self._kept.get(os.fspath(path)) or self._read(path)
            self._texts[path] = data.decode("utf-8", errors="replace") if data is not None else ""
        return self._texts[path]


def _identity(real: str) -> list[int] | None:
    """A regular file's device, inode, size, modification and change times; None for anything else."""
    try:
        info = os.stat(real)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


@cache
def tool_fingerprint() -> str:
    """brochure's version and every module of the package, wherever it lies, and the versions of
    Python and of the libraries that shape a PDF: a new tool rebuilds everything."""
    h = hashlib.sha256(f"brochure {__version__} python {sys.version_info[:3]}".encode())
    for library in _PDF_LIBRARIES:
        h.update(_version(library).encode())
    package = Path(__file__).parent.parent
    for source in sorted(package.rglob("*.py")):
        h.update(source.relative_to(package).as_posix().encode())
        h.update(source.read_bytes())
    return h.hexdigest()


#: Libraries whose version changes the PDFs: the engine, QR codes, dates in words.
_PDF_LIBRARIES = ("weasyprint", "segno", "babel")


def _version(library: str) -> str:
    """A library's version, from its dist-info folder: importing WeasyPrint would cost half a second."""
    spec = importlib.util.find_spec(library)
    if spec is None or spec.origin is None:  # pragma: no cover - a broken install
        return f"{library} ?"
    site = Path(spec.origin).parent.parent
    found = sorted(p.name for p in site.glob(f"{library}-*.dist-info"))
    return found[-1] if found else f"{library} ?"


#: The hashes a long-lived process (a render worker, the desk) has taken, by each file's identity.
_process_known: dict[str, list] = caches.kept("project.hashes")


def process_hasher(root: Path) -> Hasher:
    """A Hasher that keeps, for this process, each file's hash while the file keeps its identity.

    A worker renders document after document with the same stylesheets and
    fonts: hashing them again for each (a megabyte of fonts) costs more
    than the keys are worth. Only hashes are kept, never content.
    """
    if len(_process_known) > 4096:
        _process_known.clear()
    hasher = Hasher(root, _process_known)
    hasher.seen = _process_known  # what it reads is known to the next one
    return hasher


def _in_folder(folder: Path, name: str) -> Path | None:
    """``name`` inside ``folder`` as Jinja's file loader reads it: '/' separated, no '..', no leading '/'."""
    pieces = [piece for piece in name.split("/") if piece not in ("", ".")]
    if not pieces or ".." in pieces or any("\\" in piece for piece in pieces):
        return None
    return folder.joinpath(*pieces)


def template_file(root: Path, name: str) -> Path | None:
    """Where a template name resolves: 'builtin/NAME', else the project's, else the built-in one."""
    if name.startswith("builtin/"):
        candidates = [_in_folder(builtin_dir("templates"), name.removeprefix("builtin/"))]
    else:
        candidates = [_in_folder(root / "templates", name), _in_folder(builtin_dir("templates"), name)]
    return next((c for c in candidates if c is not None and c.is_file()), None)


def template_chain(root: Path, name: str, hasher: Hasher | None = None) -> list[Path]:
    """A template and every template it extends, includes or imports, by name."""
    hasher = hasher or Hasher(root)
    seen: dict[Path, None] = {}
    todo = [name]
    while todo:
        path = template_file(root, todo.pop())
        if path is None or path in seen:
            continue
        seen[path] = None
        todo += _TEMPLATE_REF.findall(hasher.text(path))
    return list(seen)


def style_file(root: Path, name: str) -> Path | None:
    """Where a stylesheet name resolves: the project's styles/, else the built-in ones."""
    candidates = (_in_folder(root / "styles", name), _in_folder(builtin_dir("styles"), name))
    return next((c for c in candidates if c is not None and c.is_file()), None)


def style_chain(root: Path, names: Iterable[str], hasher: Hasher | None = None) -> list[Path]:
    """Stylesheets, the ones they @import, and local files their url()s name (fonts, pictures).

    A url() that leads out of the allowed folders is listed but never read
    (its hash says so); the renderer refuses it.
    """
    hasher = hasher or Hasher(root)
    seen: dict[Path, None] = {}
    todo = [p for p in (style_file(root, n) for n in names) if p]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = None
        if path.suffix != ".css":
            continue
        text = hasher.text(path)
        # In the order they are written (a set's order changes from one process to the next).
        for ref in dict.fromkeys([*_CSS_IMPORT.findall(text), *_CSS_URL.findall(text)]):
            if ref.startswith("builtin:"):
                found = _in_folder(builtin_dir("styles"), unquote(ref.removeprefix("builtin:")))
                if found is not None:
                    todo.append(found)
            elif not urlsplit(ref).scheme:
                todo.append(path.parent / unquote(ref))
    return list(seen)


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


def topic_index(topics: Iterable[Topic]) -> str:
    """Every topic's name and headings: what links from one topic to another are checked against."""
    return "\n".join(f"{t.slug}: {'|'.join(headings(t.body))}" for t in topics)


class Keys:
    """The keys of one build's documents; what they all share is hashed once, whatever their number.

    The topic index, the config files and each template and stylesheet
    chain are hashed once per build, each file read once (by the Hasher):
    the key of a document then costs the hashing of its own topics.
    """

    def __init__(self, project: Project, options: str, hasher: Hasher) -> None:  # noqa: ANN001 - project.Project
        self.project, self.hasher = project, hasher
        root = project.root
        config = [root / "content/brand.toml", root / "content/documents.toml", project.brand.logo]
        config += [face.path for face in project.brand.fonts]
        # The brochure's cover picture.
        config += [p for p in (project.brand.cover_image,) if p]
        head = [tool_fingerprint(), options]
        config_lines = [self._line(path) for path in config]
        # What sets every document's look, for Keys.look.
        self._look = [*head, *config_lines]
        # Links are checked against every topic's (and translation's) headings; the brochure's order
        # and contents come from all of them.
        shared = [*head, topic_index([*project.topics, *project.translations]), *config_lines]
        # Hashed now, so that each key hashes a digest, not the whole index again.
        self._shared = hashlib.sha256("\n".join(shared).encode()).hexdigest()
        self._chains: dict[tuple[str, tuple[str, ...]], str] = {}
        self._specs: dict[int, str] = {}
        self._looks: dict[int, str] = {}
        self._topics: dict[Path, str] = {}

    def _line(self, path: Path) -> str:
        return f"{_label(path, self.project.root)}={self.hasher.file(path)}"

    def _chain(self, spec) -> str:  # noqa: ANN001 - config.DocumentSpec
        """The template and stylesheets a kind of document uses, with all they load."""
        which = (spec.template, tuple(spec.styles))
        if which not in self._chains:
            root = self.project.root
            files = template_chain(root, spec.template, self.hasher)
            files += style_chain(root, spec.styles, self.hasher)
            self._chains[which] = "\n".join(self._line(path) for path in files)
        return self._chains[which]

    def _topic(self, topic) -> str:  # noqa: ANN001 - content.Topic
        """A topic file and the pictures it shows."""
        if topic.path not in self._topics:
            files = [topic.path, *topic_images(topic.path, topic.body, self.project.root)]
            self._topics[topic.path] = "\n".join(self._line(path) for path in files)
        return self._topics[topic.path]

    def look(self, doc: Document) -> str:  # noqa: ANN001 - project.Document
        """The hash of what sets ``doc``'s look but not its words: tool, options, config, template, styles.

        Auto-fit's last result stays a good start while it holds (see fit.FitHint).
        """
        look = self._looks.get(id(doc.spec))
        if look is None:
            parts = [*self._look, self._spec(doc), self._chain(doc.spec)]
            look = self._looks[id(doc.spec)] = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
        return look

    def _spec(self, doc: Document) -> str:  # noqa: ANN001 - project.Document
        spec = self._specs.get(id(doc.spec))
        if spec is None:
            spec = self._specs[id(doc.spec)] = repr(doc.spec)
        return spec

    def key(self, doc: Document) -> str:  # noqa: ANN001 - project.Document
        """The hash of everything ``doc``'s PDF is made from, with the build's options."""
        parts = [self._shared, doc.name, self._spec(doc), self._chain(doc.spec)]
        # The project's labels in the document's language.
        parts.append(self._line(self.project.root / "content/messages" / f"{doc.lang}.toml"))
        parts += [self._topic(topic) for topic in doc.topics]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def document_key(project: Project, doc: Document, options: str, hasher: Hasher) -> str:  # noqa: ANN001 - project.Project, Document
    """The key of one document (a build makes one Keys for all of its documents)."""
    return Keys(project, options, hasher).key(doc)


@cache
def _places(root: Path) -> tuple[tuple[str, str], ...]:
    """The folders a label is relative to, resolved once (not once per path), as text."""
    places = [(root.resolve(), ""), (builtin_dir("templates").parent.resolve(), "builtin:")]
    places.append((default_font_dir(), "font:"))
    return tuple((prefix, os.path.join(str(place), "")) for place, prefix in places)


caches.register("project.places", _places.cache_clear)


def _label(path: Path | str, root: Path) -> str:
    """A path as the key records it: a project that moves stays up to date."""
    text = str(path)
    for prefix, place in _places(root):
        if text.startswith(place):
            return prefix + text[len(place) :].replace(os.sep, "/")
    return text


def fingerprint_options(paper: str | None, strict: bool) -> str:
    """The one key of a build's options: in the project's fingerprint, as given (a paper left to the
    brand is covered by the brand file), and in each document's key, as the build resolved them."""
    return f"paper={paper or ''} strict={strict}"


def project_fingerprint(root: Path, options: str, hasher: Hasher | None = None) -> str:
    """One hash of every file any document could read, with the options and the tool.

    After a fully successful build it is recorded; while it still matches,
    nothing can have changed, and the build needs to parse nothing at all.
    Files are read under the Hasher's rules: a link that leads out of the
    project counts by where it points, not by what it holds.
    """
    root = root.resolve()
    hasher = hasher or Hasher(root)
    h = hashlib.sha256(f"{tool_fingerprint()}\n{options}\n".encode())
    folders = [root / "content", root / "templates", root / "styles"]
    folders += [builtin_dir("templates"), builtin_dir("styles"), default_font_dir()]
    for folder in dict.fromkeys(f.resolve() for f in folders):
        if not folder.is_dir():
            continue
        for path in _files_under(folder):
            h.update(f"{_label(path, root)}={hasher.file(path)}\n".encode())
    return h.hexdigest()


def _files_under(folder: Path) -> list[str]:
    """Every entry but folders under ``folder``, sorted; links to folders are not followed."""
    found = []
    for here, _folders, names in os.walk(folder):
        found += [os.path.join(here, name) for name in names]
    return sorted(found)
