"""Sessions on the clinic server, with the server's clock in the test's hand: a session idle past the
limit is signed out, whether its browser asks again or is long gone (the sweep)."""

from __future__ import annotations

import re

import pytest
from conftest import copy_sample

from brochure.deliver import accounts, audit

HTTPS = "https://localhost"


@pytest.fixture
def clinic(tmp_path, settings):  # noqa: ANN001, ANN201
    from brochure.web.app import Clinic, create_app

    accounts.add(settings, "Dana Smith", "front-desk", "dana-pass")
    app = create_app(copy_sample(tmp_path / "clinic"), watch=False, clinic=Clinic(("localhost",)))
    now = [1_000_000.0]
    app.extensions["sessions"].clock = lambda: now[0]
    app.extensions["sessions"].idle = 10 * 60
    return app, now


def signed_in(app, client=None, password="dana-pass", name="dana smith"):  # noqa: ANN001, ANN201
    client = client or app.test_client()
    page = client.get("/signin", base_url=HTTPS).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "name": name, "password": password}
    response = client.post("/signin", data=form, base_url=HTTPS)
    assert (response.status_code, response.location) == (303, "/")
    return client


def test_a_session_idle_past_the_limit_is_signed_out_at_its_next_request(clinic, settings):
    app, now = clinic
    client = signed_in(app)
    now[0] += 9 * 60 + 50  # a click just in time keeps it ...
    assert client.get("/today", base_url=HTTPS).status_code == 200
    now[0] += 9 * 60 + 50  # ... counted from that click
    assert client.get("/", base_url=HTTPS).status_code == 200
    now[0] += 10 * 60
    response = client.get("/today", base_url=HTTPS)
    assert (response.status_code, response.location) == (303, "/signin")
    page = client.get("/signin", base_url=HTTPS).get_data(as_text=True)
    assert "You were signed out after 10 minutes without a click" in page
    assert client.get("/today", base_url=HTTPS).status_code == 303  # it stays signed out
    events = [(e.event, e.staff, e.detail) for e in audit.entries(settings)][-2:]
    assert events == [("sign-in", "Dana Smith", ""), ("timeout", "Dana Smith", "after 10 idle minutes")]


def test_the_status_page_refreshing_itself_does_not_keep_a_session_alive(clinic, settings):
    from brochure.web.signin import PASSIVE

    app, now = clinic
    accounts.add(settings, "Eva Editor", "editor", "eva-pass")
    client = signed_in(app, name="Eva Editor", password="eva-pass")
    assert "status.table" in PASSIVE
    assert "handouts.thumbnail" in PASSIVE  # a lazy thumbnail loading late is no click
    for _ in range(12):  # the page's own script, every minute, for 12 minutes
        now[0] += 60
        client.get("/status/table", base_url=HTTPS)
        client.get("/thumbs/aftercare.png", base_url=HTTPS)
    assert client.get("/status", base_url=HTTPS).status_code == 303


def test_the_sweep_signs_out_a_session_whose_browser_never_comes_back(clinic, settings):
    app, now = clinic
    signed_in(app)
    sessions = app.extensions["sessions"]
    sessions.sweep()
    assert len(sessions.signed_in()) == 1
    now[0] += 10 * 60
    sessions.sweep()
    assert sessions.signed_in() == []
    assert [e.event for e in audit.entries(settings)][-1] == "timeout"


def test_signing_in_gives_a_new_session_and_needs_the_forms_token(clinic):
    app, _now = clinic
    client = app.test_client()
    client.get("/signin", base_url=HTTPS)
    refused = client.post("/signin", data={"name": "Dana Smith", "password": "dana-pass"}, base_url=HTTPS)
    assert refused.status_code == 400  # no CSRF token
    before = client.get_cookie("__Host-brochure", domain="localhost").value
    signed_in(app, client)
    after = client.get_cookie("__Host-brochure", domain="localhost").value
    assert before != after
    assert client.get("/", base_url=HTTPS).headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_disabled_account_is_signed_out_on_the_page_and_from_the_terminal(clinic, settings):
    from brochure.web.signin import sweep_once

    app, _now = clinic
    accounts.add(settings, "Ada Admin", "admin", "ada-pass")
    dana = signed_in(app)
    admin = signed_in(app, name="Ada Admin", password="ada-pass")
    page = admin.get("/staff", base_url=HTTPS).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = admin.post("/staff/disable", data={"csrf_token": token, "name": "Dana Smith"}, base_url=HTTPS)
    assert "Disabled Dana Smith" in done.get_data(as_text=True)
    assert dana.get("/today", base_url=HTTPS).status_code == 303  # signed out at once
    last = audit.entries(settings)[-2:]
    assert [(e.event, e.staff, e.detail) for e in last] == [
        ("staff-disable", "Ada Admin", "Dana Smith"),
        ("sign-out", "Dana Smith", "account disabled or given a new password"),
    ]
    # Changed on the server's terminal (another process): the sweep signs the session out.
    for change in (
        lambda: accounts.disable(settings, "Dana Smith"),
        lambda: accounts.reset(settings, "Dana Smith", "pin-9"),
    ):
        accounts.reset(settings, "Dana Smith", "dana-pass-2")
        dana = signed_in(app, password="dana-pass-2")
        change()
        assert dana.get("/today", base_url=HTTPS).status_code == 200  # not yet ...
        sweep_once(app.extensions["sessions"])
        assert dana.get("/today", base_url=HTTPS).status_code == 303  # ... after the sweep
        assert admin.get("/today", base_url=HTTPS).status_code == 200  # the others stay


def test_the_status_event_stream_ends_with_its_session(clinic, settings, monkeypatch):
    from brochure.web import views

    app, now = clinic
    monkeypatch.setattr(views, "KEEP_ALIVE", 0.05)
    accounts.add(settings, "Eva Editor", "editor", "eva-pass")
    client = signed_in(app, name="Eva Editor", password="eva-pass")
    stream = client.get("/status/events", base_url=HTTPS, buffered=False)
    chunks = iter(stream.response)
    assert next(chunks).startswith(b"retry:")
    assert next(chunks) == b": still here\n\n"
    now[0] += 11 * 60  # idle past the limit: the stream stops instead of holding a thread
    assert list(chunks) in ([], [b": still here\n\n"])
    stream.close()
