"""The sample's look, measured on the PDFs as printed: the brochure's running heads and back page,
the write-in box, QR code sizes, hyphenation, the warning box, pictures and the follow-up date.

Sizes are read from the PDF by PDFium (another engine than the one that made it), in points
(72 to the inch); text by pypdf.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pikepdf
import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest
import zxingcpp
from conftest import REPO, build_ok, pdf_text, structure
from pypdf import PdfReader

from brochure.deliver import check_patient
from brochure.deliver.packet import template_context
from brochure.document import messages
from brochure.document.personalised import render_packet
from brochure.project.model import load_project

MM = 72 / 25.4  # points in a millimetre


def handouts(out: Path) -> list[Path]:
    """The sample's handouts (not its brochure or tri-fold)."""
    return [
        p for p in sorted(out.glob("*.pdf")) if not p.name.startswith("brochure") and "trifold" not in p.name
    ]


def page_objects(
    path: Path | bytes, page: int, kind: int
) -> list[tuple[tuple[float, float, float, float], tuple]]:
    """(left, bottom, right, top) in points of each object of ``kind`` on a page, and for a picture
    its size in pixels (read before the document is closed: the objects are its memory)."""
    document = pypdfium2.PdfDocument(path)
    try:
        found = []
        for obj in document[page].get_objects(filter=[kind]):
            pixels = tuple(obj.get_size()) if kind == pdfium_c.FPDF_PAGEOBJ_IMAGE else ()
            found.append((tuple(obj.get_pos()), pixels))
        return found
    finally:
        document.close()


def text_box(path: Path | bytes, page: int, words: str) -> tuple[float, float, float, float] | None:
    """Where ``words`` are on a page: (left, bottom, right, top) in points, or None."""
    document = pypdfium2.PdfDocument(path)
    try:
        text = document[page].get_textpage()
        searcher = text.search(words, match_case=True)
        hit = searcher.get_next()
        if hit is None:
            return None
        index, count = hit
        boxes = [text.get_charbox(i) for i in range(index, index + count)]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    finally:
        document.close()


def text_in(path: Path | bytes, page: int, box: tuple[float, float, float, float]) -> str:
    """The text inside (left, bottom, right, top) on a page, whitespace folded."""
    document = pypdfium2.PdfDocument(path)
    try:
        return " ".join(document[page].get_textpage().get_text_bounded(*box).split())
    finally:
        document.close()


def page_size(path: Path, page: int = 0) -> tuple[float, float]:
    document = pypdfium2.PdfDocument(path)
    try:
        return document[page].get_size()
    finally:
        document.close()


# -- the brochure ------------------------------------------------------------------------------


def test_each_brochure_page_is_headed_by_the_topic_it_starts_in(sample_out, sample_topics):
    """The running head names the topic the page starts in: the one continuing from the page before,
    or the one whose title opens the page; never one that only begins lower down."""
    path = sample_out / "brochure.pdf"
    titles = [t.title for t in sorted((t for t in sample_topics if t.lang == "en"), key=lambda t: t.order)]
    width, height = page_size(path)
    pages = len(PdfReader(path).pages)
    assert pages >= 5
    current = None
    checked = 0
    for number in range(2, pages - 1):  # after the cover and the contents, before the back page
        head = text_in(path, number, (0, height - 0.8 * 72, width, height))
        body = text_in(path, number, (0, 0.8 * 72, width, height - 0.8 * 72))
        starting = sorted((body.index(t), t) for t in titles if t in body)
        opens_with = next((t for t in titles if body.startswith(t)), None)
        expected = opens_with or current
        assert expected is not None, f"page {number + 1}: no topic before it or on it"
        assert head == expected, f"page {number + 1} is headed {head!r}; it starts in {expected!r}"
        current = starting[-1][1] if starting else current
        checked += 1
    assert checked == pages - 3
    # A page where one topic goes on and another starts lower down: the case string(section) got wrong.
    assert any(
        (t := text_in(path, n, (0, 0.8 * 72, width, height - 0.8 * 72)))
        and not any(t.startswith(x) for x in titles)
        and any(x in t for x in titles)
        for n in range(2, pages - 1)
    )


