"""The desk's Flask app: its factory and the safeguards every request passes through.

- The one-computer desk (`brochure desk`) answers loopback only: a caller
  that is not 127.0.0.1/::1 gets 403, and a Host header other than
  127.0.0.1 or localhost gets 400 (DNS rebinding). The clinic server
  (`brochure serve`) answers the network, but only the host names it is
  given, only over HTTPS, and only to staff signed in (brochure.web.signin).
- Every POST carries the page's CSRF token (kept in a SameSite=Strict
  session cookie), and a cross-site Origin is refused.
- Patient details only ever travel in POST bodies, and no response is kept
  by the browser (Cache-Control: no-store), except the static files and the
  thumbnails of unpersonalised handouts.
- A strict content-security policy; no error shows a stack trace, and no
  log line carries a request's form data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, render_template, request, session
from flask.globals import request_ctx
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from brochure.base.errors import BrochureError
from brochure.web.live import Live

log = logging.getLogger(__name__)

HOSTS = ["127.0.0.1", "localhost"]
#: The page's stylesheet, written into each page: the first paint then waits for no second
#: request. The policy allows exactly this text by its hash, and no other inline style.
DESK_CSS = (Path(__file__).parent / "static" / "desk.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(DESK_CSS.encode("utf-8")).digest()).decode()
CSP = (
    f"default-src 'none'; script-src 'self'; style-src 'self' 'sha256-{_CSS_HASH}'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Responses the browser may keep: nothing in them is about a patient.
CACHEABLE = ("static", "handouts.thumbnail", "handouts.pdf")


@dataclass(frozen=True)
class Clinic:
    """The desk served to the clinic network (`brochure serve`): over HTTPS only, to the host names
    in ``hosts``, each person signed in (brochure.web.signin)."""

    hosts: tuple[str, ...]
    #: The server's own root certificate, offered on the sign-in page (None: the clinic's own).
    root_certificate: Path | None = None


def create_app(
    project: Path | str,
    *,
    out: Path | None = None,
    watch: bool = True,
    live: Live | None = None,
    jobs: int | None = None,
    clinic: Clinic | None = None,
) -> Flask:
    """The desk for the project at ``project``; with ``watch``, a background thread keeps it built.
    Without ``clinic``, the one-computer desk (loopback, no sign-in); with it, the clinic server's."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        TRUSTED_HOSTS=list(clinic.hosts) if clinic else HOSTS,
        CLINIC=clinic,
        ROOT_CERTIFICATE=str(clinic.root_certificate) if clinic and clinic.root_certificate else None,
        # On the clinic server the cookie only ever travels over HTTPS, to this host ('__Host-').
        SESSION_COOKIE_NAME="__Host-brochure" if clinic else "brochure_desk",
        SESSION_COOKIE_SECURE=clinic is not None,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=256 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    live = live or Live(Path(project), out)
    app.extensions["desk"] = live
    if watch:
        from brochure.web import pages

        live.after_build = lambda names: pages.refresh(live.out, live.root, names)
        live.start(jobs=jobs)

    app.before_request(_guard)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(BrochureError, _user_error)
    app.register_error_handler(Exception, _internal_error)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["desk_css"] = Markup(DESK_CSS)  # noqa: S704 - our own file, hashed in CSP

    from brochure.web import signin, views

    app.jinja_env.globals["may_open"] = signin.may_open
    views.register(app)
    if clinic is not None:
        from brochure.web import admin

        signin.install(app)
        admin.register(app)
    return app


def plain(exc: BrochureError) -> str:
    """A library error as one or more sentences for staff (its messages never hold patient details)."""
    return " ".join(
        f"{p.message[:1].upper()}{p.message[1:]}" + (f" ({p.fix})." if p.fix else ".") for p in exc.problems
    )


def csrf_token() -> str:
    """This browser session's token, for every form that posts."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _guard() -> None:
    """Refuse what does not come from this machine's own browser, on this page."""
    # Flask has already refused a Host header not in TRUSTED_HOSTS with 400.
    if current_app.config["CLINIC"] is None and not _loopback(request.remote_addr):
        abort(403)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            abort(403, "This form came from another site.")
        sent = request.form.get("csrf_token", "")
        token = session.get("csrf", "")
        if not token or not hmac.compare_digest(sent.encode(), token.encode()):
            abort(400, "This form has expired. Go back, reload the page and send it again.")


def _headers(response):  # noqa: ANN001, ANN202 - flask.Response
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if current_app.config["CLINIC"] is not None:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint not in CACHEABLE or response.status_code != 200:
        headers["Cache-Control"] = "no-store"
        headers.pop("Expires", None)
        headers.pop("ETag", None)
        headers.pop("Last-Modified", None)
    return response


def _http_error(exc: HTTPException):  # noqa: ANN202
    message = exc.description if exc.code in (400, 403, 404, 405, 413) else ""
    if request_ctx.url_adapter is None:
        # A foreign Host header: no page of ours is built for it, just the refusal.
        return Response(f"{exc.code} {exc.name}\n", exc.code, mimetype="text/plain")
    return render_template("error.html", code=exc.code, title=exc.name, message=message), exc.code


def _user_error(exc: BrochureError):  # noqa: ANN202
    """A problem with the project or the machine (the library's messages hold no patient details)."""
    message = " ".join(str(p) for p in exc.problems)
    return render_template("error.html", code=422, title="The desk cannot do this yet", message=message), 422


def _internal_error(exc: Exception):  # noqa: ANN202
    # The message of an unexpected error may hold what was typed: log where it happened, not what it says.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    log.error("desk: internal error %s at %s", type(exc).__name__, where)
    return render_template("error.html", code=500, title="Something went wrong", message=""), 500
