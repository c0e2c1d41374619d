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
    root = copy_sample(base / "clinic", variants=True)
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


SCREENS = {"1366x768": {"width": 1366, "height": 768}, "1920x1080": {"width": 1920, "height": 1080}}


@pytest.fixture(params=["1366x768"])
def page(browser, desk, request):  # noqa: ANN001, ANN201 - playwright.sync_api.Page
    """A new browser tab at a front-desk PC's screen size (1366x768 unless a test asks for others)."""
    context = browser.new_context(viewport=SCREENS[request.param], accept_downloads=True)
    # A desk whose printer was picked once: the page remembers it (a cookie of this browser's).
    context.add_cookies([{"name": "desk_printer", "value": "frontdesk", "url": desk.url}])
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


class Clicks:
    """Counts the clicks a test makes, as a person at the desk would count them."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.page = page
        self.count = 0

    def click(self, locator) -> None:  # noqa: ANN001
        self.count += 1
        locator.click()


def on_first_screen(page, selector: str) -> None:  # noqa: ANN001
    """Every element matching ``selector`` shows in the window as it is, with nothing scrolled."""
    assert page.evaluate("() => [window.scrollX, window.scrollY]") == [0, 0]
    size = page.viewport_size
    for box in page.locator(selector).evaluate_all("els => els.map(e => e.getBoundingClientRect().toJSON())"):
        inside = (
            0 <= box["left"] < box["right"] <= size["width"]
            and 0 <= box["top"] < box["bottom"] <= size["height"]
        )
        assert inside, (selector, box, size)


def wait_preview_with(page, text: str) -> None:  # noqa: ANN001
    page.wait_for_function(
        "(t) => document.getElementById('preview-text').textContent.includes(t)"
        " && !document.getElementById('sheets').classList.contains('busy')",
        arg=text,
    )


def outcome(page):  # noqa: ANN001, ANN201
    """The outcome region, once it shows and has the focus."""
    box = page.locator("#outcome")
    box.wait_for()
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'outcome'")
    return box


#: What a front-desk person uses on the personalise step: all of it must fit the first screen.
CONTROLS = "#f-name, .chip, #f-treated_on, #f-treatment, #f-note, .method-choice, #f-printer, #f-copies, #go, #sheets"


@pytest.mark.parametrize("page", ["1366x768", "1920x1080"], indirect=True)
def test_a_printed_personalised_handout_in_two_clicks_and_the_name(page, desk, cups_server, shots):
    size = "{width}x{height}".format(**page.viewport_size)
    name = f"{NAME} {page.viewport_size['width']}"  # one patient per screen size: not a repeat
    clicks = Clicks(page)
    page.goto(desk.url + "/")
    page.wait_for_function("() => document.activeElement.id === 'q'")  # the search box has the focus
    page.keyboard.type("aftercare")
    assert page.locator(".card:visible").evaluate_all("cs => cs.map(c => c.dataset.name)") == [
        "aftercare",
        "brochure",  # which holds every topic
        "aftercare-trifold",  # which holds aftercare and side effects
    ]
    audit(page)
    page.screenshot(path=shots / f"{size}-1-handouts.png")
    clicks.click(page.locator('.card[data-name="aftercare"]').get_by_role("button", name="Give"))
    page.wait_for_url(re.compile(r"/personalise\?d=aftercare$"))  # the handout's name only
    page.wait_for_function("() => document.activeElement.id === 'f-name'")
    wait_preview_with(page, "Your treatment")  # the blank handout before a name is typed
    page.keyboard.type(name)
    clicks.click(page.get_by_label("Priya Raman, MD"))
    if page.locator("#f-printer").input_value() != "frontdesk":  # picked once per desk, then remembered
        clicks.count += 1
        page.locator("#f-printer").select_option("frontdesk")
    wait_preview_with(page, f"Name {name}")
    page.screenshot(path=shots / f"{size}-2-personalise.png")
    on_first_screen(page, CONTROLS)
    # The name on the preview is big enough to check: its type size on the page, drawn at the preview's scale.
    shown = page.evaluate("() => document.querySelector('#sheets img').getBoundingClientRect().width")
    name_pt = name_size(desk.root)
    assert name_pt * shown / 612 >= 12, (name_pt, shown)  # a Letter page is 612 pt wide
    audit(page)
    page.keyboard.press("Enter")
    said = outcome(page)
    assert said.get_attribute("class") == "outcome good"
    assert said.get_attribute("role") == "status"
    assert said.locator(".outcome-text").inner_text() == (
        f"Printed 1 copy of Aftercare: what to expect and what to do on frontdesk for {name}."
    )
    on_first_screen(page, "#outcome, #go")
    assert clicks.count <= 3  # Give, the injector, the printer the first time: 4 at most, the issue asks
    job = cups_server.queues["frontdesk"].wait_job()
    assert name in pdf_text(job.pdf)
    assert "Injector Priya Raman, MD" in pdf_text(job.pdf)
    assert page.locator("#f-name").input_value() == ""  # cleared for the next patient
    assert not page.get_by_label("Priya Raman, MD").is_checked()
    audit(page)
    page.screenshot(path=shots / f"{size}-3-printed.png")
    no_patient_detail_leaked(desk)


def name_size(root: Path) -> float:
    """The type size (pt) of the patient's name on the aftercare handout, read from the PDF."""
    import pypdfium2

    from brochure.deliver.packet import personalise
    from brochure.deliver.patient import check_patient
    from brochure.project.model import load_project

    project = load_project(root)
    patient = check_patient(project, {"name": NAME, "injector": "Priya Raman"})
    document = pypdfium2.PdfDocument(personalise(project, ["aftercare"], patient).pdf)
    try:
        text = document[0].get_textpage()
        index, _count = text.search(NAME).get_next()
        # WeasyPrint writes CSS pixels under a 0.75 scale: pdfium gives the size before it.
        return pypdfium2.raw.FPDFText_GetFontSize(text.raw, index) * 0.75
    finally:
        document.close()


