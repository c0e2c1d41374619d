"""The clinic server for real: `brochure serve` in its own process, over TLS with a certificate from a
test CA (trustme), printing to the private CUPS, driven by Playwright/Chromium as several staff.

One server serves the module. Chromium trusts exactly the server's certificate (by its public key
hash); Python's own clients check it against the test CA and the host name.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import copy_sample
from pypdf import PdfReader

from brochure.deliver import accounts, audit
from brochure.deliver.settings import load_settings

IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORDS = {
    "Ana Torres": ("front-desk", "ana-pass-1"),
    "Ben Okafor": ("front-desk", "ben-pass-2"),
    "Cruz Lima": ("front-desk", "cruz-pass-3"),
    "Eva Editor": ("editor", "eva-pass-4"),
    "Ada Admin": ("admin", "ada-pass-5"),
    "Lou Locked": ("front-desk", "lou-pass-6"),
}
DESKS = {"Ana Torres": "desk-a", "Ben Okafor": "desk-b", "Cruz Lima": "desk-c"}
SURNAMES = {"Ana Torres": "Quintero", "Ben Okafor": "Vasquez", "Cruz Lima": "Whitfield"}
FIRST = [
    "Alma", "Bruno", "Carla", "Dario", "Elena", "Fabio", "Gloria", "Hugo", "Irene", "Jorge",
    "Karen", "Lucas", "Marta", "Nico", "Olga", "Pablo", "Rosa", "Sergio", "Tania", "Ulises",
]  # fmt: skip
ROUNDS = 20


def chromium() -> str:
    return os.environ.get("BROCHURE_CHROMIUM") or "/usr/bin/chromium"


@dataclass
class Server:
    url: str
    port: int
    root: Path
    settings_file: Path
    ca_file: Path
    process: subprocess.Popen
    spki: str
    base: Path = Path()
    err: list[bytes] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what the browser's policy refused

    def settings(self):  # noqa: ANN201
        os.environ["BROCHURE_SETTINGS"] = str(self.settings_file)
        return load_settings()

    def logged(self) -> str:
        return b"".join(self.err).decode("utf-8", "replace")

    def https(self, host: str = "localhost") -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.ca_file))  # checks the chain and the name
        return http.client.HTTPSConnection(host, self.port, context=context, timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory, cups_server) -> Iterator[Server]:  # noqa: ANN001
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    base = tmp_path_factory.mktemp("clinic-server")
    root = copy_sample(base / "clinic")
    settings_file = base / "settings.toml"
    settings_file.write_text(f'[record]\npath = "{base / "private" / "deliveries.sqlite"}"\n')
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BROCHURE_SETTINGS", str(settings_file))
        settings = load_settings()
        for name, (role, password) in PASSWORDS.items():
            accounts.add(settings, name, role, password)
    for queue in DESKS.values():
        cups_server.add_queue(queue)
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = base / "server.pem", base / "server.key", base / "ca.pem"
    leaf.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    public = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_key()
    spki = base64.b64encode(
        hashlib.sha256(
            public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).digest()
    ).decode()
    command = [sys.executable, "-m", "brochure", "serve", "--project", str(root), "--bind", "127.0.0.1:0"]
    command += ["--host-name", "localhost", "--host-name", "127.0.0.1", "--cert", str(cert_file)]
    command += ["--key", str(key_file)]
    tmp = base / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        command,
        env={
            **os.environ,
            "BROCHURE_SETTINGS": str(settings_file),
            "CUPS_SERVER": cups_server.address,
            "TMPDIR": str(tmp),  # the server's, its render server's and their workers' temporary files
            "BROCHURE_CACHE_DIR": str(base / "cache"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    err: list[bytes] = []

    def keep_stderr() -> None:
        for line in iter(process.stderr.readline, b""):
            err.append(line)

    threading.Thread(target=keep_stderr, daemon=True).start()
    first = process.stdout.readline().decode()
    found = re.search(r"https://localhost:(\d+)/", first)
    if not found:
        process.kill()
        pytest.fail(f"brochure serve did not start: {first!r} {b''.join(err)!r}")
    port = int(found.group(1))
    threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()
    running = Server(
        f"https://localhost:{port}", port, root, settings_file, ca_file, process, spki, base, err
    )
    try:
        yield running
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser(server: Server):  # noqa: ANN201 - playwright.sync_api.Browser
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("Playwright is missing: CI must install it")
        pytest.skip("Playwright is not installed")
    if not os.access(chromium(), os.X_OK):
        if IN_CI:
            pytest.fail("Chromium is missing: CI must install it (see .ci/run)")
        pytest.skip("Chromium is not installed")
    with sync_playwright() as playwright:
        # Trust exactly this server's certificate, as a desk trusts the clinic's root.
        args = ["--no-sandbox", f"--ignore-certificate-errors-spki-list={server.spki}"]
        launched = playwright.chromium.launch(executable_path=chromium(), args=args)
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser, server: Server):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(60_000)  # a hang guard, not a timing check
    page.on("request", lambda request: server.requested.append(request.url))
    page.on(
        "console", lambda m: server.refused.append(m.text) if "Content Security Policy" in m.text else None
    )
    return page


@pytest.fixture(autouse=True)
def nothing_refused(request):  # noqa: ANN001, ANN201
    """No page, script or form of the clinic server breaks its own content-security policy."""
    yield
    if "server" in request.fixturenames:
        found = request.getfixturevalue("server")
        assert not found.refused, found.refused


def sign_in(page, server: Server, name: str, password: str | None = None) -> None:  # noqa: ANN001
    page.goto(server.url + "/")
    assert urlsplit(page.url).path == "/signin"
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password or PIN").fill(password or PASSWORDS[name][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")
    assert f"Signed in as {name}" in page.locator(".who").inner_text()


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(data)).pages)


def test_three_desks_personalise_and_print_at_once_for_20_rounds(server, browser, cups_server):
    staff = list(DESKS)
    pages = {name: new_page(browser, server) for name in staff}
    for name, page in pages.items():
        sign_in(page, server, name)
    patients = {name: [f"{first} {SURNAMES[name]}" for first in FIRST] for name in staff}
    everyone = [p for names in patients.values() for p in names]
    busy = threading.Event()
    seen_in_ps: list[str] = []

    def watch_processes() -> None:  # the process list, while the desks print
        while not busy.is_set():
            listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            seen_in_ps.extend(p for p in everyone if p in listing)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_processes, daemon=True)
    watcher.start()
    for round_ in range(ROUNDS):
        for name, page in pages.items():
            page.goto(server.url + "/personalise?d=aftercare")
            page.get_by_label("Patient's name").fill(patients[name][round_])
            page.get_by_label("Priya Raman, MD").check()
            page.wait_for_function(  # the live preview shows this patient
                "(n) => document.getElementById('preview-text').textContent.includes('Name ' + n)",
                arg=patients[name][round_],
            )
            printer = page.get_by_label("Printer")
            if round_ == 0:
                printer.select_option(DESKS[name])  # each desk picks its printer once
            else:
                assert printer.input_value() == DESKS[name]  # ... and the desk remembers it
        for page in pages.values():  # the three Print buttons at the same moment
            page.locator("#go").click(no_wait_after=True)
        for name, page in pages.items():
            done = page.locator("#outcome.good")
            done.wait_for()
            assert f"on {DESKS[name]} for {patients[name][round_]}." in done.inner_text()
        for name in staff:
            job = cups_server.queues[DESKS[name]].wait_job()
            text = pdf_text(job.pdf)
            assert patients[name][round_] in text
            others = [p for p in everyone if p != patients[name][round_] and p in text]
            assert not others, f"round {round_}: {name}'s job also holds {others}"
            assert patients[name][round_] not in job.header  # not in the job's title
    busy.set()
    watcher.join()
    assert not seen_in_ps

    settings = server.settings()
    from brochure.deliver.record import Record

    with Record.open(settings) as record:
        rows = record.today()
    assert len(rows) == ROUNDS * len(staff)
    for name in staff:
        given = sorted(r.patient_name for r in rows if r.user == name)
        assert given == sorted(patients[name])
        assert {r.target for r in rows if r.user == name} == {DESKS[name]}
    count, problems = audit.verify(settings)
    assert problems == []
    printed = [e for e in audit.entries(settings) if e.event == "print"]
    assert len(printed) == ROUNDS * len(staff)
    assert {e.staff for e in printed} == set(staff)
    assert {e.record for e in printed} == {r.id for r in rows}
    trail = audit.trail_file(settings).read_text(encoding="utf-8")
    for patient in everyone:
        assert patient not in trail
        assert all(patient not in url for url in server.requested)
        assert patient not in server.logged()
    assert "POST /personalise 200" in server.logged()  # the log has the requests, not what they carried
    # Nor on disk: out/ (the PDFs, the manifest, the thumbnails), the topic cache, every temporary
    # file, every file beside the record but the record itself, and CUPS's own logs.
    scanned = [
        path
        for folder in (
            server.root / "out",
            server.base / "cache",
            server.base / "tmp",
            server.base / "private",
        )
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith("deliveries.sqlite")
    ]
    assert any(p.name.endswith(".pdf") for p in scanned)
    assert any(p.name == "audit.jsonl" for p in scanned)
    secrets = [p.encode() for p in everyone] + [pw.encode() for _role, pw in PASSWORDS.values()]
    held = [(str(p), s) for p in scanned for s in secrets if s in p.read_bytes()]
    assert not held, held[:3]
    assert not [s for s in secrets if s in cups_server.logs()]
    for _role, password in PASSWORDS.values():  # nor any password, anywhere
        assert password not in trail
        assert password not in server.logged()
        assert all(password not in url for url in server.requested)
        assert password not in " ".join(seen_in_ps)
    # Today shows who gave each handout.
    today = pages["Ana Torres"]
    today.get_by_role("link", name="Today").click()
    assert "Ben Okafor" in today.locator("table.today").inner_text()
    for page in pages.values():
        page.context.close()


def test_every_page_but_sign_in_needs_a_session(server):
    from brochure.web.app import Clinic, create_app
    from brochure.web.signin import PUBLIC

    app = create_app(server.root, watch=False, clinic=Clinic(("localhost",)))
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", "aftercare", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            connection = server.https()
            connection.request(method, path, headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = connection.getresponse()
            body = response.read()
            assert (response.status, response.getheader("Location")) == (303, "/signin"), (method, path)
            assert b"<form" not in body
            checked.append((method, rule.rule))
    assert ("GET", "/") in checked
    assert ("POST", "/personalise") in checked
    assert ("GET", "/staff") in checked
    assert len(checked) >= 12
    # The public ones: the sign-in page (and its certificate link, absent with the clinic's own).
    connection = server.https()
    connection.request("GET", "/signin")
    response = connection.getresponse()
    assert response.status == 200
    assert b"Sign in" in response.read()
    cookie = response.getheader("Set-Cookie")
    assert cookie.startswith("__Host-brochure=")
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}


def test_plain_http_and_a_foreign_host_get_no_page(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
        plain.sendall(b"GET /signin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            answer = plain.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert b"<form" not in answer
    assert b"Sign in" not in answer
    assert answer == b"" or answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    connection = server.https("127.0.0.1")  # a name the server answers, checked against the test CA
    connection.request("GET", "/signin", headers={"Host": "rebind.example"})
    response = connection.getresponse()
    assert response.status == 400
    assert b"<form" not in response.read()
    with pytest.raises(ssl.SSLCertVerificationError):  # only a client that trusts the CA gets through
        http.client.HTTPSConnection("localhost", server.port, context=ssl.create_default_context()).request(
            "GET", "/"
        )


def test_five_wrong_passwords_lock_the_account_on_the_page(server, browser):
    page = new_page(browser, server)
    page.goto(server.url + "/signin")
    for attempt in range(accounts.MAX_FAILURES):
        page.get_by_label("Your name").fill("Lou Locked")
        page.get_by_label("Password or PIN").fill("not-it")
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert").inner_text()
        if attempt < accounts.MAX_FAILURES - 1:
            assert "The name or the password is not right" in alert
    assert re.search(r"This account is locked until \d\d:\d\d after 5 wrong passwords", alert)
    page.get_by_label("Password or PIN").fill(PASSWORDS["Lou Locked"][1])  # even the right one
    page.get_by_role("button", name="Sign in").click()
    assert "locked until" in page.get_by_role("alert").inner_text()
    assert urlsplit(page.url).path == "/signin"
    settings = server.settings()
    events = [e.event for e in audit.entries(settings) if e.staff == "Lou Locked"]
    assert events[-6:] == ["sign-in-failed"] * 4 + ["lockout", "sign-in-failed"]
    assert "not-it" not in audit.trail_file(settings).read_text()
    assert "not-it" not in server.logged()
    page.context.close()


def test_roles_switching_user_and_the_admin_page(server, browser):
    page = new_page(browser, server)
    sign_in(page, server, "Cruz Lima")
    nav = page.get_by_role("navigation", name="Pages").inner_text()
    assert "Staff and settings" not in nav
    assert "Content status" not in nav
    for path in ("/staff", "/status"):
        response = page.goto(server.url + path)
        assert response.status == 403
        assert "you are signed in as front desk" in page.locator("main").inner_text()
    # Switching user on a shared PC: two clicks (and the next person's name and password).
    page.get_by_role("button", name="Switch user").click()
    assert "Next person" in page.get_by_role("status").inner_text()
    page.get_by_label("Your name").fill("Eva Editor")
    page.get_by_label("Password or PIN").fill(PASSWORDS["Eva Editor"][1])
    page.get_by_role("button", name="Sign in").click()
    assert page.goto(server.url + "/status").status == 200
    assert page.goto(server.url + "/staff").status == 403
    page.get_by_role("button", name="Sign out").click()
    assert "You are signed out" in page.get_by_role("status").inner_text()
    assert page.goto(server.url + "/today").url == server.url + "/signin"  # that session is over

    sign_in(page, server, "Ada Admin")
    page.get_by_role("link", name="Staff and settings").click()
    page.get_by_label("Name", exact=True).fill("Noor Haddad")
    page.get_by_label("Password or PIN").fill("noor-pass-7")
    page.get_by_label("The same password again").fill("noor-pass-7")
    page.get_by_role("button", name="Add").click()
    assert "Added Noor Haddad (front desk)" in page.get_by_role("status").inner_text()
    page.get_by_label("Sign out after this many minutes without a click").fill("12")
    page.get_by_role("button", name="Save").click()
    assert "Idle sign-out set to 12 minutes" in page.get_by_role("status").inner_text()
    settings = server.settings()
    assert accounts.idle_minutes(settings) == 12
    added = [
        e for e in audit.entries(settings) if e.event in ("staff-add", "settings") and e.staff == "Ada Admin"
    ]
    assert [(e.event, e.desk) for e in added] == [("staff-add", "127.0.0.1"), ("settings", "127.0.0.1")]
    page.get_by_label("Sign out after this many minutes without a click").fill("10")
    page.get_by_role("button", name="Save").click()  # back as it was, for the other tests
    assert accounts.idle_minutes(settings) == 10
    page.get_by_role("button", name="Switch user").click()
    sign_in(page, server, "Noor Haddad", "noor-pass-7")
    page.context.close()


@dataclass
class Steered:
    """The clinic server's app in this process, on cheroot over TLS, its sessions' clock moved by
    the test together with the browser's, so that both see the same minutes go by."""

    url: str
    ahead: list[float]

    def run_for(self, page, minutes: str) -> None:  # noqa: ANN001
        mm, ss = (int(part) for part in minutes.split(":"))
        self.ahead[0] += mm * 60 + ss
        page.clock.run_for(minutes)


