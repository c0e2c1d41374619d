"""The desk in a real browser: Playwright drives the system's Chromium against `brochure desk`'s app.

One desk (with its watcher) and one browser serve the whole module. It
prints to the private CUPS queue and emails the private SMTP server of
tests/servers.py. Screenshots go to $BROCHURE_ARTIFACTS, else to a folder
under pytest's temporary folder. In CI a missing Chromium or Playwright
fails these tests instead of skipping them.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf
import pytest
from conftest import REPO, copy_sample
from pypdf import PdfReader
from servers import SMTP_PASSWORD, SMTP_USER

NAME = "José Ñúñez"
AXE = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing: CI must install it (see .ci/run)")
    pytest.skip(f"{what} is not installed")


def chromium() -> str:
    return os.environ.get("BROCHURE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class Desk:
    """A desk served on a free loopback port, and everything it logged."""

    root: Path
    url: str
    app: object
    log: io.StringIO
    requested: list[str] = field(default_factory=list)

    def logged(self) -> str:
        return self.log.getvalue()


@pytest.fixture(scope="module")
def desk(tmp_path_factory, cups_server, smtp_server) -> Iterator[Desk]:  # noqa: ANN001
    from werkzeug.serving import make_server

    from brochure.web.app import create_app

    base = tmp_path_factory.mktemp("desk-browser")
    root = copy_sample(base / "clinic")
    settings = base / "settings.toml"
    settings.write_text(
        f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\nuser = "{SMTP_USER}"\n'
        f'sender = "Test Clinic <desk@clinic.test>"\ncafile = "{smtp_server.cafile}"\n'
        f'[record]\npath = "{base / "record" / "deliveries.sqlite"}"\n'
    )
    cups_server.add_queue("frontdesk")
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setLevel(logging.DEBUG)
    watched = [logging.getLogger(), logging.getLogger("werkzeug")]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BROCHURE_SETTINGS", str(settings))
        env.setenv("BROCHURE_SMTP_PASSWORD", SMTP_PASSWORD)
        env.setenv("CUPS_SERVER", cups_server.address)
        for logger in watched:
            logger.addHandler(handler)
        logging.getLogger("werkzeug").setLevel(logging.INFO)  # one line a request, as `-v` shows
        app = create_app(root, watch=True)
        live = app.extensions["desk"]
        with live.changes:  # the first build, so every handout has its PDF and thumbnail
            live.changes.wait_for(lambda: live.snapshot().last_build is not None, 120)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Desk(root, f"http://127.0.0.1:{server.port}", app, log)
        finally:
            server.shutdown()
            for logger in watched:
                logger.removeHandler(handler)


@pytest.fixture(scope="module")
def browser(desk: Desk):  # noqa: ANN201 - playwright.sync_api.Browser
    # After the desk: its first build forks the render workers, and a worker forked after
    # Playwright started would hold Playwright's pipe open, so that it never stops.
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright (pip install playwright)")
    if not os.access(chromium(), os.X_OK):
        _missing("Chromium (apt install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:  # noqa: ANN001
    folder = os.environ.get("BROCHURE_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser, desk):  # noqa: ANN001, ANN201 - playwright.sync_api.Page
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)  # a hang guard, not a timing check
    page.on("request", lambda request: desk.requested.append(request.url))
    refused: list[str] = []  # the browser refused something the page asked for: the policy is wrong
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert not refused, refused


def audit(page) -> None:  # noqa: ANN001
    """Run axe-core on the page as it is; fail on a serious or critical violation.

    Evaluated by the browser's devtools protocol, which the page's content-security policy (rightly)
    does not let a script tag do."""
    script = AXE.read_text(encoding="utf-8") + "\n;axe.run(document, {resultTypes: ['violations']})"
    result = page.evaluate(script)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"


def tab_to(page, selector: str, limit: int = 80) -> None:  # noqa: ANN001
    """Press Tab until the element matching ``selector`` has the focus; check that the focus shows."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            outline = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
            )
            assert outline[0] != "none", f"no visible focus on {selector}"
            assert outline[1] >= 2, f"focus ring too thin on {selector}"
            return
    raise AssertionError(f"Tab never reached {selector}")


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(data)).pages)


def no_patient_detail_leaked(desk: Desk) -> None:
    for url in desk.requested:
        assert "Ñúñez" not in url
        assert "%C3%91" not in url.upper()
        assert "N%C3%BA" not in url
    assert "Ñúñez" not in desk.logged()
    assert "POST /personalise" in desk.logged()  # the log does hold the requests, just not their bodies


