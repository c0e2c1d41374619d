"""Staff and settings, for the admin role on the clinic server: add, disable and reset accounts, and set
the idle sign-out. Every change is brochure.deliver.accounts's, and a line of the audit trail naming
the admin and their desk."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, request

from brochure.web.app import plain
from brochure.web.signin import ROLE_NAMES, desk, staff_name, sweep_once

bp = Blueprint("admin", __name__)


def register(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/staff")
def staff() -> str:
    return _page()


@bp.post("/staff/add")
def add():  # noqa: ANN201
    from brochure.deliver import accounts

    name, role = request.form.get("name", ""), request.form.get("role", "")
    password, again = request.form.get("password", ""), request.form.get("again", "")
    if password != again:
        differ = "The two passwords differ. Type the same password in both boxes."
        return _page(problem=differ, typed=name), 422
    try:
        added = accounts.add(_settings(), name, role, password, by=staff_name(), desk=desk())
    except accounts.AccountError as exc:
        return _page(problem=plain(exc), typed=name), 422
    return _page(done=f"Added {added.name} ({ROLE_NAMES[added.role]}). They can sign in now.")


@bp.post("/staff/disable")
def disable():  # noqa: ANN201
    from brochure.deliver import accounts

    name = request.form.get("name", "")
    if accounts.fold(name) == accounts.fold(staff_name() or ""):
        return _page(problem="You cannot disable your own account while signed in with it."), 422
    try:
        gone = accounts.disable(_settings(), name, by=staff_name(), desk=desk())
    except accounts.AccountError as exc:
        return _page(problem=plain(exc)), 422
    finally:
        sweep_once(current_app.extensions["sessions"])  # signed out at once (even if the trail failed)
    return _page(done=f"Disabled {gone.name}. Their deliveries keep their name.")


@bp.post("/staff/reset")
def reset():  # noqa: ANN201
    from brochure.deliver import accounts

    name, password = request.form.get("name", ""), request.form.get("password", "")
    try:
        account = accounts.reset(_settings(), name, password, by=staff_name(), desk=desk())
    except accounts.AccountError as exc:
        return _page(problem=plain(exc)), 422
    finally:
        sweep_once(current_app.extensions["sessions"])
    return _page(done=f"New password set for {account.name}; the account is active and unlocked.")


@bp.post("/settings")
def settings():  # noqa: ANN201
    from brochure.deliver import accounts

    try:
        minutes = int(request.form.get("idle", ""))
    except ValueError:
        minutes = 0
    try:
        accounts.set_idle_minutes(_settings(), minutes, by=staff_name(), desk=desk())
    except accounts.AccountError as exc:
        return _page(problem=plain(exc)), 422
    current_app.extensions["sessions"].idle = minutes * 60
    return _page(done=f"Idle sign-out set to {minutes} minute{'s' * (minutes != 1)}.")


def _settings():  # noqa: ANN202 - MachineSettings
    from brochure.deliver import load_settings

    return load_settings()


def _page(done: str = "", problem: str = "", typed: str = "") -> str:
    from brochure.deliver import accounts

    settings = _settings()
    return render_template(
        "staff.html",
        accounts=accounts.accounts(settings),
        roles=accounts.ROLES,
        idle=accounts.idle_minutes(settings),
        idle_range=accounts.IDLE_RANGE,
        min_password=accounts.MIN_PASSWORD,
        done=done,
        problem=problem,
        typed=typed,
    )