def test_search_finds_a_topic_in_any_language_and_slash_comes_back_to_it(page, desk):
    page.goto(desk.url + "/")
    for query, expected in [
        ("spanish", {"aftercare", "side-effects"}),
        ("español", {"aftercare", "side-effects"}),
        ("CUIDADOS", {"aftercare"}),
    ]:
        page.locator("#q").fill(query)
        shown = set(page.locator(".card:visible").evaluate_all("cs => cs.map(c => c.dataset.name)"))
        assert expected <= shown, (query, shown)
        assert "results" not in shown, query
    page.locator("#found").click()  # the focus leaves the box
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "q"


def test_treatment_typed_is_exactly_what_prints_in_the_spanish_version(page, desk, cups_server):
    clicks = Clicks(page)
    page.goto(desk.url + "/")
    card = page.locator('.card[data-name="aftercare"]')
    clicks.click(card.get_by_label("Español", exact=True))
    clicks.click(card.get_by_role("button", name="Give"))
    page.wait_for_url(re.compile(r"/personalise\?d=aftercare.es$"))
    assert page.locator("#f-treatment").input_value() == ""
    page.keyboard.type(NAME)
    clicks.click(page.get_by_label("Dana Smith, RN"))
    clicks.click(page.locator("#f-treatment"))
    page.keyboard.type("Botox, frente")
    page.keyboard.press("Enter")
    assert "Printed 1 copy of Cuidados" in outcome(page).inner_text()
    assert clicks.count == 4
    text = pdf_text(cups_server.queues["frontdesk"].wait_job().pdf)
    assert "Botox, frente" in text
    assert "BotoxBotox" not in text
    assert "Botox Botox" not in text


def _give(page, desk, name: str = NAME) -> None:  # noqa: ANN001
    page.goto(desk.url + "/personalise?d=results")
    page.locator("#f-name").fill(name)
    page.get_by_label("Luis Ortega, NP").check()


