"""The desk's pages through Flask's test client: handouts, thumbnails, content status and safeguards."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import build_ok, copy_sample
from PIL import Image

import brochure.web
from brochure.build.run import build_summary
from brochure.cli.main import cli
from brochure.project.model import load_project
from brochure.web.app import create_app
from brochure.web.live import Live

HOST = {"Host": "127.0.0.1:8765"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project, built once for this module."""
    root = copy_sample(tmp_path_factory.mktemp("desk") / "clinic")
    build_ok(root)
    return root


def settled(root: Path) -> Live:
    """The desk's status after one real build, as the watcher would leave it."""
    live = Live(root)
    live.built(build_summary(load_project(root), root / "out"), None)
    return live


@pytest.fixture
def client(sample: Path):
    app = create_app(sample, watch=False, live=settled(sample))
    return app.test_client()


def links(html: str) -> list[str]:
    """Every URL a page points to: links, sources, form actions."""
    return [u.replace("&amp;", "&") for u in re.findall(r'(?:href|src|action)="([^"]*)"', html)]


# -- the handouts page ---------------------------------------------------------


def test_handouts_page_shows_one_card_per_topic_with_its_thumbnail_grouped_by_treatment(client, sample):
    page = client.get("/", headers=HOST)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.findall(r"<h2 id=\"group-\d\">([^<]+)</h2>", html) == ["Botox", "Brochures"]
    names = re.findall(r'<li class="card" data-name="([^"]+)"', html)
    assert sorted(names) == sorted(p.stem for p in (sample / "out").glob("*.pdf"))
    # Each handout has a Give button and can be added to a packet; the brochure is only opened.
    gives = re.findall(r'<button type="submit" name="give" value="([^"]+)"', html)
    picks = re.findall(r'type="checkbox" name="t" value="([^"]+)"', html)
    assert sorted(gives) == sorted(picks) == sorted(n for n in names if n != "brochure")
    assert client.get("/documents/brochure.pdf", headers=HOST).data.startswith(b"%PDF-")
    thumbs = [u for u in links(html) if u.startswith("/thumbs/")]
    assert len(thumbs) == len(names)
    # Each thumbnail is the first page of the handout's PDF, a real picture.
    picture = client.get(thumbs[0], headers=HOST)
    assert picture.mimetype == "image/png"
    image = Image.open(io.BytesIO(picture.data))
    assert image.width == 192
    assert 1.2 < image.height / image.width < 1.4  # a Letter page
    assert "immutable" in picture.headers["Cache-Control"]
    assert "What Botox is and how it works" in html
    # The search box has the focus when the page opens.
    assert re.search(r'<input id="q"[^>]* autofocus', html)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        # A keyword (the brochure holds every topic, so it has their keywords too)
        ("bruising", ["aftercare", "brochure", "side-effects"]),
        ("BOTOX guide treatment", ["brochure"]),  # words of the title, any case
        ("mild go away", ["side-effects"]),  # the summary
        ("crow's", ["brochure", "treatment-areas"]),
        ("nothing-like-this", []),
    ],
)
def test_search_looks_in_titles_summaries_treatments_and_keywords(client, query, found):
    html = client.get("/", query_string={"q": query}, headers=HOST).get_data(as_text=True)
    assert sorted(re.findall(r'<li class="card" data-name="([^"]+)"', html)) == found
    if not found:
        assert "No handout matches" in html


def test_search_keeps_handouts_already_picked(client):
    html = client.get("/", query_string={"q": "bruising", "d": ["results"]}, headers=HOST).get_data(
        as_text=True
    )
    assert '<input type="hidden" name="d" value="results">' in html


def test_a_search_ignores_accents(sample):
    from brochure.web.catalog import Entry, matches

    entry = Entry("x", "Soins après le traitement", "", "handout", ("Bótox",), ("café",))
    assert matches(entry, "apres botox cafe")
    assert matches(entry, "APRÈS")
    assert not matches(entry, "aftercare")


def cards_of(html: str) -> dict[str, list[tuple[str, str]]]:
    """Each card's topic, with its versions' (document name, label) from the card's choices."""
    found = re.findall(r'<li class="card" data-name="([^"]+)"(.*?)</li>', html, re.S)
    return {
        name: re.findall(
            r'<input type="radio" name="v-[^"]+" value="([^"]+)"[^>]*> ([^<]+?)\s*</label>', body
        )
        for name, body in found
    }


