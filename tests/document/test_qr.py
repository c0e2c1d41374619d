"""QR codes on handouts: read back from a picture of the printed page, as a phone would."""

from __future__ import annotations

from pathlib import Path

import pypdfium2
import zxingcpp
from conftest import build_ok, pdf_text, structure, topic


def page_image(path: Path, page: int = 0, dpi: int = 150):  # noqa: ANN201 - a PIL image
    """One page of a PDF as a picture, drawn by PDFium (another engine than the one that made it)."""
    document = pypdfium2.PdfDocument(path)
    try:
        return document[page].render(scale=dpi / 72).to_pil()
    finally:
        document.close()


def decoded(path: Path, page: int | None = None) -> set[str]:
    """The texts of every QR code on a page, or on every page."""
    if page is None:
        document = pypdfium2.PdfDocument(path)
        count = len(document)
        document.close()
        return set().union(*(decoded(path, number) for number in range(count)))
    return {code.text for code in zxingcpp.read_barcodes(page_image(path, page)) if code.valid}


BRAND = """\
clinic_name = "Test Clinic"
logo = "images/logo.svg"
disclaimer = "General information only."

[contact]
address = "1 Test Road, Testville"
phone = "555-0100"
booking_url = "https://clinic.example.org/book?from=handout"
"""


def test_every_sample_handout_has_a_booking_code_that_scans(sample_out):
    handouts = [p for p in sorted(sample_out.glob("*.pdf")) if not p.name.startswith("brochure")]
    assert handouts
    for path in handouts:
        assert "https://example.com/book" in decoded(path), path.name
        # Beside the title; in large print, after the text.
        assert "example.com/book" in " ".join(pdf_text(path)), path.name


def test_a_topic_online_address_gets_its_own_code(make_project):
    root = make_project(
        {
            "content/brand.toml": BRAND,
            "content/topics/care.md": topic(
                "Care", "Rest today.\n", lang="en", online_url="https://clinic.example.org/care"
            ),
        }
    )
    build_ok(root)
    path = root / "out/care.pdf"
    assert decoded(path) == {
        "https://clinic.example.org/care",
        "https://clinic.example.org/book?from=handout",
    }
    (text,) = pdf_text(path)
    text = text.replace(" ", "")  # a long address may wrap
    # The address is written under the code, for people who type it.
    assert "clinic.example.org/care" in text
    assert "clinic.example.org/book?from=handout" in text
    # Each code is a figure whose alt text says what it is for and where it leads.
    alts = [e["alt"] for e in structure(path) if e["type"] == "/Figure"]
    assert "Read this online: clinic.example.org/care" in alts
    assert "Scan to book: clinic.example.org/book?from=handout" in alts


def test_without_a_booking_address_the_handout_has_no_code(make_project):
    root = make_project({"content/topics/care.md": topic("Care", "Rest today.\n", lang="en")})
    build_ok(root)
    assert decoded(root / "out/care.pdf") == set()


def test_the_brochure_back_page_has_the_booking_code(sample_out):
    last = len(pdf_text(sample_out / "brochure.pdf")) - 1
    assert decoded(sample_out / "brochure.pdf", last) == {"https://example.com/book"}
