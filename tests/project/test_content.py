"""Front matter: every mistake names the file, the line and the fix."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import REPO, topic

from brochure.base.errors import ContentError
from brochure.project.topics import load_topics


def _error(make_project, text: str | bytes) -> str:
    root = make_project({"content/topics/side-effects.md": text})
    with pytest.raises(ContentError) as caught:
        load_topics(root)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "---\ntitle: Side effects\nsummary: [unclosed\n---\nBody\n",
            "content/topics/side-effects.md:3: front matter is not valid YAML: expected ',' or ']', but got '<stream end>' "
            "(put text that contains ':' or '#' in double quotes, and indent nested lines evenly)",
        ),
        (
            "---\ntitle: Side effects: what to expect\n---\nBody\n",
            "content/topics/side-effects.md:2: front matter is not valid YAML: mapping values are not allowed here "
            "(put text that contains ':' or '#' in double quotes, and indent nested lines evenly)",
        ),
        (
            "---\nsummary: No title here\n---\nBody\n",
            "content/topics/side-effects.md:1: front matter 'title' is required (add 'title: Aftercare')",
        ),
        (
            "---\ntitle: Side effects\norder: first\n---\nBody\n",
            "content/topics/side-effects.md:3: front matter 'order' must be a whole number, not text 'first' (write it like 'order: 3')",
        ),
        (
            "---\ntitle: Side effects\nreview_due: next spring\n---\nBody\n",
            "content/topics/side-effects.md:3: front matter 'review_due' must be a date like 2026-03-01, not text 'next spring' "
            "(write it like 'review_due: 2027-03-01')",
        ),
        (
            "---\ntitle: [1, 2]\n---\n",
            "content/topics/side-effects.md:2: front matter 'title' must be text, not a list (write it like 'title: Aftercare')",
        ),
        (
            "Just text, no front matter.\n",
            "content/topics/side-effects.md:1: has no front matter (start the file with a line '---', then 'title: ...', then another '---')",
        ),
        (
            "---\ntitle: Side effects\n",
            "content/topics/side-effects.md:1: front matter is not closed (add a line '---' after the last front matter line)",
        ),
        (
            b"---\ntitle: Caf\xe9\n---\n",
            "content/topics/side-effects.md:2: is not UTF-8 text (save the file as UTF-8 in your editor)",
        ),
    ],
)
def test_bad_front_matter_names_file_line_and_fix(make_project, text, expected):
    assert _error(make_project, text) == expected


def test_every_bad_topic_is_reported_at_once(make_project):
    root = make_project(
        {
            "content/topics/a.md": "---\norder: 1\n---\n",
            "content/topics/b.md": "---\ntitle: B\nlang: 12\n---\n",
        }
    )
    with pytest.raises(ContentError) as caught:
        load_topics(root)
    assert [str(p).split(":")[0:2] for p in caught.value.problems] == [
        ["content/topics/a.md", "1"],
        ["content/topics/b.md", "3"],
    ]


def test_unknown_front_matter_key_warns(make_project):
    root = make_project({"content/topics/a.md": topic("A", colour="blue", lang="en")})
    topics, warnings = load_topics(root)
    assert [t.title for t in topics] == ["A"]
    assert [str(w) for w in warnings] == [
        "content/topics/a.md:3: unknown front matter 'colour' is ignored "
        "(known keys here: follow_up_days, follow_ups, keywords, lang, online_url, order, review_due, reviewed_by, reviewed_on, "
        "source_version, summary, title, treatments)"
    ]


def test_topics_are_ordered_by_order_then_name(make_project):
    root = make_project(
        {
            "content/topics/zeta.md": topic("Z", order=1),
            "content/topics/alpha.md": topic("A", order=2),
            "content/topics/beta.md": topic("B"),
        }
    )
    topics, _ = load_topics(root)
    assert [t.slug for t in topics] == ["zeta", "alpha", "beta"]


def test_front_matter_values_are_read(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic(
                "A title", "Body line.\n", summary="Short.", lang="es", reviewed_on="2026-01-02"
            )
        }
    )
    (t,), _ = load_topics(root)
    assert (t.title, t.summary, t.lang, t.reviewed_on) == ("A title", "Short.", "es", dt.date(2026, 1, 2))
    assert t.body.strip() == "Body line."
    assert t.body_line == 7


def test_badly_named_topic_file(make_project):
    root = make_project({"content/topics/Side Effects.md": topic("A")})
    with pytest.raises(ContentError) as caught:
        load_topics(root)
    assert str(caught.value) == (
        "content/topics/Side Effects.md: topic file name 'Side Effects.md' is not a usable name "
        "(rename it with lower-case letters, digits and '-', like side-effects.md, "
        "or side-effects.es.md for a translation)"
    )


def _alias_bomb(levels: int = 8) -> str:
    """Front matter whose aliases stand for 9**levels values (the "billion laughs")."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    lines.append(f"title: *a{levels - 1}")
    return "---\n" + "\n".join(lines) + "\n---\nBody\n"


