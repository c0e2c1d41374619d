"""The tri-fold: one sheet turned sideways, printed on both sides, folded in three; measured in its PDF."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pikepdf
import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest
import zxingcpp
from conftest import REPO, build_ok, copy_sample, grow, pdf_text_sizes, structure
from PIL import Image
from pypdf import PdfReader

from brochure.base.errors import BrochureError
from brochure.build.run import build
from brochure.document.trifold import FOLD_CLEARANCE_IN, crossings, sheet
from brochure.engine.measure import Measure
from brochure.project.model import load_project

NAME = "aftercare-trifold"
PT_PER_MM = 72 / 25.4
#: The inside's panels, left to right, in points: two full panels, then the narrower fold-in.
PANELS_PT = {
    "letter": (3.6875 * 72, 3.6875 * 72, 3.625 * 72),
    "a4": (99 * PT_PER_MM, 99 * PT_PER_MM, 97 * PT_PER_MM),
}
SIZE_PT = {"letter": (792.0, 612.0), "a4": (297 * PT_PER_MM, 210 * PT_PER_MM)}


@pytest.fixture(scope="module")
def trifolds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample's tri-fold, built on Letter (the sample's paper) and on A4."""
    made = {}
    for paper in ("letter", "a4"):
        out = tmp_path_factory.mktemp(f"trifold-{paper}")
        build_ok(REPO, out, names=[NAME], paper=paper)
        made[paper] = out / f"{NAME}.pdf"
    return made


def panel_rects(path: Path, page: int) -> list[tuple[float, float]]:
    """The left and right edge (pt) of every filled shape as tall as the page: the panels' backgrounds."""
    document = pypdfium2.PdfDocument(path)
    try:
        sheet_page = document[page]
        height = sheet_page.get_size()[1]
        found = []
        for obj in sheet_page.get_objects(max_depth=8):
            if obj.type != pdfium_c.FPDF_PAGEOBJ_PATH:
                continue
            left, bottom, right, top = obj.get_pos()
            if top - bottom >= height - 0.5:
                found.append((left, right))
        return sorted(found)
    finally:
        document.close()


