"""Who is at the desk, on the clinic server (`brochure serve`): sign in, sessions, idle sign-out, roles.

The clinic server answers every desk PC on the network, so every page but
the sign-in page (and the static files, and the public root certificate)
needs a signed-in member of staff, and each page a role:

- ``front-desk`` finds, personalises, previews, prints, emails and
  downloads handouts, and sees Today;
- ``editor`` also sees the content status;
- ``admin`` also manages staff and settings.

A session lives in this process's memory, under a random key the
browser keeps in a Secure, HttpOnly, SameSite=Strict cookie: signing out
(or a restart) ends it for good. A session without a click for the idle
time (10 minutes unless an admin changes it) is signed out; the page warns
a minute before. Sign-ins, failures, lockouts, sign-outs and time-outs are
lines of the audit trail. `brochure desk` (one computer) has no sign-in.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from brochure.base.errors import BrochureError
from brochure.web.app import plain

log = logging.getLogger(__name__)

bp = Blueprint("signin", __name__)

#: Pages anyone may open: the sign-in page itself, the static files and the root certificate.
PUBLIC = frozenset({"signin.form", "signin.submit", "signin.root_certificate", "static"})
#: Requests a page makes by itself while nobody touches it (its script's refreshes, its thumbnails,
#: which load lazily, late on a busy machine): they do not keep a session alive.
PASSIVE = frozenset({"status.events", "status.table", "signin.left", "handouts.thumbnail"})
#: The role each part of the desk needs, by blueprint; anything else needs front-desk.
NEEDS = {"status": "editor", "admin": "admin"}
RANK = {"front-desk": 0, "editor": 1, "admin": 2}
ROLE_NAMES = {"front-desk": "front desk", "editor": "editor", "admin": "admin"}
#: How often sessions left idle are looked for, and signed out (seconds).
SWEEP_SECONDS = 15.0


@dataclass
class SignedIn:
    """A member of staff signed in at one browser."""

    name: str
    role: str
    desk: str
    last: float  # the time of their last click (time.time())
    stamp: str = ""  # the account's stamp at sign-in: a new password (or a disabled account) ends it


class Sessions:
    """Everyone signed in to this server, by session key; time-outs are written to the audit trail."""

    def __init__(self, idle_minutes: int, clock=time.time) -> None:  # noqa: ANN001 - a function
        self.idle = idle_minutes * 60
        self.clock = clock
        self._open: dict[str, SignedIn] = {}
        self._lock = threading.Lock()

    def open(self, name: str, role: str, desk: str, stamp: str = "") -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._open[key] = SignedIn(name, role, desk, self.clock(), stamp)
        return key

    def find(self, key: str | None, *, touch: bool) -> SignedIn | None:
        """The person signed in under ``key``; None (and the time-out audited) once idle too long."""
        if not key:
            return None
        now = self.clock()
        with self._lock:
            who = self._open.get(key)
            if who is None:
                return None
            if now - who.last >= self.idle:
                del self._open[key]
                expired = who
            else:
                if touch:
                    who.last = now
                return who
        _audit("timeout", expired, detail=self.idle_detail())
        return None

    def idle_detail(self) -> str:
        return f"after {self.idle // 60} idle minutes"

    def close(self, key: str | None) -> SignedIn | None:
        with self._lock:
            return self._open.pop(key or "", None)

    def sweep(self) -> None:
        """Sign out everyone idle too long, even if their browser never asks again."""
        now = self.clock()
        self.end(lambda who: now - who.last >= self.idle, self.idle_detail(), event="timeout")

    def end(self, which, why: str, event: str = "sign-out") -> None:  # noqa: ANN001 - a test of a SignedIn
        """Sign out everyone for whom ``which(person)`` is true; each is an ``event`` on the trail."""
        for key, who in self.signed_in():
            if which(who) and self.close(key) is not None:
                _audit(event, who, detail=why)

    def signed_in(self) -> list[tuple[str, SignedIn]]:
        with self._lock:
            return list(self._open.items())

    def left(self, key: str | None) -> int:
        """Seconds before the session under ``key`` is signed out (0 when it is not open)."""
        with self._lock:
            who = self._open.get(key or "")
            return 0 if who is None else max(0, int(self.idle - (self.clock() - who.last)))


def install(app: Flask) -> None:
    """Make ``app`` a clinic server's: sign-in pages, the idle sweep, and a check on every request."""
    from brochure.deliver import accounts, load_settings

    sessions = Sessions(accounts.idle_minutes(load_settings()))
    app.extensions["sessions"] = sessions
    app.register_blueprint(bp)
    # Before the CSRF check: a request without a session goes to the sign-in page, whatever it is.
    app.before_request_funcs.setdefault(None, []).insert(0, _signed_in)
    app.after_request(_access_log)
    app.jinja_env.globals["role_name"] = ROLE_NAMES.get
    app.context_processor(lambda: {"staff": staff(), "idle_left": sessions.left(session.get("sid"))})

    def sweep() -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            try:
                sweep_once(sessions)
            except Exception:  # noqa: BLE001 - the sweep must go on; the next request also checks
                log.exception("signing out idle sessions failed")

    threading.Thread(target=sweep, name="brochure-idle-sweep", daemon=True).start()


#: Why a session ends when its account changed under it.
CHANGED = "account disabled or given a new password"


