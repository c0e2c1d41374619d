"""`brochure education ROW`: document how a patient was taught, from the terminal."""

from __future__ import annotations

from pathlib import Path

import click

from brochure.cli.edge import PROJECT, load, user_errors

_METHODS = ("printed", "emailed", "in-person")
_TEACH_BACK = ("voiced", "demonstrated", "needs-review", "declined")


@click.command()
@PROJECT
@click.argument("row", type=int)
@click.option("--language", default=None, help="The language the patient was taught in, e.g. en or es.")
@click.option(
    "--method", "methods", multiple=True, type=click.Choice(_METHODS),
    help="How the patient was taught; give it once for each.",
)  # fmt: skip
@click.option(
    "--teach-back", type=click.Choice(_TEACH_BACK), default=None,
    help="What the teach-back showed: voiced (understanding), demonstrated, needs-review or declined.",
)  # fmt: skip
@click.option("--ticked", is_flag=True, help="The patient ticked that they got the information.")
@user_errors
def education(
    project: Path,
    row: int,
    language: str | None,
    methods: tuple[str, ...],
    teach_back: str | None,
    ticked: bool,
) -> None:
    """Document the education for the delivery in ROW of `brochure history`.

    Saving again replaces what was documented before (a signature drawn at
    the desk is kept unless --ticked is given). Each save is a line of the
    audit trail.

    \b
    Example:
        brochure education 12 --language es --method printed --method in-person --teach-back voiced --ticked
    """
    from brochure.deliver import education as documented
    from brochure.deliver.record import Record
    from brochure.deliver.settings import load_settings
    from brochure.document.emails import languages

    loaded = load(project)
    settings = load_settings()
    with Record.open(settings, loaded) as record:
        kept = documented.of(record, [row]).get(row)
    answers = documented.check(
        language=language or "",
        methods=methods,
        teach_back=teach_back or "",
        ticked=ticked,
        signature=kept.signature if kept and not ticked else None,
        languages=languages(loaded),
    )
    saved = documented.save(loaded, row, answers, settings=settings)
    for warning in saved.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Education documented for row {row}: {saved.education.summary()}.")