@pytest.mark.parametrize(
    ("trouble", "kind", "words"),
    [
        (
            "paused",
            "wait",
            ["The printer frontdesk is paused: the job will wait", "download the PDF, or email it"],
        ),
        (
            "refusing",
            "bad",
            ["The printer frontdesk is not taking jobs: nothing was printed.", "Choose another printer"],
        ),
        ("stopped", "bad", ["Printing is not working right now: nothing was printed.", "email it instead"]),
    ],
)
def test_a_printer_in_trouble_says_so_with_a_way_forward(
    page, desk, cups_server, shots, trouble, kind, words
):
    undo = {"paused": "cupsenable", "refusing": "cupsaccept"}
    if trouble == "paused":
        cups_server.run("cupsdisable", "frontdesk")
    elif trouble == "refusing":
        cups_server.run("cupsreject", "frontdesk")
    _give(page, desk, f"{NAME} {trouble}")
    try:
        if trouble == "stopped":  # the print service does not answer
            os.environ["CUPS_SERVER"] = "127.0.0.1:9"
        page.locator("#go").click()
        said = outcome(page)
    finally:
        os.environ["CUPS_SERVER"] = cups_server.address
        if trouble in undo:
            cups_server.run(undo[trouble], "frontdesk")
    assert said.get_attribute("class") == f"outcome {kind}"
    assert said.get_attribute("role") == "alert"
    for text in words:
        assert text in said.inner_text()
    assert "cups" not in said.inner_text().lower()
    assert "sudo" not in said.inner_text()
    on_first_screen(page, "#outcome")
    audit(page)
    page.screenshot(path=shots / f"printer-{trouble}.png")
    if trouble == "paused":  # accepted: it comes out when the printer is resumed
        cups_server.queues["frontdesk"].wait_job()
    else:
        assert page.locator("#f-name").input_value() == f"{NAME} {trouble}"  # nothing lost


def modal(page):  # noqa: ANN001, ANN201
    """The question dialog once it is modal (the page dimmed behind it) and holds the focus: the page
    arrives with the dialog open, and its script then makes it modal and moves the focus into it."""
    page.wait_for_function(
        "() => { const d = document.querySelector('dialog[open]');"
        " return d !== null && d.matches(':modal') && d.contains(document.activeElement); }"
    )
    return page.get_by_role("dialog")


def test_a_repeat_asks_in_a_dialog_and_per_method(page, desk, cups_server, smtp_server, shots):
    smtp_server.reset()
    _give(page, desk, "Ana Repeat")
    page.locator("#go").click()
    outcome(page)
    cups_server.queues["frontdesk"].wait_job()
    _give(page, desk, "Ana Repeat")
    page.locator("#go").click()
    dialog = modal(page)
    assert re.search(
        r"These handouts were printed for Ana Repeat at \d\d:\d\d\. Print them again\?", dialog.inner_text()
    )
    audit(page)
    page.screenshot(path=shots / "repeat-dialog.png")
    dialog.get_by_role("button", name="Yes, print again").click()
    assert "Printed 1 copy of Your results" in outcome(page).inner_text()
    cups_server.queues["frontdesk"].wait_job()
    # By email, the same handouts to the same patient are not a repeat of the print.
    _give(page, desk, "Ana Repeat")
    page.get_by_label("Email", exact=True).check()
    assert page.locator("#go").inner_text() == "Send email"
    page.get_by_label("Patient's email address").fill("ana@example.com")
    page.get_by_label("The address again").fill("ana@example.com")
    page.get_by_label("The patient agreed to get it by unencrypted email").check()
    page.locator("#go").click()
    assert "Emailed Your results" in outcome(page).inner_text()  # asked nothing
    assert len(smtp_server.messages) == 1