def sweep_once(sessions: Sessions) -> None:
    """Sign out the sessions idle too long, and those whose account was disabled or given a new
    password since they signed in: on the Staff and settings page, or on the server's terminal
    (`brochure staff disable|reset` runs in another process)."""
    from brochure.deliver import accounts, load_settings

    sessions.sweep()
    if sessions.signed_in():
        current = {a.name: a.stamp for a in accounts.accounts(load_settings()) if a.active}
        sessions.end(lambda who: current.get(who.name) != who.stamp, CHANGED)


def sessions() -> Sessions:
    return current_app.extensions["sessions"]


def _access_log(response: Response) -> Response:
    """One line a request: who, from where, what page and its answer. Never a query string nor a
    form: patient details travel in form bodies, and searches may hold anything."""
    who = staff()
    log.info(
        "%s %s %s %s %s", desk(), who.name if who else "-", request.method, request.path, response.status_code
    )
    return response


def staff() -> SignedIn | None:
    """Who is signed in for this request (None on the one-computer desk, which has no sign-in)."""
    return g.get("staff")


def staff_name() -> str | None:
    who = staff()
    return who.name if who else None


def may_open(blueprint: str) -> bool:
    """May the person signed in open pages of ``blueprint`` (True on the one-computer desk)?"""
    who = staff()
    if who is None:
        return "sessions" not in current_app.extensions
    return RANK[who.role] >= RANK[NEEDS.get(blueprint, "front-desk")]


def still_open() -> bool:
    """For a long answer (the status page's event stream): is its session still open? (Always, on
    the one-computer desk.) A stream must not outlive a sign-out or a time-out."""
    if "sessions" not in current_app.extensions:
        return True
    return sessions().find(session.get("sid"), touch=False) is not None


def desk() -> str:
    """Which desk a request came from, for the audit trail: the browser's address."""
    return request.remote_addr or "browser"


def _signed_in():  # noqa: ANN202 - None, or the redirect to the sign-in page
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC or request.routing_exception is not None:
        return None  # a foreign host name or an unknown address gets its refusal, and nothing else
    who = sessions().find(session.get("sid"), touch=endpoint not in PASSIVE)
    if who is None:
        if session.pop("sid", None):
            session["notice"] = "timeout"
        return redirect(url_for("signin.form"), 303)
    g.staff = who
    if not may_open(request.blueprint or ""):
        needed = ROLE_NAMES[NEEDS.get(request.blueprint or "", "front-desk")]
        abort(403, f"This page is for the {needed} role; you are signed in as {ROLE_NAMES[who.role]}.")
    return None


@bp.get("/signin")
def form() -> str:
    return _form(notice=session.pop("notice", ""))


def _form(notice: str = "", problem: str = "", name: str = "") -> str:
    idle = sessions().idle // 60
    return render_template("signin.html", notice=notice, problem=problem, name=name, idle=idle)


@bp.post("/signin")
def submit():  # noqa: ANN201
    from brochure.deliver import accounts, load_settings

    name = request.form.get("name", "")[:200]
    password = request.form.get("password", "")[:1000]
    try:
        account = accounts.sign_in(load_settings(), name, password, desk=desk())
    except BrochureError as exc:  # a wrong password, a lock; or accounts that cannot be read
        status = 401 if isinstance(exc, accounts.AccountError) else 500
        return _form(problem=plain(exc), name=name), status
    old = session.get("sid")
    if old:
        ended = sessions().close(old)
        if ended is not None:
            _audit("sign-out", ended, detail="another person signed in")
    session.clear()  # a new session key and a new CSRF token: nothing carries over from before
    session["sid"] = sessions().open(account.name, account.role, desk(), account.stamp)
    return redirect(url_for("handouts.index"), 303)


@bp.post("/signout")
def signout():  # noqa: ANN201
    """Sign out by one click. 'Switch user' is the same, and the sign-in page then asks who is next;
    the page's own script sends 'idle' when the idle time is up."""
    reason = request.form.get("reason", "")
    who = sessions().close(session.get("sid"))
    if who is not None:
        if reason == "idle":
            _audit("timeout", who, detail=sessions().idle_detail())
        else:
            _audit("sign-out", who, detail="switch user" if reason == "switch" else "")
    session.clear()
    session["notice"] = {"switch": "switch", "idle": "timeout"}.get(reason, "signed-out")
    return redirect(url_for("signin.form"), 303)


@bp.get("/session/left")
def left() -> Response:
    """The seconds before this session is signed out, for the idle warning of each open page (it
    does not count as a click): another tab of the same session may have been used since."""
    return Response(str(sessions().left(session.get("sid"))), mimetype="text/plain")


@bp.post("/session/alive")
def alive() -> Response:
    """'Stay signed in': the click that answers the idle warning (the guard has counted it)."""
    return Response(str(sessions().left(session.get("sid"))), mimetype="text/plain")


@bp.get("/brochure-root-ca.crt")
def root_certificate() -> Response:
    """The clinic server's own root certificate, for a desk PC to install (it holds no secret)."""
    path = current_app.config.get("ROOT_CERTIFICATE")
    if not path:
        abort(404, "This server uses the clinic's own certificate: ask IT for its root.")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        abort(404, "The root certificate is not on the server any more: restart brochure serve.")
    response = Response(data, mimetype="application/x-x509-ca-cert")
    response.headers["Content-Disposition"] = 'attachment; filename="brochure-root-ca.crt"'
    return response


def _audit(event: str, who: SignedIn, detail: str = "") -> None:
    from brochure.deliver import audit, load_settings

    try:
        audit.append(load_settings(), event, staff=who.name, desk=who.desk, detail=detail)
    except BrochureError:
        log.error("the audit trail could not be written (%s)", event)
