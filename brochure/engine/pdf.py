"""Render HTML to PDF bytes with WeasyPrint's public API: a fetcher that reads only allowed files,
tagged output, each element's language.

The engine room (brochure.engine) is the only one that imports WeasyPrint,
and only when a document is rendered: importing it costs a noticeable part
of a second. Everything here uses WeasyPrint's public API
(``HTML(...).render()``, ``Document.copy``, ``Document.write_pdf``); what
needs its internals is in brochure.engine.private, with a fallback to this.
"""

from __future__ import annotations

import atexit
import logging
import mimetypes
import os
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from brochure.base import caches
from brochure.base.errors import Problem, RenderError
from brochure.base.files import MAX_FILE_BYTES, read_regular, resolve_inside
from brochure.base.images import too_large
from brochure.base.paths import builtin_dir

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
#: The print shop's file (engine.press): PDF/X-4, still tagged.
PRESS_VARIANT = "pdf/x-4"


@dataclass
class Rendered:
    """A rendered document: its PDF bytes, page count and what WeasyPrint warned about."""

    pdf: bytes
    pages: int
    warnings: list[str] = field(default_factory=list)
    fit: Any = None  # fit.FitResult, set by the build
    #: The print shop's file (engine.press), when one was asked for.
    press: bytes = b""
    #: Why the print shop's file could not be made (the PDF itself is good).
    press_error: RenderError | None = None


def import_engine() -> None:
    """Import WeasyPrint (a noticeable part of a second, paid once per process).

    WeasyPrint builds a mimetypes table on import, which reads the machine's
    /etc/mime.types; the built-in table is enough, and nothing outside the
    project is to be read.
    """
    if mimetypes._db is None:  # type: ignore[attr-defined]
        # init(files=[]) alone would still read the machine's files: give it a
        # table first, then it reads none.
        mimetypes.inited = True
        mimetypes._db = mimetypes.MimeTypes()  # type: ignore[attr-defined]
        mimetypes.init(files=[])
    # Without HarfBuzz-Subset, WeasyPrint subsets fonts with fontTools, which
    # stamps the current time into each embedded font unless this is set (the
    # reproducible-builds convention). A value the user set is kept.
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    import weasyprint  # noqa: F401


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
_stylesheets: dict[str, Any] = caches.kept("engine.stylesheets")
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
    if not usable or seconds is None:
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
    #: The elements with a language of their own (see _languages), by the page each starts on.
    languages: list[tuple[int, str, str | None]] = field(default_factory=list)  # (page, PDF tag, lang)
    #: Laid out for the print shop (see engine.press): written as PDF/X-4.
    press: bool = False

    @property
    def pages(self) -> int:
        return len(self.doc.pages)


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


@dataclass
class Source:
    """A document's HTML parsed with its stylesheets, inside the engine's safeguards (see `parsing`)."""

    html: Any  # weasyprint.HTML
    sheets: list[Any]  # weasyprint.CSS, in cascade order
    document: str
    messages: _Collect
    refused: list[str]
    time_limit: float
    #: The colour profiles its stylesheets declare (the press file's output intent), for render().
    color_profiles: dict | None = None


def _press_sheet(fetcher: Any, text: str) -> tuple[Any, dict]:  # noqa: ANN401 - WeasyPrint's
    """The press stylesheet parsed once per process, with the colour profile it declares."""
    from weasyprint import CSS

    if "press" not in _stylesheets:
        profiles: dict = {}
        sheet = CSS(string=text, url_fetcher=fetcher, font_config=_fonts(), color_profiles=profiles)
        _stylesheets["press"] = (sheet, profiles)
    return _stylesheets["press"]