def test_download_says_it_is_recorded_and_clears_the_form(page, desk):
    _give(page, desk, "Ana Download")
    page.get_by_label("Download", exact=True).check()
    assert "It is recorded in Today as downloaded." in page.locator(".how-download").inner_text()
    with page.expect_download() as started:
        page.locator("#go").click()
    assert started.value.suggested_filename == "handouts.pdf"
    assert "Ana Download" in pdf_text(Path(started.value.path()).read_bytes())
    said = outcome(page)
    assert said.inner_text().startswith(
        "Downloaded Your results: when they show and how long they last for Ana Download as handouts.pdf."
        " It is recorded in Today."
    )
    assert page.locator("#f-name").input_value() == ""
    page.get_by_role("link", name="Today").click()
    assert "Downloaded (recorded)" in page.locator("table.today").inner_text()


def test_today_asks_before_giving_again_the_way_it_was_given(page, desk, cups_server, smtp_server, shots):
    smtp_server.reset()
    _give(page, desk, "Ana Today")
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("Patient's email address").fill("ana.today@example.com")
    page.get_by_label("The address again").fill("ana.today@example.com")
    page.get_by_label("The patient agreed to get it by unencrypted email").check()
    page.locator("#go").click()
    outcome(page)
    page.goto(desk.url + "/today")
    row = page.locator("table.today tr", has_text="Ana Today")
    give_again = row.get_by_role("button", name=re.compile("again"))  # beside it: Education…
    assert give_again.inner_text() == "Send again…"  # emailed: sent again, never printed
    give_again.click()
    dialog = modal(page)
    assert "Email Your results: when they show and how long they last again to ana.today@example.com" in (
        dialog.inner_text()
    )
    audit(page)
    page.screenshot(path=shots / "today-send-again.png")
    dialog.get_by_role(
        "button", name="Yes, send again"
    ).click()  # neither encrypted nor consented: asked again
    dialog = page.get_by_role("dialog")
    assert "Tick that the patient agreed" in dialog.inner_text()
    dialog.get_by_label("The patient agreed to get it by unencrypted email").check()
    dialog.get_by_role("button", name="Yes, send again").click()
    said = outcome(page)
    assert "Emailed 1 handout again to ana.today@example.com for Ana Today." in said.inner_text()
    assert len(smtp_server.messages) == 2
    # A printed row prints again, after its own question.
    _give(page, desk, "Ana Printed")
    page.locator("#go").click()
    outcome(page)
    cups_server.queues["frontdesk"].wait_job()
    page.goto(desk.url + "/today")
    page.locator("table.today tr", has_text="Ana Printed").get_by_role(
        "button", name=re.compile("Print again")
    ).click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, print again").click()
    assert "Printed 1 handout again on frontdesk for Ana Printed." in outcome(page).inner_text()
    assert "Ana Printed" in pdf_text(cups_server.queues["frontdesk"].wait_job().pdf)
    audit(page)


def test_the_whole_flow_with_the_keyboard_only_then_email_encrypted(page, desk, smtp_server, shots):
    smtp_server.reset()
    page.goto(desk.url + "/")
    page.keyboard.type("results")
    tab_to(page, '.card[data-name="results"] button[name=give]')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/personalise\?d=results$"))
    page.wait_for_function("() => document.activeElement.id === 'f-name'")
    page.keyboard.type(NAME)
    tab_to(page, "input[name=injector]")
    page.keyboard.press("ArrowRight")  # Dana, then Priya
    assert page.locator("input[name=injector]:checked").input_value() == "Priya Raman"
    tab_to(page, "input[name=action]")
    page.keyboard.press("ArrowRight")
    assert page.locator("#go").inner_text() == "Send email"
    tab_to(page, "#f-to")
    page.keyboard.type("jose@example.com")
    tab_to(page, "#f-to_again")
    page.keyboard.type("jose@example.com")
    tab_to(page, "#f-encrypt")
    page.keyboard.press("Space")
    tab_to(page, "#go")
    page.keyboard.press("Enter")
    said = outcome(page)
    passphrase = page.locator("#passphrase").inner_text()
    assert f"how long they last to jose@example.com for {NAME}, encrypted." in said.inner_text()
    page.screenshot(path=shots / "4-emailed.png")
    (message,) = smtp_server.messages
    assert "Ñúñez" not in str(message["Subject"])
    (attachment,) = list(message.iter_attachments())
    with pikepdf.open(io.BytesIO(attachment.get_content()), password=passphrase) as pdf:
        buffer = io.BytesIO()
        pdf.save(buffer)
    assert NAME in pdf_text(buffer.getvalue())
    no_patient_detail_leaked(desk)