def test_the_back_page_is_the_brochures_own(sample_out):
    path = sample_out / "brochure.pdf"
    last = pdf_text(path)[-1]
    english = messages.ENGLISH
    assert not re.search(r"Page \d+ of \d+", last), last
    assert "This handout gives general information" not in last
    assert " ".join(english["brochure_disclaimer"].split()) in last.replace("\u00a0", " ")
    for detail in (
        "555-0142",
        "hello@example.com",
        "123 Sample Street, Anytown, ST 00000",
        "Monday to Friday",
    ):
        assert detail in last, detail
    document = pypdfium2.PdfDocument(path)
    try:
        picture = document[len(document) - 1].render(scale=150 / 72).to_pil()
    finally:
        document.close()
    assert "https://example.com/book" in {c.text for c in zxingcpp.read_barcodes(picture) if c.valid}
    # Every other page but the cover has its number.
    numbered = pdf_text(path)[1:-1]
    assert all(re.search(r"Page \d+ of \d+", text) for text in numbered)


def test_the_contents_say_what_each_topic_covers(sample_out, sample_topics):
    contents = pdf_text(sample_out / "brochure.pdf")[1].replace("\u00a0", " ")
    for topic in (t for t in sample_topics if t.lang == "en"):
        assert topic.title in contents
        assert topic.summary.split(".")[0] in contents, topic.summary


# -- the write-in box, QR codes --------------------------------------------------------------


def write_in_rows(path: Path, count: int) -> tuple[list[list[float]], list[float]]:
    """The write-in lines of a blank "Your treatment" box: its ``count`` rows (top first) of line lengths in mm, and
    the height of each row's line in points. WeasyPrint draws a field's bottom border as a path
    whose bounds are the field's box: its width is the line's, its foot is where the line is."""
    label = next(
        t
        for t in (messages.ENGLISH["your_treatment"], messages.SPANISH["your_treatment"])
        if text_box(path, 0, t)
    )
    heading = text_box(path, 0, label)
    top = heading[1]
    width, _height = page_size(path)
    fields = [
        pos
        for pos, _obj in page_objects(path, 0, pdfium_c.FPDF_PAGEOBJ_PATH)
        if pos[3] - pos[1] < 15 * MM
        and 20 * MM < pos[2] - pos[0] < 0.6 * width
        and top - 80 * MM < pos[1] < top
        and not (pos[0] <= heading[0] and pos[2] >= heading[2] and pos[3] >= heading[1])  # the label's own
    ]
    rows: dict[float, list[float]] = {}
    for pos in fields:
        rows.setdefault(round(pos[1], 0), []).append((pos[2] - pos[0]) / MM)
    ys = sorted(rows, reverse=True)[:count]
    return [rows[y] for y in ys], ys


@pytest.mark.parametrize("large", [False, True], ids=["handouts", "large-print"])
def test_the_blank_box_can_be_filled_in_by_hand(sample_out, large):
    """Lines at least 50 mm long, rows at least 8 mm apart (large print: longer, further apart)."""
    paths = [p for p in handouts(sample_out) if (".large." in p.name) == large]
    assert paths
    for path in paths:
        rows, ys = write_in_rows(path, 3 if large else 2)
        assert len(rows) == (3 if large else 2), (path.name, rows)
        assert all(len(r) == (2 if large else 3) for r in rows), (path.name, rows)
        shortest = min(min(r) for r in rows)
        pitch = min(a - b for a, b in zip(ys, ys[1:], strict=False)) / MM
        assert shortest >= (70 if large else 50), (path.name, rows)
        assert pitch >= (12 if large else 8), (path.name, pitch)


def test_every_qr_code_prints_at_least_20_mm(sample_out):
    """The code itself, without its white border (2 modules each side, one pixel a module)."""
    seen = 0
    for path in sorted(sample_out.glob("*.pdf")):
        for number in range(len(PdfReader(path).pages)):
            for pos, (pixels, _rows) in page_objects(path, number, pdfium_c.FPDF_PAGEOBJ_IMAGE):
                printed = (pos[2] - pos[0]) / MM * (pixels - 4) / pixels
                assert printed >= 20, f"{path.name} page {number + 1}: a QR code of {printed:.1f} mm"
                seen += 1
    assert seen >= 21  # one on each handout, one on the brochure's back page


# -- words --------------------------------------------------------------------------------------


