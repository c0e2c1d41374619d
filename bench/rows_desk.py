"""Benchmark rows for `brochure desk`: bench/run.py imports this module and calls rows(context).

The desk runs in this process on a free loopback port, over the sample
copy the benchmark gives us, with its watcher, as `brochure desk` runs it;
it renders through the benchmark's warm render server. The page is timed
as a person sees it: in Chromium (when it is installed) and over HTTP.
Printing goes to a private CUPS scheduler (tests/servers.py), when cupsd
is installed.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BROCHURE_CHROMIUM") or "/usr/bin/chromium"
PATIENT = {
    "name": "Ana García",
    "treated_on": "",
    "injector": "Dana Smith",
    "treatment": "Botox",
    "note": "20 units, forehead",
}


class Client:
    """A browser-like HTTP client: keeps the desk's session cookie and its form token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.token = ""

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=60) as response:
            html = response.read().decode()
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        self.token = found.group(1) if found else self.token
        return html

    def post(self, path: str, fields: dict[str, str | list[str]]) -> str:
        data = urllib.parse.urlencode({**fields, "csrf_token": self.token}, doseq=True).encode()
        with self.opener.open(self.url + path, data=data, timeout=60) as response:
            return response.read().decode()


def timed(action: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def rows(context) -> list[dict]:  # noqa: ANN001 - bench/run.py's Context
    """The desk's five rows: first paint, preview, print, a saved topic on the status page, and a
    keystroke to the live preview."""
    from werkzeug.serving import make_server

    from brochure.web.app import create_app

    runs = max(5, context.runs * 3)
    found: list[dict] = []
    with ExitStack() as stack:
        saved = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        settings = context.work / "settings.toml"
        settings.write_text(f'[record]\npath = "{context.work / "record.sqlite"}"\n')
        os.environ.update({k: v for k, v in context.env.items() if k.startswith(("BROCHURE_", "CUPS_"))})
        os.environ["BROCHURE_SETTINGS"] = str(settings)
        queue = _cups(stack)
        app = create_app(context.sample, watch=True)
        live = app.extensions["desk"]
        with live.changes:
            live.changes.wait_for(lambda: live.snapshot().last_build is not None, 300)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.shutdown)
        url = f"http://127.0.0.1:{server.port}"
        browser = _browser(stack)

        found.append(_first_paint(browser, url, runs))
        client = Client(url)
        client.get("/personalise?d=aftercare")
        form = {**PATIENT, "d": ["aftercare"], "action": "preview"}
        client.post("/personalise", form)  # the first one warms what is cold
        times = timed(lambda: client.post("/personalise", form), runs)
        found.append(_row("personalised preview after the form is sent", times, 0.300, "<= 300 ms"))
        if queue is None:
            found.append({"what": "print click to the job queued in CUPS", "measured": "no cupsd here"})
        else:
            printing = {**form, "action": "print", "printer": queue.name, "again": "yes"}
            client.post("/personalise", printing)
            queue.wait_job()

            def print_one() -> None:
                html = client.post("/personalise", printing)
                assert "Printed 1 copy" in html, "printing failed"

            times = []
            for _ in range(runs):
                times += timed(print_one, 1)
                queue.wait_job()
            found.append(_row("print click to the job queued in CUPS", times, 0.500, "<= 500 ms"))
        found.append(_saved_topic(browser, url, context.sample, live, runs))
        found.append(_keystroke(browser, url, runs))
    return found


def _keystroke(browser, url: str, runs: int) -> dict:  # noqa: ANN001
    """A key pressed in the patient's name field, to the live preview showing the name with it, as
    the page measures it (from the key down to the next frame after the new picture is decoded)."""
    what = "keystroke in the name field to the preview showing it (warm server)"
    if browser is None:
        return {"what": what, "measured": "no Chromium or Playwright here"}
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(url + "/personalise?d=aftercare")
    page.get_by_label("Dana Smith, RN").check()
    name = "Ana"
    page.locator("#f-name").fill(name)
    page.wait_for_function("() => document.getElementById('preview-text').textContent.includes('Name Ana')")
    times = []
    for letter in "bcdefghijklmnopqrstuvwxyz"[: runs + 1]:
        name += letter
        page.evaluate(
            """(name) => {
              const field = document.getElementById('f-name');
              const text = document.getElementById('preview-text');
              window.__shown = new Promise((done) => {
                let start = 0;
                field.addEventListener('keydown', () => { start = performance.now(); }, { once: true });
                const watch = new MutationObserver(async () => {
                  if (!text.textContent.includes('Name ' + name)) return;
                  watch.disconnect();
                  await document.querySelector('#sheets img').decode();
                  requestAnimationFrame(() => done(performance.now() - start));
                });
                watch.observe(text, { childList: true, subtree: true, characterData: true });
              });
            }""",
            name,
        )
        page.locator("#f-name").press(letter)
        elapsed = page.evaluate("() => window.__shown")
        if letter != "b":  # the first one warms what is cold
            times.append(elapsed / 1000)
    page.close()
    return _row(what, times, 0.300, "<= 300 ms")


