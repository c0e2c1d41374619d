"""Load and check a project's brand (content/brand.toml) and documents (content/documents.toml)."""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brochure.base import paper
from brochure.base.errors import ConfigError, Problem
from brochure.base.files import Refused, read_regular, resolve_inside
from brochure.base.images import unreadable
from brochure.base.paths import default_font_dir, is_inside
from brochure.project import schema
from brochure.project.schema import Field

log = logging.getLogger(__name__)

BRAND_FILE = "content/brand.toml"
DOCUMENTS_FILE = "content/documents.toml"
#: brand.toml and documents.toml are a few KB; TOML has no aliases, so size bounds the parse.
MAX_CONFIG_BYTES = 256 * 1024
FONT_STYLES = ("regular", "bold", "italic", "bold_italic")

#: The default theme's font: files from the font-lato package.
BUILTIN_FONTS = {
    "Lato": {
        "regular": "Lato-Regular.ttf",
        "bold": "Lato-Bold.ttf",
        "italic": "Lato-Italic.ttf",
        "bold_italic": "Lato-BoldItalic.ttf",
    }
}

_FAMILY = re.compile(r"[A-Za-z][A-Za-z0-9 \-]{0,63}")


def _family_name(value: str) -> str | None:
    if _FAMILY.fullmatch(value):
        return None
    return f"is not a usable font family name: {value!r} (letters, digits, spaces, '-')"


def _url(value: str) -> str | None:
    if re.fullmatch(r"https?://[^\s<>\"]+", value):
        return None
    return f"is not a web address: {value!r}"


def _email(value: str) -> str | None:
    return None if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value) else f"is not an email address: {value!r}"


#: Most office printers cannot print within about a quarter inch of the paper's edge.
DEFAULT_SAFE_MARGIN_IN = 0.25


def _cmyk(value: list) -> str | None:
    """A colour's cyan, magenta, yellow and black ink for the print shop, each 0 to 100 (percent)."""
    if len(value) != 4:
        return f"must be four numbers (cyan, magenta, yellow, black), not {len(value)}"
    wrong = [v for v in value if not 0 <= v <= 100]
    if wrong:
        return f"must be percentages from 0 to 100, not {wrong[0]!r}"
    return None