def words(path: Path, page: int) -> list[tuple[float, float, float, float, str]]:
    """Each word on a page (numbered from 1) with its box in points, as pdftotext (Poppler) reads it."""
    xhtml = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(pattern, xhtml)]


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_the_trifold_is_two_landscape_pages(trifolds, paper):
    checked = subprocess.run(["qpdf", "--check", str(trifolds[paper])], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with pikepdf.open(trifolds[paper]) as pdf:
        assert len(pdf.pages) == 2
        for page in pdf.pages:
            box = [float(v) for v in page.MediaBox]
            assert box[2] - box[0] == pytest.approx(SIZE_PT[paper][0], abs=0.5)
            assert box[3] - box[1] == pytest.approx(SIZE_PT[paper][1], abs=0.5)


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_panel_widths_measured_from_the_pdf_are_the_fold_widths_mirrored_on_the_outside(trifolds, paper):
    inside = PANELS_PT[paper]
    for page, widths in ((0, inside[::-1]), (1, inside)):
        rects = panel_rects(trifolds[paper], page)
        assert len(rects) == 3, rects
        assert [right - left for left, right in rects] == pytest.approx(list(widths), abs=0.5)
        # Side by side, each starting where the one before ends, centred on the sheet.
        assert rects[1][0] == pytest.approx(rects[0][1], abs=0.5)
        assert rects[2][0] == pytest.approx(rects[1][1], abs=0.5)
        assert rects[0][0] == pytest.approx(SIZE_PT[paper][0] - rects[2][1], abs=0.5)


def test_the_cover_is_the_outside_right_panel_and_its_text_lies_inside_it(trifolds):
    path = trifolds["letter"]
    cover_left, cover_right = panel_rects(path, 0)[2]
    found = words(path, 1)
    # The title is the largest text on the sheet.
    title = [w for w in found if w[3] - w[1] >= 20]
    assert " ".join(w[4] for w in title) == "After your Botox treatment"
    for left, _top, right, _bottom, word in title:
        assert cover_left + 18 <= left, word
        assert right <= cover_right - 18, word
    # The back panel (the middle one outside) holds the contact details and the booking code.
    back_left, back_right = panel_rects(path, 0)[1]
    phone = [w for w in found if w[4] == "555-0142"]
    assert any(back_left < w[0] and w[2] < back_right for w in phone)


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_no_text_crosses_a_fold_or_comes_near_one_or_the_edge(trifolds, paper):
    path = trifolds[paper]
    clear = FOLD_CLEARANCE_IN * 72
    for page in (0, 1):
        panels = panel_rects(path, page)
        found = words(path, page + 1)
        assert len(found) > 40
        for left, top, right, bottom, word in found:
            assert any(a + clear - 1 <= left and right <= b - clear + 1 for a, b in panels), (page, word)
            assert top >= clear - 1, (page, word)
            assert bottom <= SIZE_PT[paper][1] - clear + 1, (page, word)


def test_the_topics_headings_all_appear_inside_in_order(trifolds, sample_topics):
    inside = " ".join(PdfReader(trifolds["letter"]).pages[1].extract_text().split())
    chosen = {t.slug: t for t in sample_topics}
    headings = []
    for slug in ("aftercare", "side-effects"):
        topic = chosen[slug]
        headings.append(topic.title)
        headings += [line[3:].strip() for line in topic.body.splitlines() if line.startswith("## ")]
    assert len(headings) > 4
    at = -1
    for heading in headings:
        found = inside.find(heading, at + 1)
        assert found > at, f"{heading!r} is missing or out of order"
        at = found


def test_reading_order_starts_with_the_cover_and_pictures_have_alt_text(trifolds):
    elements = structure(trifolds["letter"])
    kinds = [e["type"] for e in elements]
    figures = [e for e in elements if e["type"] == "/Figure"]
    assert figures[0]["alt"] == "Example Aesthetics Clinic logo"
    assert any(f["alt"] and "example.com/book" in f["alt"] for f in figures)
    assert kinds.index("/Figure") < kinds.index("/H1") < kinds.index("/H2")
    with pikepdf.open(trifolds["letter"]) as pdf:
        assert str(pdf.Root.Lang) == "en"
        assert str(pdf.docinfo.Title) == "After your Botox treatment"
        assert pdf.Root.MarkInfo.Marked


def test_the_booking_code_is_at_least_20_mm_and_scans(trifolds):
    path = trifolds["letter"]
    document = pypdfium2.PdfDocument(path)
    try:
        page = document[0]
        sizes = []
        for obj in page.get_objects(max_depth=8):
            if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                left, bottom, right, top = obj.get_pos()
                if abs((right - left) - (top - bottom)) < 1:  # square: the code (the logo is an SVG)
                    sizes.append(right - left)
        picture = page.render(scale=200 / 72).to_pil()
    finally:
        document.close()
    assert sizes
    assert min(sizes) / PT_PER_MM >= 20
    assert "https://example.com/book" in {c.text for c in zxingcpp.read_barcodes(picture) if c.valid}


def test_body_text_is_comfortable_and_the_panels_wear_the_brand(trifolds):
    sizes = [size for size, _text in pdf_text_sizes(trifolds["letter"], page=1)]
    assert min(sizes) >= 9.5
    document = pypdfium2.PdfDocument(trifolds["letter"])
    try:
        picture: Image.Image = document[0].render(scale=50 / 72).to_pil().convert("RGB")
    finally:
        document.close()
    # The cover (right) is the brand's primary colour; the fold-in's back (left) its light tint.
    assert picture.getpixel((picture.width - 5, picture.height // 2)) == (0x1D, 0x4F, 0x73)
    assert picture.getpixel((5, picture.height - 5)) == (0xEE, 0xF3, 0xF7)


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_the_text_columns_sit_inside_their_panels(paper):
    folded = sheet(paper)
    for (left, right), (a, b) in zip(folded.columns(), folded.panels(2), strict=True):
        assert left - a >= FOLD_CLEARANCE_IN
        assert b - right >= FOLD_CLEARANCE_IN


def test_text_over_a_fold_is_found():
    folded = sheet("letter")
    fold = 3.6875 * 96
    measured = Measure(
        2,
        10.5,
        10.5,
        "",
        texts=[(2, fold - 30, 100, fold + 30, 112, "across"), (2, 60, 100, 200, 112, "fine")],
    )
    assert crossings(measured, folded) == [
        "page 2 (the inside): text 'across' crosses a fold, or comes within 0.25 in of one"
    ]


TRIFOLD = """
[[document]]
name = "rack"
kind = "trifold"
title = "At a glance"
"""


def test_topics_a_little_too_long_are_fitted_to_the_six_panels_without_crossing_a_fold(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    grow(root / "content/topics/side-effects.md", 0.35)
    (root / "content/documents.toml").write_text(TRIFOLD + 'topics = ["aftercare", "side-effects"]\n')
    outcome = build_ok(root, names=["rack"])["rack"]
    assert outcome.fit is not None
    assert outcome.fit.tightened
    assert 9.5 <= outcome.fit.body_pt < 10.5
    path = root / "out/rack.pdf"
    assert len(PdfReader(path).pages) == 2
    assert "More: Less common" in PdfReader(path).pages[1].extract_text()
    clear = FOLD_CLEARANCE_IN * 72
    panels = panel_rects(path, 1)
    for left, _top, right, _bottom, word in words(path, 2):
        assert any(a + clear - 1 <= left and right <= b - clear + 1 for a, b in panels), word


def test_too_many_topics_fail_with_a_clear_message_and_keep_the_old_pdf(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    documents = root / "content/documents.toml"
    documents.write_text(TRIFOLD + 'topics = ["aftercare"]\n')
    build_ok(root, names=["rack"])
    old = (root / "out/rack.pdf").read_bytes()
    many = ["aftercare", "side-effects", "what-is-botox", "results", "choosing-an-injector"]
    documents.write_text(TRIFOLD + f"topics = {many!r}\n".replace("'", '"'))
    (outcome,) = build(load_project(root), root / "out", names=["rack"])
    assert outcome.error is not None
    message = str(outcome.error)
    assert "document 'rack' does not fit on the six panels of a tri-fold" in message
    assert "choose fewer topics in its 'topics' in content/documents.toml" in message
    assert (root / "out/rack.pdf").read_bytes() == old
    assert not list((root / "out").glob("rack*.tmp*"))


def test_too_many_topics_write_nothing_when_there_was_nothing(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    many = '["aftercare", "side-effects", "what-is-botox", "results", "choosing-an-injector"]'
    (root / "content/documents.toml").write_text(TRIFOLD + f"topics = {many}\n")
    (outcome,) = build(load_project(root), root / "out", names=["rack"])
    assert "does not fit on the six panels" in str(outcome.error)
    assert not (root / "out/rack.pdf").exists()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "",
            "content/documents.toml:2: tri-fold 'rack' has no topics: its six panels hold two or three "
            "short topics, not all (add topics = [",
        ),
        (
            "topics = []\n",
            "content/documents.toml:6: tri-fold 'rack' has no topics",
        ),
        (
            'topics = ["aftercare"]\npages = 3\n',
            "content/documents.toml:7: tri-fold 'rack' sets 'pages', but a tri-fold is always one sheet "
            "printed on both sides (2 pages) (remove 'pages'; to make it fit, choose fewer or shorter topics)",
        ),
        (
            'topics = ["aftercare", "nope"]\n',
            "content/documents.toml:6: document 'rack' names topic 'nope' in 'topics', "
            "but content/topics/nope.md does not exist (use a file name from content/topics/ without '.md': "
            "aftercare)",
        ),
    ],
)
def test_config_mistakes_name_file_line_key_and_fix(make_project, entry, expected):
    root = make_project(
        {
            "content/topics/aftercare.md": "---\ntitle: Aftercare\n---\n\nRest.\n",
            "content/documents.toml": TRIFOLD + entry,
        }
    )
    with pytest.raises(BrochureError) as caught:
        load_project(root)
    assert expected in str(caught.value)


def test_list_and_check_know_the_kind(tmp_path):
    from click.testing import CliRunner

    from brochure.cli.main import cli

    root = copy_sample(tmp_path / "clinic")
    (root / "content/documents.toml").write_text(TRIFOLD + 'topics = ["aftercare", "side-effects"]\n')
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "--project", str(root)])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"rack\s+trifold\s+en\s+regular\s+exactly 2\s+At a glance", listed.stdout)
    checked = runner.invoke(cli, ["check", "--project", str(root)])
    assert checked.exit_code == 0, checked.output
    assert re.search(r"rack\s+2\s+exactly 2\s+fits", checked.stdout)
