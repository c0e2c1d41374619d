"""Benchmark rows for `brochure serve`: bench/run.py imports this module and calls rows(context).

The clinic server runs as its own process (`brochure serve`), over HTTPS
with the certificate it makes for itself, on the benchmark's sample copy,
rendering through the benchmark's warm render server. Its first build is
left to finish before anything is timed.

- sign-in to first paint: in Chromium, from the sign-in form being sent to
  the first paint of the Handouts page (the password check, the redirect
  and the page: the Handouts page's navigation timing, which starts at the
  POST), each time in a fresh browser context;
- three desks at once: three staff signed in, each sending the patient
  form for a preview at the same moment (a barrier per round); the p95 of
  every preview's time.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import math
import os
import re
import ssl
import statistics
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("BROCHURE_CHROMIUM") or "/usr/bin/chromium"
STAFF = [("Dana Bench", "dana-bench-1"), ("Eli Bench", "eli-bench-2"), ("Fay Bench", "fay-bench-3")]
EDITOR = ("Ed Bench", "ed-bench-4")
ROUNDS = 20


class Desk:
    """One desk's browser over HTTPS: its session cookie and its form token."""

    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=context),
        )
        self.token = ""

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=120) as response:
            html = response.read().decode()
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        self.token = found.group(1) if found else self.token
        return html

    def post(self, path: str, fields: dict) -> str:
        data = urllib.parse.urlencode({**fields, "csrf_token": self.token}, doseq=True).encode()
        with self.opener.open(self.url + path, data=data, timeout=120) as response:
            html = response.read().decode()
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        self.token = found.group(1) if found else self.token
        return html

    def sign_in(self, name: str, password: str) -> None:
        self.get("/signin")
        page = self.post("/signin", {"name": name, "password": password})
        assert f"Signed in as <strong>{name}</strong>" in page, "sign-in failed"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def rows(context) -> list[dict]:  # noqa: ANN001 - bench/run.py's Context
    from brochure.deliver import accounts
    from brochure.deliver.settings import load_settings

    settings_file = context.work / "settings.toml"
    settings_file.write_text(f'[record]\npath = "{context.work / "private" / "deliveries.sqlite"}"\n')
    env = {**context.env, "BROCHURE_SETTINGS": str(settings_file)}
    saved = os.environ.get("BROCHURE_SETTINGS")
    os.environ["BROCHURE_SETTINGS"] = str(settings_file)
    try:
        settings = load_settings()
        for name, password in STAFF:
            accounts.add(settings, name, "front-desk", password)
        accounts.add(settings, EDITOR[0], "editor", EDITOR[1])
    finally:
        if saved is None:
            os.environ.pop("BROCHURE_SETTINGS", None)
        else:
            os.environ["BROCHURE_SETTINGS"] = saved
    command = [*context.brochure, "serve", "--project", str(context.sample), "--bind", "127.0.0.1:0"]
    command += ["--host-name", "localhost"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        port = int(re.search(r"https://localhost:(\d+)/", lines[0]).group(1))
        root = lines[2].split(": ", 1)[1].strip()
        threading.Thread(target=process.stdout.read, daemon=True).start()
        url = f"https://localhost:{port}"
        tls = ssl.create_default_context(cafile=root)
        _built(url, tls, context.sample)
        return [_sign_in_paint(url, context.work / "private" / "tls"), _three_desks(url, tls)]
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def _built(url: str, tls: ssl.SSLContext, sample: Path) -> None:
    """Wait for the server's first build (and its check) to end: the editor's status page says so."""
    editor = Desk(url, tls)
    editor.sign_in(*EDITOR)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        table = editor.get("/status/table")
        if "Building" not in table and 'data-state="waiting"' not in table and (sample / "out").is_dir():
            time.sleep(2)  # the check after the build
            return
        time.sleep(0.5)
    raise TimeoutError("the clinic server's first build did not end")


def _sign_in_paint(url: str, tls_folder: Path) -> dict:
    what = "clinic server: sign-in sent to the Handouts page's first paint"
    if not os.access(CHROMIUM, os.X_OK):
        return {"what": what, "measured": "no Chromium here"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"what": what, "measured": "no Playwright here"}
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    leaf = x509.load_pem_x509_certificates((tls_folder / "server.crt").read_bytes())[0]
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    runs = 11
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", f"--ignore-certificate-errors-spki-list={pin}"]
        )
        try:
            for index in range(runs + 1):
                name, password = STAFF[index % len(STAFF)]
                page = browser.new_context().new_page()
                page.goto(url + "/signin")
                page.fill("#name", name)
                page.fill("#password", password)
                page.click("button[type=submit]")
                page.wait_for_url(url + "/")
                # The new page's clock starts when the form is sent: its navigation includes the
                # POST and the redirect (same origin), so the first paint's time is the whole wait.
                painted, redirects = page.evaluate(
                    "() => new Promise(done => new PerformanceObserver((list, observer) => {"
                    " const fcp = list.getEntriesByName('first-contentful-paint')[0];"
                    " const nav = performance.getEntriesByType('navigation')[0];"
                    " if (fcp) { observer.disconnect(); done([fcp.startTime, nav.redirectCount]); } })"
                    ".observe({type: 'paint', buffered: true}))"
                )
                assert redirects == 1, "the time must start at the sign-in form's POST"
                page.context.close()
                if index:  # the first one warms the thumbnails and the password hasher
                    times.append(painted / 1000)
        finally:
            browser.close()
    median = statistics.median(times)
    return {
        "what": what,
        "measured": f"p50 of {len(times)}, max {ms(max(times))}",
        "result": ms(median),
        "target": "<= 300 ms",
        "met": median <= 0.300,
    }


def _three_desks(url: str, tls: ssl.SSLContext) -> dict:
    what = f"clinic server: 3 desks previewing at the same moment, {ROUNDS} rounds"
    desks = []
    for name, password in STAFF:
        desk = Desk(url, tls)
        desk.sign_in(name, password)
        desk.get("/personalise?d=aftercare")
        desks.append(desk)
    barrier = threading.Barrier(len(desks))
    times: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def run(index: int, desk: Desk) -> None:
        for round_ in range(ROUNDS + 1):
            form = {
                "d": ["aftercare"],
                "action": "preview",
                "name": f"Patient {'ABC'[index]}{round_}",
                "treated_on": "",
                "injector": "Dana Smith",
                "treatment": "Botox",
                "note": "20 units",
            }
            barrier.wait()
            started = time.perf_counter()
            try:
                html = desk.post("/personalise", form)
            except Exception as exc:  # noqa: BLE001 - counted as a failure of the row
                with lock:
                    failures.append(type(exc).__name__)
                continue
            took = time.perf_counter() - started
            if 'class="preview"' not in html:
                with lock:
                    failures.append("no preview")
            elif round_:  # the first round warms each desk's path
                with lock:
                    times.append(took)

    threads = [threading.Thread(target=run, args=(i, d)) for i, d in enumerate(desks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures or not times:
        return {"what": what, "measured": f"failed: {failures[:3]}", "met": False}
    times.sort()
    p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
    return {
        "what": what,
        "measured": f"p95 of {len(times)}, p50 {ms(statistics.median(times))}, max {ms(times[-1])}",
        "result": ms(p95),
        "target": "p95 <= 500 ms",
        "met": p95 <= 0.500,
    }