def test_one_card_per_topic_offers_its_languages_and_large_print(tmp_path):
    # The sample with its translations and large print, not built: the page lists what the project makes.
    root = copy_sample(tmp_path / "clinic", variants=True)
    client = create_app(root, watch=False).test_client()
    html = client.get("/", headers=HOST).get_data(as_text=True)
    cards = cards_of(html)
    assert "aftercare.es" not in cards
    assert "aftercare.large" not in cards
    assert cards["aftercare"] == [
        ("aftercare", "English"),
        ("aftercare.large", "English, large print"),
        ("aftercare.es", "Español"),
        ("aftercare.es.large", "Español, large print"),
    ]
    assert re.search(r'value="aftercare" checked> English', html)  # the project's language first
    # Staff find a topic by the title of any of its versions, and by language, in English or in the language.
    for query in ("spanish", "ESPAÑOL", "espanol", "cuidados despues", "large print"):
        shown = cards_of(client.get("/", query_string={"q": query}, headers=HOST).get_data(as_text=True))
        assert "aftercare" in shown, query
    shown = cards_of(client.get("/?q=spanish", headers=HOST).get_data(as_text=True))
    assert "results" not in shown  # no Spanish version


def test_give_and_the_packet_open_the_versions_chosen_on_the_cards(tmp_path):
    client = create_app(copy_sample(tmp_path / "clinic", variants=True), watch=False).test_client()
    answer = client.get("/personalise?give=aftercare&v-aftercare=aftercare.large", headers=HOST)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/personalise?d=aftercare.large"
    answer = client.get("/personalise?give=aftercare&v-aftercare=results", headers=HOST)  # not its version
    assert answer.headers["Location"] == "/personalise?d=aftercare"
    answer = client.get(
        "/personalise?packet=yes&t=results&t=aftercare&v-aftercare=aftercare.large&d=side-effects",
        headers=HOST,
    )
    assert answer.headers["Location"] == "/personalise?d=side-effects&d=results&d=aftercare.large"
    assert client.get("/personalise?packet=yes", headers=HOST).status_code == 404
    assert client.get("/personalise?give=nothing", headers=HOST).status_code == 404


def test_thumbnails_are_cached_by_the_pdf_content(sample):
    from brochure.web import pages

    out = sample / "out"
    first = pages.thumbnail(out, sample, "results")
    cached = list((out / pages.CACHE).glob("*.png"))
    assert cached
    # The picture comes from the cache while the PDF is unchanged ...
    marker = next(p for p in cached if p.read_bytes() == first)
    marker.write_bytes(b"cached")
    assert pages.thumbnail(out, sample, "results") == b"cached"
    marker.write_bytes(first)
    # ... and unknown documents have none.
    assert pages.thumbnail(out, sample, "no-such-handout") is None


def test_a_thumbnail_follows_its_pdf_when_the_pdf_is_written_again(sample):
    from brochure.web import pages

    out = sample / "out"
    pdf = out / pages.built(out, sample)["results"].file
    original = pdf.read_bytes()
    first = pages.thumbnail(out, sample, "results")
    other = pages.thumbnail(out, sample, "aftercare")
    assert first != other
    try:
        # Written in place, as an editor's tool might: the thumbnail must not come from memory.
        pdf.write_bytes((out / pages.built(out, sample)["aftercare"].file).read_bytes())
        assert pages.thumbnail(out, sample, "results") == other
    finally:
        pdf.write_bytes(original)
    assert pages.thumbnail(out, sample, "results") == first


def test_a_thumbnail_for_an_unknown_document_is_404_and_not_a_path(client):
    assert client.get("/thumbs/nothing.png", headers=HOST).status_code == 404
    assert client.get("/thumbs/..%2f..%2fetc%2fpasswd.png", headers=HOST).status_code == 404


# -- safeguards -----------------------------------------------------------------


