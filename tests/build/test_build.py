"""Building real PDFs from the sample and from small projects, and reading them back."""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import replace

import pikepdf
import pytest
from conftest import REPO, build_ok, copy_sample, pdf_fonts, pdf_text, pdf_text_sizes, topic
from pypdf import PdfReader

from brochure.base.errors import BrochureError, RenderError
from brochure.build.output import write_atomic
from brochure.build.run import build, check_out_dir
from brochure.project.model import documents, load_project


def _words(markdown_body: str) -> list[str]:
    """Plain words of a Markdown body, to look for in extracted PDF text."""
    text = re.sub(r"^!!!\s*\w+", " ", markdown_body, flags=re.M)  # a callout's kind is printed translated
    # A picture's alt text is for screen readers, not printed; its caption is in small type.
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"[*_#`\[\]()>]", " ", text)
    return [w for w in text.split() if len(w) > 3 and w.isalpha()]


def test_one_single_page_pdf_per_topic_plus_brochure(sample_out, sample_topics):
    names = {p.stem for p in sample_out.glob("*.pdf")}
    spanish = {"aftercare", "side-effects", "choosing-an-injector"}
    handouts = {t.slug for t in sample_topics} | {f"{slug}.es" for slug in spanish}
    assert names == handouts | {f"{name}.large" for name in handouts} | {"brochure", "aftercare-trifold"}
    for t in sample_topics:
        assert len(PdfReader(sample_out / f"{t.slug}.pdf").pages) == 1, t.slug


def test_handout_text_holds_title_body_contact_and_review(sample_out, sample_topics):
    project = load_project(REPO)
    for t in sample_topics:
        (text,) = pdf_text(sample_out / f"{t.slug}.pdf")
        assert " ".join(t.title.split()) in text
        words = _words(t.body)
        missing = [w for w in words if w not in text]
        # Every word of the body is on the page (hyphenation is off).
        assert not missing, (t.slug, missing[:10])
        assert project.brand.clinic_name in text
        assert project.brand.contact["phone"] in text
        assert "general information only" in text
        assert "Next review due" in text


def test_handout_body_is_at_least_11pt_and_nothing_below_9pt(sample_out, sample_topics):
    for t in sample_topics:
        runs = pdf_text_sizes(sample_out / f"{t.slug}.pdf")
        assert min(size for size, _ in runs) >= 9, t.slug
        body_text = " ".join(text for size, text in runs if size >= 11)
        missing = [w for w in _words(t.body) if w not in body_text]
        assert not missing, (t.slug, missing[:10])


def test_brochure_contents_give_the_page_each_topic_starts_on(sample_out, sample_topics):
    pages = pdf_text(sample_out / "brochure.pdf")
    contents = next(i for i, p in enumerate(pages) if "In this guide" in p[:80])
    toc = pages[contents]
    for t in sample_topics:
        title = " ".join(t.title.split())
        match = re.search(re.escape(title) + r"[ .]*?(\d+)\b", toc)
        assert match, (title, toc)
        number = int(match.group(1))
        # The topic starts on the page the contents point at (topics follow each
        # other without a page break, so it may start halfway down) ...
        assert title in pages[number - 1], (title, number)
        # ... and its title (set large) is not on the page before.
        before = pdf_text_sizes(sample_out / "brochure.pdf", number - 2)
        assert title not in " ".join(text for size, text in before if size >= 18), (title, number)


def test_brochure_has_cover_running_header_page_numbers_and_back_page(sample_out, sample_topics):
    pages = pdf_text(sample_out / "brochure.pdf")
    total = len(pages)
    assert "Your guide to Botox treatment" in pages[0]
    assert "Page 1 of" not in pages[0]  # the cover has no footer
    for number, text in enumerate(pages[1:-1], start=2):
        assert f"Page {number} of {total}" in text
    assert "Page" not in pages[-1]  # nor the back page
    # The running header (9 pt, at the top) names the topic the page starts in
    # (tests/document/test_design.py checks every page).
    side = next(i for i, p in enumerate(pages) if "Common and mild" in p)
    header = [text for size, text in pdf_text_sizes(sample_out / "brochure.pdf", side) if size == 9]
    assert header
    assert header[0] in {" ".join(t.title.split()) for t in sample_topics}
    assert "Contact us" in pages[-1]
    assert "555-0142" in pages[-1]


