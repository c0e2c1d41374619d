"""Markdown to safe HTML, and the Jinja templates around it."""

from __future__ import annotations

import pytest
from conftest import topic

from brochure.base.errors import ContentError, RenderError
from brochure.document.compose import document_html
from brochure.document.markup import convert, to_html
from brochure.project.model import load_project, select
from brochure.project.topics import load_topics


def _html(make_project, body: str, **files: str) -> str:
    root = make_project({"content/topics/a.md": topic("A", body), **files})
    (t,), _ = load_topics(root)
    return to_html(t, root)


def test_links_keep_allowed_schemes(make_project):
    html = _html(
        make_project,
        "## Top part\n\n[web](https://example.com) [call](tel:555-0100) [mail](mailto:a@example.com) [up](#top-part)\n",
    )
    for href in ("https://example.com", "tel:555-0100", "mailto:a@example.com", "#topic-a--top-part"):
        assert f'href="{href}"' in html
    assert '<h2 id="topic-a--top-part">Top part</h2>' in html


def _convert(make_project, files: dict[str, str], slug: str = "a", here: tuple[str, ...] = ("a",)):
    root = make_project({f"content/topics/{name}.md": text for name, text in files.items()})
    topics = {t.slug: t for t in load_topics(root)[0]}
    return convert(topics[slug], root, topics, frozenset(here))


def test_links_to_other_topics_and_their_headings(make_project):
    files = {
        "a": topic("A", "See [aftercare](b.md) and [when to call](b.md#when-to-call).\n"),
        "b": topic("B", "## When to call\n\nCall us.\n"),
    }
    in_brochure = _convert(make_project, files, here=("a", "b"))
    assert in_brochure.errors == []
    assert 'href="#topic-b"' in in_brochure.html
    assert 'href="#topic-b--when-to-call"' in in_brochure.html
    # In a one-page handout the other topic is not in the PDF: the words stay, the link goes.
    alone = _convert(make_project, files, here=("a",))
    assert alone.errors == []
    assert "<a>aftercare</a>" in alone.html


def test_broken_links_to_topics_and_headings(make_project):
    files = {
        "a": topic("A", "See [this](c.md).\n\nAnd [that](b.md#nope).\n\nAnd [here](#gone).\n"),
        "b": topic("B", "## When to call\n"),
    }
    converted = _convert(make_project, files)
    assert [str(p) for p in converted.errors] == [
        "content/topics/a.md:5: link 'c.md' points to a topic that does not exist (topics: a.md, b.md)",
        "content/topics/a.md:7: link 'b.md#nope' points to a heading that does not exist (headings there: #when-to-call)",
        "content/topics/a.md:9: link '#gone' points to a heading that does not exist (headings there: none)",
    ]
    assert {p.check for p in converted.errors} == {"links"}


def test_images_need_alt_text_unless_marked_decorative(make_project):
    files = {"a": topic("A", "![](../images/logo.svg)\n\n![decorative](../images/logo.svg)\n")}
    converted = _convert(make_project, files)
    assert [str(p) for p in converted.errors] == [
        "content/topics/a.md:5: image '../images/logo.svg' has no alt text (describe it for people who cannot see it: "
        "![what it shows](../images/logo.svg), or mark a purely decorative picture ![decorative](../images/logo.svg))"
    ]
    assert (
        '<span aria-hidden="true" class="decorative" style="width: 64.00px; height: 64.00px;'
        in converted.html
    )
    assert "<img" not in converted.html.split("</p>")[-2]


def test_heading_levels_that_skip_are_warned(make_project):
    good = _convert(make_project, {"a": topic("A", "## One\n\n### Two\n\n## Three\n")})
    assert good.warnings == []
    bad = _convert(make_project, {"a": topic("A", "# Big\n\n## One\n\n#### Four\n")})
    assert [str(p) for p in bad.warnings] == [
        "content/topics/a.md:5: heading 'Big' is a main heading (#), like the topic's title (start sections with ##: '## Big')",
        "content/topics/a.md:9: heading 'Four' skips from level 2 to level 4 (use '### Four', one level below the heading before it)",
    ]


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "ftp://example.com/x"]
)
def test_other_link_schemes_are_errors_with_line(make_project, href):
    root = make_project({"content/topics/a.md": topic("A", f"Intro.\n\nSee [this]({href}).\n")})
    (t,), _ = load_topics(root)
    with pytest.raises(ContentError) as caught:
        to_html(t, root)
    assert str(caught.value) == (
        f"content/topics/a.md:7: link '{href}' is not allowed "
        "(links may start with http:, https:, mailto: or tel:, or '#' for a place in the page)"
    )