def hyphenated_in_source() -> set[str]:
    """Words written with a hyphen in the sample (follow-up, hi-res): breaking after it is not hyphenation."""
    words: set[str] = set()
    for path in [*(REPO / "content").rglob("*.md"), *(REPO / "content").rglob("*.toml")]:
        words |= {w.lower() for w in re.findall(r"\w+(?:-\w+)+", path.read_text(encoding="utf-8"))}
    words |= {w.lower() for text in messages.ENGLISH.values() for w in re.findall(r"\w+(?:-\w+)+", text)}
    words |= {w.lower() for text in messages.SPANISH.values() for w in re.findall(r"\w+(?:-\w+)+", text)}
    return words


def test_no_short_word_is_hyphenated(sample_out):
    """No line ends in a hyphen that splits a word of fewer than 7 letters, or leaves fewer than 3
    letters on either side, in any sample PDF and any language."""
    compounds = hyphenated_in_source()
    breaks = 0
    for path in sorted(sample_out.glob("*.pdf")):
        for page in PdfReader(path).pages:
            lines = [line.rstrip() for line in page.extract_text().splitlines()]
            for line, following in zip(lines, lines[1:], strict=False):
                match = re.search(r"(\w+)-$", line)
                after = re.match(r"\s*(\w+)", following)
                if not match or not after:
                    continue
                head, tail = match.group(1), after.group(1)
                token = line.split()[-1]
                address = "@" in token or re.search(r"\w\.\w", token)
                assert not address, f"{path.name}: an address broken with a hyphen: '{token}' '{tail}'"
                if f"{head}-{tail}".lower() in compounds:
                    continue
                breaks += 1
                word = head + tail
                assert min(len(word) - 4, len(head), len(tail)) >= 3, (
                    f"{path.name}: '{word}' broken as '{head}-' '{tail}'"
                )
    # Spanish is still hyphenated (hyphens: auto): long words are broken somewhere, by the rules.
    assert breaks > 0


def test_a_translation_prints_its_own_tagline(sample_out):
    spanish = pdf_text(sample_out / "aftercare.es.pdf")[0]
    assert "Una clínica de ejemplo para brochure" in spanish
    assert "A sample clinic for brochure" not in spanish
    assert "A sample clinic for brochure" in pdf_text(sample_out / "aftercare.pdf")[0]


def test_a_translation_without_a_tagline_prints_none(make_project):
    brand = (
        (REPO / "content/brand.toml").read_text().replace("A sample clinic for brochure", "Care that shows")
    )
    root = make_project(
        {
            "content/brand.toml": brand,
            "content/images/logo.svg": (REPO / "content/images/logo.svg").read_text(),
            "content/images/cover.svg": (REPO / "content/images/cover.svg").read_text(),
            "content/topics/care.md": "---\ntitle: Care\nlang: en\n---\nRest today.\n",
            "content/topics/care.es.md": "---\ntitle: Cuidado\nlang: es\n---\nDescanse hoy.\n",
        }
    )
    build_ok(root)
    assert "Care that shows" in pdf_text(root / "out/care.pdf")[0]
    assert "Care that shows" not in pdf_text(root / "out/care.es.pdf")[0]


# -- the warning box, pictures ----------------------------------------------------------------


def test_when_to_call_comes_early_on_the_aftercare_page(sample_out):
    """The emergency advice is near the top, right after the first section, not the last block."""
    for name, heading, first in (
        ("aftercare.pdf", "When to call us", "For the first 4 hours"),
        ("aftercare.es.pdf", "Cuándo llamarnos", "Las primeras 4 horas"),
    ):
        text = pdf_text(sample_out / name)[0]
        assert text.index(heading) < text.index(first), name
        warning = text_box(sample_out / name, 0, heading)
        # A heavy rule all round: a drawn path wider than the text column's half, around the heading.
        frames = [
            pos
            for pos, _obj in page_objects(sample_out / name, 0, pdfium_c.FPDF_PAGEOBJ_PATH)
            if pos[0] < warning[0] and pos[2] > warning[2] and pos[1] < warning[1] and pos[3] > warning[3]
        ]
        assert frames, name


def test_treatment_areas_has_a_face_with_alt_text_and_a_caption(sample_out):
    path = sample_out / "treatment-areas.pdf"
    figures = [e for e in structure(path) if e["type"] == "/Figure" and e["alt"]]
    assert any("A face seen from the front" in f["alt"] for f in figures), figures
    assert "The three areas your injector may treat." in pdf_text(path)[0]
    # The picture is drawn (vector paths in the brand's colours), on the right of the page.
    width, _ = page_size(path)
    caption = text_box(path, 0, "The three areas your injector may treat.")
    assert caption[0] > width / 2
    # And in the brochure, too.
    assert "The three areas your injector may treat." in " ".join(pdf_text(sample_out / "brochure.pdf"))