def test_yaml_aliases_are_refused_before_they_expand(make_project):
    # 9**8 = 43 million strings if expanded: the check must stop it at the first alias.
    assert _error(make_project, _alias_bomb()) == (
        "content/topics/side-effects.md:3: front matter repeats a value with a YAML anchor (&) and alias (*), "
        "which is not allowed (write the value out in full; put text that starts with '&' or '*' in double quotes)"
    )
    merge = "---\nbase: &base {title: A}\n<<: *base\n---\nBody\n"
    assert _error(make_project, merge).startswith("content/topics/side-effects.md:3: front matter repeats")
    # Text that merely starts with & or * in quotes is text.
    root = make_project(
        {"content/topics/side-effects.md": '---\ntitle: "*Starred* & co"\nlang: en\n---\nBody\n'}
    )
    (t,), _ = load_topics(root)
    assert t.title == "*Starred* & co"


def test_front_matter_size_and_nesting_are_capped(make_project):
    long = "---\ntitle: A\nsummary: " + "word " * 2000 + "\n---\nBody\n"
    assert _error(make_project, long) == (
        "content/topics/side-effects.md:2: front matter is too long (10,018 bytes; at most 8 KB) "
        "(keep only the known keys in front matter and put the text in the body, below the second '---')"
    )
    deep = "---\ntitle: A\nkeywords: " + "[" * 2000 + "]" * 2000 + "\n---\nBody\n"
    assert _error(make_project, deep) == (
        "content/topics/side-effects.md:3: front matter is nested more than 10 levels deep "
        "(use plain 'key: value' lines and simple lists)"
    )


@pytest.mark.parametrize("parser", ["SafeLoader", "CSafeLoader"])
def test_front_matter_nested_past_the_parsers_limits_gets_the_nesting_message(
    make_project, monkeypatch, parser
):
    import yaml

    from brochure.project import topics as content

    if not hasattr(yaml, parser):
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(content, "_LOADER", getattr(yaml, parser))
    deep = "---\ntitle: A\nkeywords: " + "[" * 1500 + "]" * 1500 + "\n---\nBody\n"
    assert _error(make_project, deep).endswith(
        "front matter is nested more than 10 levels deep (use plain 'key: value' lines and simple lists)"
    )


def test_front_matter_is_parsed_once_with_the_c_parser(make_project, monkeypatch):
    import yaml

    from brochure.project import topics as content

    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    assert content._LOADER is yaml.CSafeLoader
    made = []
    real = content._LOADER

    class Counting(real):
        def __init__(self, stream: str) -> None:
            made.append(stream)
            super().__init__(stream)

    monkeypatch.setattr(content, "_LOADER", Counting)
    monkeypatch.setattr(yaml, "compose", lambda *a, **k: pytest.fail("parsed a second time"))
    root = make_project({"content/topics/a.md": topic("A", colour="blue", lang="en")})
    (t,), warnings = load_topics(root)
    assert len(made) == 1
    # The key's line still comes through.
    assert str(warnings[0]).startswith("content/topics/a.md:3: unknown front matter 'colour'")


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        (
            'title: "Bad \\uD800 title"',
            "content/topics/side-effects.md:2: front matter is not valid YAML: found invalid Unicode character "
            "escape code (type the character itself; a control character or an escape like \\uD800 cannot be printed)",
        ),
        (
            'title: Fine\nsummary: "Ring \\a bell"',
            "content/topics/side-effects.md:3: front matter 'summary' holds a character that cannot be printed "
            "(U+0007) (delete it and retype the text around it; escapes like \\uD800 or \\u0007 are not allowed)",
        ),
        (
            "title: Fine\nsummary: Pasted \x01 text",
            "content/topics/side-effects.md:3: front matter is not valid YAML: special characters are not allowed "
            "(U+0001) (type the character itself; a control character or an escape like \\uD800 cannot be printed)",
        ),
        (
            'title: Fine\nkeywords: [ok, "bad \\x1b"]',
            "content/topics/side-effects.md:3: front matter 'keywords' holds a character that cannot be printed "
            "(U+001B) (delete it and retype the text around it; escapes like \\uD800 or \\u0007 are not allowed)",
        ),
    ],
)
def test_text_that_cannot_be_printed_is_refused(make_project, front, expected):
    assert _error(make_project, f"---\n{front}\nlang: en\n---\nBody\n") == expected


