"""`brochure audit verify` and `brochure audit report`: the audit trail for the practice manager."""

from __future__ import annotations

import datetime as dt

import click

from brochure.base.errors import BrochureError
from brochure.cli.edge import table, user_errors


@click.group()
def audit() -> None:
    """The audit trail: who gave which handouts, when, from which desk.

    Every recorded print, email, draft, download and reprint adds a line,
    and so does each save of the education documented for a delivery,
    with the staff member, the desk, the handouts and their content
    versions, and the patient only as the number of the delivery record's
    row. Each line carries the hash of the one before, so a line changed or
    removed outside brochure is found.

    \b
    Example:
        brochure audit verify
        brochure audit report --since 2026-11-01 --until 2026-11-30 --format csv > november.csv
    """


@audit.command()
@user_errors
def verify() -> None:
    """Check that no line of the audit trail was changed, removed or moved; exit 1 if one was.

    \b
    Example:
        brochure audit verify
    """
    from brochure.deliver import audit as trail
    from brochure.deliver.settings import load_settings

    settings = load_settings()
    count, problems = trail.verify(settings)
    if problems:
        raise BrochureError(problems)
    where = trail.trail_file(settings)
    click.echo(f"{count} line{'s' * (count != 1)} in {where}: every one as it was written.")


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise BrochureError.at(None, None, f"{option} is not a date", "write it as YYYY-MM-DD")


@audit.command()
@click.option("--since", default=None, help="The first day, YYYY-MM-DD.  [default: the first line]")
@click.option("--until", default=None, help="The last day, YYYY-MM-DD.  [default: the last line]")
@click.option(
    "--format", "output", type=click.Choice(["table", "csv"]), default="table", show_default=True,
    help="csv: for a spreadsheet (cells that a spreadsheet would run as a formula start with ').",
)  # fmt: skip
@user_errors
def report(since: str | None, until: str | None, output: str) -> None:
    """List the audit trail's lines between two days.

    \b
    Example:
        brochure audit report --since 2026-11-01
        brochure audit report --since 2026-11-01 --until 2026-11-30 --format csv > november.csv
    """
    from brochure.deliver import audit as trail
    from brochure.deliver.settings import load_settings

    first, last = _day(since, "--since"), _day(until, "--until")
    if first and last and first > last:
        raise BrochureError.at(None, None, "--since is after --until", "give the earlier day first")
    rows = trail.report(load_settings(), first, last)
    if output == "csv":
        click.echo(trail.as_csv(rows), nl=False)
        return
    if not rows:
        click.echo("No lines in the audit trail for those days.")
        return
    shown = [
        (
            str(e.seq),
            e.at,
            e.event,
            e.staff,
            e.desk,
            " ".join(n for n, _v in e.handouts),
            str(e.record or ""),
            e.detail,
        )
        for e in rows
    ]
    table(("LINE", "WHEN", "EVENT", "STAFF", "DESK", "HANDOUTS", "RECORD ROW", "DETAIL"), shown)