@contextmanager
def parsing(
    html: str,
    *,
    base_url: str,
    roots: Sequence[Path],
    document: str,
    brand_css: str = "",
    stylesheets: Sequence[tuple[Path, str]] = (),
    extra_css: str = "",
    fonts: str = "",
    time_limit: float | None = None,
    press: bool = False,
) -> Iterator[Source]:
    """Parse ``html`` and its styles, and run what the block does with them within the time limit,
    WeasyPrint's messages caught and what goes wrong raised as a RenderError.

    Its styles are ``brand_css``, ``stylesheets`` ((path, cache key) pairs)
    and ``extra_css``, in that order; ``extra_css`` (auto-fit's, marked
    !important) wins over them all. ``fonts`` names the project and the
    content of every font it uses (see _use_fonts). ``time_limit`` defaults
    to MAX_LAYOUT_SECONDS. Files are read only through the fetcher, inside
    ``roots``. With ``press``, the print shop's file: the press stylesheet
    (engine.press) after the document's own, and class ``press`` on <html>.
    """
    time_limit = time_limit or MAX_LAYOUT_SECONDS
    import_engine()
    from weasyprint import HTML

    refused: list[str] = []
    if press:
        from brochure.engine import press as press_file

        roots = [*roots, press_file.PROFILE.parent]
    fetcher = make_fetcher(roots, refused)
    _use_fonts(fonts)
    with _engine(document, refused, time_limit) as messages:
        sheets = style_sheets(fetcher, brand_css, stylesheets, extra_css)
        profiles = None
        if press:
            sheet, profiles = _press_sheet(fetcher, press_file.stylesheet())
            sheets.insert(len(sheets) - bool(extra_css), sheet)
        parsed = HTML(string=html, base_url=base_url, url_fetcher=fetcher)
        if press:
            root = parsed.etree_element
            root.set("class", " ".join([*root.get("class", "").split(), "press"]))
        yield Source(parsed, sheets, document, messages, refused, time_limit, profiles)


def lay_out(html: str, **settings: Any) -> Layout:  # noqa: ANN401 - parsing's settings
    """Lay out ``html`` with WeasyPrint's public ``HTML(...).render()``; ``settings`` as `parsing`'s."""
    press = bool(settings.get("press"))
    variant = PRESS_VARIANT if press else PDF_VARIANT
    with parsing(html, **settings) as source:
        doc = source.html.render(
            font_config=_fonts(),
            stylesheets=source.sheets,
            pdf_variant=variant,
            color_profiles=source.color_profiles,
        )
    return Layout(
        doc,
        source.document,
        list(source.messages.warnings),
        languages(source.html.etree_element, doc),
        press=press,
    )


def style_sheets(
    fetcher: Any,  # noqa: ANN401 - WeasyPrint's
    brand_css: str,
    stylesheets: Sequence[tuple[Path, str]],
    extra_css: str,
) -> list[Any]:
    """The parsed stylesheets of a layout: each file's kept parsed in this process, by its key."""
    from weasyprint import CSS

    sheets = [_parsed("brand:" + brand_css, fetcher, text=brand_css)] if brand_css else []
    sheets += [_parsed(key, fetcher, path=path) for path, key in stylesheets]
    if extra_css:
        sheets.append(CSS(string=extra_css, url_fetcher=fetcher, font_config=_fonts()))
    return sheets


def combine(layouts: Sequence[Layout]) -> Layout:
    """The pages of ``layouts``, in order, as one document (a packet of handouts)."""
    first = layouts[0]
    combined = first.doc.copy([page for layout in layouts for page in layout.doc.pages])
    warnings = [w for layout in layouts for w in layout.warnings]
    languages, offset = [], 0
    for layout in layouts:
        languages += [(page + offset, tag, lang) for page, tag, lang in layout.languages]
        offset += layout.pages
    return Layout(combined, first.document, warnings, languages)


#: The HTML elements that make a structure element of their own type (PDF/UA tags), whose /Lang
#: the written PDF can carry: a topic's <article lang="es"> in an English brochure, say.
_TAGGED = {"article": "/Art", "section": "/Sect", "div": "/Div", "blockquote": "/BlockQuote", "p": "/P"}


