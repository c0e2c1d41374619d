"""The desk's personalise form through Flask's test client, delivering to the private CUPS and SMTP servers."""

from __future__ import annotations

import base64
import io
import logging
import re
from pathlib import Path

import pikepdf
import pytest
from conftest import build_ok, copy_sample
from pypdf import PdfReader
from test_web import HOST, links, settled

from brochure.web.app import create_app

NAME = "José Ñúñez"
FIELDS = {
    "name": NAME,
    "treated_on": "2026-11-20",
    "injector": "Dana Smith",
    "treatment": "Botox",
    "note": "20 units, forehead",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_sample(tmp_path_factory.mktemp("desk-deliver") / "clinic")
    build_ok(root)
    return root


@pytest.fixture
def desk(sample, smtp_settings_file, cups_env):
    """A desk whose settings name the private mail server, with the record in tmp_path; printing to CUPS."""
    cups_env.add_queue("frontdesk")
    return create_app(sample, watch=False, live=settled(sample)).test_client()


def token(client, packet: tuple[str, ...] = ("aftercare",)) -> str:
    html = client.get("/personalise", query_string={"d": list(packet)}, headers=HOST).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def send(client, action: str, packet: tuple[str, ...] = ("aftercare",), **extra: str):
    data = {"csrf_token": token(client, packet), "d": list(packet), **FIELDS, "action": action, **extra}
    return client.post("/personalise", data=data, headers=HOST)


def text_of(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="error" id="f-([a-z_]+)-error">([^<]+)</p>', html))


def test_the_form_offers_the_staff_and_today_and_shows_the_follow_up_date(desk):
    html = desk.get("/personalise", query_string={"d": ["aftercare", "results"]}, headers=HOST).get_data(
        as_text=True
    )
    assert '<p class="packet-item">Aftercare: what to expect and what to do</p>' in html
    # The injectors are choices, one click each; the treatments are suggestions, never text put in a box.
    assert re.findall(r'<input type="radio" name="injector" value="([^"]*)"', html) == [
        "Dana Smith",
        "Priya Raman",
        "Luis Ortega",
    ]
    assert "Dana Smith, RN" in html
    assert re.search(r'id="f-treated_on" name="treated_on" type="date" value="\d{4}-\d\d-\d\d"', html)
    assert re.search(r'id="f-treatment" name="treatment" type="text" value=""[^>]* list="treatments"', html)
    assert '<datalist id="treatments"><option value="Botox"></datalist>' in html
    for name in ("name", "note"):
        assert re.search(f'id="f-{name}" name="{name}" type="text" value=""', html)
    assert 'Follow-up: <strong id="follow-up-day">' in html
    for name in ("name", "treated_on", "treatment", "note"):
        assert f'<label for="f-{name}">' in html
    assert "<legend>Injector</legend>" in html
    assert 'autocomplete="off"' in html


def test_preview_shows_the_personalised_pages_from_memory(desk, sample):
    before = {p for p in sample.rglob("*") if p.is_file()}
    response = send(desk, "preview", ("aftercare", "results"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2  # one picture a page, inline, never a file
    assert base64.b64decode(images[0]).startswith(b"\x89PNG")
    text = re.search(r'<details class="page-text">(.*?)</details>', html, re.S).group(1)
    assert "Name José Ñúñez" in text
    assert "Injector Dana Smith, RN" in text
    assert "Follow-up Friday, December 4, 2026" in text  # the weekday written out
    assert {p for p in sample.rglob("*") if p.is_file()} == before  # nothing written in the project


def test_bad_fields_get_messages_next_to_them_that_do_not_repeat_the_value(desk):
    response = send(desk, "preview", name="Ana \u202ePérez", treated_on="2026-02-30", injector="Nobody")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    errors = field_errors(html)
    assert set(errors) == {"name", "treated_on", "injector"}
    assert errors["injector"] == "Injector is not on the clinic&#39;s staff list."
    assert 'aria-invalid="true"' in html
    assert "Pérez" not in "".join(errors.values())
    assert "data:image/png" not in html  # no preview of a packet that failed its checks


def test_html_in_a_name_is_shown_literally(desk):
    html = send(desk, "preview", name="<b>Ana</b>").get_data(as_text=True)
    assert "<b>Ana</b>" not in html
    assert 'value="&lt;b&gt;Ana&lt;/b&gt;"' in html
    assert "Name &lt;b&gt;Ana&lt;/b&gt;" in html  # the preview's text: the PDF shows the tags as typed


def test_print_sends_one_job_to_cups_then_clears_the_form_and_records_it(desk, cups_env, caplog):
    with caplog.at_level(logging.DEBUG):
        response = send(desk, "print", ("aftercare", "results"), printer="frontdesk", copies="1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, field_errors(html)
    said = re.search(
        r'<div id="outcome" class="outcome good"[^>]*role="status">\s*<p class="outcome-text">([^<]+)', html
    )
    assert said.group(1) == "Printed 1 copy of 2 handouts on frontdesk for José Ñúñez."
    job = cups_env.queues["frontdesk"].wait_job()
    assert NAME in text_of(job.pdf)
    assert len(PdfReader(io.BytesIO(job.pdf)).pages) == 2
    assert "Ñúñez" not in job.header
    # The form is empty for the next patient: the name is in the outcome only, and in no URL or log.
    assert html.count("Ñúñez") == 1
    assert 'id="f-name" name="name" type="text" value=""' in html
    assert "Ñúñez" not in caplog.text
    # Today's page lists it, with a reprint that prints it again.
    today = desk.get("/today", headers=HOST)
    assert today.headers["Cache-Control"] == "no-store"
    page = today.get_data(as_text=True)
    assert NAME in page
    assert "Printed on frontdesk" in page
    delivery = re.search(r'name="id" value="(\d+)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    # Print again asks first, naming the printer; nothing prints until the answer is yes.
    asked = desk.post("/reprint", data={"csrf_token": csrf, "id": delivery}, headers=HOST).get_data(
        as_text=True
    )
    assert "Print Aftercare: what to expect and what to do; Your results" in asked
    assert "again on frontdesk for José Ñúñez, as they are now?" in asked
    assert '<dialog class="ask" open data-modal' in asked
    again = desk.post("/reprint", data={"csrf_token": csrf, "id": delivery, "confirm": "yes"}, headers=HOST)
    assert "Printed 2 handouts again on frontdesk for José Ñúñez." in again.get_data(as_text=True)
    assert NAME in text_of(cups_env.queues["frontdesk"].wait_job().pdf)
    assert again.get_data(as_text=True).count("Printed on frontdesk") == 2
    # Both are lines of the audit trail, the second a reprint, from this desk, naming no patient.
    from brochure.deliver import audit
    from brochure.deliver.settings import load_settings

    trail = audit.entries(load_settings())
    assert [(e.event, e.desk, e.detail) for e in trail] == [
        ("print", "127.0.0.1", "frontdesk"),
        ("reprint", "127.0.0.1", "frontdesk"),
    ]
    assert trail[1].record == trail[0].record + 1
    assert "Ñúñez" not in audit.trail_file(load_settings()).read_text()


def test_the_same_handouts_to_the_same_patient_again_asks_first(desk, cups_env):
    queue = cups_env.queues["frontdesk"]
    assert send(desk, "print", ("side-effects",), printer="frontdesk").status_code == 200
    queue.wait_job()
    html = send(desk, "print", ("side-effects",), printer="frontdesk").get_data(as_text=True)
    assert re.search(r"These handouts were printed for José Ñúñez at \d\d:\d\d. Print them again\?", html)
    assert 'role="alert"' not in html.split('<dialog id="again"')[0]  # no outcome: nothing happened yet
    assert "Printed " not in html
    html = send(desk, "print", ("side-effects",), printer="frontdesk", again="yes").get_data(as_text=True)
    assert "Printed 1 copy of Side effects on frontdesk for José Ñúñez." in html
    queue.wait_job()
    # The question is per method: the same handouts by download, just after, are not a repeat of a print.
    assert send(desk, "download", ("side-effects",)).mimetype == "application/pdf"


def test_email_needs_the_address_twice_and_consent_or_encryption(desk, smtp_server):
    smtp_server.reset()
    html = send(desk, "email", to="ana@example.com", to_again="ana@example.org").get_data(as_text=True)
    assert field_errors(html)["to_again"] == "The two addresses differ. Type the same address in both boxes."
    html = send(desk, "email", to="ana@example.com", to_again="ana@example.com").get_data(as_text=True)
    assert "Tick that the patient agreed to unencrypted email, or choose Encrypt." in html
    assert smtp_server.messages == []


def test_email_with_consent_arrives_with_the_pdf_and_no_name_in_the_subject(desk, smtp_server):
    smtp_server.reset()
    response = send(desk, "email", to="ana@example.com", to_again="ana@example.com", consent="yes")
    html = response.get_data(as_text=True)
    assert "Emailed Aftercare: what to expect and what to do to ana@example.com for José Ñúñez." in html
    (message,) = smtp_server.messages
    assert "Ñúñez" not in message["Subject"]
    (part,) = [p for p in message.iter_attachments()]
    assert NAME in text_of(part.get_content())


def test_encrypted_email_shows_its_passphrase_once(desk, smtp_server):
    smtp_server.reset()
    response = send(desk, "email", to="ana@example.com", to_again="ana@example.com", encrypt="yes")
    html = response.get_data(as_text=True)
    passphrase = re.search(r'<strong class="passphrase" id="passphrase">([^<]+)</strong>', html).group(1)
    assert response.headers["Cache-Control"] == "no-store"
    (message,) = smtp_server.messages
    (part,) = [p for p in message.iter_attachments()]
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(part.get_content()))
    with pikepdf.open(io.BytesIO(part.get_content()), password=passphrase) as pdf:
        assert pdf.is_encrypted
    # Shown once: the page after holds no passphrase.
    assert passphrase not in desk.get("/today", headers=HOST).get_data(as_text=True)


def test_download_gives_the_pdf_under_a_name_with_no_patient_in_it_and_records_it(desk):
    response = send(desk, "download")
    assert response.headers["Content-Disposition"] == 'attachment; filename="handouts.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    assert NAME in text_of(response.data)
    # What was given is in the record like a print: today's page lists it.
    page = desk.get("/today", headers=HOST).get_data(as_text=True)
    assert NAME in page
    assert "Downloaded" in page


def test_patient_details_are_in_no_url_the_desk_emits(desk, cups_env):
    responses = [send(desk, action, printer="frontdesk") for action in ("preview", "print")]
    cups_env.queues["frontdesk"].wait_job()
    # The education form, opened from Today and saved with a signature, and Today with it.
    page = desk.get("/today", headers=HOST).get_data(as_text=True)
    delivery = re.search(r'name="id" value="(\d+)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    asked = {"csrf_token": csrf, "id": delivery}
    responses.append(desk.post("/education", data=asked, headers=HOST))
    saved = {**asked, "save": "yes", "ticked": "yes", "strokes": "[[[1, 2], [3, 4]]]"}
    responses.append(desk.post("/education", data=saved, headers=HOST))
    for response in responses:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        for url in links(html):
            assert "Ñúñez" not in url
            assert "%C3%91" not in url.upper()  # Ñ, percent-encoded
            if url.startswith("data:image/svg+xml;base64,"):
                assert "Ñ" not in base64.b64decode(url.split(",", 1)[1]).decode()
        assert "Location" not in response.headers


# -- education documented --------------------------------------------------------


def _printed_and_today(desk, cups_env) -> tuple[str, str, str]:
    """Print for the patient; the page after the print, the delivery's row and a CSRF token."""
    html = send(desk, "print", ("results",), printer="frontdesk", again="yes").get_data(as_text=True)
    cups_env.queues["frontdesk"].wait_job()
    form = re.search(
        r'<form method="post" action="/education" class="education".*?</form>', html, re.S
    ).group(0)
    delivery = re.search(r'name="id" value="(\d+)"', form).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    return html, delivery, csrf


def test_education_is_offered_after_a_print_saved_shown_in_today_and_on_the_trail(desk, cups_env):
    from brochure.deliver import audit
    from brochure.deliver.settings import load_settings

    html, delivery, csrf = _printed_and_today(desk, cups_env)
    form = html.split('class="education"')[1].split("</form>")[0]
    # One click each: the project's languages by name, the methods (printed already ticked: it was), teach-back.
    assert re.findall(r'name="language" value="([^"]+)"', form) == ["en"]  # this sample's one language
    assert '<span lang="en">English</span>' in form
    assert re.search(r'name="method" value="printed" checked', form)
    assert re.findall(r'name="teach_back" value="([^"]+)"', form) == [
        "voiced",
        "demonstrated",
        "needs-review",
        "declined",
    ]
    assert 'name="ticked"' in form
    assert "<canvas" in form
    assert "Ñúñez" not in form
    strokes = "[[[10, 20], [30, 40.5], [50, 60]], [[100, 100], [120, 110]]]"
    data = {
        "csrf_token": csrf,
        "id": delivery,
        "save": "yes",
        "language": "en",
        "method": ["printed", "in-person"],
        "teach_back": "demonstrated",
        "strokes": strokes,
    }
    saved = desk.post("/education", data=data, headers=HOST)
    page = saved.get_data(as_text=True)
    assert saved.status_code == 200, page
    assert re.search(r"Education saved for José Ñúñez, given at \d\d:\d\d\.", page)
    assert "English; printed, explained in person; demonstrated; signed" in page
    svg = base64.b64decode(
        re.search(r'<img class="signature" src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)
    )
    assert b'<path d="M10 20 L30 40.5 L50 60"/><path d="M100 100 L120 110"/></svg>' in svg
    (line,) = [e for e in audit.entries(load_settings()) if e.event == "education"]
    assert (line.record, line.desk) == (int(delivery), "127.0.0.1")
    assert line.detail == "method printed+in-person; teach-back demonstrated; signed"
    assert "Ñúñez" not in audit.trail_file(load_settings()).read_text()
    # Changed later from Today: the row's button opens the form with what was kept; saved again
    # without signing anew, the signature stays.
    opened = desk.post("/education", data={"csrf_token": csrf, "id": delivery}, headers=HOST)
    dialog = opened.get_data(as_text=True).split('<dialog class="ask educate"')[1]
    assert re.search(r'name="teach_back" value="demonstrated" checked', dialog)
    assert 'name="keep_signature" value="yes"' in dialog
    again = {**data, "teach_back": "needs-review", "strokes": "", "keep_signature": "yes"}
    page = desk.post("/education", data=again, headers=HOST).get_data(as_text=True)
    assert "English; printed, explained in person; needs review; signed" in page
    assert len([e for e in audit.entries(load_settings()) if e.event == "education"]) == 2


@pytest.mark.parametrize(
    ("strokes", "said"),
    [
        ("[]", "The signature is empty"),
        ("[[[10, 20], [900, 20]]]", "The signature goes outside the pad"),
        ('<svg onload="alert(1)"/>', "The signature did not arrive whole"),
    ],
)
def test_a_bad_signature_is_refused_in_plain_words_and_nothing_is_kept(desk, cups_env, strokes, said):
    _html, delivery, csrf = _printed_and_today(desk, cups_env)
    data = {"csrf_token": csrf, "id": delivery, "save": "yes", "teach_back": "voiced", "strokes": strokes}
    response = desk.post("/education", data=data, headers=HOST)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    problem = re.search(r'<p class="error" role="alert" id="education-problem">([^<]+)</p>', page).group(1)
    assert problem.startswith(said)
    assert "Traceback" not in page
    assert "voiced understanding" not in page  # nothing documented
    assert "alert(1)" not in page


def test_education_for_a_delivery_not_in_today_is_refused(desk):
    csrf = token(desk)
    response = desk.post(
        "/education", data={"csrf_token": csrf, "id": "999", "save": "yes", "ticked": "yes"}, headers=HOST
    )
    assert response.status_code == 404
