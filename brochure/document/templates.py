"""Assemble a document's HTML: topics through Jinja templates, with the brand's styles."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from brochure.base import caches
from brochure.base.errors import RenderError
from brochure.base.files import Refused, read_inside
from brochure.base.paper import paper as paper_named
from brochure.base.paths import builtin_dir
from brochure.document import markup, messages
from brochure.project.config import Brand
from brochure.project.topics import Topic


@dataclass(frozen=True)
class Section:
    """A topic as templates see it: front matter plus its body as HTML."""

    topic: Topic
    html: Markup

    def __getattr__(self, name: str) -> Any:
        return getattr(self.topic, name)


def search_path(root: Path, kind: str) -> list[Path]:
    """Where templates or styles are looked up: the project's folder first, then the built-in one."""
    own = root / kind
    dirs = [own] if own.is_dir() else []
    builtin = builtin_dir(kind)
    if builtin.resolve() not in (d.resolve() for d in dirs):
        dirs.append(builtin)
    return dirs


def environment(root: Path) -> SandboxedEnvironment:
    """A Jinja environment for a project: overrides first, 'builtin/NAME' for the built-in template.

    Sandboxed because clinic staff may edit templates; StrictUndefined so that
    a typo such as {{ brand.clinc_name }} is an error, not an empty string.
    """
    roots = [root.resolve(), builtin_dir("templates").resolve()]
    builtin = _TemplateLoader([builtin_dir("templates")], roots)
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"builtin": builtin}),
            _TemplateLoader(search_path(root, "templates"), roots),
        ]
    )
    env = SandboxedEnvironment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["month_year"] = _month_year
    env.filters["short_url"] = short_url
    env.filters["together"] = together
    env.globals["qr_code"] = qr_code
    return env


class _TemplateLoader(jinja2.BaseLoader):
    """Templates from folders, read under the fetcher's rules (files.read_inside).

    A link in templates/ that leads out of the project, a FIFO or a huge
    file is never opened: the template fails with the reason.
    """

    def __init__(self, folders: list[Path], roots: list[Path]) -> None:
        self.folders, self.roots = folders, roots

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        pieces = split_template_path(template)  # refuses '..'
        path = next((f.joinpath(*pieces) for f in self.folders if f.joinpath(*pieces).exists()), None)
        if path is None:
            raise jinja2.TemplateNotFound(template)
        try:
            data = read_inside(path, self.roots)
        except Refused as exc:
            raise jinja2.TemplateError(f"template {template!r} cannot be used: {exc}") from None
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            raise jinja2.TemplateError(f"template {template!r} is not UTF-8 text") from None
        mtime = path.stat().st_mtime_ns

        def uptodate() -> bool:
            try:
                return path.stat().st_mtime_ns == mtime
            except OSError:
                return False

        return source, str(path), uptodate


@functools.lru_cache(maxsize=256)
def qr_code(url: str, dark: str = "#000000") -> str:
    """A QR code of ``url`` as a PNG data: URI, one pixel a module.

    The stylesheets draw it with ``image-rendering: pixelated``, so the PDF
    asks for no smoothing and every module prints as a sharp square at any
    size. A picture costs far less to lay out and draw than the same code as
    SVG (a path of hundreds of squares), in every handout and every copy.
    Medium error correction survives a smudge or a fold; the two-module
    white border is the quiet zone scanners need, whatever is around it.
    """
    import segno

    return segno.make(url, error="m", micro=False).png_data_uri(scale=1, border=2, dark=dark, light="#ffffff")


caches.register("document.qr codes", qr_code.cache_clear)


def together(text: str) -> str:
    """The text with its last two words joined by a no-break space, so that no line (a title's or
    a footer's last) ends with one word alone."""
    head, _, last = str(text).rstrip().rpartition(" ")
    joined = f"{head}\u00a0{last}" if head and len(last) < 16 and "<" not in last else str(text)
    return Markup(joined) if isinstance(text, Markup) else joined  # noqa: S704 - was markup already


def short_url(url: str) -> str:
    """A web address as people type it: without 'https://' and a lone trailing '/'."""
    for scheme in ("https://", "http://"):
        url = url.removeprefix(scheme)
    return url.removesuffix("/") if url.count("/") == 1 else url


@jinja2.pass_context
def _month_year(context: jinja2.runtime.Context, date: dt.date | None) -> str:
    """A date as month and year, in the language of the document being rendered."""
    return messages.month_year(date, context.get("lang") or "en")


def section(
    topic: Topic, root: Path, topics: Mapping[str, Topic] | None = None, here: frozenset[str] | None = None
) -> Section:
    """Convert one topic. The only place where Markdown-made HTML is marked safe."""
    return Section(topic, Markup(markup.to_html(topic, root, topics, here)))  # noqa: S704 - escaped by markup