def test_image_inside_project_becomes_a_checked_file_url(make_project):
    html = _html(make_project, "![The clinic logo](../images/logo.svg)\n")
    assert 'alt="The clinic logo"' in html
    assert 'src="file:///' in html
    assert html.count("/content/images/logo.svg") == 1


def test_missing_image_is_an_error_with_line(make_project):
    root = make_project({"content/topics/a.md": topic("A", "![Photo](../images/none.png)\n")})
    (t,), _ = load_topics(root)
    with pytest.raises(
        ContentError, match=r"^content/topics/a.md:5: image '../images/none.png' does not exist"
    ):
        to_html(t, root)


def test_front_matter_is_escaped_in_templates(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic(
                '"<b>Bold</b> & <script>x</script>"', "Body.\n", summary='"<i>sum</i>"'
            )
        }
    )
    project = load_project(root)
    (doc,) = select(project, ["a"])
    html = document_html(project, doc, "letter")
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<i>sum</i>" not in html


def test_sandbox_blocks_python_internals_in_templates(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "templates/handout.html": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        }
    )
    project = load_project(root)
    (doc,) = select(project, ["a"])
    with pytest.raises(
        RenderError,
        match=r"^handout.html: template error: access to attribute '__class__' of 'str' object is unsafe",
    ):
        document_html(project, doc, "letter")


def test_missing_template_lists_the_search_path(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "content/documents.toml": '[[document]]\nname = "{topic}"\ntemplate = "poster.html"\n',
        }
    )
    project = load_project(root)
    (doc,) = select(project, ["a"])
    with pytest.raises(RenderError, match=r"template 'poster.html' not found \(looked in .*templates\)"):
        document_html(project, doc, "letter")


def test_control_characters_in_the_body_are_refused_on_their_line(make_project):
    with pytest.raises(ContentError) as caught:
        _html(make_project, "First line.\n\nA form \x0c feed.\n")
    assert str(caught.value) == (
        "content/topics/a.md:7: holds a character that cannot be printed (U+000C) "
        "(delete it; it may have come in with text pasted from another program)"
    )


def test_lists_nested_by_two_spaces_nest(make_project):
    html = _html(
        make_project,
        "- Swelling\n  - around the eyes\n    - in the morning\n- Bruising\n\n1. One\n   1. One a\n2. Two\n",
    )
    flat = html.replace("\n", "")
    assert (
        "<li>Swelling<ul><li>around the eyes<ul><li>in the morning</li></ul></li></ul></li><li>Bruising</li>"
        in flat
    )
    assert "<li>One<ol><li>One a</li></ol></li><li>Two</li>" in flat


def test_lists_nested_by_two_spaces_count_toward_the_nesting_cap(make_project):
    body = "".join("  " * level + "- item\n" for level in range(12))
    with pytest.raises(ContentError, match="nested 9 levels deep"):
        _html(make_project, body)


def test_every_image_error_has_a_reason(make_project):
    files = {
        "content/images/empty.png": b"",
        "content/images/text.gif": b"not a picture at all\n",
        "content/images/cut.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    }
    body = "![one](../images/empty.png)\n\n![two](../images/text.gif)\n\n![three](../images/cut.webp)\n"
    with pytest.raises(ContentError) as caught:
        _html(make_project, body, **files)
    fix = "(open it in a picture editor and save it again as PNG, JPEG or SVG)"
    assert [str(p) for p in caught.value.problems] == [
        f"content/topics/a.md:5: image '../images/empty.png' is an empty file {fix}",
        "content/topics/a.md:7: image '../images/text.gif' is not a GIF picture that can be read "
        f"(the file is damaged, or its name has the wrong ending) {fix}",
        "content/topics/a.md:9: image '../images/cut.webp' is not a WebP picture that can be read "
        f"(the file is damaged, or its name has the wrong ending) {fix}",
    ]