@pytest.fixture
def steered(server: Server, monkeypatch):  # noqa: ANN001, ANN201
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    from brochure.web.app import Clinic, create_app

    monkeypatch.setenv("BROCHURE_SETTINGS", str(server.settings_file))
    app = create_app(server.root, watch=False, clinic=Clinic(("localhost",)))
    ahead = [0.0]
    app.extensions["sessions"].clock = lambda: time.time() + ahead[0]
    listening = wsgi.Server(("127.0.0.1", 0), app, numthreads=8)
    listening.ssl_adapter = BuiltinSSLAdapter(
        str(server.base / "server.pem"), str(server.base / "server.key")
    )
    listening.prepare()
    thread = threading.Thread(target=listening.serve, daemon=True)
    thread.start()
    try:
        yield Steered(f"https://localhost:{listening.bind_addr[1]}", ahead)
    finally:
        listening.stop()


def test_the_page_warns_a_minute_before_the_idle_sign_out_then_signs_out(server, steered, browser):
    page = new_page(browser, server)
    page.clock.install()
    local = replace(server, url=steered.url)
    sign_in(page, local, "Ben Okafor")
    warning = page.locator("#idle-warning")
    assert warning.is_hidden()
    steered.run_for(page, "08:58")
    assert warning.is_hidden()
    steered.run_for(page, "00:05")  # 9 minutes 3 seconds without a click
    warning.wait_for(state="visible")
    assert "you will be signed out in" in warning.inner_text()
    page.get_by_role("button", name="Stay signed in").click()
    warning.wait_for(state="hidden")
    steered.run_for(page, "09:05")  # counted again from the click
    warning.wait_for(state="visible")
    steered.run_for(page, "01:00")
    page.wait_for_url(local.url + "/signin")
    assert "You were signed out after 10 minutes without a click" in page.get_by_role("status").inner_text()
    settings = server.settings()
    last = [e for e in audit.entries(settings) if e.staff == "Ben Okafor"][-1]
    assert (last.event, last.detail) == ("timeout", "after 10 idle minutes")
    page.context.close()


