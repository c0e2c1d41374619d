"""Copies from a stencil: a handout parsed, styled and boxed once, each copy only its patient's words.

The stencil is brochure.engine.private's, through WeasyPrint's internals.
Every test compares a copy made from the stencil with the same copy made by
WeasyPrint's public API alone (``HTML(...).render()`` and ``write_pdf``,
with the private module switched off): the PDF bytes must be the same.
WeasyPrint writes the same bytes for the same input (the dates come from
the HTML), so any difference in layout, text, fonts or tags shows.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import os
import types
from contextlib import contextmanager

import pytest
from conftest import REPO, copy_sample
from pypdf import PdfReader

from brochure.base import caches
from brochure.base.errors import RenderError
from brochure.deliver import check_patient
from brochure.deliver.packet import template_context
from brochure.document import personalised as personalised_module
from brochure.document.personalised import render_packet
from brochure.engine import pdf, private
from brochure.project.model import documents, load_project

TODAY = dt.date(2026, 11, 21)
PATIENTS = [
    {"name": "Ana Lima", "injector": "Dana Smith", "treatment": "Botox", "note": "20 units, forehead"},
    # Long enough to wrap in the box, which moves everything below it.
    {
        "name": "Maria Fernanda Maximiliana Gonzalez de la Cruz Rodriguez",
        "injector": "Priya Raman",
        "treatment": "Botox and Dysport, forehead, frown lines and crow's feet",
        "note": "20 units forehead, 12 units each side for the crow's feet; come back if uneven",
        "treated_on": "2026-10-02",
    },
    {"name": "<b>Jo</b> & Co", "injector": "Dana Smith", "note": "a &amp; b"},  # printed as typed
    {"name": "Zoë O'Brien", "injector": "Priya Raman"},  # no note, no treatment
    {"name": "Al", "injector": "Dana Smith", "treatment": "Filler", "note": "x"},
]


@contextmanager
def public_only():
    """WeasyPrint's internals switched off, as on a WeasyPrint this module was not written for."""
    saved = os.environ.get(private.SWITCH)
    os.environ[private.SWITCH] = "off"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[private.SWITCH]
        else:
            os.environ[private.SWITCH] = saved


def whole(project, names, context):
    """The copy made through WeasyPrint's public API alone: the oracle."""
    stencils = dict(personalised_module._stencils)
    with public_only():
        made = render_packet(project, names, context, "letter")
    assert dict(personalised_module._stencils) == stencils  # no stencil used or made
    return made


