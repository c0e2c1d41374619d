"""The default theme: a cover picture as decoration, and no page left half empty for nothing."""

from __future__ import annotations

import io

import pikepdf
import pytest
from conftest import MINIMAL_BRAND, build_ok, pdf_text, structure, topic
from PIL import Image


def _png(width: int, height: int) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 160)).save(data, "PNG")
    return data.getvalue()


BROCHURE = '[[document]]\nname = "brochure"\nkind = "brochure"\ntitle = "Guide"\n'


def test_a_cover_picture_is_drawn_as_decoration(make_project):
    root = make_project(
        {
            "content/brand.toml": 'cover_image = "images/cover.png"\n' + MINIMAL_BRAND,
            "content/images/cover.png": _png(600, 400),
            "content/topics/a.md": topic("A", "Text.\n", lang="en"),
            "content/documents.toml": BROCHURE,
        }
    )
    build_ok(root)
    path = root / "out/brochure.pdf"
    # The picture fills its box as a pattern, painted inside an artifact that
    # screen readers skip; the only figures are the logos, with their alt text.
    with pikepdf.open(path) as pdf:
        cover = pdf.pages[0]
        assert "/Pattern" in cover.Resources
        painted, open_tags = [], []
        for operands, operator in pikepdf.parse_content_stream(cover):
            if str(operator) in ("BMC", "BDC"):
                open_tags.append(str(operands[0]))
            elif str(operator) == "EMC":
                open_tags.pop()
            elif str(operator) == "scn":
                painted.append(list(open_tags))
    assert painted == [["/Artifact"]]
    figures = [e["alt"] for e in structure(path) if e["type"] == "/Figure"]
    assert set(figures) == {"Test Clinic logo"}


def test_a_missing_cover_picture_is_an_error_on_its_line(make_project):
    from brochure.base.errors import BrochureError
    from brochure.project.model import load_project

    root = make_project(
        {
            "content/brand.toml": 'cover_image = "images/nope.png"\n' + MINIMAL_BRAND,
            "content/topics/a.md": topic("A", "Text.\n", lang="en"),
        }
    )
    with pytest.raises(BrochureError) as caught:
        load_project(root)
    assert str(caught.value.problems[0]) == (
        "content/brand.toml:1: 'cover_image' names a file that does not exist: 'images/nope.png' "
        "(check the spelling; paths are relative to the content/ folder)"
    )


def test_short_topics_share_a_page_in_the_brochure(make_project):
    root = make_project(
        {
            **{
                f"content/topics/t{i}.md": topic(f"Topic {i}", "A short text.\n", lang="en", order=i)
                for i in range(3)
            },
            "content/documents.toml": BROCHURE,
        }
    )
    build_ok(root)
    pages = pdf_text(root / "out/brochure.pdf")
    # Cover, contents, the three topics together, back page: no page each.
    assert len(pages) == 4
    assert all(f"Topic {i}" in pages[2] for i in range(3))