def test_every_pdf_is_tagged_with_lang_title_and_embedded_brand_fonts(sample_out):
    for path in sorted(sample_out.glob("*.pdf")):
        with pikepdf.open(path) as pdf:
            root = pdf.Root
            assert root.MarkInfo.Marked is True, path.name
            assert "/StructTreeRoot" in root, path.name
            assert str(root.Lang) == ("es" if ".es." in path.name else "en"), path.name
            assert root.ViewerPreferences.DisplayDocTitle is True
            with pdf.open_metadata() as xmp:
                assert xmp.get("dc:title"), path.name
                assert xmp.get("pdfuaid:part") == "1", path.name
            assert str(pdf.docinfo.Title)
            assert str(pdf.docinfo.Author) == "Example Aesthetics Clinic"
            assert str(pdf.docinfo.Subject)
            assert "/EmbeddedFiles" not in root.get("/Names", {})
        fonts = pdf_fonts(path)
        assert fonts, path.name
        assert all(fonts.values()), (path.name, fonts)
        # Subset (ABCDEF+) and all of the brand's family: no fallback.
        assert all(re.fullmatch(r"/[A-Z]{6}\+Lato(-\w+)?", name) for name in fonts), fonts


def test_creation_date_comes_from_the_content_not_the_clock(sample_out, sample_topics):
    for t in sample_topics:
        with pikepdf.open(sample_out / f"{t.slug}.pdf") as pdf:
            assert str(pdf.docinfo.CreationDate).startswith("D:" + t.reviewed_on.strftime("%Y%m%d"))


def test_second_project_builds_with_builtin_templates(make_project, tmp_path):
    root = make_project(
        {
            "content/topics/welcome.md": topic(
                "Welcome to Birch Clinic", "We are glad you are here.\n", order=1
            ),
            "content/topics/parking.md": topic("Where to park", "Park behind the building.\n", order=2),
        },
        name="birch",
    )
    assert not (root / "templates").exists()
    assert not (root / "styles").exists()
    outcomes = build_ok(root)
    assert set(outcomes) == {"welcome", "parking", "brochure"}
    (text,) = pdf_text(root / "out" / "welcome.pdf")
    assert "Test Clinic" in text
    assert "Welcome to Birch Clinic" in text
    assert "555-0100" in text


