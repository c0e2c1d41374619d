"""The PDF's structure tree, read back: what screen readers are told about pictures and languages."""

from __future__ import annotations

from pathlib import Path

import pikepdf
from conftest import build_ok, structure, topic
from pypdf import PdfReader


def drawn_objects(path: Path) -> list[tuple[str, list[str]]]:
    """Every XObject drawn on every page, with the marked-content tags it is drawn inside."""
    drawn = []
    with pikepdf.open(path) as pdf:
        for page in pdf.pages:
            open_tags: list[str] = []
            for operands, operator in pikepdf.parse_content_stream(page):
                if str(operator) in ("BMC", "BDC"):
                    open_tags.append(str(operands[0]))
                elif str(operator) == "EMC":
                    open_tags.pop()
                elif str(operator) == "Do":
                    drawn.append((str(operands[0]), list(open_tags)))
    return drawn


def test_decorative_picture_renders_as_an_artifact(make_project):
    body = "Some text.\n\n![decorative](../images/logo.svg)\n\nMore text.\n"
    root = make_project(
        {
            "content/topics/deco.md": topic("Decorated", body, lang="en"),
            "content/topics/plain.md": topic("Plain", "Some text.\n\nMore text.\n", lang="en"),
        }
    )
    build_ok(root)
    decorated, plain = structure(root / "out/deco.pdf"), structure(root / "out/plain.pdf")
    # Only the header's logo is a Figure, with its alt text: the decoration adds none.
    figures = [e for e in decorated if e["type"] == "/Figure"]
    assert figures == [e for e in plain if e["type"] == "/Figure"]
    assert [f["alt"] for f in figures] == ["Test Clinic logo"]
    # The picture is drawn, inside an /Artifact sequence.
    assert drawn_objects(root / "out/plain.pdf") == []
    assert [tags for _, tags in drawn_objects(root / "out/deco.pdf")] == [["/Artifact"]]


def test_each_topic_of_a_brochure_carries_its_own_language(make_project):
    root = make_project(
        {
            "content/topics/aftercare.md": topic("Aftercare", "Rest today.\n", lang="en", order=1),
            "content/topics/cuidados.md": topic("Cuidados", "Descanse hoy.\n", lang="es", order=2),
            "content/documents.toml": '[[document]]\nname = "brochure"\nkind = "brochure"\n',
        }
    )
    build_ok(root)
    with pikepdf.open(root / "out/brochure.pdf") as pdf:
        assert str(pdf.Root.Lang) == "en"
    articles = [e["lang"] for e in structure(root / "out/brochure.pdf") if e["type"] == "/Art"]
    assert articles == ["en", "es"]


def test_hyphens_auto_builds_with_the_brand_font(make_project):
    # Lato has no U+2010, the engine's default hyphen: the base stylesheet uses '-'.
    words = "Extraordinarily comprehensive recommendations concerning hypersensitivity reactions. " * 6
    root = make_project(
        {
            "content/topics/a.md": topic("Hyphens", words, lang="en"),
            "styles/handout.css": '@import url("builtin:handout.css");\nhtml { hyphens: auto; }\nmain { width: 2in; }\n',
        }
    )
    build_ok(root)
    text = pdf_text_lines(root / "out/a.pdf")
    assert any(line.endswith("-") and line[-2].isalpha() for line in text), text


def pdf_text_lines(path: Path) -> list[str]:
    return [line.strip() for page in PdfReader(path).pages for line in page.extract_text().split("\n")]


def _tagged(tmp_path, body: str) -> list[dict]:
    from brochure.engine.pdf import render_pdf

    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>T</title>'
        "<style>@page { size: letter; margin: 1in } p { font-size: 12pt }</style></head><body>"
        + body
        + "</body></html>"
    )
    rendered = render_pdf(
        html, base_url=tmp_path.as_uri() + "/", roots=[tmp_path], document="doc", allowed_fonts=None
    )
    out = tmp_path / "t.pdf"
    out.write_bytes(rendered.pdf)
    return [e for e in structure(out) if e["type"] == "/Art"]


def test_a_language_reaches_the_pages_its_element_spans_and_no_further(tmp_path):
    long = "<p>Descanse hoy y evite el ejercicio intenso.</p>" * 80  # two pages and more
    found = _tagged(
        tmp_path,
        f'<article id="a" lang="es">{long}</article><article id="b"><p>English again.</p></article>'
        '<article id="c" lang="es"><p>Otra vez.</p></article>',
    )
    assert len(found) >= 4  # 'a' on each page it spans, then 'b' and 'c'
    assert [e["lang"] for e in found] == ["es"] * (len(found) - 2) + [None, "es"]


def test_an_element_of_the_tag_without_an_id_leaves_the_language_to_the_document(tmp_path):
    found = _tagged(
        tmp_path, '<article id="a" lang="es"><p>Hola.</p></article><article><p>Hello.</p></article>'
    )
    assert [e["lang"] for e in found] == [None, None]  # never a wrong language