def test_an_english_handout_emailed_in_spanish_chosen_at_the_desk(page, desk, smtp_server, shots):
    smtp_server.reset()
    _give(page, desk, "Ana Idioma")
    choice = page.get_by_label("Language for the email")
    assert not choice.is_visible()  # an email's choice: shown with the Email fields only
    page.get_by_label("Email", exact=True).check()
    assert choice.is_visible()
    assert choice.locator("option").all_inner_texts() == ["Same as the handouts", "English", "Español"]
    page.get_by_label("Patient's email address").fill("ana.idioma@example.com")
    page.get_by_label("The address again").fill("ana.idioma@example.com")
    page.get_by_label("The patient agreed to get it by unencrypted email").check()
    choice.select_option(label="Español")
    wait_preview_with(page, "Name Ana Idioma")
    audit(page)
    page.screenshot(path=shots / "email-language.png")
    on_first_screen(page, "#f-to, #f-to_again, #f-mail_lang, #f-consent, #go")
    page.locator("#go").click()
    said = outcome(page).inner_text()
    assert "Emailed Your results: when they show and how long they last to ana.idioma@example.com" in said
    assert "The email is in Español." in said
    (message,) = smtp_server.messages
    assert (str(message["Subject"]), message["Content-Language"]) == (
        "Su hoja informativa de Example Aesthetics Clinic",
        "es",
    )
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hola, Ana:")
    assert "Your results: when they show and how long they last" in text  # the handout is in English
    assert '<html lang="es">' in message.get_body(("html",)).get_content()
    assert "Ana Idioma" not in str(message["Subject"])
    # The choice went in the form's body, never in an address.
    assert not [url for url in desk.requested if "mail_lang" in url or "Idioma" in url]
    # The next patient's form starts with the handouts' language again.
    assert choice.input_value() == ""