def test_search_pick_personalise_preview_and_print(page, desk, cups_server, shots):
    page.goto(desk.url + "/")
    audit(page)
    page.get_by_label("Search handouts").fill("bruising")
    visible = page.locator(".card:visible")
    assert sorted(visible.evaluate_all("cards => cards.map(c => c.dataset.name)")) == [
        "aftercare",
        "brochure",
        "side-effects",
    ]
    assert page.locator("#found").inner_text() == "3 of 8 documents shown"
    page.get_by_label("Aftercare: what to expect").check()
    page.get_by_label("Side effects").check()
    assert page.locator("#basket").inner_text() == (
        "2 picked: Side effects; Aftercare: what to expect and what to do"  # in the page's order
    )
    page.screenshot(path=shots / "1-handouts.png", full_page=True)
    page.get_by_role("button", name="Personalise the handouts ticked").click()
    page.wait_for_url(re.compile(r"/personalise\?d=side-effects&d=aftercare$"))  # handout names only
    audit(page)
    page.get_by_label("Patient's name").fill(NAME)
    page.get_by_label("Injector").select_option("Priya Raman")
    page.get_by_label("Note for the patient").fill("20 unidades, frente")
    page.get_by_role("button", name="Preview").click()
    pictures = page.locator(".preview img")
    pictures.first.wait_for()
    assert pictures.count() == 2
    assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.get_by_text("Text of the preview").click()
    assert f"Name {NAME}" in page.locator(".page-text").inner_text()
    assert "Injector Priya Raman, MD" in page.locator(".page-text").inner_text()
    assert page.get_by_label("Patient's name").input_value() == NAME
    audit(page)
    page.screenshot(path=shots / "2-preview.png", full_page=True)
    page.get_by_label("Printer").select_option("frontdesk")
    page.get_by_role("button", name="Print", exact=True).click()
    done = page.locator("#done")
    done.wait_for()
    assert re.search(r"Sent 2 handouts \(2 pages\) to the printer frontdesk", done.inner_text())
    assert page.get_by_label("Patient's name").input_value() == ""  # cleared for the next patient
    job = cups_server.queues["frontdesk"].wait_job()
    assert NAME in pdf_text(job.pdf)
    assert "Ñúñez" not in job.header
    page.screenshot(path=shots / "3-printed.png", full_page=True)
    # Today's page shows it.
    page.get_by_role("link", name="Today").click()
    assert NAME in page.locator("table.today").inner_text()
    audit(page)
    no_patient_detail_leaked(desk)


def test_the_whole_flow_with_the_keyboard_only_then_email_encrypted(page, desk, smtp_server, shots):
    smtp_server.reset()
    page.goto(desk.url + "/")
    tab_to(page, "#q")
    page.keyboard.type("results")
    tab_to(page, "#pick-results")
    page.keyboard.press("Space")
    tab_to(page, ".basket button")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/personalise\?d=results$"))
    tab_to(page, "#f-name")
    page.keyboard.type(NAME)
    tab_to(page, "#f-injector")
    page.keyboard.type("Luis")
    assert page.locator("#f-injector").input_value() == "Luis Ortega"
    tab_to(page, "button[value=preview]")
    page.keyboard.press("Enter")
    page.locator(".preview img").first.wait_for()
    tab_to(page, "#f-to")
    page.keyboard.type("jose@example.com")
    tab_to(page, "#f-to_again")
    page.keyboard.type("jose@example.com")
    tab_to(page, "#f-encrypt")
    page.keyboard.press("Space")
    tab_to(page, "button[value=email]")
    page.keyboard.press("Enter")
    page.locator("#passphrase").wait_for()
    passphrase = page.locator("#passphrase").inner_text()
    assert "Emailed 1 handout (1 page), encrypted." in page.locator("#done").inner_text()
    page.screenshot(path=shots / "4-emailed.png", full_page=True)
    (message,) = smtp_server.messages
    assert "Ñúñez" not in str(message["Subject"])
    (attachment,) = list(message.iter_attachments())
    with pikepdf.open(io.BytesIO(attachment.get_content()), password=passphrase) as pdf:
        buffer = io.BytesIO()
        pdf.save(buffer)
    assert NAME in pdf_text(buffer.getvalue())
    no_patient_detail_leaked(desk)


def test_the_status_page_follows_an_edit_and_survives_a_mistake(page, desk, shots):
    page.goto(desk.url + "/status")
    audit(page)
    row = page.locator("#doc-aftercare")
    topic = desk.root / "content/topics/aftercare.md"
    text = topic.read_text()
    version = page.locator("#status-summary").get_attribute("data-version")
    topic.write_text(text.replace("We may ask you to come back", "We will ask you to come back"))
    # No reload: the page swaps in the new status when the watcher has rebuilt the handout.
    page.wait_for_function(
        "(v) => { const s = document.querySelector('#status-summary');"
        " return s.dataset.version !== v && s.textContent.includes('2 rebuilt, 6 up to date'); }",
        arg=version,
    )
    assert row.get_attribute("data-state") == "rebuilt"
    assert page.locator("#doc-results").get_attribute("data-state") == "up to date"
    page.screenshot(path=shots / "5-status-rebuilt.png", full_page=True)
    # A mistake: its error shows, the page goes on.
    topic.write_text(text.replace('title: "Aftercare', "title: Aftercare: oops", 1))
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "content/topics/aftercare.md:2: front matter is not valid YAML" in alert.inner_text()
    audit(page)
    page.screenshot(path=shots / "6-status-mistake.png", full_page=True)
    topic.write_text(text)
    alert.wait_for(state="detached")
    assert row.get_attribute("data-state") in ("rebuilt", "up to date")


def test_form_errors_and_a_missing_page_pass_axe(page, desk):
    """The pages the other tests do not audit: errors on the form, and a page that is not there."""
    page.goto(desk.url + "/personalise?d=aftercare")
    page.get_by_role("button", name="Preview").click()
    page.locator("#errors").wait_for()
    page.wait_for_function("() => document.activeElement.id === 'errors'")  # the summary takes the focus
    assert "Patient name is required." in page.locator("#errors").inner_text()
    audit(page)
    page.goto(desk.url + "/nothing-here")
    audit(page)