def test_a_tab_left_open_does_not_sign_out_a_session_used_in_another(server, steered, browser):
    stale = new_page(browser, server)
    stale.clock.install()
    local = replace(server, url=steered.url)
    sign_in(stale, local, "Cruz Lima")
    used = stale.context.new_page()  # a second tab of the same browser: the same session
    used.goto(local.url + "/today")
    steered.run_for(stale, "05:00")
    used.reload()  # a click in the other tab, half way
    steered.run_for(stale, "05:03")  # the first tab's own ten minutes are up ...
    stale.wait_for_timeout(300)
    assert urlsplit(stale.url).path == "/"  # ... but the session's are not: it asked the server
    assert stale.locator("#idle-warning").is_hidden()
    assert used.reload().status == 200
    steered.run_for(stale, "09:03")  # now nobody has clicked for 9 minutes: both tabs warn
    stale.locator("#idle-warning").wait_for(state="visible")
    used.locator("#idle-warning").wait_for(state="visible")
    steered.run_for(stale, "01:00")
    stale.wait_for_url(local.url + "/signin")
    used.wait_for_url(local.url + "/signin")
    timeouts = [
        e for e in audit.entries(server.settings()) if e.staff == "Cruz Lima" and e.event == "timeout"
    ]
    assert len(timeouts) == 1
    stale.context.close()