def text_of(data: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def prepares(monkeypatch):
    """How many times a document was parsed, styled and boxed: for a stencil, or laid out whole."""
    if not private.enabled():
        pytest.skip(f"the stencil needs WeasyPrint's internals ({private.SWITCH} is off)")
    calls = []

    def counted(real):
        def count(*args, **kwargs):
            calls.append(kwargs.get("document"))
            return real(*args, **kwargs)

        return count

    monkeypatch.setattr(private, "_prepare", counted(private._prepare))
    monkeypatch.setattr(pdf, "lay_out", counted(pdf.lay_out))
    caches.clear()  # a cold process: no stencil, no fitted size, no parsed stylesheet
    assert not personalised_module._stencils
    return calls


@pytest.mark.parametrize(
    "names", [["aftercare"], ["aftercare.es"], ["what-is-botox", "side-effects", "aftercare"]]
)
def test_copies_from_the_stencil_are_the_copies_laid_out_whole(names, prepares):
    project = load_project(REPO)
    contexts = [template_context(project, names, check_patient(project, f, today=TODAY)) for f in PATIENTS]
    for context in contexts:
        render_packet(project, names, context, "letter")  # stencils for each shape of the details
    prepares.clear()
    for context in contexts + contexts[::-1]:
        made, pages = render_packet(project, names, context, "letter")
        if context is not contexts[1]:  # the long details need a smaller size on a full handout
            assert prepares == []  # from the stencil: nothing parsed or styled again
        assert (made, pages) == whole(project, names, context)
        prepares.clear()
        text = text_of(made)
        assert "slot" not in text
        assert " ".join(context["name"].split()[:2]) in text


def everything_in(root: object) -> list[str]:
    """Every string reachable from ``root``, not through modules, classes or functions."""
    skip = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    seen, found, stack = set(), [], [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        if isinstance(item, str):
            found.append(item)
        elif not isinstance(item, (bytes, int, float)):
            stack.extend(gc.get_referents(item))
    return found


def test_a_stencil_keeps_no_patient_detail(prepares):
    project = load_project(REPO)
    for fields in PATIENTS:
        context = template_context(project, ["aftercare"], check_patient(project, fields))
        render_packet(project, ["aftercare"], context, "letter")
    assert personalised_module._stencils
    kept = "\n".join(everything_in(personalised_module._stencils))
    assert "slotxqz" in kept  # the stand-ins are there
    assert "What Botox does" in kept or "Aftercare" in kept or "aftercare" in kept  # and the handout
    for fields in PATIENTS:
        for value in (fields["name"], fields.get("note", "")):
            if len(value) > 3:
                assert value not in kept


# The details shown somewhere a stand-in cannot be filled in, or a stylesheet that changes the
# boxes as it lays them out: each copy is laid out whole. (box template, project stylesheet rules)
THE_BOX = '{% include "_treatment.html" %}'
OTHER_BOXES = {
    "upper-cased by a filter": ("<p>{{ patient.name }}</p><p>{{ patient.name|upper }}</p>", ""),
    "in a link's address": (
        '<p><a href="https://example.com/{{ patient.first_name }}">{{ patient.name }}</a></p>',
        "",
    ),
    "in an address a stylesheet prints": (
        '<p>{{ patient.name }}</p><p><a href="https://example.com/{{ patient.first_name }}">{{ patient.first_name }}</a></p>',
        'a::after { content: " (" attr(href) ")" }',
    ),
    "lower-cased by CSS": ('<p style="text-transform: lowercase">{{ patient.name }}</p>', ""),
    "in a heading, so a bookmark": ("<h2>For {{ patient.name }}</h2><p>{{ patient.note }}</p>", ""),
    "the year of a date": ("<p>{{ patient.name }}, treated in {{ patient.treated_on_day.year }}</p>", ""),
    "a ::first-letter in the box": (THE_BOX, ".your-treatment dd::first-letter { font-weight: bold }"),
    "a ::first-letter elsewhere": (THE_BOX, "main > p::first-letter { font-weight: bold }"),
}


def clinic_with(tmp_path, box: str, css: str = ""):
    clinic = copy_sample(tmp_path / "clinic")
    (clinic / "templates").mkdir()
    (clinic / "templates/handout.html").write_text(
        '{% extends "builtin/handout.html" %}{% block treatment %}{% if patient is defined and patient %}'
        + box
        + "{% endif %}{% endblock %}"
    )
    if css:
        (clinic / "styles").mkdir()
        (clinic / "styles/handout.css").write_text('@import url("builtin:handout.css");\n' + css + "\n")
    return load_project(clinic)


@pytest.mark.parametrize(("box", "css"), OTHER_BOXES.values(), ids=OTHER_BOXES.keys())
def test_a_box_that_uses_the_details_otherwise_gets_copies_laid_out_whole(box, css, tmp_path, prepares):
    project = clinic_with(tmp_path, box, css)
    for number, fields in enumerate([PATIENTS[0], PATIENTS[4]] * 2):
        context = template_context(project, ["aftercare"], check_patient(project, fields))
        prepares.clear()
        made = render_packet(project, ["aftercare"], context, "letter")
        if number:  # the first also fits the blank copy and makes the stencil
            assert prepares == ["aftercare"]  # laid out whole, once
        assert made == whole(project, ["aftercare"], context)
        assert "slot" not in text_of(made[0]).lower()
        outline = [
            item.title for item in PdfReader(io.BytesIO(made[0])).outline if not isinstance(item, list)
        ]
        assert not any("slot" in title.lower() for title in outline)
        if "heading" in box:
            assert f"For {fields['name']}" in outline


def test_details_with_an_ampersand_side_by_side_are_told_apart(tmp_path, prepares):
    # Between two details the text is "Botox &amp; filler; 20 units": the first ends after the entity.
    project = clinic_with(
        tmp_path, "<p>{{ patient.name }}</p><p>{{ patient.treatment }}; {{ patient.note }}</p>"
    )
    for treatment in ("Botox", "Botox & filler", "Botox &amp; filler"):
        fields = {**PATIENTS[0], "treatment": treatment, "note": "20 units"}
        context = template_context(project, ["aftercare"], check_patient(project, fields))
        made = render_packet(project, ["aftercare"], context, "letter")
        assert made == whole(project, ["aftercare"], context)
        assert f"{treatment}; 20 units" in text_of(made[0])
    prepares.clear()
    render_packet(project, ["aftercare"], context, "letter")
    assert prepares == []  # from the stencil


def test_a_copy_whose_stencil_fails_is_laid_out_whole(monkeypatch, prepares):
    from weasyprint import layout as weasyprint_layout

    project = load_project(REPO)
    contexts = [
        template_context(project, ["aftercare"], check_patient(project, fields)) for fields in PATIENTS[::4]
    ]
    render_packet(project, ["aftercare"], contexts[0], "letter")
    assert len(personalised_module._stencils) == 1
    real = weasyprint_layout.layout_document
    failures = [RecursionError()]  # what a layout too deep for Python raises, once

    def fails_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(weasyprint_layout, "layout_document", fails_once)
    made = render_packet(project, ["aftercare"], contexts[1], "letter")
    assert not personalised_module._stencils  # dropped: WeasyPrint may have left it half changed
    monkeypatch.setattr(weasyprint_layout, "layout_document", real)
    assert made == whole(project, ["aftercare"], contexts[1])
    prepares.clear()
    assert render_packet(project, ["aftercare"], contexts[0], "letter") == whole(
        project, ["aftercare"], contexts[0]
    )
    assert len(personalised_module._stencils) == 1  # made again

    # A stencil that cannot be made (out of time, say) is not kept, and the copy is laid out whole.
    personalised_module._stencils.clear()

    def slow_stencil(*args, **kwargs):
        raise RenderError.at("aftercare", None, "laying out took longer than 60 seconds", "shorten it")

    monkeypatch.setattr(private, "_prepare", slow_stencil)
    assert render_packet(project, ["aftercare"], contexts[1], "letter") == whole(
        project, ["aftercare"], contexts[1]
    )
    assert not personalised_module._stencils


def test_a_stencil_is_made_again_after_another_project_had_the_fonts(tmp_path, prepares):
    # A worker starts a new font configuration for each project (pdf._use_fonts).
    sample = load_project(REPO)
    clinic = load_project(copy_sample(tmp_path / "clinic"))
    patient = check_patient(sample, PATIENTS[0])
    first = render_packet(sample, ["aftercare"], template_context(sample, ["aftercare"], patient), "letter")
    render_packet(clinic, ["aftercare"], template_context(clinic, ["aftercare"], patient), "letter")
    prepares.clear()
    again = render_packet(sample, ["aftercare"], template_context(sample, ["aftercare"], patient), "letter")
    assert prepares == ["aftercare"]
    assert again == first


def test_only_the_last_few_stencils_are_kept(prepares, monkeypatch):
    project = load_project(REPO)
    kept = 3
    monkeypatch.setattr(personalised_module, "STENCILS_KEPT", kept)
    handouts = [d.name for d in documents(project) if d.spec.kind == "handout"][: kept + 2]
    patient = check_patient(project, PATIENTS[0])
    for name in handouts:
        render_packet(project, [name], template_context(project, [name], patient), "letter")
    assert len(handouts) == kept + 2
    assert [s.prepared.document for s in personalised_module._stencils.values()] == handouts[-kept:]


def test_without_the_internals_copies_are_laid_out_whole_and_the_same(monkeypatch):
    """The private module off, on a WeasyPrint it was not written for, or with an internal gone."""
    project = load_project(REPO)
    contexts = [template_context(project, ["aftercare"], check_patient(project, f)) for f in PATIENTS[:2]]
    personalised_module._stencils.clear()
    expected = [render_packet(project, ["aftercare"], c, "letter") for c in contexts * 2]
    if not private.enabled():
        pytest.skip(f"{private.SWITCH} is off: there is nothing to compare with")
    assert personalised_module._stencils  # made with the internals

    # A WeasyPrint whose major is not among those this module was written for.
    personalised_module._stencils.clear()
    monkeypatch.setattr(private, "SUPPORTED", ())
    private._version_supported.cache_clear()
    try:
        assert [render_packet(project, ["aftercare"], c, "letter") for c in contexts * 2] == expected
        assert all(s.prepared is None for s in personalised_module._stencils.values())
    finally:
        monkeypatch.undo()
        private._version_supported.cache_clear()

    # An internal that moved: AttributeError while a stencil is made, then while one is laid out.
    from weasyprint import layout as weasyprint_layout
    from weasyprint.formatting_structure import build as weasyprint_build

    personalised_module._stencils.clear()
    monkeypatch.delattr(weasyprint_build, "build_formatting_structure")
    assert [render_packet(project, ["aftercare"], c, "letter") for c in contexts] == expected[:2]
    monkeypatch.undo()
    personalised_module._stencils.clear()
    render_packet(project, ["aftercare"], contexts[0], "letter")  # a stencil made
    assert any(s.prepared is not None for s in personalised_module._stencils.values())

    def moved(*args, **kwargs):
        raise TypeError("layout_document() takes 2 positional arguments but 3 were given")

    monkeypatch.setattr(weasyprint_layout, "layout_document", moved)
    assert render_packet(project, ["aftercare"], contexts[1], "letter") == expected[1]
    assert not any(s.prepared is not None for s in personalised_module._stencils.values())


def test_the_switch_turns_the_internals_off(monkeypatch):
    monkeypatch.setenv(private.SWITCH, "off")
    assert not private.enabled()
    assert private.prepare("<p>x</p>", base_url="file:///", roots=[], document="x") is None
    monkeypatch.delenv(private.SWITCH)
    assert private.enabled() == private._version_supported()


def test_a_stencil_copy_is_what_bare_weasyprint_makes_of_the_same_html(prepares):
    """The oracle from outside brochure: WeasyPrint's public API alone, given the copy's HTML as
    `brochure html` writes it (its stylesheets linked), with a fetcher that reads the project."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    from brochure.document.compose import document_html
    from brochure.document.templates import process_environment

    project = load_project(REPO)
    context = template_context(project, ["aftercare"], check_patient(project, PATIENTS[0], today=TODAY))
    render_packet(project, ["aftercare"], context, "letter")  # the stencil
    prepares.clear()
    made, _pages = render_packet(project, ["aftercare"], context, "letter")
    assert prepares == []  # from the stencil
    fitted = [css for css, *_rest in personalised_module._fitted.values()]
    assert fitted == [""]  # the sample's aftercare fits as it is: no auto-fit styles to add
    (doc,) = [d for d in documents(project) if d.name == "aftercare"]
    env = process_environment(project.root)
    html = document_html(project, doc, "letter", env, extra={"patient": context})
    bare = HTML(string=html, base_url=(REPO / "content").as_uri() + "/", url_fetcher=URLFetcher()).render(
        pdf_variant="pdf/ua-1"
    )
    expected = bare.write_pdf(pdf_variant="pdf/ua-1")
    assert made == expected  # byte for byte: layout, text, fonts, tags
    assert " ".join(context["name"].split()) in text_of(made)