def test_lone_surrogate_through_the_python_parser_is_refused(make_project, monkeypatch):
    # Without libyaml, PyYAML reads '\uD800' into a lone surrogate: the schema refuses it.
    import yaml

    from brochure.project import topics as content

    monkeypatch.setattr(content, "_LOADER", yaml.SafeLoader)
    assert _error(make_project, '---\ntitle: "Bad \\uD800 title"\nlang: en\n---\nBody\n') == (
        "content/topics/side-effects.md:2: front matter 'title' holds a character that cannot be printed "
        "(U+D800) (delete it and retype the text around it; escapes like \\uD800 or \\u0007 are not allowed)"
    )


def test_topic_without_lang_or_body_warns(make_project):
    root = make_project(
        {
            "content/topics/a.md": "---\ntitle: No language\n---\nText.\n",
            "content/topics/b.md": "---\ntitle: No text\nlang: en\n---\n\n  \n",
        }
    )
    topics, warnings = load_topics(root)
    assert [t.lang for t in topics] == ["en", "en"]
    assert [str(w) for w in warnings] == [
        "content/topics/a.md:1: has no 'lang' in its front matter, so 'en' (English) was assumed "
        "(add 'lang: en', or the topic's language, like 'lang: es')",
        "content/topics/b.md:4: has no text below its front matter, so its pages are empty "
        "(write the topic below the second '---' line)",
    ]


def test_sample_topics_load_without_warnings():
    assert load_topics(REPO)[1] == []


def _parsed_while(monkeypatch, root):  # noqa: ANN001, ANN202
    """Load the topics as a new process would (nothing in memory); return the files parsed."""
    from brochure.project import topics as content

    parsed = []
    real = content.parse_topic

    def counting(path, project_root):  # noqa: ANN001, ANN202
        parsed.append(path.name)
        return real(path, project_root)

    monkeypatch.setattr(content.TopicCache, "_memory", {})
    monkeypatch.setattr(content, "parse_topic", counting)
    topics, warnings = load_topics(root)
    monkeypatch.setattr(content, "parse_topic", real)
    return parsed, topics, warnings


def test_unchanged_topics_are_not_parsed_again_by_the_next_command(make_project, monkeypatch, tmp_path):
    import os

    monkeypatch.setenv("BROCHURE_CACHE_DIR", str(tmp_path / "cache"))
    files = {f"content/topics/t{n}.md": topic(f"Topic {n}", lang="en") for n in range(5)}
    files["content/topics/t0.md"] = topic("Topic 0", colour="blue", lang="en")  # with a warning
    root = make_project(files)
    first, topics, warnings = _parsed_while(monkeypatch, root)
    assert sorted(first) == [f"t{n}.md" for n in range(5)]
    again, cached, cached_warnings = _parsed_while(monkeypatch, root)
    assert again == []
    assert cached == topics
    assert [str(w) for w in cached_warnings] == [str(w) for w in warnings]  # warnings come back too
    (cache,) = (tmp_path / "cache").iterdir()
    assert cache.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700

    # An edit, even one keeping the size and modification time, is parsed again; a new topic too.
    edited = root / "content/topics/t3.md"
    info = edited.stat()
    edited.write_text(topic("Topic X", lang="en").replace("Some text.", "Some tex!."))
    os.utime(edited, ns=(info.st_atime_ns, info.st_mtime_ns))
    (root / "content/topics/t9.md").write_text(topic("Topic 9", lang="en"))
    (root / "content/topics/t4.md").unlink()
    changed, topics, _ = _parsed_while(monkeypatch, root)
    assert sorted(changed) == ["t3.md", "t9.md"]
    assert {t.title for t in topics} == {"Topic 0", "Topic 1", "Topic 2", "Topic X", "Topic 9"}


def test_a_damaged_topic_cache_is_ignored(make_project, monkeypatch, tmp_path):
    monkeypatch.setenv("BROCHURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project({"content/topics/a.md": topic("A", lang="en")})
    _parsed_while(monkeypatch, root)
    for cache in (tmp_path / "cache").iterdir():
        cache.write_bytes(b"not a pickle")
    parsed, topics, _ = _parsed_while(monkeypatch, root)
    assert parsed == ["a.md"]
    assert [t.title for t in topics] == ["A"]


def test_a_bad_topic_is_never_cached(make_project, monkeypatch, tmp_path):
    monkeypatch.setenv("BROCHURE_CACHE_DIR", str(tmp_path / "cache"))
    root = make_project({"content/topics/a.md": "no front matter\n"})
    for _ in range(2):
        with pytest.raises(ContentError, match="has no front matter"):
            _parsed_while(monkeypatch, root)
