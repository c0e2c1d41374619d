"""`brochure check`: everything that can be wrong with a project, found without writing a file."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from brochure.base.errors import BrochureError, BudgetError, ContentError, Problem
from brochure.document.compose import render_document
from brochure.project.config import Brand
from brochure.project.model import Document, Project, load_project, select
from brochure.project.topics import Topic

ERROR, WARNING = "error", "warning"

#: (colour key, what it is used for, WCAG AA ratio against the paper)
CONTRAST_USES = (
    ("text", "body text", 4.5),
    ("muted", "small print and summaries", 4.5),
    ("accent", "links", 4.5),
    ("primary", "headings", 3.0),
)


@dataclass(frozen=True)
class Finding:
    """One problem `brochure check` reports."""

    level: str  # ERROR or WARNING
    check: str
    problem: Problem

    def as_dict(self) -> dict[str, object]:
        p = self.problem
        return {
            "level": self.level,
            "check": self.check,
            "file": None if p.file is None else str(p.file),
            "line": p.line,
            "message": p.message,
            "fix": p.fix,
        }


@dataclass
class DocumentStatus:
    """Whether a document fits its page budget."""

    name: str
    budget: str
    pages: int | None = None
    status: str = "does not fit"  # "fits", "fits after auto-fit", "does not fit", "fails"
    body_pt: float | None = None
    extra_layouts: int = 0

    def describe(self) -> str:
        if self.status == "fits after auto-fit":
            return f"fits after auto-fit at {self.body_pt:g} pt"
        return self.status


@dataclass
class Report:
    """Everything `brochure check` found."""

    findings: list[Finding] = field(default_factory=list)
    documents: list[DocumentStatus] = field(default_factory=list)

    def add(self, level: str, check: str, problems: Iterable[Problem]) -> None:
        self.findings += [Finding(level, p.check or check, p) for p in problems]

    def note(self, level: str, check: str, file: object, line: int | None, message: str, fix: str) -> None:
        self.add(level, check, [Problem(file, line, message, fix)])

    @property
    def errors(self) -> int:
        return sum(f.level == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.level == WARNING for f in self.findings)

    def failed(self, strict: bool) -> bool:
        return bool(self.errors or (strict and self.warnings))


def check_project(
    root: Path | str,
    names: Iterable[str] = (),
    *,
    today: dt.date | None = None,
    paper: str | None = None,
    render: bool = True,
    print_shop: bool = False,
) -> Report:
    """Run every check on the project at ``root``; never writes a file.

    With ``print_shop``, each document that is not a handout is also made
    as its print shop's file, in memory, and read back as a shop's preflight
    would (see _check_press).
    """
    report = Report()
    try:
        project = load_project(root)
        docs = select(project, names)
    except BrochureError as exc:
        report.add(ERROR, "config", exc.problems)
        return report
    report.add(WARNING, "config", project.warnings)
    chosen = {t.shown: t for doc in docs for t in doc.topics}
    today = today or dt.date.today()
    for topic in chosen.values():
        _check_topic(project, topic, today, report)
    _check_translations(project, report)
    _check_email_languages(project, report)
    _check_follow_ups(project, chosen.values(), today, report)
    _check_contrast(project.brand, report)
    if render:
        for doc in docs:
            if print_shop and doc.pressable:
                doc = replace(doc, press=True)
            report.documents.append(_check_document(project, doc, paper or project.brand.paper, report))
    return report


def _check_topic(project: Project, topic: Topic, today: dt.date, report: Report) -> None:
    from brochure.document.markup import convert
    from brochure.document.readability import reading

    topics = project.link_targets(topic.lang)
    try:
        converted = convert(topic, project.root, topics, frozenset(topics))
    except BrochureError as exc:
        report.add(ERROR, "content", exc.problems)
        return
    report.add(ERROR, "content", converted.errors)
    report.add(WARNING, "headings", converted.warnings)
    _check_review(project, topic, today, report)
    language = topic.lang.split("-")[0].lower()
    if language == "es":
        _check_reading_es(project, topic, converted.html, report)
    if language != "en":
        return  # the reading grade is an English formula
    target = project.settings.reading_grade
    result = reading(converted.html)
    if result.grade > target:
        hardest = "; ".join(
            f'line {_line_of(topic, s.text)}: "{_short(s.text)}" (grade {s.grade:.1f})'
            for s in result.hardest()
        )
        report.note(
            WARNING,
            "reading",
            topic.shown,
            None,
            f"reads at grade {result.grade:g}, above the target of {target:g}; hardest sentences: {hardest}",
            "use shorter sentences and everyday words",
        )


def _check_reading_es(project: Project, topic: Topic, html: str, report: Report) -> None:
    from brochure.document.readability import reading_es

    target = project.settings.reading_ease_es
    ease, hardest = reading_es(html)
    if ease < target:
        shown = "; ".join(
            f'line {_line_of(topic, text)}: "{_short(text)}" (ease {score:.0f})'
            for score, text in hardest[:3]
        )
        report.note(
            WARNING,
            "reading",
            topic.shown,
            None,
            f"reads at Fernández-Huerta ease {ease:g}, below the target of {target:g}; "
            f"hardest sentences: {shown}",
            "use shorter sentences and shorter words",
        )


def _check_translations(project: Project, report: Report) -> None:
    """Translations made from an older version of their source; topics a declared language lacks."""
    from brochure.project.topics import source_version

    sources = {t.slug: t for t in project.topics}
    for text in project.translations:
        source = sources[text.slug]
        now = source_version(source)
        line = _front_matter_line(text, "source_version")
        if text.source_version is None:
            report.note(
                WARNING,
                "translation",
                text.shown,
                1,
                f"does not say which version of {source.shown} it translates",
                f"if it matches {source.shown} today, add 'source_version: \"{now}\"' to its front matter",
            )
        elif text.source_version != now:
            report.note(
                WARNING,
                "translation",
                text.shown,
                line,
                f"is out of date: {source.shown} has changed since it was translated",
                f"bring the translation up to date, then set 'source_version: \"{now}\"'",
            )
    declared = project.settings.languages
    for lang in declared[1:]:
        have = {t.slug for t in project.translations if t.lang == lang}
        for topic in project.topics:
            if topic.slug not in have:
                report.note(
                    WARNING,
                    "translation",
                    topic.shown,
                    None,
                    f"has no translation into {lang!r}, a language content/documents.toml declares",
                    f"translate it into content/topics/{topic.slug}.{lang}.md, "
                    f"with 'source_version: \"{source_version(topic)}\"' in its front matter",
                )


def _check_email_languages(project: Project, report: Report) -> None:
    """A language of the project whose emails would go in English: each file it lacks, named."""
    from brochure.document.emails import FILES, untranslated

    for lang, path in untranslated(project):
        english = f"templates/email/{path.rsplit('/', 1)[1]}"
        report.note(
            WARNING,
            "email",
            path,
            None,
            f"is missing: emails in {lang!r} go in English until the language has all of {', '.join(FILES)}",
            f"copy the built-in {english} there and translate it",
        )


def _check_review(project: Project, topic: Topic, today: dt.date, report: Report) -> None:
    line = _front_matter_line(topic, "review_due")
    _review(
        project,
        topic.shown,
        line,
        topic.review_due,
        today,
        report,
        "add 'review_due: YYYY-MM-DD' to its front matter",
    )


def _review(
    project: Project,
    shown: str,
    line: int | None,
    due: dt.date | None,
    today: dt.date,
    report: Report,
    add: str,
    what: str = "content",
) -> None:
    """A topic's (or a follow-up email's) medical review: none planned, overdue, or due soon."""
    days = project.settings.review_warning_days
    if due is None:
        report.note(WARNING, "review", shown, line or 1, "has no review_due date", add)
    elif due < today:
        report.note(
            ERROR,
            "review",
            shown,
            line,
            f"medical review was due on {due.isoformat()} and is overdue",
            f"have the {what} reviewed, then update reviewed_on and review_due",
        )
    elif (due - today).days <= days:
        report.note(
            WARNING,
            "review",
            shown,
            line,
            f"medical review is due on {due.isoformat()}, in {(due - today).days} days",
            "plan the review, then update reviewed_on and review_due",
        )


def _check_follow_ups(project: Project, topics: Iterable[Topic], today: dt.date, report: Report) -> None:
    """Each follow-up email a topic names: there, in each of the project's languages (or in English),
    and reviewed like a topic (an overdue one is held, not sent)."""
    from brochure.document.emails import follow_up, languages

    seen: set[str] = set()
    for topic in topics:
        for wanted in topic.follow_ups:
            for lang in dict.fromkeys([topic.lang, *languages(project)]):
                try:
                    email = follow_up(project.root, wanted.template, lang)
                except BrochureError as exc:
                    line = _front_matter_line(topic, "follow_ups")
                    for problem in exc.problems:
                        report.note(
                            ERROR,
                            "follow-up",
                            topic.shown,
                            line,
                            f"{problem.file}: {problem.message}",
                            problem.fix,
                        )
                    break
                if email.shown in seen:
                    continue
                seen.add(email.shown)
                line = _toml_line(project, email.shown, "review_due")
                _review(
                    project,
                    email.shown,
                    line,
                    email.review_due,
                    today,
                    report,
                    "add 'review_due = YYYY-MM-DD'",
                    "email",
                )


def _toml_line(project: Project, shown: str, key: str) -> int | None:
    from brochure.base.paths import builtin_dir
    from brochure.project.schema import toml_key_lines

    for folder in (project.root, builtin_dir("templates").parent):
        path = folder / shown
        if path.is_file():
            return toml_key_lines(path.read_text(encoding="utf-8", errors="replace")).get(key)
    return None


def contrast_ratio(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two '#rrggbb' or '#rgb' colours."""

    def luminance(colour: str) -> float:
        digits = colour.lstrip("#")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        channels = []
        for i in range(0, 6, 2):
            c = int(digits[i : i + 2], 16) / 255
            channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
        red, green, blue = channels
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _check_contrast(brand: Brand, report: Report) -> None:
    from brochure.project.config import BRAND_FILE
    from brochure.project.schema import toml_key_lines

    lines = toml_key_lines(brand.file.read_text(encoding="utf-8"))
    uses = [(key, use, "#ffffff", "white paper", need) for key, use, need in CONTRAST_USES]
    uses.append(("text", "text in note boxes", brand.colors["light"], "the 'light' colour", 4.5))
    # The handout's brand band prints white text on the primary colour.
    uses.append(("primary", "white text on the brand band", "#ffffff", "white text", 4.5))
    failed: set[tuple[str, str]] = set()
    for key, use, background, on, need in uses:
        ratio = contrast_ratio(brand.colors[key], background)
        pair = (key, "#ffffff" if on == "white text" else background)
        if ratio < need and pair not in failed:
            failed.add(pair)
            report.note(
                ERROR,
                "contrast",
                BRAND_FILE,
                lines.get(f"colors.{key}"),
                f"colors.{key} {brand.colors[key]} on {on} has contrast {ratio:.2f}:1; "
                f"{use} need at least {need:g}:1 (WCAG AA)",
                f"choose a darker '{key}' colour",
            )


