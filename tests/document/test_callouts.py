"""Callouts (Markdown admonitions): boxes whose kind is printed in words and tagged as a section."""

from __future__ import annotations

import pikepdf
import pytest
from conftest import build_ok, pdf_text, structure, topic

from brochure.base.errors import ContentError
from brochure.document.markup import to_html
from brochure.project.model import load_project

CALLOUT = """\
Some text first.

!!! warning "When to call us"
    Call us if the swelling gets worse.

    - Trouble breathing
      - even a little

!!! tip
    Drink water.
"""


def test_a_callout_prints_its_kind_and_is_a_tagged_section(make_project):
    root = make_project({"content/topics/care.md": topic("Care", CALLOUT, lang="en")})
    build_ok(root)
    path = root / "out/care.pdf"
    (text,) = pdf_text(path)
    # The kind is text on the page, not only a colour: read aloud and seen in grey print.
    assert "WARNING: WHEN TO CALL US" in text.upper()
    assert "Call us if the swelling gets worse." in text
    assert "TIP DRINK WATER." in text.upper()
    tags = [e["type"] for e in structure(path)]
    # Each callout is a section (Sect) that opens with its heading, and its list is still a list.
    # The handout's "Your treatment" box comes first: a section with its own heading too.
    sections = [i for i, tag in enumerate(tags) if tag == "/Sect"]
    assert len(sections) == 3
    assert all(tags[i + 1] == "/H2" for i in sections)
    _box, warning, tip = sections
    assert "/L" in tags[warning:tip]  # the warning's list, inside its section
    with pikepdf.open(path) as pdf:
        assert pdf.Root.MarkInfo.Marked is True
        with pdf.open_metadata() as xmp:
            assert xmp.get("pdfuaid:part") == "1"


def test_a_callout_keeps_nested_list_items(make_project):
    root = make_project({"content/topics/care.md": topic("Care", CALLOUT, lang="en")})
    project = load_project(root)
    html = to_html(project.topics[0], root)
    assert '<section class="callout callout-warning">' in html
    assert "<li>Trouble breathing<ul>\n<li>even a little</li>" in html


def test_a_spanish_callout_names_its_kind_in_spanish(make_project):
    root = make_project({"content/topics/cuidados.md": topic("Cuidados", CALLOUT, lang="es")})
    html = to_html(load_project(root).topics[0], root)
    assert '<span class="callout-kind">Aviso:</span> When to call us' in html
    assert '<span class="callout-kind">Consejo</span>' in html


def test_an_unknown_callout_kind_is_an_error_on_its_line(make_project):
    root = make_project(
        {"content/topics/care.md": topic("Care", 'Text.\n\n!!! danger "Hot"\n    Careful.\n', lang="en")}
    )
    with pytest.raises(ContentError) as caught:
        to_html(load_project(root).topics[0], root)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("content/topics/care.md", 8)
    assert "callout kind 'danger' is not known" in problem.message
    assert "!!! warning" in problem.fix


def test_a_link_may_point_at_a_callout_title(make_project):
    root = make_project(
        {
            "content/topics/care.md": topic("Care", CALLOUT, lang="en", order=1),
            "content/topics/intro.md": topic(
                "Intro", "See [when to call](care.md#when-to-call-us).\n", lang="en"
            ),
            "content/documents.toml": '[[document]]\nname = "brochure"\nkind = "brochure"\n',
        }
    )
    project = load_project(root)
    topics = {t.slug: t for t in project.topics}
    html = to_html(topics["intro"], root, topics, frozenset(topics))
    assert 'href="#topic-care--when-to-call-us"' in html
    assert 'id="topic-care--when-to-call-us"' in to_html(topics["care"], root, topics, frozenset(topics))