def test_a_front_desk_person_documents_education_in_their_own_name(server, browser, cups_server):
    from brochure.deliver import Record, education

    page = new_page(browser, server)
    sign_in(page, server, "Ben Okafor")
    page.goto(server.url + "/personalise?d=results")
    page.get_by_label("Patient's name").fill("Wren Education")
    page.get_by_label("Dana Smith, RN").check()
    page.get_by_label("Printer").select_option("desk-b")
    page.locator("#go").click()
    page.locator("#outcome.good").wait_for()
    cups_server.queues["desk-b"].wait_job()
    panel = page.get_by_role("form", name="Education (optional)")
    panel.get_by_label("Demonstrated").check()
    panel.get_by_label("The patient ticks").check()
    panel.get_by_role("button", name="Save education").click()
    assert "Education saved for Wren Education" in page.locator("#outcome").inner_text()
    settings = server.settings()
    with Record.open(settings) as record:
        (delivery,) = record.search("Wren Education")
        kept = education.of(record, [delivery.id])[delivery.id]
    assert (kept.staff, kept.teach_back, kept.acknowledged) == ("Ben Okafor", "demonstrated", "ticked")
    (line,) = [e for e in audit.entries(settings) if e.event == "education" and e.record == delivery.id]
    assert (line.staff, line.desk, line.detail) == (
        "Ben Okafor",
        "127.0.0.1",
        "method printed; teach-back demonstrated; ticked",
    )
    page.context.close()
