"""The desk's pages for everyone: the handouts to pick from, and the content status for the editor."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)

from brochure.base.errors import BrochureError
from brochure.document.messages import long_date
from brochure.web import catalog, pages, signin
from brochure.web.live import Live

handouts = Blueprint("handouts", __name__)
status = Blueprint("status", __name__)

#: How often the event stream says it is still there when nothing changes (seconds).
KEEP_ALIVE = 15.0


def register(app: Flask) -> None:
    """Add every page to the app."""
    from brochure.web import desk

    app.register_blueprint(handouts)
    app.register_blueprint(status)
    app.register_blueprint(desk.bp)
    app.jinja_env.filters["clock"] = lambda t: time.strftime("%H:%M:%S", time.localtime(t)) if t else ""
    app.jinja_env.filters["long_date"] = lambda day: long_date(day, "en", "full")


def live() -> Live:
    return current_app.extensions["desk"]


@handouts.get("/")
def index() -> str:
    """One card per topic with its thumbnail and versions, grouped by treatment; a search; a packet."""
    desk = live()
    query = request.args.get("q", "")[:200]
    problems: list[str] = []
    groups: list[tuple[str, list[catalog.Card]]] = []
    total = 0
    try:
        project = desk.project()
    except BrochureError as exc:
        problems = [str(p) for p in exc.problems]
    else:
        found = catalog.entries(project)
        total = len(catalog.cards(found))
        groups = catalog.grouped(found, query)
    versions = {name: entry.sha256[:16] for name, entry in pages.built(desk.out, desk.root).items()}
    picked = list(dict.fromkeys(request.args.getlist("d")))
    shown = {v.name for _group, cards in groups for card in cards for v in card.versions}
    return render_template(
        "handouts.html",
        groups=groups,
        query=query,
        total=total,
        versions=versions,
        problems=problems,
        shown=sum(len(cards) for _group, cards in groups),
        picked=set(picked),
        hidden_picks=[name for name in picked if name not in shown],
    )


@handouts.get("/thumbs/<name>.png")
def thumbnail(name: str) -> Response:
    """The first page of out/NAME.pdf, small; cached by the browser while its PDF stays the same."""
    desk = live()
    png = pages.thumbnail(desk.out, desk.root, name)
    if png is None:
        abort(404, "This handout has not been built yet.")
    response = Response(png, mimetype="image/png")
    if request.args.get("v") and request.args.get("v") == pages.pdf_version(desk.out, desk.root, name):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


@handouts.get("/documents/<name>.pdf")
def pdf(name: str) -> Response:
    """A document's PDF from out/, as the build made it (never a personalised copy)."""
    desk = live()
    entry = pages.built(desk.out, desk.root).get(name)
    try:
        data = (desk.out / entry.file).read_bytes() if entry else None
    except OSError:
        data = None
    if data is None:
        abort(404, "This document has not been built yet.")
    return Response(data, mimetype="application/pdf")


@status.get("/status")
def page() -> str:
    """Every document's state and the check's findings; the page follows changes by itself."""
    return render_template("status.html", **_status())


@status.get("/status/table")
def table() -> str:
    """The part of the status page that changes, for the page's script to swap in."""
    return render_template("_status.html", **_status())


@status.get("/status/events")
def events() -> Response:
    """Server-sent events: one message with the status's version each time it changes."""
    desk = live()

    def stream():  # noqa: ANN202
        version = desk.version
        yield f"retry: 1000\ndata: {version}\n\n"
        while signin.still_open():
            now = desk.wait(version, KEEP_ALIVE)
            if now == version:
                yield ": still here\n\n"
            else:
                version = now
                yield f"data: {version}\n\n"

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _status() -> dict[str, object]:
    desk = live()
    snap = desk.snapshot()
    titles: dict[str, str] = {}
    try:
        titles = {e.name: e.title for e in catalog.entries(desk.project())}
    except BrochureError:
        pass
    return {"snap": snap, "titles": titles, "root": desk.root}
