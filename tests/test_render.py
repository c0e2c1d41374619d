"""Markdown to safe HTML, and the Jinja templates around it."""

from __future__ import annotations

import pytest
from conftest import topic

from brochure.build import document_html, load_project, select
from brochure.content import load_topics
from brochure.errors import ContentError, RenderError
from brochure.markup import to_html


def _html(make_project, body: str, **files: str) -> str:
    root = make_project({"content/topics/a.md": topic("A", body), **files})
    (t,), _ = load_topics(root)
    return to_html(t, root)


def test_links_keep_allowed_schemes(make_project):
    html = _html(
        make_project,
        "[web](https://example.com) [call](tel:555-0100) [mail](mailto:a@example.com) [top](#a)\n",
    )
    for href in ("https://example.com", "tel:555-0100", "mailto:a@example.com", "#a"):
        assert f'href="{href}"' in html


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