def _row(what: str, times: list[float], limit: float, target: str) -> dict:
    median = statistics.median(times)
    measured = f"p50 of {len(times)}, max {ms(max(times))}"
    return {
        "what": what,
        "measured": measured,
        "result": ms(median),
        "target": target,
        "met": median <= limit,
    }


def _cups(stack: ExitStack):  # noqa: ANN202 - servers.Queue or None
    """A private cupsd with one file-backed queue, as the tests start it; None when cupsd is missing."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        import servers
    except ImportError:
        return None
    if servers.cupsd_path() is None or not servers.GENERIC_PDF_PPD.is_file():
        return None
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="brochure-bench-cups-"))
    root.chmod(0o755)  # CUPS filters run as user lp
    cups = servers.CupsServer(root, servers.free_port())
    cups.start()
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    stack.callback(cups.stop)
    os.environ["CUPS_SERVER"] = cups.address
    return cups.add_queue("bench")


def _browser(stack: ExitStack):  # noqa: ANN202 - a Playwright Browser, or None
    if not os.access(CHROMIUM, os.X_OK):
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    playwright = stack.enter_context(sync_playwright())
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    stack.callback(browser.close)
    return browser


def _first_paint(browser, url: str, runs: int) -> dict:  # noqa: ANN001
    what = "handouts page, thumbnails cached: first paint"
    if browser is None:
        return {"what": what, "measured": "no Chromium or Playwright here"}
    paints = []
    for index in range(runs + 1):
        page = browser.new_page()  # a fresh page each time: nothing in the browser's memory cache
        page.goto(url + "/", wait_until="load")
        paint = page.evaluate(
            "() => new Promise(done => new PerformanceObserver((list, observer) => {"
            " const fcp = list.getEntriesByName('first-contentful-paint')[0];"
            " if (fcp) { observer.disconnect(); done(fcp.startTime); } })"
            ".observe({type: 'paint', buffered: true}))"
        )
        page.close()
        if index:  # the first one fills the thumbnail cache
            paints.append(paint / 1000)
    return _row(what, paints, 0.200, "<= 200 ms")


def _settled(live, page) -> str:  # noqa: ANN001
    """Wait until the desk is idle (the check after a build included) and the page shows it; its version."""
    version = -1
    while version != live.version:
        version = live.version
        time.sleep(0.5)
    if page is not None:
        page.wait_for_function(
            "(v) => document.querySelector('#status-summary').dataset.version === v", arg=str(version)
        )
    return str(version)


def _saved_topic(browser, url: str, root: Path, live, runs: int) -> dict:  # noqa: ANN001
    """From saving a topic to the status page showing its handout rebuilt (in the browser, if any).

    The issue's measure is the handout: its row on the page says "rebuilt".
    The rest of the build (its large print and the brochure, which take longer)
    goes on after that; the time until the page says the whole build is done
    is shown beside it, for comparison.
    """
    what = "saved topic to the status page showing it rebuilt"
    topic = root / "content/topics/aftercare.md"
    original = topic.read_text()
    page = browser.new_page() if browser is not None else None
    if page is not None:
        page.goto(url + "/status")
    times, settled = [], []
    try:
        for index in range(runs):
            _settled(live, page)
            before = live.snapshot().last_build
            started, wall = time.perf_counter(), time.time()
            topic.write_text(original.replace("We may ask you", f"We may ask you ({index})"))
            if page is not None:
                page.wait_for_function(
                    "(w) => { const row = document.querySelector('#doc-aftercare');"
                    " return row.dataset.state === 'rebuilt' && Number(row.dataset.when) >= w; }",
                    arg=wall,
                    timeout=60_000,
                )
                times.append(time.perf_counter() - started)
                page.wait_for_function(
                    "() => !document.querySelector('#status-summary').textContent.includes('Building')",
                    timeout=60_000,
                )
            else:
                with live.changes:
                    live.changes.wait_for(
                        lambda w=wall: (
                            (d := live.snapshot().docs.get("aftercare")) is not None
                            and d.state == "rebuilt"
                            and (d.when or 0) >= w
                        ),
                        60,
                    )
                times.append(time.perf_counter() - started)
                with live.changes:
                    live.changes.wait_for(lambda b=before: (live.snapshot().last_build or 0) > (b or 0), 60)
            settled.append(time.perf_counter() - started)
    finally:
        topic.write_text(original)
        _settled(live, None)  # the rebuild this causes ends before the benchmark goes on
        if page is not None:
            page.close()
    row = _row(what, times, 1.0, "<= 1 s")
    row["measured"] += f"; whole build shown done: p50 {ms(statistics.median(settled))}"
    row["measured"] += "" if page else " (no browser: the desk's own status)"
    return row
