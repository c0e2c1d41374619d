"""Page budgets and auto-fit, nothing off the page, and bounded work on bad content."""

from __future__ import annotations

import re
import time

import pytest
from conftest import MINIMAL_BRAND, build_ok, copy_sample, grow, pdf_text, pdf_text_sizes, png_bytes, topic
from pypdf import PdfReader

from brochure.base.errors import BrochureError, ContentError
from brochure.build.run import build
from brochure.cli.main import cli
from brochure.document.compose import render_document
from brochure.engine import pdf as pdf_module
from brochure.project.model import load_project, select


class LayoutCounter:
    """Counts real layouts (the engine still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = pdf_module.lay_out

        def counted(*args: object, **kwargs: object) -> pdf_module.Layout:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(pdf_module, "lay_out", counted)


def test_topic_25_percent_too_long_fits_one_page_by_auto_fit(tmp_path, monkeypatch):
    root = copy_sample(tmp_path / "clinic")
    grow(root / "content/topics/unwanted-results.md", 0.25)
    project = load_project(root)
    (doc,) = select(project, ["unwanted-results"])
    counter = LayoutCounter(monkeypatch)
    rendered = render_document(project, doc, "letter")
    assert rendered.pages == 1
    assert rendered.fit.tightened
    # Counted, not timed: the first layout plus at most four more.
    assert counter.calls == 1 + rendered.fit.extra_layouts
    assert 1 <= rendered.fit.extra_layouts <= 4
    assert rendered.fit.body_pt >= 11
    # The build (in worker processes) writes that same fitted document.
    (outcome,) = build_ok(root, names=["unwanted-results"]).values()
    assert outcome.fit == rendered.fit
    pdf = root / "out/unwanted-results.pdf"
    assert len(PdfReader(pdf).pages) == 1
    runs = pdf_text_sizes(pdf)
    assert min(size for size, _ in runs) >= 9
    body = " ".join(text for size, text in runs if size >= 11)
    (text,) = pdf_text(pdf)
    assert "More: Why it happens" in text
    assert "Wait 2 weeks from your treatment" in body


def test_auto_fit_is_reported_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    root = copy_sample(tmp_path / "clinic")
    grow(root / "content/topics/aftercare.md", 0.12)
    result = CliRunner().invoke(cli, ["build", "aftercare", "--project", str(root), "--progress"])
    assert result.exit_code == 0, result.stderr
    assert re.match(
        r"built .*aftercare\.pdf \(1 page, auto-fit: tighter spacing, 1\d(\.\d+)? pt body, \d extra layouts?, ",
        result.stdout,
    )


def test_topic_three_times_too_long_fails_and_keeps_its_old_pdf(tmp_path):
    from click.testing import CliRunner

    root = copy_sample(tmp_path / "clinic")
    out = root / "out"
    out.mkdir()
    (out / "results.pdf").write_bytes(b"%PDF-1.7 the old one")
    grow(root / "content/topics/results.md", 2.0)
    result = CliRunner().invoke(
        cli, ["build", "results", "aftercare", "side-effects", "--project", str(root)]
    )
    assert result.exit_code == 1
    assert re.fullmatch(
        r"Error: content/topics/results\.md: document 'results' does not fit on 1 page, even with tight spacing "
        r"and 11 pt text: about \d+ lines \(\d\.\d of a page\) too many; the last heading that fits is '[^']+' "
        r"\(shorten it by about \d+ lines, split it into two topics, or raise its page budget in content/documents.toml\)\n",
        result.stderr,
    )
    lines = int(re.search(r"about (\d+) lines", result.stderr).group(1))
    assert 20 <= lines <= 200
    assert (out / "results.pdf").read_bytes() == b"%PDF-1.7 the old one"
    assert (out / "aftercare.pdf").exists()
    assert (out / "side-effects.pdf").exists()
    assert result.stdout.splitlines()[-1].startswith("2 rebuilt, 0 up to date, 1 failed in ")


def test_floor_is_configurable_and_never_below_9pt(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "content/documents.toml": '[fit]\nbody_floor_pt = 8\n\n[[document]]\nname = "{topic}"\n',
        }
    )
    with pytest.raises(
        BrochureError, match=r"content/documents.toml:2: key 'fit.body_floor_pt' must be between 9 and 14"
    ):
        load_project(root)


def test_brochure_is_padded_to_a_multiple_of_four_with_notes_pages(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    docs = root / "content/documents.toml"
    docs.write_text(
        docs.read_text().replace("max_pages = 16", 'max_pages = 16\nmultiple_of = 4\npad_with = "notes"')
    )
    outcome = build_ok(root, names=["brochure"])["brochure"]
    pages = pdf_text(root / "out/brochure.pdf")
    assert len(pages) % 4 == 0
    assert outcome.pages == len(pages)
    unpadded = 10  # cover, contents, seven topics, back page
    assert len(pages) == 12
    assert [p.startswith("Notes") for p in pages[unpadded - 1 : -1]] == [True, True]
    assert "Contact us" in pages[-1]
    assert "Page" not in pages[-1]  # the back page has no number


def test_brochure_over_its_maximum_fails(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    docs = root / "content/documents.toml"
    docs.write_text(docs.read_text().replace("max_pages = 16", "max_pages = 5"))
    (outcome,) = build(load_project(root), root / "out", names=["brochure"])
    assert "document 'brochure' does not fit on 5 pages" in str(outcome.error)
    assert "raise its page budget" in str(outcome.error)


# -- nothing runs off the page ------------------------------------------------


def test_long_words_wide_images_and_wide_tables_stay_inside_the_page(make_project):
    word = "Supercalifragilistic" * 12
    url = "https://example.com/" + "a-very-long-path/" * 12
    table = "| " + " | ".join(f"Column {i}" for i in range(10)) + " |\n" + "|---" * 10 + "|\n"
    table += "| " + " | ".join("Averyveryverylongcellvalue" for _ in range(10)) + " |\n"
    body = f"{word}\n\n<{url}>\n\n![A wide test picture](../images/wide.png)\n\n{table}"
    root = make_project(
        {"content/topics/wide.md": topic("Wide", body), "content/images/wide.png": png_bytes(3000, 200)}
    )
    outcomes = build_ok(root, names=["wide"])
    assert outcomes["wide"].pages == 1
    reader = PdfReader(root / "out/wide.pdf")
    page = reader.pages[0]
    width = float(page.mediabox.width)
    positions: list[float] = []

    def visit(text: str, cm: list, tm: list, font: dict, size: float) -> None:
        if text.strip():
            positions.append(cm[0] * tm[4] + cm[4])

    page.extract_text(visitor_text=visit)
    assert positions
    assert all(0 <= x < width for x in positions)
    text = pdf_text(root / "out/wide.pdf")[0].replace(" ", "")
    assert word in text  # broken across lines, not cut off
    assert "Averyveryverylongcellvalue" in text


def test_text_pushed_off_the_page_by_a_stylesheet_is_reported(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", "A line that must not wrap. " * 12 + "\n"),
            "styles/handout.css": '@import url("builtin:handout.css");\np { white-space: nowrap; }\n',
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert re.match(
        r"content/topics/a\.md: document 'a': page 1: text 'A line that must not wrap\. A l' runs past the right edge "
        r"of the paper \(make the picture or table smaller, or break the long line\)",
        str(outcome.error),
    )
    assert not (root / "out/a.pdf").exists()


def test_text_below_9pt_is_refused(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "styles/handout.css": '@import url("builtin:handout.css");\n.disclaimer { font-size: 7pt; }\n',
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert str(outcome.error) == (
        "content/topics/a.md: document 'a' has text at 7 pt ('General information\u00a0only.'), below the 9 pt "
        "that stays readable (raise the font-size in the stylesheet that sets it)"
    )


# -- bounded work on bad content ------------------------------------------------


def test_lists_nested_200_deep_fail_cleanly(make_project):
    body = "\n".join("    " * depth + f"- level {depth}" for depth in range(200)) + "\n"
    root = make_project({"content/topics/deep.md": topic("Deep", body)})
    started = time.monotonic()
    (outcome,) = build(load_project(root), root / "out")[:1]
    assert isinstance(outcome.error, ContentError)
    assert str(outcome.error) == (
        "content/topics/deep.md:13: lists or quotes are nested 9 levels deep; at most 8 are allowed "
        "(flatten the list: split it, or turn inner levels into sentences)"
    )
    assert time.monotonic() - started < 30


def test_quotes_nested_200_deep_fail_cleanly(make_project):
    root = make_project({"content/topics/deep.md": topic("Deep", ">" * 200 + " too deep\n")})
    (outcome,) = build(load_project(root), root / "out")[:1]
    assert "lists or quotes are nested 200 levels deep" in str(outcome.error)


def test_ten_thousand_line_topic_fails_cleanly(make_project):
    root = make_project({"content/topics/huge.md": topic("Huge", "A line of text.\n" * 10_000)})
    with pytest.raises(BrochureError) as caught:
        load_project(root)
    assert str(caught.value) == (
        "content/topics/huge.md:2001: is too long for a topic (10,005 lines; at most 2,000 lines and 200 KB) "
        "(split it into several topics)"
    )


def test_huge_picture_fails_cleanly_before_it_is_decoded(make_project):
    root = make_project(
        {
            "content/topics/big.md": topic("Big", "![A huge test picture](../images/huge.png)\n"),
            "content/images/huge.png": png_bytes(15_000, 15_000),
        }
    )
    started = time.monotonic()
    (outcome,) = build(load_project(root), root / "out")[:1]
    assert str(outcome.error) == (
        "content/topics/big.md:5: image '../images/huge.png' is 15,000 x 15,000 pixels, more than the 40 megapixels "
        "allowed (resize it to at most a few thousand pixels on each side)"
    )
    assert time.monotonic() - started < 30


def test_huge_logo_is_refused_by_the_fetcher(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "content/images/logo.png": png_bytes(15_000, 15_000),
            "content/brand.toml": MINIMAL_BRAND.replace("logo.svg", "logo.png"),
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert re.fullmatch(
        r"a: cannot use file://.*/content/images/logo\.png: the picture is 15,000 x 15,000 pixels, more than the "
        r"40 megapixels allowed \(check the path of the logo, image, font or stylesheet; it must be a file inside "
        r"the project\)",
        str(outcome.error),
    )


def test_layout_over_the_time_limit_stops_cleanly(tmp_path, monkeypatch):
    root = copy_sample(tmp_path / "clinic")
    monkeypatch.setattr(pdf_module, "MAX_LAYOUT_SECONDS", 0.001)
    (outcome,) = build(load_project(root), root / "out", names=["brochure"])
    assert str(outcome.error) == (
        "brochure: laying out took longer than 0.001 seconds and was stopped "
        "(shorten the document or make its pictures smaller)"
    )


def test_picture_pushed_off_the_page_by_a_stylesheet_is_reported(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", "![A wide test picture](../images/wide.png)\n"),
            "content/images/wide.png": png_bytes(3000, 100),
            "styles/handout.css": '@import url("builtin:handout.css");\nimg { max-width: none; width: 3000px; }\n',
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert "document 'a': page 1: picture 'A wide test picture' runs past the right edge of the paper" in str(
        outcome.error
    )


def test_documents_over_the_page_cap_fail(make_project, monkeypatch):
    from brochure.document import compose as build_module

    monkeypatch.setattr(build_module, "MAX_PAGES", 2)
    root = make_project({f"content/topics/t{i}.md": topic(f"T{i}") for i in range(3)})
    (outcome,) = build(load_project(root), root / "out", names=["brochure"])
    assert str(outcome.error) == (
        "content/documents.toml: document 'brochure' has 4 pages, more than brochure makes (2) "
        "(split it into several documents)"
    )


def test_a_footer_too_long_for_its_margin_is_reported_with_the_right_fix(make_project):
    long_disclaimer = "This is general information only. " * 30
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "content/brand.toml": MINIMAL_BRAND.replace("General information only.", long_disclaimer.strip()),
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert re.search(
        r"document 'a': page 1: text '.*' in the page's header or footer runs past the bottom edge of the paper "
        r"\(shorten the disclaimer or contact details in content/brand.toml, or give the footer more room",
        str(outcome.error),
    )


def test_a_page_size_that_is_not_the_brand_paper_fails(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", lang="en"),
            "styles/handout.css": '@import url("builtin:handout.css");\n@page { size: 2000in; }\n',
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert str(outcome.error) == (
        "styles/handout.css: document 'a': page 1 is 2000 x 2000 in, not letter paper (8.5 x 11 in) "
        "(remove 'size' from the @page rules in your stylesheets; the paper is set by 'paper' in content/brand.toml)"
    )
    assert not (root / "out/a.pdf").exists()
    from brochure.build.check import check_project

    report = check_project(root, ["a"])
    assert report.errors == 1
    assert "page 1 is 2000 x 2000 in" in str(report.findings[-1].problem)


@pytest.mark.parametrize(
    ("css", "body", "what"),
    [
        (
            "main img { height: 20in; width: auto; max-width: none; }",
            "Text.\n\n![A tall chart](../images/logo.svg)\n",
            "picture 'A tall chart' is 20 in tall, more than the page's 9.32 in of room",
        ),
        (
            "h1 { font-size: 150pt; }",
            "Text.\n",
            "text 'Giant title, what to expect and what...' is set at 150 pt",
        ),
    ],
)
def test_what_overflows_is_named_when_it_is_not_a_matter_of_lines(make_project, css, body, what):
    root = make_project(
        {
            "content/topics/a.md": topic("Giant title, what to expect and what to do", body, lang="en"),
            "styles/handout.css": f'@import url("builtin:handout.css");\n{css}\n',
        }
    )
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert str(outcome.error) == (
        f"content/topics/a.md: document 'a' does not fit on 1 page: {what} "
        "(make it smaller: resize the picture, or lower the size the stylesheet gives it)"
    )


def test_the_sample_stays_inside_the_printable_area_with_a_longer_clinic_name(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    as_is = {name: o.fit.body_pt for name, o in build_ok(root).items()}
    brand = root / "content/brand.toml"
    longer = 'clinic_name = "Example Aesthetics and Laser Skin Clinic of Anytown"'
    brand.write_text(re.sub(r"(?m)^clinic_name = .*$", longer, brand.read_text()))
    # The longer name costs no text size anywhere.
    assert {name: o.fit.body_pt for name, o in build_ok(root).items()} == as_is
    safe = 0.25 * 72
    for pdf in sorted((root / "out").glob("*.pdf")):
        for number, page in enumerate(PdfReader(pdf).pages):
            width, height = float(page.mediabox.width), float(page.mediabox.height)
            for x, baseline, size in _text_marks(page):
                # Descenders reach about a quarter of the size below the baseline.
                assert baseline - 0.25 * size >= safe, (pdf.name, number, baseline)
                assert height - baseline - size >= safe, (pdf.name, number, baseline)
                assert safe <= x <= width - safe, (pdf.name, number, x)


def _text_marks(page: object) -> list[tuple[float, float, float]]:
    """Where each run of text on a PDF page starts: x, baseline and size, in points."""
    marks: list[tuple[float, float, float]] = []

    def visit(text: str, cm: list, tm: list, font: dict, size: float) -> None:
        if text.strip():
            marks.append((tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5], size * abs(tm[3] * cm[3])))

    page.extract_text(visitor_text=visit)
    return marks


def test_marks_in_the_unprintable_strip_are_reported_unless_the_brand_allows_them(make_project):
    squeezed = '@import url("builtin:handout.css");\n@page { margin-bottom: 0.65in; }\n'
    files = {"content/topics/a.md": topic("A", lang="en"), "styles/handout.css": squeezed}
    root = make_project(files)
    (outcome,) = build(load_project(root), root / "out", names=["a"])
    assert re.search(
        r"document 'a': page 1: text '.*' in the page's header or footer comes within 0.25 in of the bottom edge "
        r"of the paper, where printers cannot print \(shorten the disclaimer",
        str(outcome.error),
    ), outcome.error
    # A printer that prints to the edge: the clinic says so.
    root = make_project(
        {**files, "content/brand.toml": MINIMAL_BRAND + "\n[print]\nsafe_margin_in = 0\n"}, name="edge"
    )
    build_ok(root, names=["a"])


def test_a_build_starts_auto_fit_where_the_last_one_ended(tmp_path, monkeypatch):
    """Counted, not timed: a forced build lays out a fitted document once; an edit of its words, twice."""
    from dataclasses import replace

    from brochure.document.fit import FitHint

    root = copy_sample(tmp_path / "clinic")
    first = build_ok(root)
    fitted = {name: o.fit for name, o in first.items() if o.fit.tightened}
    assert "side-effects" in fitted, sorted(fitted)  # the sample's longest handout needs auto-fit
    assert not any(f.remembered for f in fitted.values())

    # Nothing changed, everything rebuilt: each fitted document takes the size it took, in one layout.
    forced = build_ok(root, force=True)
    for name, before in fitted.items():
        again = forced[name].fit
        assert (again.remembered, again.extra_layouts) == (True, 0), name
        assert (again.body_pt, again.css, forced[name].pages) == (
            before.body_pt,
            before.css,
            first[name].pages,
        )
    assert "as fitted last time" in forced["side-effects"].fit.describe()

    # The same, in this process, counting the layouts themselves.
    project = load_project(root)
    (doc,) = select(project, ["side-effects"])
    before = fitted["side-effects"]
    counter = LayoutCounter(monkeypatch)
    hint = FitHint(before.size_pt, before.base_pt, same_inputs=True)
    assert render_document(project, replace(doc, fit_hint=hint), "letter").fit.css == before.css
    assert counter.calls == 1
    counter.calls = 0
    assert render_document(project, doc, "letter").fit.css == before.css  # without it: a search
    assert counter.calls == 2

    # A sentence more: the remembered size is checked against the next size up, two layouts,
    # and ends where a fresh search ends.
    topic = root / "content/topics/side-effects.md"
    topic.write_text(topic.read_text() + "\nCall us.\n")
    edited = build_ok(root)["side-effects"].fit
    fresh = render_document(load_project(root), doc, "letter").fit
    assert (edited.body_pt, edited.css) == (fresh.body_pt, fresh.css)
    assert (edited.remembered, edited.extra_layouts) == (True, 1)

    # A stylesheet changed: what fitted before says nothing; the search starts afresh.
    (root / "styles").mkdir(exist_ok=True)
    (root / "styles/handout.css").write_text(
        '@import url("builtin:handout.css");\nh2 { letter-spacing: 0.01em; }\n'
    )
    restyled = build_ok(root)
    assert not any(o.fit.remembered for o in restyled.values() if o.fit)


def test_a_remembered_body_size_is_checked_against_the_next_size_up(tmp_path, monkeypatch):
    from dataclasses import replace

    from brochure.document.fit import STEP_PT, FitHint

    root = copy_sample(tmp_path / "clinic")
    grow(root / "content/topics/unwanted-results.md", 0.25)
    project = load_project(root)
    (doc,) = select(project, ["unwanted-results"])
    searched = render_document(project, doc, "letter").fit
    assert searched.size_pt is not None
    assert searched.size_pt < searched.base_pt
    counter = LayoutCounter(monkeypatch)

    def start_at(size: float) -> object:
        counter.calls = 0
        hint = FitHint(size, searched.base_pt, same_inputs=False)
        return render_document(project, replace(doc, fit_hint=hint), "letter").fit

    kept = start_at(searched.size_pt)  # still the largest that fits: that layout and the next size up
    assert (kept.css, kept.remembered, counter.calls) == (searched.css, True, 2)
    smaller = start_at(searched.size_pt - STEP_PT)  # the next size up fits too: searched afresh
    assert (smaller.css, smaller.remembered) == (searched.css, False)
    assert smaller.extra_layouts == counter.calls - 1  # the two layouts of the check are counted

    counter.calls = 0
    render_document(project, doc, "letter")
    fresh = counter.calls
    # Too big now (the words grew): the search looks only below it, and ends where a fresh one does.
    bigger = start_at(searched.size_pt + STEP_PT)
    assert (bigger.css, bigger.body_pt, bigger.remembered) == (searched.css, searched.body_pt, False)
    assert bigger.extra_layouts == counter.calls - 1
    assert counter.calls < fresh


def test_with_a_worker_free_the_next_size_up_is_laid_out_beside_the_remembered_size(tmp_path):
    """After an edit, a remembered fit takes two layouts; two workers lay them out at the same time,
    and the result is the one a fresh search finds."""
    from dataclasses import replace

    from brochure.document.fit import STEP_PT, FitHint
    from brochure.warm.workers import Renderer

    root = copy_sample(tmp_path / "clinic")
    grow(root / "content/topics/unwanted-results.md", 0.25)  # fits at a smaller body size
    grow(root / "content/topics/aftercare.md", 0.03)  # fits with tighter spacing alone
    project = load_project(root)
    smaller, tighter = select(project, ["unwanted-results", "aftercare"])
    searched = {doc.name: render_document(project, doc, "letter").fit for doc in (smaller, tighter)}
    assert searched["unwanted-results"].size_pt is not None
    assert searched["aftercare"].size_pt is None

    def start_at(renderer: Renderer, doc, size: float) -> object:  # noqa: ANN001
        hint = FitHint(size, searched[doc.name].base_pt, same_inputs=False)
        (result,) = renderer.render(project, [replace(doc, fit_hint=hint)], "letter", False)
        assert result.error is None, result.error
        assert result.pdf.startswith(b"%PDF")
        assert result.fit.css == searched[doc.name].css  # where a fresh search ends
        return result.fit

    size = searched["unwanted-results"].size_pt
    with Renderer(jobs=2) as renderer:
        kept = start_at(renderer, smaller, size)  # still the one: its check counts as a layout
        assert (kept.remembered, kept.extra_layouts) == (True, 1)
        assert renderer.side_checks == 1
        bigger = start_at(renderer, smaller, size + STEP_PT)  # too big now: searched below it
        assert not bigger.remembered
        room = start_at(renderer, tighter, size)  # the next size up fits now: searched afresh
        assert not room.remembered
        assert room.extra_layouts == searched["aftercare"].extra_layouts + 2
        assert renderer.side_checks == 3
    with Renderer(jobs=1) as renderer:  # no worker free: the one worker checks it in turn
        kept = start_at(renderer, smaller, size)
        assert (kept.remembered, kept.extra_layouts) == (True, 1)
        assert renderer.side_checks == 0