def languages(root: Any, doc: Any) -> list[tuple[int, str, str | None]]:  # noqa: ANN401 - lxml, WeasyPrint
    """Where the elements that give their own language start: (page index, PDF tag, lang or None).

    WeasyPrint 70 gives the PDF the document's language only. For each tag
    that an element below <html> gives a ``lang`` (a topic's <article
    lang="es"> in an English brochure), every element of that tag is listed,
    with its language or None, by the page it starts on, which the public
    ``Page.anchors`` tells from its ``id``. A tag with an element that has no
    ``id`` is left out: the structure elements could not be told apart.
    """
    tags = {element.tag for element in root.iter() if element.get("lang") and element.tag in _TAGGED}
    if not tags:
        return []
    starts: dict[str, int] = {}
    for index, page in enumerate(doc.pages):
        for anchor in page.anchors:
            starts.setdefault(anchor, index)
    found = []
    for tag in sorted(tags):
        elements = list(root.iter(tag))
        if not all(element.get("id") in starts for element in elements):
            continue
        found += [(starts[e.get("id")], _TAGGED[tag], e.get("lang")) for e in elements]
    return sorted(found, key=lambda item: item[0])


def _language_finisher(languages: list[tuple[int, str, str | None]]):  # noqa: ANN202
    """A ``write_pdf`` finisher that gives the structure elements of ``languages`` their /Lang.

    WeasyPrint makes structure elements page by page, in the order of the
    boxes, and one for each page an element spans. On each page, the
    structure elements of a tag are the continuation of the element before
    (when there is one more than the elements that start there), then the
    elements that start there, in order. A page where the counts do not add
    up keeps the document's language.
    """

    def finish(document: Any, pdf: Any) -> None:  # noqa: ANN401
        import pydyf

        references = {str(ref): index for index, ref in enumerate(pdf.page_references)}
        made: dict[tuple[int, str], list] = {}
        for obj in pdf.objects:
            if isinstance(obj, dict) and obj.get("Type") == "/StructElem" and "Pg" in obj:
                page = references.get(str(obj["Pg"]))
                if page is not None:
                    made.setdefault((page, obj["S"]), []).append(obj)
        for tag in {tag for _page, tag, _lang in languages}:
            before: list[str | None] = []  # the language of the last element started, if any
            for page in range(len(pdf.page_references)):
                starting = [lang for at, t, lang in languages if at == page and t == tag]
                elements = made.get((page, tag), [])
                if before and len(elements) == len(starting) + 1:
                    starting = [before[0], *starting]
                if len(elements) == len(starting):
                    for element, lang in zip(elements, starting, strict=True):
                        if lang:
                            element.setdefault("Lang", pydyf.String(lang))
                if starting:
                    before = [starting[-1]]

    return finish


def write(layout: Layout, allowed_fonts: set[str] | None, inks: Any = None) -> Rendered:  # noqa: ANN401
    """Write a layout to tagged PDF bytes, or raise RenderError.

    With ``allowed_fonts``, text set in any other font family fails the render.
    A press layout is written as PDF/X-4 and finished for the print shop
    (engine.press) with ``inks``, a press.Inks.
    """
    doc, document = layout.doc, layout.document
    # Attachments could only come from a <link rel="attachment"> in a
    # template; a handout never carries files (see ENGINE-NOTES.md).
    doc.metadata.attachments = []
    with _weasyprint_messages() as messages:
        finisher = _language_finisher(layout.languages) if layout.languages else None
        if layout.press:
            pdf = doc.write_pdf(pdf_variant=PRESS_VARIANT, pdf_tags=True, attachments=None, finisher=finisher)
        else:
            pdf = doc.write_pdf(pdf_variant=PDF_VARIANT, attachments=None, finisher=finisher)
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
    if layout.press:
        from brochure.engine import press

        try:
            pdf = press.finish(pdf, inks or press.Inks(), document)
        except press.PressError as exc:
            raise RenderError.at(
                document,
                None,
                f"the print-shop file cannot be made: it holds {exc}",
                exc.fix or "use colours and pictures in RGB or CMYK, with plain (linear or radial) gradients",
            ) from None
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