def _check_document(project: Project, doc: Document, paper: str, report: Report) -> DocumentStatus:
    status = DocumentStatus(doc.name, str(doc.budget))
    try:
        rendered = render_document(project, doc, paper)
    except BudgetError as exc:
        status.status = "does not fit"
        report.add(ERROR, "budget", exc.problems)
        return status
    except ContentError:
        status.status = "fails"  # its topics' problems are reported already
        return status
    except BrochureError as exc:
        status.status = "fails"
        report.add(ERROR, "render", exc.problems)
        return status
    status.pages = rendered.pages
    status.body_pt = rendered.fit.body_pt
    status.extra_layouts = rendered.fit.extra_layouts
    status.status = "fits after auto-fit" if rendered.fit.tightened else "fits"
    report.add(
        WARNING,
        "engine",
        [Problem(doc.source, None, f"document {doc.name!r}: {w}") for w in rendered.warnings],
    )
    if rendered.press_error is not None:
        report.add(ERROR, PRINT_SHOP, rendered.press_error.problems)
    elif doc.press:
        report.add(ERROR, PRINT_SHOP, press_problems(project, doc, paper, rendered.press))
    return status


PRINT_SHOP = "print-shop"


def press_problems(project: Project, doc: Document, paper: str, press_pdf: bytes) -> list[Problem]:
    """What a print shop's preflight would reject in ``doc``'s print-shop file, each with its fix."""
    from brochure.engine import press

    found = press.inspect(press_pdf)
    name, where = doc.name, doc.source
    problems = []
    if not (found.output_intent and found.cmyk_profile and found.pdfx):
        problems.append(
            Problem(
                where,
                None,
                f"document {name!r}: its print-shop file is not PDF/X-4 with a CMYK output intent",
                "keep brochure's built-in print-shop settings; please report it",
            )
        )
    for what in found.rgb:
        problems.append(
            Problem(
                where,
                None,
                f"document {name!r}: its print-shop file still has RGB colour ({what})",
                "use plain colours, linear or radial gradients and PNG or JPEG pictures in templates "
                "and styles; please report it if it persists",
            )
        )
    if found.no_bleed:
        missing = ", ".join(str(n) for n in found.no_bleed)
        problems.append(
            Problem(
                where,
                None,
                f"document {name!r}: its print-shop file has no 3 mm bleed on page {missing}",
                "remove 'bleed' and 'size' from the @page rules in your stylesheets",
            )
        )
    for font in found.fonts_not_embedded:
        problems.append(
            Problem(
                where,
                None,
                f"document {name!r}: the font {font} is not embedded",
                "use the brand font from content/brand.toml, whose files are embedded",
            )
        )
    files = _picture_files(project, doc, paper)
    # One line for each picture at each size, with the pages it is on.
    low: dict[tuple, list[int]] = {}
    for picture in found.pictures:
        if not picture.crisp and picture.dpi < press.MIN_DPI:
            key = (picture.width, picture.height, round(picture.width_in, 2), round(picture.height_in, 2))
            low.setdefault(key, [])
            if picture.page not in low[key]:
                low[key].append(picture.page)
    for (width, height, width_in, height_in), pages in low.items():
        shown = files.get((width, height))
        what = f"the picture {shown}" if shown else f"a picture of {width} x {height} pixels"
        dpi = min(width / width_in, height / height_in)
        on = f"page {pages[0]}" if len(pages) == 1 else f"pages {', '.join(map(str, pages))}"
        need_w, need_h = round(width_in * press.MIN_DPI), round(height_in * press.MIN_DPI)
        problems.append(
            Problem(
                shown or where,
                None,
                f"document {name!r}: {what} prints at {dpi:.0f} dpi on {on} "
                f"({width_in:.2f} x {height_in:.2f} in); a print shop needs {press.MIN_DPI} dpi",
                f"use a larger picture, at least {need_w} x {need_h} pixels, or show it smaller",
            )
        )
    return problems


