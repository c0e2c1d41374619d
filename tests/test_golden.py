"""Visual regression: every page of every sample document, and of the print shop's files, against a
picture of how it looked.

The pictures are in tests/golden/. After a change meant to alter the look,
regenerate them with `make golden`, look at them, and commit them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pypdfium2
import pytest
from conftest import REPO, build_ok, copy_sample
from PIL import Image, ImageChops

GOLDEN = Path(__file__).parent / "golden"
#: Pictures are drawn small: enough to see layout, colour and type size, small to keep in git.
DPI = 40
#: A pixel counts as changed when it is this much lighter or darker (0-255)...
PIXEL_TOLERANCE = 40
#: ... and a page as changed when more than this share of its pixels did.
PAGE_TOLERANCE = 0.002
UPDATE = os.environ.get("BROCHURE_UPDATE_GOLDEN") == "1"


def pages(path: Path) -> list[Image.Image]:
    """Every page of a PDF drawn by PDFium, in RGB."""
    document = pypdfium2.PdfDocument(path)
    try:
        return [page.render(scale=DPI / 72).to_pil().convert("RGB") for page in document]
    finally:
        document.close()


def golden_name(pdf: Path, number: int) -> str:
    """The picture of a page: NAME.png for the first, NAME.p2.png for the second, ..."""
    return pdf.stem if number == 1 else f"{pdf.stem}.p{number}"


def changed_share(picture: Image.Image, golden: Image.Image) -> float:
    """The share of pixels that differ by more than PIXEL_TOLERANCE; 1.0 when the sizes differ."""
    if picture.size != golden.size:
        return 1.0
    difference = ImageChops.difference(picture, golden).convert("L")
    histogram = difference.histogram()
    changed = sum(histogram[PIXEL_TOLERANCE + 1 :])
    return changed / (picture.width * picture.height)


def compare(pdfs: list[Path]) -> tuple[dict[str, float], set[str]]:
    """Each page of ``pdfs`` that no longer looks like its golden picture, with its changed share;
    and the names of every page's picture."""
    different, names = {}, set()
    for pdf in pdfs:
        for number, picture in enumerate(pages(pdf), start=1):
            name = golden_name(pdf, number)
            names.add(name)
            golden = GOLDEN / f"{name}.png"
            if UPDATE:
                # 64 colours keep the file small; the few pixels it moves are well within tolerance.
                picture.quantize(64, method=Image.Quantize.MEDIANCUT).save(golden, optimize=True)
                continue
            if not golden.is_file():
                different[name] = 1.0
                continue
            with Image.open(golden) as stored:
                share = changed_share(picture, stored.convert("RGB"))
            if share > PAGE_TOLERANCE:
                different[name] = round(share, 4)
    return different, names


@pytest.fixture(scope="module")
def press_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The print shop's files of the sample: its brochure and tri-fold, with bleed and crop marks."""
    out = tmp_path_factory.mktemp("press-out")
    build_ok(REPO, out, names=["brochure", "aftercare-trifold"], print_shop=True)
    return out


def test_every_sample_document_looks_as_it_did(sample_out, press_out):
    different, names = compare([*sorted(sample_out.glob("*.pdf")), *sorted(press_out.glob("*.press.pdf"))])
    assert any(name.endswith(".press") for name in names)
    stale = sorted(p.stem for p in GOLDEN.glob("*.png") if p.stem not in names)
    if UPDATE:
        for name in stale:
            (GOLDEN / f"{name}.png").unlink()
        return
    assert not different, (
        f"these pages changed (share of pixels): {different}; "
        "if the change is meant, run 'make golden' and commit tests/golden/"
    )
    assert not stale, f"golden pictures of documents the sample no longer makes: {stale}; run 'make golden'"


@pytest.mark.skipif(UPDATE, reason="regenerating the golden pictures")
def test_a_stylesheet_change_shows_in_the_comparison(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    shutil.copytree(Path(__file__).parent.parent / "styles", root / "styles")
    base = root / "styles/base.css"
    base.write_text(base.read_text() + "\nh2 { color: #000000; }\n")
    build_ok(root, names=["aftercare"])
    different, _names = compare(sorted((root / "out").glob("*.pdf")))
    assert set(different) == {"aftercare"}
