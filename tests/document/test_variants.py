"""Translations and large print: their own PDFs, labels, dates, hyphenation, checks and rebuilds."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pikepdf
import pyphen
import pytest
from conftest import REPO, build_ok, pdf_text, pdf_text_sizes, topic
from pypdf import PdfReader

from brochure.base.errors import BrochureError
from brochure.base.paths import builtin_dir
from brochure.build.check import check_project
from brochure.build.run import BUILT, build_summary
from brochure.document import messages
from brochure.project.model import load_project
from brochure.project.topics import parse_topic, source_version

SPANISH = ("aftercare", "side-effects", "choosing-an-injector")


def test_the_sample_has_spanish_handouts_with_spanish_lang_labels_and_dates(sample_out):
    for slug in SPANISH:
        path = sample_out / f"{slug}.es.pdf"
        with pikepdf.open(path) as pdf:
            assert str(pdf.Root.Lang) == "es"
        (text,) = pdf_text(path)
        assert "Teléfono 555-0142" in text
        assert "Revisado en septiembre de 2026 por" in text
        assert re.search(r"Próxima revisión: \w+ de 2027\.", text)
        assert "Pida su cita" in text
        # The disclaimer is the catalogue's Spanish one, not the brand's English text.
        assert "Esta hoja solo da información general." in text
        assert "general information" not in text
    (text,) = pdf_text(sample_out / "aftercare.es.pdf")
    assert "AVISO: Cuándo llamarnos" in text
    (english,) = pdf_text(sample_out / "aftercare.pdf")
    assert "WARNING: When to call us" in english
    assert "Medically reviewed September 2026 by" in english


def test_the_sample_spanish_reads_easily_by_a_spanish_formula():
    textstat = pytest.importorskip("textstat")
    from brochure.document.markup import to_html

    textstat.set_lang("es")
    project = load_project(REPO)
    sources = {t.slug: t for t in project.topics}
    assert {t.slug for t in project.translations} >= set(SPANISH)
    for text in project.translations:
        html = to_html(text, project.root, sources)
        plain = re.sub(r"<[^>]+>", " ", html)
        # Fernández-Huerta: 70 and above is "fairly easy" (about US grade 7).
        assert textstat.fernandez_huerta(plain) >= 70, text.shown


def test_the_sample_translations_match_their_sources():
    project = load_project(REPO)
    sources = {t.slug: t for t in project.topics}
    for text in project.translations:
        assert text.source_version == source_version(sources[text.slug]), text.shown


def test_large_print_has_no_text_under_16pt_and_stays_within_its_budget(sample_out):
    large = sorted(sample_out.glob("*.large.pdf"))
    assert len(large) == 10
    for path in large:
        pages = len(PdfReader(path).pages)
        assert 1 <= pages <= 2, path.name
        sizes = [size for page in range(pages) for size, _ in pdf_text_sizes(path, page)]
        assert min(sizes) >= 16, (path.name, min(sizes))
    # The words are all there: the large-print handout is the whole topic.
    text = " ".join(pdf_text(sample_out / "aftercare.large.pdf"))
    assert "Go to an emergency room or call 911" in text
    assert "Page 1 of 2" in text


def test_large_print_that_cannot_fit_fails_rather_than_shrinking_below_16pt(make_project):
    long_body = "\n\n".join(f"## Part {i}\n\n" + "Rest and drink water today. " * 12 for i in range(14))
    root = make_project(
        {
            "content/topics/long.md": topic("Long", long_body, lang="en"),
            "content/documents.toml": '[[document]]\nname = "{topic}"\npages = 3\nlarge_print = true\n',
        }
    )
    outcomes = {o.name: o for o in build_summary(load_project(root), root / "out").outcomes}
    assert outcomes["long"].error is None
    error = str(outcomes["long.large"].error)
    assert "document 'long.large' does not fit on 2 pages, even with tight spacing and 16 pt text" in error


HYPHENATED = "Las recomendaciones extraordinariamente importantes necesitan comprobaciones." * 5


def test_spanish_text_is_hyphenated_by_spanish_rules(make_project):
    root = make_project(
        {
            "content/topics/largo.md": topic("Palabras", HYPHENATED + "\n", lang="es"),
            "content/topics/long.md": topic("Words", HYPHENATED + "\n", lang="en"),
            "styles/handout.css": '@import url("builtin:handout.css");\nmain { width: 1.9in; }\n',
        }
    )
    build_ok(root)
    dictionary = pyphen.Pyphen(lang="es")

    def broken(path: Path) -> list[tuple[str, str]]:
        lines = [ln.strip() for ln in PdfReader(path).pages[0].extract_text().split("\n")]
        return [
            (lines[i][:-1].split()[-1], lines[i + 1].split()[0].rstrip("."))
            for i in range(len(lines) - 1)
            if lines[i].endswith("-") and lines[i][-2].isalpha()
        ]

    splits = broken(root / "out/largo.pdf")
    assert splits
    for head, tail in splits:
        word = head + tail
        assert len(head) in dictionary.positions(word), (head, tail)
    # English keeps hyphenation off, as before.
    assert broken(root / "out/long.pdf") == []


def test_project_messages_override_the_builtin_labels(make_project):
    root = make_project(
        {
            "content/topics/care.md": topic("Care", "Rest.\n", lang="en", review_due="2027-05-01"),
            "content/topics/care.es.md": topic("Cuidados", "Descanse.\n", review_due="2027-05-01"),
            "content/messages/es.toml": 'review_due = "Revisar otra vez en {date}"\ndisclaimer = "Solo información."\n',
        }
    )
    build_ok(root)
    (text,) = pdf_text(root / "out/care.es.pdf")
    assert "Revisar otra vez en mayo de 2027." in text
    assert "Solo información." in text
    assert "Teléfono" in text  # what the project leaves out comes from the built-in catalogue
    (english,) = pdf_text(root / "out/care.pdf")
    assert "Next review due May 2027." in english


def test_a_bad_message_file_names_the_file_line_and_key(make_project):
    root = make_project(
        {
            "content/topics/care.md": topic("Care", "Rest.\n", lang="en"),
            "content/topics/care.es.md": topic("Cuidados", "Descanse.\n"),
            "content/messages/es.toml": 'phone = "Tel."\nreview_du = "x"\npage_of = "Pág. {page} de {total}"\n',
        }
    )
    (outcome,) = [o for o in build_summary(load_project(root), root / "out").outcomes if o.name == "care.es"]
    problems = [str(p) for p in outcome.error.problems]
    assert problems == [
        "content/messages/es.toml:2: unknown message 'review_du' (use one of: "
        f"{', '.join(sorted(messages.ENGLISH))})",
        "content/messages/es.toml:3: message 'page_of' uses {total}, which it cannot fill in "
        "(placeholders it may use: {page}, {pages})",
    ]


def test_a_translation_must_sit_beside_its_source_in_another_language(make_project):
    root = make_project({"content/topics/care.es.md": topic("Cuidados", "Descanse.\n")})
    with pytest.raises(BrochureError) as caught:
        load_project(root)
    assert str(caught.value.problems[0]) == (
        "content/topics/care.es.md: is a translation of care.md, which does not exist "
        "(name the file after the topic it translates, then its language: {topic}.es.md)"
    )
    root = make_project(
        {
            "content/topics/a.md": topic("A", lang="en"),
            "content/topics/a.es.md": topic("A", lang="fr"),
        },
        name="mismatch",
    )
    with pytest.raises(BrochureError) as caught:
        load_project(root)
    assert str(caught.value.problems[0]) == (
        "content/topics/a.es.md:3: says 'lang: fr', but its file name says it is in 'es' "
        "(set 'lang: es', or rename the file to a.fr.md)"
    )


def _translated_project(make_project) -> Path:
    source = topic("Care", "Rest today.\n", lang="en")
    root = make_project(
        {
            "content/topics/care.md": source,
            "content/topics/rest.md": topic("Rest", "Sleep well.\n", lang="en"),
            "content/documents.toml": 'languages = ["en", "es"]\n\n[[document]]\nname = "{topic}"\n',
        }
    )
    version = source_version(parse_topic(root / "content/topics/care.md", root)[0])
    (root / "content/topics/care.es.md").write_text(
        topic("Cuidados", "Descanse hoy.\n", source_version=f'"{version}"')
    )
    return root


def _translation_findings(root: Path) -> list[str]:
    report = check_project(root, render=False)
    return [str(f.problem) for f in report.findings if f.check == "translation"]


def test_check_warns_when_the_source_changed_and_names_missing_translations(make_project):
    root = _translated_project(make_project)
    rest = source_version(parse_topic(root / "content/topics/rest.md", root)[0])
    missing = (
        "content/topics/rest.md: has no translation into 'es', a language content/documents.toml declares "
        f"(translate it into content/topics/rest.es.md, with 'source_version: \"{rest}\"' in its front matter)"
    )
    assert _translation_findings(root) == [missing]
    care = root / "content/topics/care.md"
    care.write_text(care.read_text().replace("Rest today.", "Rest today and tomorrow."))
    now = source_version(parse_topic(care, root)[0])
    assert _translation_findings(root) == [
        "content/topics/care.es.md:3: is out of date: content/topics/care.md has changed since it was "
        f"translated (bring the translation up to date, then set 'source_version: \"{now}\"')",
        missing,
    ]


def test_translations_and_large_print_rebuild_only_what_changed(make_project):
    root = _translated_project(make_project)
    shutil.copytree(builtin_dir("styles"), root / "styles")
    documents = root / "content/documents.toml"
    documents.write_text(documents.read_text() + "large_print = true\n")

    def rebuilt() -> set[str]:
        summary = build_summary(load_project(root), root / "out")
        failed = {o.name: str(o.error) for o in summary.outcomes if o.error}
        assert not failed, failed
        return {o.name for o in summary.outcomes if o.status == BUILT}

    every = {"care", "care.large", "care.es", "care.es.large", "rest", "rest.large"}
    assert rebuilt() == every
    assert (root / "out/care.es.large.pdf").is_file()
    assert rebuilt() == set()
    spanish = root / "content/topics/care.es.md"
    spanish.write_text(spanish.read_text() + "\nBeba agua.\n")
    assert rebuilt() == {"care.es", "care.es.large"}
    (root / "styles/large.css").write_text((root / "styles/large.css").read_text() + "\n")
    assert rebuilt() == {"care.large", "care.es.large", "rest.large"}
    (root / "content/messages").mkdir()
    (root / "content/messages/es.toml").write_text('phone = "Tel."\n')
    assert rebuilt() == {"care.es", "care.es.large"}
    assert "Tel. 555-0100" in pdf_text(root / "out/care.es.pdf")[0]
    care = root / "content/topics/care.md"
    care.write_text(care.read_text() + "\nDrink water.\n")
    assert rebuilt() == {"care", "care.large"}


def test_a_brochure_declared_in_spanish_has_spanish_topics_labels_and_lang(make_project):
    root = make_project(
        {
            "content/topics/care.md": topic("Care", "Rest today.\n", lang="en", order=1),
            "content/topics/care.es.md": topic("Cuidados", "Descanse hoy.\n", order=1),
            "content/topics/rest.md": topic("Rest", "Sleep well.\n", lang="en", order=2),
            "content/documents.toml": (
                '[[document]]\nname = "brochure"\nkind = "brochure"\ntitle = "Guide"\nlanguages = ["en", "es"]\n'
            ),
        }
    )
    assert set(build_ok(root)) == {"brochure", "brochure.es"}
    path = root / "out/brochure.es.pdf"
    with pikepdf.open(path) as pdf:
        assert str(pdf.Root.Lang) == "es"
    pages = pdf_text(path)
    text = " ".join(pages)
    assert "En esta guía" in text
    assert f"Página 2 de {len(pages)}" in pages[1]
    assert "Página" not in pages[-1]  # the back page has no number
    assert "Cuidados" in text
    assert "Contáctenos" in pages[-1]
    # A topic not yet translated is left out, not printed in English.
    assert "Sleep well" not in text
    english = " ".join(pdf_text(root / "out/brochure.pdf"))
    assert "In this guide" in english
    assert "Sleep well" in english


def test_check_rates_spanish_topics_by_a_spanish_formula(make_project):
    hard = (
        "La administración intramuscular de neurotoxinas botulínicas requiere consideraciones "
        "farmacológicas extraordinariamente específicas y documentación administrativa complementaria.\n"
    )
    root = make_project(
        {
            "content/topics/a.md": topic("A", "Rest today.\n", lang="en", review_due="2099-01-01"),
            "content/topics/a.es.md": topic("A", hard, review_due="2099-01-01"),
        }
    )
    report = check_project(root, render=False)
    (finding,) = [str(f.problem) for f in report.findings if f.check == "reading"]
    assert finding.startswith("content/topics/a.es.md: reads at Fernández-Huerta ease ")
    assert "below the target of 70; hardest sentences: line 6:" in finding
    easy = "Descanse hoy. No se toque la cara. Beba agua.\n"
    (root / "content/topics/a.es.md").write_text(topic("A", easy, review_due="2099-01-01"))
    report = check_project(root, render=False)
    assert [f for f in report.findings if f.check == "reading"] == []


def test_a_translation_links_to_the_headings_of_the_other_translations(make_project):
    root = make_project(
        {
            "content/topics/care.md": topic(
                "Care", "See [calling](call.md#when-to-call).\n", lang="en", order=1
            ),
            "content/topics/care.es.md": topic(
                "Cuidados", "Vea [cuándo llamar](call.md#cuando-llamar).\n", order=1
            ),
            "content/topics/call.md": topic("Call", "## When to call\n\nCall us.\n", lang="en", order=2),
            "content/topics/call.es.md": topic("Llamar", "## Cuando llamar\n\nLlámenos.\n", order=2),
            "content/documents.toml": '[[document]]\nname = "brochure"\nkind = "brochure"\nlanguages = ["en", "es"]\n',
        }
    )
    build_ok(root)
    assert [f for f in check_project(root, render=False).findings if f.check == "links"] == []
    with pikepdf.open(root / "out/brochure.es.pdf") as pdf:
        links = [a for page in pdf.pages for a in page.get("/Annots", []) if a.get("/Subtype") == "/Link"]
    # The Spanish topic's link jumps to the Spanish heading.
    assert "topic-call--cuando-llamar" in {str(a.get("/Dest")) for a in links}