# -- a personalised copy ----------------------------------------------------------------------


def test_the_follow_up_date_stands_apart_on_a_personalised_copy():
    project = load_project(REPO)
    fields = {"name": "Ana Lima", "injector": "Dana Smith", "treatment": "Botox", "treated_on": "2026-12-07"}
    context = template_context(
        project, ["aftercare"], check_patient(project, fields, today=dt.date(2026, 12, 7))
    )
    made, _pages = render_packet(project, ["aftercare"], context, "letter")
    # 14 days after Monday, December 7, 2026 (aftercare's follow_up_days).
    day = "Monday, December 21, 2026"
    text = " ".join(PdfReader(io.BytesIO(made)).pages[0].extract_text().split())
    assert day in text
    box = text_box(made, 0, day)
    label = text_box(made, 0, "Follow-up")
    assert abs(box[1] - label[1]) < 3  # beside its label, on a line of its own: nothing else at that height
    same_line = text_in(made, 0, (0, box[1] + 1, 612, box[3] - 1))
    assert same_line == f"Follow-up {day}", same_line
    assert bold_at(made, day)


def bold_at(data: bytes, words: str) -> bool:
    """Whether ``words`` are set in a bold face (the font's name says so)."""
    runs: list[tuple[str, str]] = []

    def visit(text: str, cm: list, tm: list, font: dict | None, size: float) -> None:
        if text.strip() and font is not None:
            runs.append((str(font.get("/BaseFont")), text))

    PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
    first = words.split(",")[0]
    return any("Bold" in base for base, text in runs if first in text)


# -- checked by tools nobody here wrote ---------------------------------------------------------

#: pdfua 0.1.3's rule UA-14-001 ("heading elements are not empty") stops with "pikepdf.Object is not a
#: Dictionary or Stream: cannot get key '/is_integer' on object of type array": to tell a marked-content
#: number from anything else it asks each /K for an ``is_integer`` attribute, and pikepdf answers that
#: for an array with ValueError, not AttributeError. WeasyPrint writes a heading's /K as an array, so
#: the rule never runs on our PDFs: a fault in the checker, not in the PDF. The test below checks what
#: the rule would have (every heading marks some content) itself.
PDFUA_SKIPPED = {"UA-14-001"}


def empty_headings(path: Path) -> list[str]:
    """The headings (/H1../H6) of the structure tree that mark no content on a page."""

    def marks(kids: object) -> bool:
        if isinstance(kids, int):
            return True
        if isinstance(kids, pikepdf.Array):
            return any(marks(kid) for kid in kids)
        if isinstance(kids, pikepdf.Dictionary):
            if kids.get("/Type") == "/MCR" or "/MCID" in kids:
                return True
            return marks(kids.get("/K"))
        return False

    empty: list[str] = []

    def visit(element: object) -> None:
        if isinstance(element, pikepdf.Array):
            for kid in element:
                visit(kid)
        elif isinstance(element, pikepdf.Dictionary) and "/S" in element:
            if re.fullmatch(r"/H[1-6]", str(element.S)) and not marks(element.get("/K")):
                empty.append(str(element.S))
            visit(element.get("/K"))

    with pikepdf.open(path) as pdf:
        visit(pdf.Root.StructTreeRoot.K)
    return empty


def test_every_sample_pdf_passes_pdfua_and_qpdf(sample_out):
    import subprocess

    import pdfua

    paths = sorted(sample_out.glob("*.pdf"))
    assert len(paths) >= 21
    for path in paths:
        report = pdfua.validate(str(path))
        findings = [f for outcome in report.outcomes for f in outcome.findings]
        assert not findings, (path.name, findings)
        skipped = {o.rule_id for o in report.outcomes if o.skipped_reason}
        assert skipped <= PDFUA_SKIPPED, (path.name, [(o.rule_id, o.skipped_reason) for o in report.outcomes])
        assert len(report.outcomes) - len(skipped) >= 10  # the checker did run its rules
        assert not empty_headings(path), path.name
        check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, (path.name, check.stdout, check.stderr)