def test_brand_change_changes_every_pdf(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    brand = root / "content" / "brand.toml"
    brand.write_text(
        brand.read_text()
        .replace("Example Aesthetics Clinic", "Willow Skin Studio")
        .replace('paper = "letter"', 'paper = "a4"')
    )
    build_ok(root, names=["aftercare", "brochure"])
    for name in ("aftercare", "brochure"):
        reader = PdfReader(root / "out" / f"{name}.pdf")
        assert "Willow Skin Studio" in reader.pages[-1].extract_text()
        width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
        assert (round(width), round(height)) == (595, 842)  # A4 in points


def test_paper_option_overrides_brand(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    build_ok(root, names=["results"], paper="a4")
    page = PdfReader(root / "out" / "results.pdf").pages[0]
    assert round(page.mediabox.width) == 595


def test_project_template_override_is_used_and_can_extend_builtin(make_project):
    root = make_project(
        {
            "content/topics/welcome.md": topic("Welcome", "Hello.\n"),
            "templates/handout.html": (
                '{% extends "builtin/handout.html" %}'
                "{% block after_topic %}<p>Ask the front desk for a parking pass.</p>{% endblock %}"
            ),
        }
    )
    build_ok(root, names=["welcome"])
    (text,) = pdf_text(root / "out" / "welcome.pdf")
    assert "Ask the front desk for a parking pass." in text
    assert "Test Clinic" in text  # the rest of the built-in handout is still there


def test_project_stylesheet_override_can_import_builtin(make_project):
    root = make_project(
        {
            "content/topics/welcome.md": topic("Welcome", "Hello.\n"),
            "styles/handout.css": '@import url("builtin:handout.css");\nh1 { font-size: 31pt; }\n',
        }
    )
    build_ok(root, names=["welcome"])
    assert (31.0, "Welcome") in pdf_text_sizes(root / "out" / "welcome.pdf")
    (text,) = pdf_text(root / "out" / "welcome.pdf")
    assert "555-0100" in text  # the built-in footer rules still apply


def test_failed_document_keeps_old_pdf_and_others_still_build(make_project):
    root = make_project(
        {
            "content/topics/short.md": topic("Short", "Fine.\n"),
            "content/topics/long.md": topic("Long", "Too long for one page.\n\n" * 200),
        }
    )
    out = root / "out"
    out.mkdir()
    (out / "long.pdf").write_bytes(b"%PDF-old")
    outcomes = {o.name: o for o in build(load_project(root), out)}
    assert isinstance(outcomes["long"].error, RenderError)
    assert "does not fit on 1 page" in str(outcomes["long"].error)
    assert (out / "long.pdf").read_bytes() == b"%PDF-old"
    assert outcomes["short"].error is None
    assert (out / "short.pdf").exists()
    assert not list(out.glob(".*.tmp"))


def test_unwritable_output_is_reported_per_document(make_project):
    root = make_project({"content/topics/a.md": topic("A")})
    (root / "out").mkdir()
    (root / "out" / "a.pdf").mkdir()  # a folder where the PDF should go: cannot be replaced
    outcome = build(load_project(root), root / "out", names=["a"])[0]
    assert isinstance(outcome.error, BrochureError)
    assert str(outcome.error).startswith(f"{root / 'out' / 'a.pdf'}: cannot be written: ")
    assert not list((root / "out").glob(".*.tmp"))


def test_output_folder_may_not_be_or_contain_the_project(make_project):
    root = make_project({"content/topics/a.md": topic("A")})
    project = load_project(root)
    for bad in (root, root.parent, root / "content" / "out"):
        with pytest.raises(BrochureError, match="cannot be the output folder"):
            check_out_dir(project, bad)
    assert check_out_dir(project, root / "out") == (root / "out").resolve()


def test_write_atomic_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "a.pdf"
    target.write_bytes(b"old")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.pdf"]


def test_documents_follow_config_order_and_topics(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", order=2),
            "content/topics/b.md": topic("B", order=1),
            "content/documents.toml": (
                '[[document]]\nname = "guide"\nkind = "brochure"\ntopics = ["a", "b"]\n\n'
                '[[document]]\nname = "{topic}"\ntopics = ["b"]\n'
            ),
        }
    )
    docs = documents(load_project(root))
    assert [(d.name, [t.slug for t in d.topics]) for d in docs] == [("guide", ["a", "b"]), ("b", ["b"])]


def test_documents_config_naming_a_missing_topic_is_an_error(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "content/documents.toml": '[[document]]\nname = "guide"\nkind = "brochure"\ntopics = ["a", "nope"]\n',
        }
    )
    with pytest.raises(
        BrochureError,
        match=r"content/documents.toml:4: document 'guide' names topic 'nope' in 'topics', "
        r"but content/topics/nope.md does not exist",
    ):
        load_project(root)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_symlinked_image_leading_out_of_the_project_is_refused(make_project, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes((REPO / "content/images/logo.svg").read_bytes())
    root = make_project({"content/topics/a.md": topic("A", "![a picture](../images/pic.png)\n")})
    (root / "content/images/pic.png").symlink_to(secret)
    outcome = build(load_project(root), root / "out")[0]
    assert outcome.error is not None
    assert "content/topics/a.md:5: image '../images/pic.png' points outside the project" in str(outcome.error)
    assert not (root / "out" / "a.pdf").exists()


def test_missing_logo_fails_with_its_path(make_project):
    root = make_project({"content/topics/a.md": topic("A")})
    (root / "content/images/logo.svg").unlink()
    with pytest.raises(
        BrochureError,
        match=r"content/brand.toml:2: 'logo' names a file that does not exist: 'images/logo.svg'",
    ):
        load_project(root)


def test_character_missing_from_brand_font_fails_the_document(make_project):
    root = make_project({"content/topics/a.md": topic("A", "Hello 你好\n")})
    outcome = build(load_project(root), root / "out", names=["a"])[0]
    # Depending on the machine's fonts, a box (.notdef) or a system font:
    # either way the document fails.
    assert outcome.error is not None
    assert "not in the brand font" in str(outcome.error)
    assert not (root / "out" / "a.pdf").exists()


def test_stylesheet_naming_another_font_fails_the_document(make_project):
    root = make_project(
        {
            "content/topics/a.md": topic("A", "Hello\n"),
            "styles/handout.css": '@import url("builtin:handout.css");\nh1 { font-family: "DejaVu Sans", serif; }\n',
        }
    )
    outcome = build(load_project(root), root / "out", names=["a"])[0]
    assert outcome.error is not None
    assert re.search(r"^a: text is set in .+, which is not in the brand font", str(outcome.error))
    assert not (root / "out" / "a.pdf").exists()


def test_parsed_stylesheets_follow_edits_to_what_they_import(make_project):
    """A worker keeps stylesheets parsed between documents; an edit to an imported file still shows."""
    from brochure.document.compose import render_document
    from brochure.project.model import select

    root = make_project(
        {
            "content/topics/a.md": topic("A"),
            "styles/handout.css": '@import url("builtin:handout.css");\n@import url("paper.css");\n',
            "styles/paper.css": "h1 { font-size: 31pt; }\n",
        }
    )
    project = load_project(root)
    (doc,) = select(project, ["a"])
    first = render_document(project, doc, "letter")
    (root / "styles/paper.css").write_text("h1 { font-size: 33pt; }\n")
    second = render_document(project, doc, "letter")
    sizes = []
    for rendered in (first, second):
        (root / "x.pdf").write_bytes(rendered.pdf)
        sizes.append([size for size, text in pdf_text_sizes(root / "x.pdf") if text == "A"])
    assert sizes == [[31.0], [33.0]]


def _structure(node: object, found: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Every structure element under ``node``: (type, its /Alt)."""
    if isinstance(node, pikepdf.Dictionary):
        if "/S" in node:
            found.append((str(node.S), node.get("/Alt")))
        kids = node.get("/K")
        for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
            _structure(kid, found)
    return found


def test_structure_headings_figures_links_and_reading_order(sample_out, sample_topics):
    for path in sorted(sample_out.glob("*.pdf")):
        with pikepdf.open(path) as pdf:
            elements = _structure(pdf.Root.StructTreeRoot, [])
            kinds = [kind for kind, _ in elements]
            figures = [alt for kind, alt in elements if kind == "/Figure"]
            assert figures, path.name  # the logo
            assert all(alt is not None and str(alt).strip() for alt in figures), (path.name, figures)
            assert "/H2" in kinds, path.name
            assert "/L" in kinds, path.name
            for page in pdf.pages:
                assert page.obj.get("/Tabs") == "/S", path.name  # tab through in structure order
                for annot in page.obj.get("/Annots", []):
                    if annot.get("/Subtype") == "/Link":
                        assert str(annot.get("/Contents", "")).strip(), path.name
        if path.stem == "aftercare-trifold":
            assert kinds.count("/H1") == 1 + 2  # the cover's title, and one for each of its topics
        elif path.stem != "brochure":
            assert kinds.count("/H1") == 1, path.name  # the topic's title, once
        else:
            # The cover's title and one per topic.
            assert kinds.count("/H1") == 1 + len(sample_topics)


def test_an_error_shared_by_documents_is_printed_once_naming_them(make_project):
    from click.testing import CliRunner

    from brochure.cli.main import cli

    root = make_project(
        {
            "content/topics/a.md": topic("A", "![A picture](../images/nope.png)\n", lang="en"),
            "content/topics/b.md": topic("B", lang="en"),
        }
    )
    result = CliRunner().invoke(cli, ["build", "--project", str(root)])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: content/topics/a.md:6: image '../images/nope.png' does not exist; "
        "2 documents: 'a' and 'brochure' not built "
        "(check the file name; paths are relative to the topic file)\n"
    )
    assert result.stdout.startswith("1 rebuilt, 0 up to date, 2 failed in ")


def test_on_a_terminal_the_build_shows_one_progress_line(make_project):
    import os
    import pty
    import subprocess

    topics = {f"content/topics/t{i:02}.md": topic(f"Topic {i}") for i in range(12)}
    root = make_project({**topics, "content/documents.toml": '[[document]]\nname = "{topic}"\n'})
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "brochure", "build", "--project", str(root)],
        stdout=terminal,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the build ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    text = shown.decode().replace("\r\n", "\n")
    # One line rewritten in place (\r), then the closing line over it: not a line per document.
    assert "built " not in text
    assert text.count("\n") == 1
    assert "\r[########################] 12/12" in text
    assert text.split("\r")[-1].startswith("12 rebuilt, 0 up to date, 0 failed in ")


def test_workers_are_sent_the_project_once_not_with_every_document(make_project):
    """A project of many topics pickles to megabytes: a task carries a name for it, and each worker reads
    it once from a private file that goes with the renderer."""
    import pickle

    from brochure.warm.workers import Pickled, Renderer

    root = make_project({f"content/topics/t{n}.md": topic(f"Topic {n}", "Text. " * 200) for n in range(40)})
    project = load_project(root)
    docs = [d for d in documents(project) if d.spec.kind == "handout"][:4]
    with Renderer(jobs=2) as renderer:
        results = list(renderer.render(project, docs, "letter", False))
        folder = renderer._folder
        (shared,) = folder.glob("*.pickle")  # beside the workers' temporary folders
        assert folder.stat().st_mode & 0o777 == 0o700
        assert pickle.loads(shared.read_bytes()) == project
        # What goes to a worker for one document: the document, and the project's name and file.
        token_and_path = renderer._share(project)
        task = pickle.dumps((token_and_path, docs[0]))
        assert len(task) * 10 < len(pickle.dumps(project))
        # Another build of the same project shares the same file.
        assert renderer._share(load_project(root)) == token_and_path
        # A project pickled by the build (as it is sent to the render server) goes to the workers as
        # it came: its own bytes in the file, not pickled again.
        edited = root / "content/topics/t0.md"
        edited.write_text(topic("Topic 0", "Other text. " * 200))
        edited_project = load_project(root)
        pickled = Pickled.of(edited_project)
        one = [d for d in documents(edited_project) if d.name == "t0"]
        (again,) = renderer.render(pickled, one, "letter", False)
        assert (folder / f"{pickled.token}.pickle").read_bytes() == pickled.blob
        (root / "t0.pdf").write_bytes(again.pdf)
        assert "Other text" in pdf_text(root / "t0.pdf")[0]
    assert sorted(r.name for r in results) == sorted(d.name for d in docs)
    assert all(r.error is None and r.pdf.startswith(b"%PDF") for r in results)
    assert not folder.exists()


def test_the_workers_temporary_files_go_in_their_private_folder_even_after_it_was_removed(tmp_path):
    """WeasyPrint copies the brand's fonts into a temporary folder of each worker: it goes with the
    renderer's folder. A folder removed under a long-lived renderer (a /tmp cleaner) is made again,
    with new workers that use it."""
    from brochure.warm.workers import Renderer

    root = copy_sample(tmp_path / "clinic")  # its brand has a font of its own
    project = load_project(root)
    doc = next(d for d in documents(project) if d.name == "aftercare")
    with Renderer(jobs=1) as renderer:
        (first,) = renderer.render(project, [doc], "letter", False)
        folder = renderer._folder
        assert [p.name for p in folder.iterdir() if p.name.startswith("weasyprint-")]
        shutil.rmtree(folder)
        (again,) = renderer.render(project, [doc], "letter", False)  # shared before, in the old folder
        assert renderer._folder != folder
        assert [p.name for p in renderer._folder.iterdir() if p.name.startswith("weasyprint-")]
        moved = renderer._folder
    assert first.error is None
    assert again.error is None
    assert again.pdf.startswith(b"%PDF")
    assert not moved.exists()


_CRASHING: set[str] = set()  # set by the test before the workers start (they are forked)


def _render_or_crash(shared, doc, paper, strict, memory_mb):  # noqa: ANN001, ANN202 - for workers._render
    import os
    import time

    from brochure.document.fit import FitResult
    from brochure.warm.workers import Result

    if doc.name in _CRASHING:  # its worker dies, as one killed for its memory does
        time.sleep(0.3)
        os._exit(1)
    return Result(doc.name, 0.0, b"%PDF", 1, (), FitResult(0, 11.0, True, "", 11.0, 11.5, remembered=True))


def _check_slowly(shared, doc, paper, css):  # noqa: ANN001, ANN202 - stands in for workers._probe
    import time

    time.sleep(1.0)
    return False


@pytest.mark.parametrize("attempt", range(6))  # the pool's broken futures are read in either order
def test_a_worker_that_dies_beside_a_side_by_side_fit_check_fails_only_its_document(
    tmp_path, monkeypatch, attempt
):
    from brochure.document.fit import FitHint
    from brochure.warm import workers

    monkeypatch.setattr(workers, "_render", _render_or_crash)
    monkeypatch.setattr(workers, "_probe", _check_slowly)
    project = load_project(copy_sample(tmp_path / "clinic"))
    first, second = [d for d in documents(project) if d.spec.kind == "handout"][:2]
    hinted = replace(first, fit_hint=FitHint(11.0, 11.5, same_inputs=False))
    monkeypatch.setattr(sys.modules[__name__], "_CRASHING", {second.name})
    with workers.Renderer(jobs=2) as renderer:
        # The first renders at once and waits for its check; the second's worker dies meanwhile,
        # and the check with it: the first is checked again in turn, by new workers.
        results = {r.name: r for r in renderer.render(project, [hinted, second], "letter", False)}
        assert renderer.side_checks == 1
    assert sorted(results) == sorted([first.name, second.name])
    assert results[first.name].error is None
    assert "stopped while making this document" in str(results[second.name].error)