def test_a_foreign_host_header_is_refused(client):
    for host in ("evil.example", "evil.example:8765", "192.168.1.5:8765", "127.0.0.1.evil.example"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 400, host
        assert "Handouts" not in response.get_data(as_text=True)
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_a_caller_from_another_machine_is_refused(client):
    response = client.get("/", headers=HOST, environ_base={"REMOTE_ADDR": "192.168.1.20"})
    assert response.status_code == 403


def test_a_post_without_the_token_is_refused(client):
    for data in ({"d": "aftercare", "name": "Ana"}, {"d": "aftercare", "csrf_token": "guess"}):
        response = client.post("/personalise", data=data, headers=HOST)
        assert response.status_code == 400
        assert "This form has expired" in response.get_data(as_text=True)


def test_a_post_from_another_site_is_refused(client):
    client.get("/", headers=HOST)
    response = client.post(
        "/personalise",
        data={"d": "aftercare"},
        headers={**HOST, "Origin": "http://evil.example"},
    )
    assert response.status_code == 403


def test_every_page_has_a_strict_policy_and_is_not_kept_by_the_browser(client):
    for url in ("/", "/status", "/status/table", "/nothing-here"):
        response = client.get(url, headers=HOST)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["Cache-Control"] == "no-store", url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    style = client.get("/static/desk.css", headers=HOST)
    assert style.status_code == 200
    assert style.headers["Cache-Control"] != "no-store"


def test_pages_hold_no_inline_script_and_only_the_hashed_stylesheet(client):
    """The policy forbids inline script, and allows one inline stylesheet by its hash: the page's own,
    written in so the first paint waits for no second request. Anything else would silently not work."""
    for url in ("/", "/status"):
        response = client.get(url, headers=HOST)
        html = response.get_data(as_text=True)
        assert "<script>" not in html
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
        assert " style=" not in html
        assert re.search(r"\son[a-z]+=", html) is None
        styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
        assert len(styles) == 1
        assert styles[0] == (Path(brochure.web.__file__).parent / "static/desk.css").read_text()
        digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
        policy = response.headers["Content-Security-Policy"]
        assert f"style-src 'self' 'sha256-{digest}';" in policy
        assert "unsafe-inline" not in policy


def test_an_unexpected_error_shows_no_stack_trace_and_logs_no_detail(sample, caplog):
    app = create_app(sample, watch=False, live=settled(sample))

    def boom() -> str:
        raise RuntimeError("Ana Nuñez 1980-02-03")

    app.add_url_rule("/boom", view_func=boom)
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().get("/boom", headers=HOST)
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    for secret in ("Traceback", "RuntimeError", "Nuñez"):
        assert secret not in html
    assert "Something went wrong" in html
    assert "Nuñez" not in caplog.text
    assert "RuntimeError" in caplog.text  # where it happened is logged, not what it said


# -- the content status ---------------------------------------------------------


def _grow(path: Path, share: float) -> None:
    """Make a topic longer by ``share`` of its body, repeating its own paragraphs (no new headings,
    which every document's links depend on)."""
    head, body = path.read_text().split("\n---\n", 1)
    blocks = [b for b in body.strip().split("\n\n") if not b.startswith("#")]
    extra: list[str] = []
    while sum(len(b) for b in extra) < share * len(body):
        extra.append(blocks[len(extra) % len(blocks)])
    path.write_text(head + "\n---\n" + body.rstrip() + "\n\n" + "\n\n".join(extra) + "\n")


def test_status_shows_rebuilt_failed_and_fitted_documents_and_the_checks_findings(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    build_ok(root)
    _grow(root / "content/topics/unwanted-results.md", 0.30)
    side = root / "content/topics/side-effects.md"
    side.write_text(side.read_text() + "\n" + "More words for the page. " * 900 + "\n")
    results = root / "content/topics/results.md"
    results.write_text(re.sub(r"review_due: .*", "review_due: 2020-01-01", results.read_text()))
    live = settled(root)
    app = create_app(root, watch=False, live=live)
    html = app.test_client().get("/status", headers=HOST).get_data(as_text=True)
    rows = dict(re.findall(r'<tr id="doc-([a-z-]+)" data-state="([a-z ]+)"', html))
    assert rows["unwanted-results"] == "rebuilt"
    assert rows["side-effects"] == "failed"
    assert rows["aftercare"] == "up to date"
    assert re.search(r"fitted by auto-fit at \d+(\.\d+)? pt", html)
    assert "does not fit on 1 page" in html
    assert "content/topics/side-effects.md" in html
    # The check's findings.
    assert (
        "<td>Error</td><td><code>content/topics/results.md:8</code></td>"
        "<td>medical review was due on 2020-01-01 and is overdue</td>" in html
    )


def test_a_broken_topic_shows_its_error_and_keeps_the_last_state(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    build_ok(root)
    live = settled(root)
    topic = root / "content/topics/aftercare.md"
    topic.write_text(topic.read_text().replace('title: "Aftercare', "title: Aftercare: oops", 1))
    from brochure.base.errors import BrochureError

    with pytest.raises(BrochureError) as caught:
        load_project(root)
    live.built(None, caught.value)
    client = create_app(root, watch=False, live=live).test_client()
    html = client.get("/status/table", headers=HOST).get_data(as_text=True)
    assert "The last change stopped the build" in html
    assert "content/topics/aftercare.md:2: front matter is not valid YAML" in html
    assert html.count('data-state="up to date"') == 8
    # The handouts page still shows the handouts last read, with the problem.
    assert client.get("/", headers=HOST).status_code == 200


def test_the_watcher_updates_the_status_after_a_saved_change(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    app = create_app(root, watch=True)
    live: Live = app.extensions["desk"]
    client = app.test_client()

    def until(state: str, name: str, after: float | None = None) -> str:
        deadline = time.monotonic() + 60  # a hang guard, not a timing check
        while time.monotonic() < deadline:
            built = live.snapshot().last_build
            newer = built is not None and (after is None or built > after)
            html = client.get("/status/table", headers=HOST).get_data(as_text=True)
            if f'<tr id="doc-{name}" data-state="{state}"' in html and newer:
                return html
            live.wait(live.version, 1.0)
        raise AssertionError(f"{name} never became {state!r}")

    until("rebuilt", "aftercare")
    first = live.snapshot().last_build
    topic = root / "content/topics/aftercare.md"
    topic.write_text(topic.read_text().replace("We may ask you to come back", "We will ask you back"))
    html = until("rebuilt", "aftercare", after=first)
    assert 'data-state="up to date"' in html  # the others were not touched
    # A mistake shows its error; the page and the watcher go on.
    topic.write_text(topic.read_text().replace('title: "Aftercare', "title: Aftercare: oops", 1))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not live.snapshot().problems:
        live.wait(live.version, 1.0)
    html = client.get("/status/table", headers=HOST).get_data(as_text=True)
    assert "content/topics/aftercare.md:2: front matter is not valid YAML" in html


def test_the_event_stream_says_when_the_status_changes(sample):
    live = settled(sample)
    app = create_app(sample, watch=False, live=live)
    response = app.test_client().get("/status/events", headers=HOST, buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert next(chunks) == f"retry: 1000\ndata: {live.version}\n\n".encode()
    live.changed(["content/topics/aftercare.md"])
    assert next(chunks) == f"data: {live.version}\n\n".encode()
    response.close()


# -- the command -------------------------------------------------------------


def test_desk_help_has_an_example():
    result = CliRunner().invoke(cli, ["desk", "--help"])
    assert result.exit_code == 0
    assert "Example:\n      brochure desk\n" in result.stdout
    assert "127.0.0.1" in result.stdout


def test_desk_outside_a_project_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["desk", "--project", str(tmp_path), "--no-browser"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path}: is not a brochure project: it has no content/ folder "
        "(run the command in your project folder, or pass --project DIR)\n"
    )


def test_desk_on_a_port_in_use_says_so(sample):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["desk", "--project", str(sample), "--no-browser", "--port", str(port)]
        )
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: port {port} is in use (is the desk already open at http://127.0.0.1:{port}/ ?) "
        "(open that address, or choose another port with --port)\n"
    )


def test_brochure_desk_serves_on_loopback_and_stops_on_ctrl_c(sample):
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from servers import free_port

    port = free_port()
    desk = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brochure",
            "desk",
            "--project",
            str(sample),
            "--no-browser",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert desk.stdout.readline() == f"Front desk at http://127.0.0.1:{port}/ (Ctrl-C to stop)\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60) as page:
            assert "<h1>Handouts</h1>" in page.read().decode()
        foreign = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(foreign, timeout=60)
        assert refused.value.code == 400
    finally:
        desk.send_signal(signal.SIGINT)
        out, err = desk.communicate(timeout=60)
    assert desk.returncode == 0, err
    assert out == "Stopped.\n"


def test_a_broken_project_gives_its_message_not_an_error_page(tmp_path):
    root = copy_sample(tmp_path / "clinic")
    (root / "content/brand.toml").write_text("clinic_name = [\n")
    client = create_app(root, watch=False).test_client()
    response = client.get("/personalise", query_string={"d": "aftercare"}, headers=HOST)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "content/brand.toml" in html
    assert "Traceback" not in html