def _safe_margin(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be between 0 and 1 (inches), not {value}"


BRAND_SCHEMA: dict[str, Field] = {
    "clinic_name": Field(
        str, required=True, check=schema.not_blank, example='clinic_name = "Lakeside Aesthetics"'
    ),
    "tagline": Field(str, default=""),
    "logo": Field(str, required=True, example='logo = "images/logo.svg"'),
    "cover_image": Field(str, example='cover_image = "images/cover.jpg"'),
    "paper": Field(str, default=paper.DEFAULT, check=schema.one_of(*paper.NAMES), example='paper = "letter"'),
    "disclaimer": Field(
        str,
        required=True,
        check=schema.not_blank,
        example='disclaimer = "This handout is general information..."',
    ),
    "guide_title": Field(str, default="Patient guide"),
    "colors": Field(
        dict,
        fields={
            "primary": Field(str, default="#1d4f73", check=schema.is_colour, example='primary = "#1d4f73"'),
            "accent": Field(str, default="#8a2c5a", check=schema.is_colour, example='accent = "#8a2c5a"'),
            "text": Field(str, default="#1f1f1f", check=schema.is_colour, example='text = "#1f1f1f"'),
            "muted": Field(str, default="#4d4d4d", check=schema.is_colour, example='muted = "#4d4d4d"'),
            "light": Field(str, default="#eef3f7", check=schema.is_colour, example='light = "#eef3f7"'),
        },
    ),
    "colors_cmyk": Field(
        dict,
        fields={
            key: Field(list, items=float, check=_cmyk, example=f"{key} = {example}")
            for key, example in (
                ("primary", "[92, 62, 28, 12]"),
                ("accent", "[38, 92, 30, 10]"),
                ("text", "[0, 0, 0, 90]"),
                ("muted", "[0, 0, 0, 72]"),
                ("light", "[6, 2, 1, 0]"),
            )
        },
    ),
    "font": Field(
        dict,
        fields={
            "family": Field(str, default="Lato", check=_family_name, example='family = "Lato"'),
            **{style: Field(str, example=f'{style} = "fonts/MyFont-{style}.ttf"') for style in FONT_STYLES},
        },
    ),
    "print": Field(
        dict,
        fields={
            "safe_margin_in": Field(
                float,
                default=DEFAULT_SAFE_MARGIN_IN,
                check=_safe_margin,
                example=f"safe_margin_in = {DEFAULT_SAFE_MARGIN_IN}",
            ),
        },
    ),
    "contact": Field(
        dict,
        fields={
            "address": Field(
                str, required=True, check=schema.not_blank, example='address = "100 Main Street, Springfield"'
            ),
            "phone": Field(str, required=True, check=schema.not_blank, example='phone = "555-0142"'),
            "email": Field(str, check=_email, example='email = "hello@example.com"'),
            "website": Field(str, check=_url, example='website = "https://example.com"'),
            "booking_url": Field(str, check=_url, example='booking_url = "https://example.com/book"'),
            "hours": Field(str, default=""),
        },
    ),
}

#: The most pages a document may have: a booklet a desk printer can fold and staple is far less.
MAX_PAGES = 100


def _page_count(value: int) -> str | None:
    if value < 1:
        return f"must be 1 or more, not {value}"
    return (
        None
        if value <= MAX_PAGES
        else f"must be at most {MAX_PAGES} (brochure makes no longer PDF), not {value}"
    )


DOCUMENT_SCHEMA: dict[str, Field] = {
    "name": Field(str, required=True, example='name = "brochure"  (or "{topic}" for one per topic)'),
    "kind": Field(
        str,
        default="handout",
        check=schema.one_of("handout", "brochure", "trifold"),
        example='kind = "handout"',
    ),
    "template": Field(str, example='template = "handout.html"'),
    "styles": Field(list, items=str, example='styles = ["base.css", "handout.css"]'),
    "title": Field(str, example='title = "Your guide to Botox"'),
    "subtitle": Field(str, default=""),
    "topics": Field(list, items=str, example='topics = ["what-is-botox", "aftercare"]'),
    "pages": Field(int, check=_page_count, example="pages = 1"),
    "max_pages": Field(int, check=_page_count, example="max_pages = 16"),
    "multiple_of": Field(int, check=_page_count, example="multiple_of = 4"),
    "pad_with": Field(
        str, default="blank", check=schema.one_of("blank", "notes"), example='pad_with = "notes"'
    ),
    "large_print": Field(bool, default=False, example="large_print = true"),
    "large_print_pages": Field(int, check=_page_count, example="large_print_pages = 2"),
    "languages": Field(list, items=str, example='languages = ["en", "es"]'),
}

#: The pages of a kind that always has the same number: a handout one (unless it says), a tri-fold two.
FIXED_PAGES = {"handout": 1, "trifold": 2}
#: A large-print handout may have this many pages unless its document says otherwise.
LARGE_PRINT_PAGES = 2
#: A tri-fold's body text is never set below this size, even when the project's floor is higher.
TRIFOLD_FLOOR_PT = 9.5
#: Large print never sets body text below this size, not even to fit.
LARGE_PRINT_FLOOR_PT = 16.0


def _at_least_9(value: float) -> str | None:
    # Nothing on a handout is ever printed below 9 pt.
    return None if 9 <= value <= 14 else f"must be between 9 and 14, not {value}"


SETTINGS_SCHEMA: dict[str, Field] = {
    "languages": Field(list, items=str, example='languages = ["en", "es"]'),
    "fit": Field(
        dict,
        fields={
            "body_floor_pt": Field(float, default=11.0, check=_at_least_9, example="body_floor_pt = 11"),
        },
    ),
    "checks": Field(
        dict,
        fields={
            "reading_grade": Field(
                float,
                default=8.0,
                check=lambda v: None if 1 <= v <= 20 else "must be between 1 and 20",
                example="reading_grade = 8",
            ),
            "reading_ease_es": Field(
                float,
                default=70.0,
                check=lambda v: None if 0 <= v <= 100 else "must be between 0 and 100",
                example="reading_ease_es = 70",
            ),
            "review_warning_days": Field(
                int,
                default=30,
                check=lambda v: None if v >= 0 else "must be 0 or more",
                example="review_warning_days = 30",
            ),
        },
    ),
}


@dataclass(frozen=True)
class Settings:
    """Project-wide settings from content/documents.toml."""

    body_floor_pt: float = 11.0
    reading_grade: float = 8.0
    review_warning_days: int = 30
    #: Spanish topics: the lowest Fernández-Huerta reading ease (70 is "fairly easy").
    reading_ease_es: float = 70.0
    #: The project's languages, its topics' own language first; () when it declares none.
    languages: tuple[str, ...] = ()

    @property
    def source_lang(self) -> str:
        """The language the topics are written in (translations are made from them)."""
        return self.languages[0] if self.languages else "en"


@dataclass(frozen=True)
class FontFace:
    """One font file of the brand's family."""

    style: str  # one of FONT_STYLES
    path: Path


@dataclass(frozen=True)
class Brand:
    """The clinic's brand: read once, used by every document."""

    file: Path
    clinic_name: str
    tagline: str
    logo: Path
    paper: str
    disclaimer: str
    guide_title: str
    colors: dict[str, str]
    font_family: str
    fonts: tuple[FontFace, ...]
    contact: dict[str, str | None]
    #: Nothing is printed closer than this to any edge of the paper (inches).
    safe_margin_in: float = DEFAULT_SAFE_MARGIN_IN
    #: A picture for the brochure's cover, drawn as decoration (optional).
    cover_image: Path | None = None
    #: The print shop's CMYK for each colour (percent), where brand.toml gives it (see engine.press).
    colors_cmyk: dict[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class DocumentSpec:
    """One entry of the documents config, before '{topic}' is expanded."""

    name: str
    kind: str
    template: str
    styles: tuple[str, ...]
    title: str | None
    subtitle: str
    topics: tuple[str, ...] | None  # None: every topic, in order
    pages: int | None  # exact page budget
    max_pages: int | None
    multiple_of: int | None  # pad to a multiple of this many pages (booklets)
    pad_with: str  # "blank" or "notes"
    line: int | None  # where it is declared, for messages
    #: A handout also made in large print (NAME.large.pdf), with its own page budget.
    large_print: bool = False
    large_print_pages: int = LARGE_PRINT_PAGES
    #: The languages a brochure is made in (brochure.es.pdf); () for the project's own.
    languages: tuple[str, ...] = ()
    #: Large print: this document is the variant (styles end with large.css).
    large: bool = False
    #: The line of its 'topics' key, for messages about a topic it names.
    topics_line: int | None = None


DEFAULT_DOCUMENTS = [
    {"name": "{topic}", "kind": "handout", "pages": 1},
    {"name": "brochure", "kind": "brochure"},
]


def read_toml(path: Path, shown: str, root: Path | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse a TOML file (inside ``root`` when given); return its data and the line of each key."""
    try:
        real = resolve_inside(path, [root.resolve()]) if root else path
        data = read_regular(real, MAX_CONFIG_BYTES)
    except Refused as exc:
        why = str(exc)
        if why == "file not found":
            raise ConfigError.at(shown, None, why, "create it; see README.md, 'Change the brand'") from None
        if why.startswith("larger"):
            size = f"{real.stat().st_size:,} bytes; at most {MAX_CONFIG_BYTES // 1024} KB"
            raise ConfigError.at(
                shown,
                None,
                f"is too large for a settings file ({size})",
                "keep only the settings in it; see README.md",
            ) from None
        raise ConfigError.at(
            shown, None, f"cannot be read: {why}", "make it an ordinary text file inside the project"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError.at(
            shown, None, "cannot be read: it is not UTF-8 text", "save it as UTF-8 text"
        ) from None
    try:
        table = tomllib.loads(text)
    except RecursionError:
        # TOML has no aliases, but lists nested thousands deep exhaust the parser's stack.
        raise ConfigError.at(
            shown,
            None,
            "not valid TOML: lists or tables are nested too deeply",
            "use plain 'key = value' lines",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError.at(
            shown,
            line,
            f"not valid TOML: {what}",
            "check quotes and brackets; text values go in double quotes",
        ) from None
    return table, schema.toml_key_lines(text)


def _project_file(
    root: Path, value: str, line: int | None, key: str, suffixes: tuple[str, ...], fix: str
) -> tuple[Path | None, Problem | None]:
    """Resolve a file the brand names (relative to content/): it must exist, lie inside the project,
    and be of one of the ``suffixes``."""
    candidate = (root / "content" / value).resolve()
    if not is_inside(candidate, root):
        return None, Problem(
            BRAND_FILE,
            line,
            f"'{key}' points outside the project: {value!r}",
            f"copy the file into {root.name}/content/ and name it relative to content/",
        )
    if not candidate.is_file():
        return None, Problem(
            BRAND_FILE,
            line,
            f"'{key}' names a file that does not exist: {value!r}",
            "check the spelling; paths are relative to the content/ folder",
        )
    if candidate.suffix.lower() not in suffixes:
        kinds = ", ".join(suffixes)
        return None, Problem(BRAND_FILE, line, f"'{key}' must be a {kinds} file, not {candidate.name!r}", fix)
    return candidate, None


def load_brand(root: Path) -> tuple[Brand, list[Problem]]:
    """Read content/brand.toml; raise ConfigError with every problem, return warnings."""
    path = root / BRAND_FILE
    data, lines = read_toml(path, BRAND_FILE, root)
    result = schema.validate(data, BRAND_SCHEMA, BRAND_FILE, lines)
    errors = list(result.errors)
    values = result.values
    logo = None
    if values.get("logo"):
        logo, problem = _project_file(
            root,
            values["logo"],
            lines.get("logo"),
            "logo",
            (".svg", ".png", ".jpg", ".jpeg"),
            "export the logo as SVG",
        )
        if problem:
            errors.append(problem)
        elif logo is not None and (why := unreadable(logo)):
            errors.append(
                Problem(BRAND_FILE, lines.get("logo"), f"'logo' {why}", "export the logo again as SVG")
            )
    cover_image = None
    if values.get("cover_image"):
        cover_image, problem = _project_file(
            root,
            values["cover_image"],
            lines.get("cover_image"),
            "cover_image",
            (".svg", ".png", ".jpg", ".jpeg", ".webp"),
            "use a PNG, JPEG or SVG picture",
        )
        if problem:
            errors.append(problem)
        elif cover_image is not None and (why := unreadable(cover_image)):
            errors.append(
                Problem(BRAND_FILE, lines.get("cover_image"), f"'cover_image' {why}", "save it again")
            )
    font = values["font"]
    fonts: list[FontFace] = []
    given = {style: font[style] for style in FONT_STYLES if font.get(style)}
    if given:
        if "regular" not in given:
            errors.append(
                Problem(
                    BRAND_FILE,
                    lines.get("font"),
                    "'font.regular' is required when font files are given",
                    'add regular = "fonts/MyFont-Regular.ttf" under [font]',
                )
            )
        for style, value in given.items():
            found, problem = _project_file(
                root,
                value,
                lines.get(f"font.{style}"),
                f"font.{style}",
                (".ttf", ".otf", ".woff", ".woff2"),
                "use the font's TrueType or OpenType file",
            )
            if problem:
                errors.append(problem)
            elif found is not None:
                fonts.append(FontFace(style, found))
    elif font["family"] in BUILTIN_FONTS:
        folder = default_font_dir()
        fonts = [FontFace(style, folder / name) for style, name in BUILTIN_FONTS[font["family"]].items()]
    elif font["family"]:
        errors.append(
            Problem(
                BRAND_FILE,
                lines.get("font.family"),
                f"font family {font['family']!r} is not built in, and no font files are given",
                f'use family = "{next(iter(BUILTIN_FONTS))}", or put the font\'s files in content/fonts/ '
                'and add regular = "fonts/...ttf" under [font]',
            )
        )
    if errors:
        raise ConfigError(errors)
    brand = Brand(
        file=path,
        clinic_name=values["clinic_name"].strip(),
        tagline=values["tagline"],
        logo=logo,  # type: ignore[arg-type]  # checked above: required, and found
        paper=values["paper"],
        disclaimer=values["disclaimer"].strip(),
        guide_title=values["guide_title"],
        colors=values["colors"],
        font_family=font["family"],
        fonts=tuple(fonts),
        contact=values["contact"],
        safe_margin_in=float(values["print"]["safe_margin_in"]),
        cover_image=cover_image,
        colors_cmyk={k: tuple(v) for k, v in values["colors_cmyk"].items() if v is not None},
    )
    return brand, result.warnings


def load_documents(root: Path) -> tuple[list[DocumentSpec], Settings, list[Problem]]:
    """Read content/documents.toml, or use the defaults (a handout per topic and a brochure)."""
    path = root / DOCUMENTS_FILE
    errors: list[Problem] = []
    if path.exists():
        data, lines = read_toml(path, DOCUMENTS_FILE, root)
        entries = data.get("document")
        if not isinstance(entries, list) or not entries:
            raise ConfigError.at(
                DOCUMENTS_FILE,
                None,
                "declares no documents",
                "add a [[document]] table for each document; see README.md",
            )
        rest = {k: v for k, v in data.items() if k != "document"}
        checked = schema.validate(rest, SETTINGS_SCHEMA, DOCUMENTS_FILE, lines)
        errors += checked.errors
        warnings = list(checked.warnings)
        values = checked.values
        settings = Settings(
            body_floor_pt=values["fit"]["body_floor_pt"],
            reading_grade=values["checks"]["reading_grade"],
            review_warning_days=values["checks"]["review_warning_days"],
            reading_ease_es=values["checks"]["reading_ease_es"],
            languages=tuple(values["languages"] or ()),
        )
        errors += _check_languages(settings.languages, DOCUMENTS_FILE, lines.get("languages"))
    else:
        entries, lines, warnings, settings = DEFAULT_DOCUMENTS, {}, [], Settings()
    specs: list[DocumentSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        prefix = f"document.{index}."
        line = lines.get(f"document.{index}")
        if not isinstance(entry, dict):
            errors.append(Problem(DOCUMENTS_FILE, line, "each document must be a [[document]] table", None))
            continue
        result = schema.validate(
            entry, DOCUMENT_SCHEMA, DOCUMENTS_FILE, lines, prefix=prefix, line_if_unknown=line
        )
        # Messages speak of the key as written inside the [[document]] table.
        errors += [_unprefix(p, prefix) for p in result.errors]
        warnings += [_unprefix(p, prefix) for p in result.warnings]
        v = result.values
        if result.errors:
            continue
        name = v["name"]
        if name != "{topic}" and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,79}", name):
            errors.append(
                Problem(
                    DOCUMENTS_FILE,
                    lines.get(prefix + "name", line),
                    f"document name {name!r} cannot be a file name",
                    "use letters, digits, '-' and '_' only",
                )
            )
            continue
        if name in seen:
            errors.append(
                Problem(
                    DOCUMENTS_FILE,
                    lines.get(prefix + "name", line),
                    f"document name {name!r} is used twice",
                    "give each document its own name",
                )
            )
            continue
        seen.add(name)
        kind = v["kind"]
        if kind == "trifold":
            problems = _check_trifold(name, v, lines, prefix, line)
            if problems:
                errors += problems
                continue
        specs.append(
            DocumentSpec(
                name=name,
                kind=kind,
                template=v["template"] or f"{kind}.html",
                styles=tuple(v["styles"] or ("base.css", f"{kind}.css")),
                title=v["title"],
                subtitle=v["subtitle"],
                topics=tuple(v["topics"]) if v["topics"] is not None else None,
                pages=v["pages"] if v["pages"] is not None else FIXED_PAGES.get(kind),
                max_pages=v["max_pages"],
                multiple_of=v["multiple_of"],
                pad_with=v["pad_with"],
                line=line,
                large_print=v["large_print"],
                large_print_pages=v["large_print_pages"] or LARGE_PRINT_PAGES,
                languages=tuple(v["languages"] or ()),
                topics_line=lines.get(prefix + "topics", line),
            )
        )
        errors += _check_languages(v["languages"] or (), DOCUMENTS_FILE, lines.get(prefix + "languages"))
        if v["large_print"] and kind != "handout":
            errors.append(
                Problem(
                    DOCUMENTS_FILE,
                    lines.get(prefix + "large_print", line),
                    f"document {name!r}: large print is made for handouts only",
                    "remove 'large_print' from the brochure, or set it on a handout",
                )
            )
    if errors:
        raise ConfigError(errors)
    return specs, settings, warnings


def _check_trifold(
    name: str, values: dict[str, Any], lines: dict[str, int], prefix: str, line: int | None
) -> list[Problem]:
    """A tri-fold's own rules: chosen topics, and no page budget (it is always one sheet, two sides)."""
    problems = []
    if not values["topics"]:
        problems.append(
            Problem(
                DOCUMENTS_FILE,
                lines.get(prefix + "topics", line),
                f"tri-fold {name!r} has no topics: its six panels hold two or three short topics, not all",
                'add topics = ["aftercare", "side-effects"]: file names from content/topics/ without .md',
            )
        )
    for key in ("pages", "max_pages", "multiple_of"):
        if values[key] is not None:
            problems.append(
                Problem(
                    DOCUMENTS_FILE,
                    lines.get(prefix + key, line),
                    f"tri-fold {name!r} sets '{key}', but a tri-fold is always one sheet "
                    "printed on both sides (2 pages)",
                    f"remove '{key}'; to make it fit, choose fewer or shorter topics",
                )
            )
    return problems


def _check_languages(languages: Sequence[Any], shown: str, line: int | None) -> list[Problem]:
    """Problems with a list of language tags: each must be a tag, and named once."""
    problems: list[Problem] = []
    for lang in languages:
        if why := schema.is_lang(lang):
            problems.append(Problem(shown, line, f"languages: {why}", 'write tags like "en" or "es"'))
    if len(set(languages)) != len(list(languages)):
        problems.append(Problem(shown, line, "languages names a language twice", "name each language once"))
    return problems


def _unprefix(problem: Problem, prefix: str) -> Problem:
    return Problem(problem.file, problem.line, problem.message.replace(prefix, ""), problem.fix)