def test_the_status_page_follows_an_edit_and_survives_a_mistake(page, desk, shots):
    page.goto(desk.url + "/status")
    audit(page)
    row = page.locator("#doc-aftercare")
    topic = desk.root / "content/topics/aftercare.md"
    text = topic.read_text()
    version = page.locator("#status-summary").get_attribute("data-version")
    topic.write_text(text.replace("We may ask you to come back", "We will ask you to come back"))
    # No reload: the page swaps in the new status when the watcher has rebuilt the handout
    # (and its large print, the brochure and the tri-fold, which hold it too).
    page.wait_for_function(
        "(v) => { const s = document.querySelector('#status-summary');"
        " return s.dataset.version !== v && s.textContent.includes('4 rebuilt, 18 up to date'); }",
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
    page.locator("#go").click()
    page.locator("#errors").wait_for()
    page.wait_for_function("() => document.activeElement.id === 'errors'")  # the summary takes the focus
    assert "Patient name is required." in page.locator("#errors").inner_text()
    on_first_screen(page, "#errors, #go")
    audit(page)
    page.goto(desk.url + "/nothing-here")
    audit(page)


GOLDEN = REPO / "tests" / "golden" / "desk"
#: A screenshot is kept at half size; more than this share of changed pixels is a changed look (the
#: treatment date and follow-up on the preview change with the day, which stays well under it).
DESK_TOLERANCE = 0.01


def looks_as_it_did(page, name: str, shots: Path, hide: tuple[str, ...] = ()) -> None:  # noqa: ANN001
    """The page's screenshot against tests/golden/desk/NAME.png (made with `make golden`)."""
    from PIL import Image
    from test_golden import PIXEL_TOLERANCE, UPDATE, changed_share

    path = shots / f"golden-{name}.png"
    page.screenshot(path=path, mask=[page.locator(s) for s in hide], animations="disabled", caret="hide")
    with Image.open(path) as shot:
        small = shot.convert("RGB").resize((shot.width // 2, shot.height // 2), Image.Resampling.LANCZOS)
    golden = GOLDEN / f"{name}.png"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        small.quantize(64, method=Image.Quantize.MEDIANCUT).save(golden, optimize=True)
        return
    assert golden.is_file(), f"no golden picture {golden}: run 'make golden'"
    with Image.open(golden) as stored:
        share = changed_share(small, stored.convert("RGB"))
    assert share <= DESK_TOLERANCE, (
        f"the desk's {name} screen changed ({share:.2%} of pixels beyond {PIXEL_TOLERANCE}); "
        f"see {path}; if the change is meant, run 'make golden' and commit tests/golden/desk/"
    )


def test_the_main_screens_look_as_they_did(page, desk, cups_server, shots):
    """Golden screenshots at 1366x768: the handouts, the personalise step with its preview, the
    outcome of a print, and the repeat question."""
    page.goto(desk.url + "/")
    page.keyboard.type("aftercare")
    page.locator('.card[data-name="aftercare"] img').evaluate("i => i.decode()")
    looks_as_it_did(page, "handouts", shots)
    page.locator('.card[data-name="aftercare"]').get_by_role("button", name="Give").click()
    page.wait_for_function("() => document.activeElement.id === 'f-name'")
    page.keyboard.type("Gemma Golden")
    page.get_by_label("Dana Smith, RN").check()
    page.locator("#f-treatment").fill("Botox, forehead")
    wait_preview_with(page, "Name Gemma Golden")
    page.locator("#sheets img").first.evaluate("i => i.decode()")
    page.wait_for_function(
        "() => document.getElementById('preview-text').textContent.includes('Botox, forehead')"
    )
    hide = ("#f-treated_on", "#follow-up")
    looks_as_it_did(page, "personalise", shots, hide)
    page.keyboard.press("Enter")
    outcome(page)
    cups_server.queues["frontdesk"].wait_job()
    wait_preview_with(page, "Your treatment")  # the blank handout again, for the next patient
    page.locator("#sheets img").first.evaluate("i => i.decode()")
    looks_as_it_did(page, "printed", shots, hide)
    page.goto(desk.url + "/personalise?d=aftercare")
    page.locator("#f-name").fill("Gemma Golden")
    page.get_by_label("Dana Smith, RN").check()
    page.locator("#go").click()
    modal(page)
    looks_as_it_did(page, "repeat", shots, (*hide, "#again-title", "#again-text", "#sheets"))


def _email_with_follow_ups(page, desk, name: str, address: str) -> str:  # noqa: ANN001
    page.goto(desk.url + "/personalise?d=aftercare")
    page.locator("#f-name").fill(name)
    page.get_by_label("Luis Ortega, NP").check()
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("Patient's email address").fill(address)
    page.get_by_label("The address again").fill(address)
    page.get_by_label("The patient agreed to get it by unencrypted email").check()
    agreed = page.get_by_label("The patient agreed to follow-up emails")
    assert page.locator("#f-follow_ups-help").inner_text() == (
        "Day-1 check-in (day 1) and Review visit reminder (day 12) after the treatment, to this address, not encrypted."
    )
    agreed.check()
    page.locator("#go").click()
    return outcome(page).inner_text()


def test_follow_ups_due_today_are_listed_and_one_is_cancelled_at_the_desk(
    page, desk, smtp_server, shots, monkeypatch
):
    import datetime as dt

    from brochure.deliver import load_settings
    from brochure.deliver.followups import send_due
    from brochure.project.model import load_project

    smtp_server.reset()
    day0 = dt.datetime.now().astimezone().replace(hour=10, minute=0, second=0, microsecond=0)
    day1 = day0 + dt.timedelta(days=1)
    monkeypatch.setenv("BROCHURE_NOW", day0.isoformat())
    said = _email_with_follow_ups(page, desk, "Rosa Seguimiento", "rosa@example.org")
    assert f"Follow-up emails: Day-1 check-in on {day1:%A, %B} {day1.day}; Review visit reminder on " in said
    _email_with_follow_ups(page, desk, "Tomás Cancela", "tomas@example.org")
    # A patient who did not agree gets none.
    page.goto(desk.url + "/personalise?d=aftercare")
    page.locator("#f-name").fill("Una Sinaviso")
    page.get_by_label("Luis Ortega, NP").check()
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("Patient's email address").fill("una@example.org")
    page.get_by_label("The address again").fill("una@example.org")
    page.get_by_label("The patient agreed to get it by unencrypted email").check()
    page.locator("#go").click()
    assert "Follow-up emails" not in outcome(page).inner_text()

    monkeypatch.setenv("BROCHURE_NOW", day1.isoformat())
    page.goto(desk.url + "/today")
    section = page.get_by_role("region", name="Follow-ups due today")
    rows = section.locator("tbody tr")
    assert rows.count() == 2
    assert [r.split("\t")[:3] for r in rows.all_inner_texts()] == [
        ["Rosa Seguimiento", "Day-1 check-in", "Waiting to go"],
        ["Tomás Cancela", "Day-1 check-in", "Waiting to go"],
    ]
    audit(page)
    page.screenshot(path=shots / "follow-ups-due.png")
    section.get_by_role("button", name="Cancel the Day-1 check-in email for Tomás Cancela").click()
    dialog = modal(page)
    assert "The Day-1 check-in email to Tomás Cancela will not be sent." in dialog.inner_text()
    audit(page)
    page.screenshot(path=shots / "follow-up-cancel.png")
    dialog.get_by_label("The patient declined").check()
    dialog.get_by_role("button", name="Yes, cancel it").click()
    assert "Cancelled the Day-1 check-in email for Tomás Cancela." in page.locator("#outcome").inner_text()
    assert section.locator("tbody tr").all_inner_texts()[0].startswith("Rosa Seguimiento")
    assert section.locator("tbody tr").count() == 1

    # The server's round (run here in the test's process) sends Rosa's only.
    done = send_due(load_project(desk.root), load_settings())
    assert len(done.sent) == 1
    assert [m["To"] for m in smtp_server.messages if m["Subject"].startswith("How are you")] == [
        "rosa@example.org"
    ]
    page.goto(desk.url + "/today")
    assert page.get_by_role("region", name="Follow-ups due today").count() == 0
    # The reminders to come are listed too, so a rebooked visit's can be cancelled ahead of its day.
    page.get_by_text("Follow-ups in the next 14 days (2)").click()
    coming = page.get_by_role("region", name="Follow-ups in the next 14 days")
    assert [r.split("\t")[:2] for r in coming.locator("tbody tr").all_inner_texts()] == [
        ["Rosa Seguimiento", "Review visit reminder"],
        ["Tomás Cancela", "Review visit reminder"],
    ]
    audit(page)
    page.screenshot(path=shots / "follow-ups-coming.png")
    trail = (desk.root.parent / "record" / "audit.jsonl").read_text()
    assert "the patient declined" in trail
    assert "Tom" not in trail
    assert not [u for u in desk.requested if "Tom" in u or "Rosa" in u or "follow_ups=" in u]


def _draw(page, canvas, strokes: list[list[tuple[int, int]]]) -> None:  # noqa: ANN001
    """Sign on the pad with the mouse: each stroke a press, moves through its points (in the pad's own
    units), and a release."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    width, height = (int(canvas.get_attribute(a)) for a in ("width", "height"))
    for stroke in strokes:
        for n, (x, y) in enumerate(stroke):
            page.mouse.move(box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height)
            if n == 0:
                page.mouse.down()
        page.mouse.up()


def test_education_documented_after_a_print_with_a_drawn_signature(page, desk, cups_server, shots):
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    from brochure.deliver import Record, education, load_settings
    from brochure.deliver import audit as trail

    name = "Edda Teachback"
    _give(page, desk, name)
    page.locator("#go").click()
    assert f"for {name}." in outcome(page).inner_text()
    cups_server.queues["frontdesk"].wait_job()
    on_first_screen(page, "#outcome, #go")  # the panel comes under the outcome, not in its way
    page.screenshot(path=shots / "education-printed.png")
    panel = page.get_by_role("form", name="Education (optional)")
    assert panel.get_by_label("Printed").is_checked()  # it was printed: said already
    panel.get_by_label("Español").click()
    panel.get_by_label("Explained in person").click()
    panel.get_by_label("Voiced understanding").click()
    panel.get_by_role("button", name="Sign").click()
    canvas = panel.locator("canvas")
    strokes = [[(40, 150), (90, 60), (140, 150), (200, 70)], [(260, 120), (330, 100), (420, 130)]]
    _draw(page, canvas, strokes)
    audit(page)
    page.screenshot(path=shots / "education-signed.png")
    panel.get_by_role("button", name="Save education").click()
    said = outcome(page)
    assert re.fullmatch(rf"Education saved for {name}, given at \d\d:\d\d\.", said.inner_text().strip())
    # The record: the answers, and an SVG of the server's own with a path through the drawn points.
    with Record.open(load_settings()) as record:
        (delivery,) = record.search(name)
        kept = education.of(record, [delivery.id])[delivery.id]
    assert (kept.language, kept.methods, kept.teach_back, kept.acknowledged) == (
        "es",
        ("printed", "in-person"),
        "voiced",
        "signed",
    )
    root = ET.fromstring(kept.signature)
    paths = [p.get("d") for p in root.iter("{http://www.w3.org/2000/svg}path")]
    assert len(paths) == 2
    for d, stroke in zip(paths, strokes, strict=True):
        drawn = [(float(x), float(y)) for x, y in re.findall(r"[ML](\S+) (\S+)", d)]
        assert d.startswith("M")
        assert d.count("M") == 1
        assert len(drawn) == len(stroke)
        for (x, y), (want_x, want_y) in zip(drawn, stroke, strict=True):
            assert abs(x - want_x) <= 1.5, (d, stroke)
            assert abs(y - want_y) <= 1.5, (d, stroke)
    # Today shows what was documented, the signature drawn from the stored SVG.
    row = page.locator("table.today tr", has_text=name)
    assert "Español; printed, explained in person; voiced understanding; signed" in row.inner_text()
    signature = row.locator("img.signature")
    assert signature.evaluate("i => i.decode().then(() => i.naturalWidth)") == education.PAD_WIDTH
    audit(page)
    page.screenshot(path=shots / "education-today.png")
    # Changed later from Today: the row's button, in a dialog; the signature stays.
    row.get_by_role("button", name=re.compile("Change education: delivery at")).click()
    dialog = modal(page)
    assert dialog.get_by_label("Voiced understanding").is_checked()
    dialog.get_by_label("Needs review").click()
    audit(page)
    dialog.get_by_role("button", name="Save education").click()
    outcome(page)
    row = page.locator("table.today tr", has_text=name)
    assert "Español; printed, explained in person; needs review; signed" in row.inner_text()
    assert row.locator("img.signature").count() == 1
    # `brochure history`, the real command: the answers, the signature as "signed".
    shown = subprocess.run(
        [sys.executable, "-m", "brochure", "history", "--project", str(desk.root), "--patient", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in shown.splitlines() if name in line]
    assert line.startswith(f"{delivery.id} ")
    assert line.endswith("Spanish (es); printed, explained in person; needs review; signed")
    assert "<svg" not in shown
    # The trail: a line per save, for the delivery's row, with no signature and no patient detail.
    settings = load_settings()
    lines = [e for e in trail.entries(settings) if e.event == "education" and e.record == delivery.id]
    assert [e.detail for e in lines] == [
        "method printed+in-person; teach-back voiced; signed",
        "method printed+in-person; teach-back needs-review; signed",
    ]
    assert trail.verify(settings)[1] == []
    written = trail.trail_file(settings).read_text()
    for secret in (name, "Teachback", "<svg", paths[0]):
        assert secret not in written
    no_patient_detail_leaked(desk)
    assert not [url for url in desk.requested if "Teachback" in url or "strokes" in url]
