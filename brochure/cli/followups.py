"""`brochure followups list|send|cancel`: the follow-up emails a delivery scheduled."""

from __future__ import annotations

import sys

import click

from brochure.base.errors import BrochureError
from brochure.cli.edge import PROJECT, load, table, user_errors


@click.group()
def followups() -> None:
    """Follow-up emails after a visit: see, send and cancel them.

    A topic lists its follow-ups in its front matter; an emailed handout
    whose patient agreed to follow-ups schedules them (brochure email
    --follow-ups, or the desk's tick box). 'send' sends what is due,
    each email once, even when two run at the same time; the clinic server
    runs it by itself, and a systemd timer can run it on a desk computer.

    \b
    Example:
        brochure followups list --due today
        brochure followups send
        brochure followups cancel --reason rebooked     # asks for the patient's name
    """


def _due_by(value: str | None):  # noqa: ANN202 - dt.date | None
    """--due as typed: "today", "tomorrow", 2026-12-08 or a short form (see answers.parse_date)."""
    from brochure.cli.answers import parse_date

    if value is None:
        return None
    day, why = parse_date(value)
    if day is None:
        raise BrochureError.at(
            None, None, f"--due is not a date: {why}", "write 'today', or a date like 2026-12-08"
        )
    return day


_STATE_WORDS = {
    "scheduled": "waiting",
    "held": "HELD",
    "sending": "being sent",
    "sent": "sent",
    "cancelled": "cancelled",
    "missed": "too late",
    "failed": "FAILED",
}


@followups.command(name="list")
@PROJECT
@click.option("--due", default=None, help="Only those due by this day: today, tomorrow or a date.")
@click.option(
    "--patient", default=None, help="Only patients whose name holds this text (any case or accents)."
)
@click.option("--all", "everything", is_flag=True, help="Also those sent, cancelled, too late or failed.")
@user_errors
def list_command(project, due, patient, everything) -> None:  # noqa: ANN001
    """List follow-up emails waiting to go, soonest first.

    HELD means the email's medical review is overdue: it waits until the
    editor reviews it. The number in the first column is what 'cancel
    --id' takes.

    \b
    Example:
        brochure followups list
        brochure followups list --due today
        brochure followups list --patient lima --all
    """
    from brochure.deliver import followups as queue
    from brochure.deliver.record import Record
    from brochure.deliver.settings import load_settings

    settings = load_settings()
    loaded = load(project)
    states = queue.STATES if everything else (*queue.WAITING, "sending")
    with Record.open(settings, loaded) as record:
        found = queue.listing(record, loaded, due_by=_due_by(due), states=states, patient=patient)
    if not found:
        click.echo("No follow-ups." if everything else "No follow-ups waiting.")
        return
    rows = []
    for item in found:
        row, delivery = item.follow_up, item.delivery
        rows.append(
            (
                str(row.id),
                row.due.isoformat(),
                delivery.patient_name if delivery else "(not in the record)",
                delivery.target if delivery else "",
                _STATE_WORDS.get(row.state, row.state),
                f"{item.title}{f' ({row.reason})' if row.reason else ''}",
            )
        )
    table(("#", "DUE", "PATIENT", "TO", "STATE", "EMAIL"), rows)


@followups.command()
@PROJECT
@user_errors
def send(project) -> None:  # noqa: ANN001
    """Send the follow-up emails that are due, each once.

    Only within the sending hours (follow_ups.hours in the settings,
    09:00-19:00 unless set). Safe to run often and from more than one
    place: a follow-up another run is sending is left to it. Exit 1 if
    one could not be sent (it is tried again at the next run).

    \b
    Example:
        brochure followups send
    """
    from brochure.deliver import followups as queue
    from brochure.deliver.settings import load_settings

    settings = load_settings()
    loaded = load(project)
    done = queue.send_due(loaded, settings)
    for warning in done.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if done.waiting_until is not None:
        click.echo(f"Nothing sent: follow-ups go out from {done.waiting_until:%H:%M} (follow_ups.hours).")
        return
    for _row, why, fix in done.held:
        click.echo(f"Held for the editor: {why}. {fix[:1].upper()}{fix[1:]}.", err=True)
    for row, why in done.failed:
        click.echo(f"Not sent (follow-up {row.id}): {why}.", err=True)
    click.echo(f"{len(done.sent)} sent" + "".join(_also(done)) + ".")
    if done.failed:
        sys.exit(1)


def _also(done) -> list[str]:  # noqa: ANN001 - followups.Sent
    parts = []
    if done.held:
        parts.append(f", {len(done.held)} held")
    if done.failed:
        parts.append(f", {len(done.failed)} not sent")
    if done.missed:
        parts.append(f", {len(done.missed)} too late to send")
    if done.busy:
        parts.append(f", {done.busy} being sent by another run")
    return parts


@followups.command()
@PROJECT
@click.option(
    "--patient",
    default=None,
    help="The patient's name (any case or accents; asked for when neither this nor --id is given, "
    "so it stays out of the shell's history).",
)
@click.option("--id", "ids", type=int, multiple=True, help="One follow-up, by its number in 'list'.")
@click.option(
    "--reason",
    type=click.Choice(["rebooked", "declined", "other"]),
    default="other",
    show_default=True,
    help="Why: the visit was rebooked, or the patient declined follow-ups.",
)
@click.option("--staff", default=None, help="Who cancels (a staff account).  [default: this computer's user]")
@user_errors
def cancel(project, patient, ids, reason, staff) -> None:  # noqa: ANN001
    """Cancel a patient's waiting follow-up emails (or one, by --id).

    \b
    Example:
        brochure followups cancel --reason declined      # asks for the patient's name
        brochure followups cancel --id 12 --reason rebooked
    """
    from brochure.base.text import fold
    from brochure.deliver import followups as queue
    from brochure.deliver.accounts import staff_member
    from brochure.deliver.record import Record, _user
    from brochure.deliver.settings import load_settings

    if not patient and not ids:
        if not sys.stdin.isatty():
            raise BrochureError.at(
                None, None, "no follow-up named", "give --id N (see 'brochure followups list')"
            )
        patient = click.prompt("Patient's name").strip()
    settings = load_settings()
    by = staff_member(settings, staff) if staff else _user()
    loaded = load(project)
    with Record.open(settings, loaded) as record:
        found = queue.listing(record, loaded, patient=patient, states=queue.WAITING)
        if ids:
            found = [item for item in found if item.follow_up.id in ids]
        people = {fold(item.delivery.patient_name) for item in found if item.delivery}
        if patient and len(people) > 1:
            raise BrochureError.at(
                None,
                None,
                f"{len(people)} patients' names hold that text: nothing was cancelled",
                "give the whole name, or cancel by number with --id (see 'brochure followups list')",
            )
        if not found:
            raise BrochureError.at(
                None,
                None,
                "no waiting follow-up matches",
                "see 'brochure followups list' (--all for the others)",
            )
        done, warnings = queue.cancel(
            record,
            [item.follow_up.id for item in found],
            reason=queue.REASONS[reason],
            by=by,
            settings=settings,
        )
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Cancelled {len(done)} follow-up{'s' * (len(done) != 1)}.")