def find_style(root: Path, name: str) -> Path:
    """The stylesheet NAME from the project's styles/ or the built-in ones."""
    dirs = search_path(root, "styles")
    for folder in dirs:
        candidate = folder / name
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(d) for d in dirs)
    raise RenderError.at(
        "content/documents.toml",
        None,
        f"stylesheet {name!r} not found (looked in {looked})",
        "check the name in 'styles', or add the file to styles/",
    )


def brand_css(brand: Brand, paper: str, landscape: bool = False) -> str:
    """CSS custom properties and @font-face rules from the brand; values were validated.

    The page is the brand's paper, turned sideways for a ``landscape`` document (a tri-fold).
    """
    c = brand.colors
    faces = []
    for face in brand.fonts:
        weight = "bold" if "bold" in face.style else "normal"
        style = "italic" if "italic" in face.style else "normal"
        faces.append(
            f'@font-face {{ font-family: "{brand.font_family}"; src: url("{face.path.as_uri()}"); '
            f"font-weight: {weight}; font-style: {style}; }}"
        )
    return "\n".join(
        [
            *faces,
            # Margin boxes (running header, page numbers) take their font from
            # the page, not from <html>: without this they fall back to a
            # system font.
            f"@page {{ size: {paper_named(paper).css_size(landscape)}; "
            f'font-family: "{brand.font_family}"; }}',
            ":root {",
            f'  --brand-font: "{brand.font_family}";',
            f"  --brand-primary: {c['primary']};",
            f"  --brand-accent: {c['accent']};",
            f"  --brand-text: {c['text']};",
            f"  --brand-muted: {c['muted']};",
            f"  --brand-light: {c['light']};",
            "}",
        ]
    )


def render_html(
    env: SandboxedEnvironment,
    root: Path,
    *,
    template: str,
    styles: list[Path],
    brand: Brand,
    paper: str,
    document: dict[str, Any],
    sections: list[Section],
    created: dt.date | None,
    link_styles: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Render one document's HTML; with ``link_styles``, the styles are in it, as a browser needs.

    ``extra`` adds variables to the template's context (a personalised copy's ``patient``).
    """
    try:
        tmpl = env.get_template(template)
    except jinja2.TemplateNotFound as exc:
        looked = ", ".join(str(d) for d in search_path(root, "templates"))
        raise RenderError.at(
            "content/documents.toml",
            None,
            f"template {exc.name!r} not found (looked in {looked})",
            "check the 'template' name, or add the file to templates/",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError.at(
            exc.filename or template, exc.lineno, f"template error: {exc.message}", "fix the Jinja syntax"
        ) from None
    lang = document.get("lang") or (sections[0].lang if sections else "en")
    labels = messages.load(root, lang)
    try:
        return tmpl.render(
            t=labels,
            labels_css=Markup(labels.css()),  # noqa: S704 - quoted and escaped by messages.css_string
            brand=brand,
            contact=brand.contact,
            document=document,
            sections=sections,
            lang=lang,
            created=created.isoformat() if created else None,
            stylesheets=[p.as_uri() for p in styles] if link_styles else [],
            brand_css=Markup(brand_css(brand, paper, bool(document.get("landscape")))) if link_styles else "",  # noqa: S704 - validated values only
            logo=brand.logo.as_uri(),
            **(extra or {}),
            cover_image=brand.cover_image.as_uri() if brand.cover_image else None,
        )
    except jinja2.UndefinedError as exc:
        raise RenderError.at(
            template,
            None,
            f"template uses something undefined: {exc.message}",
            "check the name's spelling in the template",
        ) from None
    except jinja2.TemplateError as exc:
        raise RenderError.at(
            template, getattr(exc, "lineno", None), f"template error: {exc}", "fix the template"
        ) from None


_envs: dict[tuple, object] = caches.kept("document.environments")


def _template_files(root: Path) -> tuple[str, ...]:
    """The project's own templates. Jinja notices a template that changes, not one that appears or goes."""
    own = root / "templates"
    try:
        return tuple(sorted(str(p.relative_to(own)) for p in own.rglob("*") if p.is_file()))
    except OSError:
        return ()


def process_environment(root: Path):  # noqa: ANN201 - a Jinja environment
    """This process's Jinja environment for a project, made again when a template appears or goes."""
    key = (root, _template_files(root))
    env = _envs.get(key)
    if env is None:
        if len(_envs) > 16:
            _envs.clear()
        env = _envs[key] = environment(root)
    return env
