"""Render HTML to PDF bytes with WeasyPrint: a fetcher that reads only allowed files, tagged output.

Only this module imports WeasyPrint, and only when a document is rendered:
importing it costs a noticeable part of a second.
"""

from __future__ import annotations

import atexit
import functools
import logging
import mimetypes
import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import Problem, RenderError
from .files import MAX_FILE_BYTES, read_regular, resolve_inside
from .images import too_large
from .paths import builtin_dir

log = logging.getLogger(__name__)

MAX_RESOURCE_BYTES = MAX_FILE_BYTES
MAX_LAYOUT_SECONDS = 60.0
# Our own table: the standard mimetypes module reads /etc/mime.types, and
# nothing outside the project is to be read while rendering.
MEDIA_TYPES = {
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
FONT_SUFFIXES = frozenset(s for s, kind in MEDIA_TYPES.items() if kind.startswith("font/"))
PDF_VARIANT = "pdf/ua-1"


@dataclass
class Rendered:
    """A rendered document: its PDF bytes, page count and what WeasyPrint warned about."""

    pdf: bytes
    pages: int
    warnings: list[str] = field(default_factory=list)
    fit: Any = None  # fit.FitResult, set by the build


def import_engine() -> None:
    """Import WeasyPrint (a noticeable part of a second, paid once per process).

    WeasyPrint builds a mimetypes table on import, which reads the machine's
    /etc/mime.types; the built-in table is enough, and nothing outside the
    project is to be read.
    """
    if mimetypes._db is None:
        # init(files=[]) alone would still read the machine's files: give it a
        # table first, then it reads none.
        mimetypes.inited = True
        mimetypes._db = mimetypes.MimeTypes()
        mimetypes.init(files=[])
    # Without HarfBuzz-Subset, WeasyPrint subsets fonts with fontTools, which
    # stamps the current time into each embedded font unless this is set (the
    # reproducible-builds convention). A value the user set is kept.
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    import weasyprint  # noqa: F401

    _tag_languages()


def _tag_languages() -> None:
    """Give each structure element made from an element with a ``lang`` its /Lang.

    WeasyPrint 70 sets the document's language only, so a Spanish topic in an
    English brochure would be read aloud as English. Its tagging walks the
    boxes through one module-level generator, which is wrapped here, once.
    """
    import pydyf
    from weasyprint.pdf import tags

    build = tags._build_box_tree
    if getattr(build, "brochure_lang", False):
        return

    def with_lang(box, parent, *args):  # noqa: ANN001, ANN202 - WeasyPrint's own signature
        element = getattr(box, "element", None)
        lang = element.get("lang") if element is not None and element.tag != "html" else None
        for made in build(box, parent, *args):
            if lang and "Lang" not in made and made.get("P") == parent.reference:
                made["Lang"] = pydyf.String(lang)
            yield made

    with_lang.brochure_lang = True
    tags._build_box_tree = with_lang


class _Refused(ValueError):
    """A resource the fetcher will not read."""


def make_fetcher(roots: Sequence[Path], refused: list[str]):  # noqa: ANN201 - WeasyPrint type
    """A WeasyPrint URL fetcher that reads files under ``roots`` and data: URIs, nothing else.

    ``builtin:NAME`` is the built-in stylesheet NAME, so that a project's
    override can @import the stylesheet it replaces.
    """
    import_engine()
    from urllib.request import url2pathname

    from weasyprint.urls import URLFetcher, URLFetcherResponse

    allowed = [r.resolve() for r in roots]
    builtin_styles = builtin_dir("styles").resolve()

    class ProjectFetcher(URLFetcher):
        def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
            try:
                return self._fetch(url, headers)
            except Exception as exc:
                refused.append(f"{_short(url)}: {exc}")
                raise

        def _fetch(self, url: str, headers: dict | None) -> URLFetcherResponse:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "builtin":
                url = (builtin_styles / unquote(parts.path)).as_uri()
                parts = urlsplit(url)
                scheme = "file"
            if scheme != "file" or parts.netloc not in ("", "localhost"):
                raise _Refused("only files inside the project can be used")
            path = Path(url2pathname(unquote(parts.path)))
            # The rules every reader follows (files.py): resolved inside the allowed folders, so
            # '..' and links cannot lead out of the project; a regular file; at most the cap.
            real = resolve_inside(path, allowed)
            data = read_regular(real, MAX_RESOURCE_BYTES)
            if why := too_large(data):
                raise _Refused(f"the picture {why}")
            mime = MEDIA_TYPES.get(real.suffix.lower(), "application/octet-stream")
            return URLFetcherResponse(real.as_uri(), body=data, headers={"Content-Type": mime})

    # fail_on_errors: a resource that cannot be had stops the render; we never
    # want a PDF with a silently missing logo, font or stylesheet.
    return ProjectFetcher(
        allowed_protocols=("file", "data", "builtin"), fail_on_errors=True, allow_redirects=False
    )


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


# Notices about the machine's engine, not about the project's content: they
# go to the debug log instead of every build's output.
_ENGINE_NOTICES = ("Using fontTools instead of HarfBuzz-Subset",)
_NOTDEF = re.compile(r"\.notdef glyph rendered for Unicode string unsupported by fonts: (.+)$")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(_ENGINE_NOTICES):
            log.debug("WeasyPrint: %s", message)
            return
        if any(isinstance(arg, MemoryError) for arg in (record.args or ())):
            # WeasyPrint catches the error and logs it with an empty reason.
            message = f"{message.rstrip(': ')}: not enough memory (the worker's memory cap was reached)"
            record.levelno = logging.ERROR
        if message.rstrip().endswith(":"):
            # WeasyPrint logs some failures (a picture it cannot decode) with an empty reason.
            message = f"{message.rstrip()} the file is empty or damaged, or is not what its name says"
        if match := _NOTDEF.search(message):
            # No font on the machine has the character: it prints as a box.
            message = f"character {match.group(1)} is not in the brand font"
            record.levelno = logging.ERROR
        found = self.errors if record.levelno >= logging.ERROR else self.warnings
        if message not in found:
            found.append(message)


@contextmanager
def _weasyprint_messages() -> Iterator[_Collect]:
    """Catch what WeasyPrint logs: it logs errors instead of raising them."""
    logger = logging.getLogger("weasyprint")
    handler = _Collect()
    old_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


_font_config = None
_stylesheets: dict[str, Any] = {}
#: The fonts _font_config and _stylesheets were made with (see _use_fonts); None: start anew.
_scope: str | None = None
_from_parent: list[Any] = []


def start_after_fork() -> None:
    """In a forked worker: leave the parent's font configuration alone; the next layout starts its own.

    A FontConfiguration made before the fork cannot take new @font-face
    fonts in the child (a brand font then falls back), and dropping it would
    run its finalizer, which deletes the parent's font files: so it is kept,
    unused, for the life of the worker.
    """
    global _scope
    if _font_config is not None:
        _from_parent.append(_font_config)
    _scope = None


def _use_fonts(scope: str) -> None:
    """Start a new font configuration, and parse stylesheets anew, when the fonts in ``scope`` change.

    Fonts are registered by family name as stylesheets are parsed, so a
    worker that keeps them between documents (of one project, or of several
    under the render server) must not mix two projects' fonts, or a font
    file's old and new content.
    """
    global _scope, _font_config
    if scope != _scope:
        _scope = scope
        _stylesheets.clear()
        _font_config = None


def _parsed(key: str, fetcher: Any, path: Path | None = None, text: str = "") -> Any:  # noqa: ANN401
    """A weasyprint.CSS parsed once per process and key; its @font-face rules join the font configuration."""
    from weasyprint import CSS

    if key not in _stylesheets:
        if path is not None:
            _stylesheets[key] = CSS(url=path.as_uri(), url_fetcher=fetcher, font_config=_fonts())
        else:
            _stylesheets[key] = CSS(string=text, url_fetcher=fetcher, font_config=_fonts())
    return _stylesheets[key]


def _fonts():  # noqa: ANN202 - WeasyPrint type
    # One FontConfiguration per process, reused: building it is part of the
    # first render's set-up cost.
    global _font_config
    if _font_config is None:
        from weasyprint.text.fonts import FontConfiguration

        _font_config = FontConfiguration()
        atexit.register(_drop_fonts, os.getpid())
    return _font_config


def _drop_fonts(pid: int) -> None:
    """At exit, let the font configuration remove its folder of fonts while Python still can.

    Left to the end of the interpreter, its finalizer fails (its modules are
    already gone) and prints a traceback. Only the process that made it does
    this: a forked worker must not remove its parent's fonts.
    """
    global _font_config
    if os.getpid() == pid:
        _stylesheets.clear()
        _font_config = None


class _TimeUp(BaseException):
    """Raised by the alarm; a BaseException so that WeasyPrint's own handlers let it through."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Stop a layout that runs longer than ``seconds`` (main thread on Unix only)."""
    usable = (
        seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise _TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Layout:
    """A laid-out document, not yet written: pages can be counted and measured."""

    doc: Any  # weasyprint.document.Document
    document: str
    warnings: list[str]

    @property
    def pages(self) -> int:
        return len(self.doc.pages)


@dataclass
class Prepared:
    """A document parsed, styled and made into boxes: the work before layout.

    It can be laid out more than once (`lay_out_prepared`), each time with
    other text in its slots: the words given to `prepare` that stand in the
    HTML for text to come. Only the text of a slot changes between layouts,
    so its parsing, styles and boxes are done once.
    """

    html: Any  # weasyprint.HTML
    context: Any  # the weasyprint LayoutContext its styles were computed in
    root: Any  # its box tree
    footnotes: list[Any]
    get_image: Any  # WeasyPrint's image loader, with its cache of the images loaded so far
    document: str
    scope: str
    font_config: Any
    warnings: list[str]
    refused: list[str]
    time_limit: float
    #: Seconds that preparing it took (see lay_out).
    spent: float
    output_intent: Any
    color_profiles: dict[str, Any]
    #: Each text box with a slot in it, and its text with the slots' names.
    slots: list[tuple[Any, str]] = field(default_factory=list)
    #: How many times each slot's name is in the text boxes.
    found: dict[str, int] = field(default_factory=dict)
    #: False when a slot's name is also somewhere a text box is not (an
    #: attribute, a bookmark, a string-set) or in transformed text, or when a
    #: layout changes the boxes themselves (::first-letter): it cannot be filled.
    fillable: bool = True
    #: How many boxes the tree has: a layout that changed it spoils the next.
    boxes: int = 0

    def current(self) -> bool:
        """Whether the fonts it was styled with are still this process's (see _use_fonts)."""
        return self.scope == _scope and self.font_config is _font_config


@contextmanager
def _engine(document: str, refused: list[str], time_limit: float, spent: float = 0.0) -> Iterator[_Collect]:
    """Run WeasyPrint in what is left of ``time_limit`` after ``spent``; what goes wrong is a RenderError."""
    from weasyprint.urls import FatalURLFetchingError

    with _weasyprint_messages() as messages:
        try:
            with _time_limit(max(time_limit - spent, 0.001)):
                yield messages
        except FatalURLFetchingError:
            raise RenderError.at(
                document,
                None,
                f"cannot use {refused[-1] if refused else 'a resource'}",
                "check the path of the logo, image, font or stylesheet; it must be a file inside the project",
            ) from None
        except RecursionError:
            raise RenderError.at(
                document, None, "content is nested too deeply to lay out", "flatten nested lists and quotes"
            ) from None
        except _TimeUp:
            raise RenderError.at(
                document,
                None,
                f"laying out took longer than {time_limit:g} seconds and was stopped",
                "shorten the document or make its pictures smaller",
            ) from None
    if messages.errors:
        raise RenderError([_problem(document, m) for m in messages.errors])


def prepare(
    html: str,
    *,
    base_url: str,
    roots: Sequence[Path],
    document: str,
    brand_css: str = "",
    stylesheets: Sequence[tuple[Path, str]] = (),
    extra_css: str = "",
    fonts: str = "",
    slots: Sequence[str] = (),
    time_limit: float | None = None,
) -> Prepared:
    """Parse ``html``, compute its styles and make its boxes.

    Its styles are ``brand_css``, ``stylesheets`` ((path, cache key) pairs)
    and ``extra_css``, in that order; ``extra_css`` (auto-fit's, marked
    !important) wins over them all. ``fonts`` names the project and the
    content of every font it uses (see _use_fonts). ``slots`` are words in
    the HTML's text that later layouts fill in. ``time_limit`` (default
    MAX_LAYOUT_SECONDS) is for this and each layout of it.
    """
    time_limit = time_limit or MAX_LAYOUT_SECONDS
    import_engine()
    from weasyprint import CSS, DEFAULT_OPTIONS, HTML
    from weasyprint.css.counters import CounterStyle
    from weasyprint.document import VARIANTS, Document
    from weasyprint.formatting_structure.build import build_formatting_structure

    started = time.monotonic()
    refused: list[str] = []
    fetcher = make_fetcher(roots, refused)
    _use_fonts(fonts)
    with _engine(document, refused, time_limit) as messages:
        sheets = [_parsed("brand:" + brand_css, fetcher, text=brand_css)] if brand_css else []
        sheets += [_parsed(key, fetcher, path=path) for path, key in stylesheets]
        if extra_css:
            sheets.append(CSS(string=extra_css, url_fetcher=fetcher, font_config=_fonts()))
        parsed = HTML(string=html, base_url=base_url, url_fetcher=fetcher)
        # What HTML.render does, in two steps: styles and boxes here, layout in lay_out_prepared.
        options = {**DEFAULT_OPTIONS, "stylesheets": sheets, "pdf_variant": PDF_VARIANT}
        for key, value in VARIANTS[PDF_VARIANT][1].items():
            if options.get(key) is None:
                options[key] = value
        counter_style = CounterStyle()
        color_profiles: dict[str, Any] = {}  # filled by @color-profile rules, read when written
        context = Document._build_layout_context(parsed, _fonts(), counter_style, color_profiles, options)
        root = build_formatting_structure(
            parsed.etree_element,
            context.style_for,
            context.get_image_from_uri,
            parsed.base_url,
            context.target_collector,
            counter_style,
            context.footnotes,
        )
    loader = context.get_image_from_uri
    prepared = Prepared(
        html=parsed,
        context=context,
        root=root,
        footnotes=list(context.footnotes),
        # The loader without the layout context it was bound to: each layout binds its own.
        get_image=functools.partial(
            loader.func, *loader.args, **{k: v for k, v in loader.keywords.items() if k != "context"}
        ),
        document=document,
        scope=fonts,
        font_config=_fonts(),
        warnings=list(messages.warnings),
        refused=refused,
        time_limit=time_limit,
        spent=time.monotonic() - started,
        output_intent=options["output_intent"],
        color_profiles=color_profiles,
    )
    if slots:
        _find_slots(prepared, slots)
    return prepared


def _find_slots(prepared: Prepared, slots: Sequence[str]) -> None:
    from weasyprint.formatting_structure import boxes

    pattern = re.compile("|".join(re.escape(s) for s in slots))
    found = dict.fromkeys(slots, 0)
    # In an attribute, a slot would reach a link, an alt text or an id unfilled.
    for element in prepared.html.etree_element.iter():
        if any(pattern.search(str(value)) for value in element.attrib.values()):
            prepared.fillable = False
    stack = [prepared.root]
    while stack:
        box = stack.pop()
        prepared.boxes += 1
        stack.extend(getattr(box, "children", ()))
        if getattr(box, "first_letter_style", None) is not None:
            prepared.fillable = False  # its layout moves the first letter into a box of its own
        if isinstance(box, boxes.TextBox) and pattern.search(box.text):
            prepared.slots.append((box, box.text))
            for name in pattern.findall(box.text):
                found[name] += 1
            if box.style["text_transform"] != "none":
                prepared.fillable = False
        label = getattr(box, "bookmark_label", None)
        strings = getattr(box, "string_set", None) or ()
        if (label and pattern.search(str(label))) or any(pattern.search(str(s)) for s in strings):
            prepared.fillable = False
    prepared.found = found


def lay_out_prepared(
    prepared: Prepared, values: dict[str, str] | None = None, *, first: bool = False
) -> Layout:
    """Lay out a prepared document, its slots filled with ``values`` (slot -> text) for this layout only.

    Each value must be text as the HTML's whitespace rules leave it (no
    leading, trailing or repeated spaces) and the slots fillable. The
    ``first`` layout shares the time limit with the preparing; later ones
    have it whole.
    """
    from weasyprint.document import Document, DocumentMetadata, Page
    from weasyprint.html import get_html_metadata
    from weasyprint.layout import LayoutContext, layout_document

    if values and not prepared.fillable:
        raise ValueError("the slots of this document cannot be filled")
    built = prepared.context
    pattern = re.compile("|".join(re.escape(s) for s in values)) if values else None
    del prepared.refused[:]
    try:
        for box, text in prepared.slots:
            box.text = pattern.sub(lambda m: values[m.group()], text) if pattern else text
        spent = prepared.spent if first else 0.0
        with _engine(prepared.document, prepared.refused, prepared.time_limit, spent) as messages:
            context = LayoutContext(
                built.style_for,
                prepared.get_image,
                prepared.font_config,
                built.counter_style,
                built.target_collector,
            )
            context.footnotes = list(prepared.footnotes)
            pages = layout_document(prepared.html, prepared.root, context)
            doc = Document(
                [Page(box) for box in pages],
                DocumentMetadata(**get_html_metadata(prepared.html)),
                prepared.html.url_fetcher,
                prepared.font_config,
                prepared.color_profiles,
                prepared.output_intent,
            )
            doc._html = prepared.html
    finally:
        # The boxes keep their slots' names, not what filled them.
        for box, text in prepared.slots:
            box.text = text
    if prepared.slots and _count_boxes(prepared.root) != prepared.boxes:
        prepared.fillable = False  # this layout changed the tree: it cannot be laid out again
    warnings = prepared.warnings + [w for w in messages.warnings if w not in prepared.warnings]
    return Layout(doc, prepared.document, warnings)


def _count_boxes(root: Any) -> int:  # noqa: ANN401
    count, stack = 0, [root]
    while stack:
        count += 1
        stack.extend(getattr(stack.pop(), "children", ()))
    return count


def lay_out(html: str, **settings: Any) -> Layout:  # noqa: ANN401
    """Lay out ``html`` once: `prepare` (which takes the same settings), then `lay_out_prepared`."""
    return lay_out_prepared(prepare(html, **settings), first=True)


def write(layout: Layout, allowed_fonts: set[str] | None) -> Rendered:
    """Write a layout to tagged PDF bytes, or raise RenderError.

    With ``allowed_fonts``, text set in any other font family fails the render.
    """
    doc, document = layout.doc, layout.document
    # Attachments could only come from a <link rel="attachment"> in a
    # template; a handout never carries files (see ENGINE-NOTES.md).
    doc.metadata.attachments = []
    with _weasyprint_messages() as messages:
        pdf = doc.write_pdf(pdf_variant=PDF_VARIANT, attachments=None)
    if messages.errors:
        raise RenderError([_problem(document, m) for m in messages.errors])
    used = frozenset(font.family for font in doc.fonts.values())
    stray = sorted(used - allowed_fonts) if allowed_fonts is not None else []
    if stray:
        raise RenderError.at(
            document,
            None,
            f"text is set in {', '.join(stray)}, which is not in the brand font",
            "a character is missing from the brand font, or a stylesheet names another "
            "font-family; use only the brand's font",
        )
    warnings = layout.warnings + [w for w in messages.warnings if w not in layout.warnings]
    return Rendered(pdf=pdf, pages=layout.pages, warnings=warnings)


def render_pdf(
    html: str,
    *,
    base_url: str,
    roots: Sequence[Path],
    document: str,
    allowed_fonts: set[str] | None,
) -> Rendered:
    """Lay out and write ``html`` in one go."""
    return write(lay_out(html, base_url=base_url, roots=roots, document=document), allowed_fonts)


def _problem(document: str, message: str) -> Problem:
    if "not in the brand font" in message:
        return Problem(
            document,
            None,
            message,
            "remove the character, or set a brand font that has it in content/brand.toml",
        )
    return Problem(document, None, f"rendering failed: {message}", "fix the content or template it names")