_SOURCE = re.compile(r"""\bsrc=["']([^"']+)["']""")


def _picture_files(project: Project, doc: Document, paper: str) -> dict[tuple[int, int], str]:
    """The raster pictures ``doc`` shows, by their size in pixels, each as its path in the project."""
    from urllib.parse import unquote, urlsplit
    from urllib.request import url2pathname

    from brochure.base.images import pixel_size
    from brochure.document.compose import document_html

    html = document_html(project, doc, paper, link_styles=False)
    content = project.root / "content"
    paths = [project.brand.logo, project.brand.cover_image]
    for source in _SOURCE.findall(html):
        parts = urlsplit(source)
        if parts.scheme in ("", "file"):
            paths.append(content / url2pathname(unquote(parts.path)))
    found: dict[tuple[int, int], str] = {}
    for path in paths:
        if path is None:
            continue
        try:
            size = pixel_size(path.read_bytes()[: 1 << 20])
            shown = path.resolve().relative_to(project.root.resolve()).as_posix()
        except (OSError, ValueError):
            continue
        if size is not None:
            found.setdefault(size, shown)
    return found


def _line_of(topic: Topic, sentence: str) -> int:
    words = sentence.split()[:4]
    for index, line in enumerate(topic.body.split("\n")):
        if " ".join(line.split()).find(" ".join(words[:3])) >= 0:
            return topic.body_line + index
    return topic.body_line


def _front_matter_line(topic: Topic, key: str) -> int | None:
    return dict(topic.key_lines).get(key)


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
