"""The front desk's commands: print, email, printers, history, settings. They parse, ask and show."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from brochure.base.errors import BrochureError, Problem
from brochure.cli import answers
from brochure.cli.edge import PROJECT, load, paper_option, table, user_errors
from brochure.deliver import rules
from brochure.document.messages import long_date

if TYPE_CHECKING:
    from brochure.deliver.packet import Packet
    from brochure.deliver.record import Record
    from brochure.deliver.settings import MachineSettings
    from brochure.project.model import Project

PATIENT_OPTIONS = [
    click.option("--patient", "name", default=None, help="The patient's name (asked for when not given)."),
    click.option(
        "--treated-on",
        default=None,
        help="Treatment date: 2026-12-04, 12/4, today, yesterday.  [default: today]",
    ),
    click.option(
        "--injector",
        default=None,
        help="Who treated the patient: a name from content/staff.toml, or its first letters ('dana').",
    ),
    click.option("--treatment", default=None, help="What was done, e.g. 'Botox, forehead'."),
    click.option("--note", default=None, help="A short note, e.g. '20 units'."),
    click.option(
        "--no-personalise", is_flag=True, help="Leave the 'Your treatment' box blank, to fill in by hand."
    ),
    click.option(
        "--csv",
        "csv_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="A batch: one row per patient (see README, 'Front desk').",
    ),
    paper_option(),
    click.option("--no-record", is_flag=True, help="Do not record this delivery (leaves no trace of it)."),
    click.option(
        "--staff",
        default=None,
        help="Who gives the handouts: a staff account's name once the clinic has accounts.  "
        "[default: this computer's user]",
    ),
    click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation."),
]


def _patient_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(PATIENT_OPTIONS):
        func = option(func)
    return func


def _interactive() -> bool:
    return sys.stdin.isatty()


def _ask_patient(project: Project, given: dict[str, str | None]):  # noqa: ANN001, ANN202 - project.Project -> Patient
    """Check the patient fields given; on a terminal, ask for the missing ones (so not in `ps`), each
    again until it passes its check, and any given one that does not pass."""
    from brochure.deliver import PatientError
    from brochure.deliver.patient import check_patient, staff

    people = staff(project)
    fields = {k: v for k, v in given.items() if v is not None}
    if fields.get("injector") and people:
        person, _why = answers.match_injector(people, fields["injector"])
        fields["injector"] = person.name if person else fields["injector"]
    if fields.get("treated_on"):
        day, _why = answers.parse_date(fields["treated_on"])
        fields["treated_on"] = day.isoformat() if day else fields["treated_on"]
    if "name" not in fields and not _interactive():
        raise BrochureError.at(
            None,
            None,
            "no patient name given",
            "give --patient NAME, or --no-personalise for a blank box",
        )
    if not _interactive():
        return check_patient(project, fields)
    wanted = [key for key in FIELD_ORDER if key not in fields] if "name" not in fields else []
    if not people and "injector" in wanted:
        wanted.remove("injector")
    for key in wanted:
        fields[key] = _ask_field(project, people, fields, key)
    while True:
        try:
            return check_patient(project, fields)
        except PatientError as exc:
            for key, message in exc.fields.items():
                click.echo(f"{FIELD_QUESTIONS[key]}: {message}.", err=True)
                fields[key] = _ask_field(project, people, fields, key)


#: The patient's details in the order they are asked, and how each question reads.
FIELD_ORDER = ("name", "treated_on", "injector", "treatment", "note")
FIELD_QUESTIONS = {
    "name": "Patient name",
    "treated_on": "Treatment date",
    "injector": "Injector",
    "treatment": "Treatment",
    "note": "Note",
}


def _ask_field(project: Project, people, fields: dict[str, str], key: str) -> str:  # noqa: ANN001
    """One detail asked until it passes its own check; what it was understood as, shown."""
    from brochure.deliver import PatientError
    from brochure.deliver.patient import check_patient

    def own_check(value: str) -> str:
        probe = {"name": "A", "injector": people[0].name if people else "", key: value}
        try:
            check_patient(project, probe)
        except PatientError as exc:
            if key in exc.fields:
                return f"the {FIELD_QUESTIONS[key].lower()} {exc.fields[key]}"
        return ""

    if key == "treated_on":

        def date(text: str) -> tuple[str, str]:
            day, why = answers.parse_date(text)
            if day is None:
                return "", why
            why = own_check(day.isoformat())
            if not why:
                click.echo(f"  {long_date(day, 'en', 'full')}")
            return day.isoformat(), why

        return answers.ask(FIELD_QUESTIONS[key], date, default="today")
    if key == "injector":
        for number, person in enumerate(people, 1):
            click.echo(f"  {number}  {person.label}")

        def injector(text: str) -> tuple[str, str]:
            person, why = answers.match_injector(people, text)
            if person is not None and text.strip() != person.name:
                click.echo(f"  {person.label}")
            return (person.name if person else ""), why

        return answers.ask("Injector (number or name)", injector)
    optional = key in ("treatment", "note")
    return answers.ask(
        FIELD_QUESTIONS[key], lambda text: (text.strip(), own_check(text)), default="" if optional else None
    )


def _known_documents(project: Project, names: Sequence[str]) -> None:
    """Fail at once, before any question, when a handout named does not exist."""
    from brochure.project.model import select

    if not names:
        raise BrochureError.at(
            None, None, "no handout named", "name one or more, e.g. aftercare (see 'brochure list')"
        )
    select(project, names)


def _confirm(question: str, yes: bool, refusal: str) -> None:
    if yes:
        return
    if not _interactive():
        raise BrochureError.at(None, None, refusal, "run it again with --yes to confirm")
    if not click.confirm(question, default=False):
        raise click.Abort


def _deliver(project: Project, delivery, settings: MachineSettings, **how: Any):  # noqa: ANN001, ANN202, ANN401 - service.Delivered
    """Deliver through the one delivery service; ask before giving the same handouts again within minutes."""
    from brochure.deliver.service import GivenRecently, deliver

    try:
        return deliver(project, delivery, settings=settings, **how)
    except GivenRecently as again:
        question = (
            f"The same handouts went to this patient {again.minutes} min ago ({again.earlier.method}). Again?"
        )
        _confirm(question, False, f"the same handouts went to this patient {again.minutes} min ago")
    return deliver(project, replace(delivery, again=True), settings=settings, **how)


def _staff(settings: MachineSettings, name: str | None) -> str | None:
    """The staff member named by --staff, checked against the staff accounts; None: this computer's user."""
    if name is None:
        return None
    from brochure.deliver.accounts import staff_member

    return staff_member(settings, name)


def _checked(delivery):  # noqa: ANN001, ANN202 - service.Request
    """The delivery's options checked before anything is asked or rendered, in the command line's words."""
    from brochure.deliver.rules import OptionsError
    from brochure.deliver.service import check

    try:
        return check(delivery)
    except OptionsError as exc:
        problems = [
            Problem(None, None, message, _FLAG_FIXES.get(exc.rules[name], problem.fix))
            for (name, message), problem in zip(exc.fields.items(), exc.problems, strict=True)
        ]
        raise BrochureError(problems) from None


#: How to mend each option on the command line (the rules' own fixes name no front end's controls).
_FLAG_FIXES = {
    "copies": f"give --copies from 1 to {rules.MAX_COPIES}, or print again for more",
    "consent-or-encrypt": "add --encrypt, or --patient-consented once the patient has agreed",
    "consent-and-encrypt": "give one of --encrypt and --patient-consented",
}


def _batch_not_again(record: Record | None, rows, csv_file: Path, yes: bool) -> None:  # noqa: ANN001
    """Before a batch sends anything: name the rows that repeat a delivery of the last few minutes
    (or an earlier row of the same file), and ask once; without a terminal, refuse unless --yes."""
    from brochure.deliver.service import repeats as repeated

    fix = "remove the row, or run again with --yes"
    found = repeated(record, [(row.number, row.patient, row.handouts) for row in rows])
    repeats = [Problem(str(csv_file), number, message, fix) for number, message in found]
    if not repeats or yes:
        return
    if not _interactive():
        raise BrochureError(repeats)
    for problem in repeats:
        click.echo(f"Warning: {problem}", err=True)
    rows_text = f"{len(repeats)} row{'s' * (len(repeats) != 1)}"
    if not click.confirm(f"Deliver the whole batch, {rows_text} again included?", default=False):
        raise click.Abort


def _open_record(settings: MachineSettings, project: Project, no_record: bool):  # noqa: ANN001, ANN202
    from brochure.deliver.record import Record

    return None if no_record else Record.open(settings, project)


def _settings_warnings(settings: MachineSettings) -> None:  # noqa: ANN001
    for problem in settings.warnings:
        click.echo(f"Warning: {problem}", err=True)


def _patient_fields(name, treated_on, injector, treatment, note) -> dict[str, str | None]:  # noqa: ANN001
    return {
        "name": name,
        "treated_on": treated_on,
        "injector": injector,
        "treatment": treatment,
        "note": note,
    }


def _pages(count: int) -> str:
    return f"{count} page{'s' * (count != 1)}"


@click.command(name="print")
@click.argument("names", nargs=-1)
@PROJECT
@click.option("--printer", default=None, help="The print queue.  [default: settings, else the system's]")
@click.option("--copies", type=int, default=1, show_default=True, help=f"Copies, 1 to {rules.MAX_COPIES}.")
@click.option("--duplex", is_flag=True, help="Print on both sides of the paper.")
@_patient_options
@user_errors
def print_command(names, project, printer, copies, duplex, name, treated_on, injector, treatment, note,
                  no_personalise, csv_file, paper, staff, no_record, yes) -> None:  # fmt: skip
    """Print handouts NAME... for a patient, as one job.

    The 'Your treatment' box shows the patient's name, treatment date,
    injector, treatment, note and follow-up date. Patient fields not
    given as options are asked for, so they stay out of the shell's
    history. The job's title is always 'brochure handout'.

    \b
    Example:
        brochure print aftercare results            # asks for the patient
        brochure print aftercare --patient "Ana Lima" --injector "Dana Smith"
        brochure print aftercare --no-personalise --copies 10
        brochure print --csv today.csv --printer front-desk
    """
    from brochure.deliver.service import Request
    from brochure.deliver.settings import load_settings

    options = {"printer": printer, "copies": copies, "duplex": duplex}
    asked = _checked(Request(names, None, "print", paper=paper, again=yes, record=not no_record, **options))
    settings = load_settings()
    _settings_warnings(settings)
    by = _staff(settings, staff)
    loaded = load(project)
    if csv_file is not None:
        _batch(
            loaded,
            csv_file,
            settings,
            paper,
            no_record,
            yes,
            printer=printer,
            copies=copies,
            duplex=duplex,
            by=by,
        )
        return
    # Everything but the patient is checked before the first question: no answer typed in vain.
    _known_documents(loaded, names)
    if _interactive() and not no_personalise:
        from brochure.deliver.printing import choose_printer

        choose_printer(printer, settings)  # the printer too, when questions are to come
    patient = None
    if not no_personalise:
        patient = _ask_patient(loaded, _patient_fields(name, treated_on, injector, treatment, note))
    done = _deliver(loaded, replace(asked, patient=patient), settings, by=by)
    packet, job = done.packet, done.job
    for warning in done.warnings:
        click.echo(f"Warning: {warning}", err=True)
    copies_text = f", {copies} copies" if copies > 1 else ""
    click.echo(f"Printed {_pages(packet.pages)}{copies_text} on {job.printer} (job {job.job_id}).")


@click.command(name="email")
@click.argument("names", nargs=-1)
@PROJECT
@click.option(
    "--to", "to", default=None, help="The patient's email address (asked for twice when not given)."
)
@click.option("--encrypt", is_flag=True, help="Protect the PDF with a passphrase that you give the patient.")
@click.option(
    "--patient-consented", "consented", is_flag=True, help="The patient agreed to an unencrypted email."
)
@click.option("--draft", is_flag=True, help="Write an .eml file to send from your own mail program.")
@click.option(
    "--language",
    default=None,
    help="The language of the email's subject and text, e.g. 'es' (asked for when the project has "
    "several).  [default: the handouts' language]",
)
@click.option(
    "--follow-ups/--no-follow-ups",
    "follow_ups",
    default=None,
    help="The patient agreed (or not) to the follow-up emails the handouts ask for (asked for when "
    "they ask for some).",
)
@_patient_options
@user_errors
def email_command(names, project, to, encrypt, consented, draft, language, follow_ups, name,
                  treated_on, injector, treatment, note, no_personalise, csv_file, paper, staff,
                  no_record, yes) -> None:  # fmt: skip
    """Email handouts NAME... to a patient, as one PDF attachment.

    The connection to the mail server is always encrypted (STARTTLS or
    TLS) and its certificate checked. The PDF itself goes unencrypted
    only with --patient-consented; with --encrypt it needs a passphrase,
    shown here once, to give the patient by phone or in person. The
    subject and the greeting name no treatment (templates/email/). The
    email is in the handouts' language (the project's own for a packet of
    several), or in the one --language names.

    \b
    Example:
        brochure email aftercare --encrypt               # asks for patient and address
        brochure email aftercare results --to ana@example.com --patient-consented
        brochure email aftercare --to ana@example.com --encrypt --language es
        brochure email aftercare --draft --encrypt
        brochure email aftercare --to ana@example.com --encrypt --follow-ups
        brochure email --csv today.csv --encrypt
    """
    from brochure.deliver.mail import check_address, check_language
    from brochure.deliver.service import Request
    from brochure.deliver.settings import load_settings

    method = "draft" if draft else "email"
    options = {"encrypt": encrypt, "consented": consented, "language": language}
    asked = Request(names, None, method, paper=paper, again=yes, record=not no_record, **options)
    if csv_file is None or (encrypt and consented):  # a batch's rows may each say the patient consented
        asked = _checked(asked)
    settings = load_settings()
    _settings_warnings(settings)
    by = _staff(settings, staff)
    loaded = load(project)
    check_language(loaded, language)
    if follow_ups and (draft or no_record or csv_file is not None or no_personalise):
        raise BrochureError.at(
            None,
            None,
            "--follow-ups needs one patient's email, sent and recorded",
            "leave out --draft, --no-record, --no-personalise and --csv, or leave out --follow-ups",
        )
    if csv_file is not None:
        _batch(
            loaded,
            csv_file,
            settings,
            paper,
            no_record,
            yes,
            encrypt=encrypt,
            consented=consented,
            draft=draft,
            language=language,
            by=by,
        )
        return
    _known_documents(loaded, names)  # before the first question
    patient = None
    if not no_personalise:
        patient = _ask_patient(loaded, _patient_fields(name, treated_on, injector, treatment, note))
    to, to_again = _address(to, yes, check_address)
    if language is None and _interactive():
        language = _ask_language(loaded, names)
    if follow_ups is None:
        follow_ups = (
            _ask_follow_ups(loaded, names) if method == "email" and patient and not no_record else False
        )
    asked = replace(
        asked, patient=patient, to=to, to_again=to_again, language=language, follow_ups=follow_ups
    )
    done = _deliver(loaded, asked, settings, by=by)
    packet, result = done.packet, done.email
    for warning in done.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if len(_languages(loaded)) > 1:
        click.echo(f"The email is in {_language_name(result.language)}.")
    if result.draft_path:
        click.echo(f"Wrote the draft {result.draft_path} ({_pages(packet.pages)}).")
    else:
        click.echo(f"Sent {_pages(packet.pages)}{' (encrypted)' if encrypt else ''}.")
    if result.passphrase:
        click.echo(f"Passphrase for the PDF: {result.passphrase}")
        click.echo("Give it to the patient by phone or in person. It is not stored anywhere.")
    if done.follow_ups:
        from brochure.deliver.followups import title

        click.echo("Follow-up emails:")
        for row in done.follow_ups:
            click.echo(f"  {row.due:%a %Y-%m-%d}  {title(loaded, row)}")
    elif follow_ups:
        click.echo("No follow-up emails: the handouts ask for none, or their days have passed.")


def _ask_follow_ups(project: Project, names: Sequence[str]) -> bool:
    """Whether the patient agreed to the follow-up emails the handouts ask for: asked on a terminal
    (no, unless they say yes); no without one, or when the handouts ask for none."""
    from brochure.deliver.followups import planned

    wanted = planned(project, names)
    if not wanted or not _interactive():
        return False
    days = ", ".join(f"day {d}" for d, _ in wanted)
    return click.confirm(
        f"Did the patient agree to follow-up emails ({days} after the treatment)?", default=False
    )


@click.command()
@user_errors
def printers() -> None:
    """List the print queues and say which is the default.

    \b
    Example:
        brochure printers
        CUPS_SERVER=printhost:631 brochure printers
    """
    from brochure.deliver.printing import printers as list_printers
    from brochure.deliver.settings import load_settings

    settings = load_settings()
    queues, default = list_printers()
    if not queues:
        click.echo("No printers. Add one in CUPS (http://localhost:631 or lpadmin).")
    for queue in queues:
        marks = [
            m for m, on in (("default", queue == default), ("settings", queue == settings.printer)) if on
        ]
        click.echo(f"{queue}{'  (' + ', '.join(marks) + ')' if marks else ''}")


@click.command()
@PROJECT
@click.option(
    "--patient", default=None, help="Only patients whose name holds this text (any case, accents or not)."
)
@click.option("--since", default=None, help="Only deliveries on or after this date, YYYY-MM-DD.")
@click.option(
    "--format", "output", type=click.Choice(["table", "csv", "fhir"]), default="table", show_default=True,
    help="csv: for a spreadsheet (cells a spreadsheet would run as a formula start with '). "
    "fhir: FHIR R4 Communication and DocumentReference resources, one a line (NDJSON).",
)  # fmt: skip
@click.option(
    "-o", "--output", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write the csv or fhir export to this file (only you can read it: it holds patient details).",
)  # fmt: skip
@user_errors
def history(project, patient, since, output, file) -> None:  # noqa: ANN001
    """List recorded deliveries, newest first, and whether each handout is still current.

    A handout marked 'changed' says something different today than the
    copy the patient got.

    \b
    Example:
        brochure history --since 2026-11-01
        brochure history --patient lima
        brochure history --format csv -o deliveries.csv
        brochure history --since 2026-11-01 --format fhir -o november.ndjson
    """
    from brochure.deliver import export
    from brochure.deliver.record import Record
    from brochure.deliver.settings import load_settings

    day = None
    if since is not None:
        try:
            day = dt.date.fromisoformat(since) if len(since) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise BrochureError.at(None, None, "--since is not a date", "write it as YYYY-MM-DD")
    settings = load_settings()
    loaded = load(project)
    if file is not None and output == "table":
        raise BrochureError.at(None, None, "-o writes an export", "add --format csv or --format fhir")
    with Record.open(settings, loaded) as record:
        found = record.search(patient, day)
        documented = _documented(record, found)
    if output != "table":
        text = (
            export.csv_text(found, documented)
            if output == "csv"
            else "".join(export.fhir_lines(found, loaded))
        )
        if file is None:
            click.echo(text, nl=False)
        else:
            export.write_private(file, text)
            count = f"{len(found)} deliver{'ies' if len(found) != 1 else 'y'}"
            click.echo(f"{count} written to {file}.", err=True)
        return
    if not found:
        click.echo("No deliveries recorded.")
        return
    rows = []
    for d in found:
        docs = ", ".join(f"{n}{' (changed)' if n in d.changed else ''}" for n, *_ in d.documents)
        row = (str(d.id), d.when.strftime("%Y-%m-%d %H:%M"), d.patient_name, d.method, d.target, d.user, docs)
        rows.append((*row, _education_text(documented.get(d.id))) if documented else row)
    header = ("ROW", "WHEN", "PATIENT", "HOW", "TO", "BY", "HANDOUTS")
    table((*header, "EDUCATION") if documented else header, rows)
    stale = sum(not d.current for d in found)
    if stale:
        click.echo(f"\n{stale} deliver{'ies' if stale != 1 else 'y'} had a handout that has changed since.")


def _documented(record: Record, found: Sequence[Any]) -> dict[int, Any]:
    """The education documented for the deliveries ``found``, by delivery row."""
    from brochure.deliver import education

    return education.of(record, [d.id for d in found])


def _education_text(documented: Any) -> str:  # noqa: ANN401 - education.Education or None
    """ "Spanish (es); printed, explained in person; voiced understanding; signed", or "-"."""
    if documented is None:
        return "-"
    return documented.summary({documented.language: _language_name(documented.language)}) or "-"


@click.command()
@user_errors
def settings() -> None:
    """Show this computer's settings file and its values (never the mail password).

    \b
    Example:
        brochure settings
        BROCHURE_SETTINGS=/etc/brochure/desk.toml brochure settings
    """
    from brochure.deliver.settings import load_settings

    loaded = load_settings()
    state = "" if loaded.exists else " (not there yet: every value is the default)"
    click.echo(f"Settings file: {loaded.file}{state}")
    _settings_warnings(loaded)
    width = max(len(key) for key, _ in loaded.shown())
    for key, value in loaded.shown():
        click.echo(f"  {key.ljust(width)}  {value}")


def _languages(project: Project) -> tuple[str, ...]:
    from brochure.document.emails import languages

    return languages(project)


def _language_name(lang: str) -> str:
    """ "Spanish (es)" for "es"; a language without an English name here, by its tag."""
    from brochure.web.catalog import ENGLISH_NAMES

    name = ENGLISH_NAMES.get(lang)
    return f"{name} ({lang})" if name else lang


def _ask_language(project: Project, names: Sequence[str]) -> str | None:
    """The language of the email, asked when the project has several: the handouts' own unless another
    is typed (its tag, or its name in English or in the language). None when nothing is asked."""
    from brochure.base.text import fold
    from brochure.deliver.mail import email_language
    from brochure.web.catalog import ENGLISH_NAMES, LANGUAGES

    offered = _languages(project)
    if len(offered) < 2:
        return None
    usual = email_language(project, list(names))
    known = {fold(lang): lang for lang in offered}
    for lang in offered:
        known.update({fold(n): lang for n in (ENGLISH_NAMES.get(lang), LANGUAGES.get(lang)) if n})

    def choice(text: str) -> tuple[str, str]:
        found = known.get(fold(text))
        return (found, "") if found else ("", f"type one of {', '.join(offered)}")

    shown = ", ".join(_language_name(lang) for lang in offered)
    return answers.ask(f"Language for the email ({shown})", choice, default=usual)


def _address(to: str | None, yes: bool, check: Callable[[str], str]) -> tuple[str, str | None]:
    """The address, typed twice when asked for here (both returned), shown back when given."""
    if to is None:
        if not _interactive():
            raise BrochureError.at(None, None, "no address given", "give --to ADDRESS")
        first = check(click.prompt("Patient's email address"))
        second = check(click.prompt("Type it again"))
        return first, second  # the delivery service compares them
    to = check(to)
    _confirm(f"Send to {to}?", yes, "the address was not confirmed: nothing was sent")
    return to, None


def _batch(  # noqa: ANN401
    project: Project,
    csv_file: Path,
    settings: MachineSettings,
    paper: str | None,
    no_record: bool,
    yes: bool,
    **how: Any,
) -> None:
    """Deliver a CSV batch: check every row first, then one job or email per row, then a summary."""
    from brochure.deliver.batch import Outcome, deliver_rows, read_rows
    from brochure.deliver.service import Request, deliver

    emailing = "encrypt" in how
    rows = read_rows(
        project,
        csv_file,
        email=emailing,
        encrypt=how.get("encrypt", False),
        consented=how.get("consented", False),
    )
    record = _open_record(settings, project, no_record)
    try:
        _batch_not_again(record, rows, csv_file, yes)
    except BaseException:
        if record is not None:
            record.close()
        raise

    def give(row, packet: Packet) -> Outcome:  # noqa: ANN001
        if emailing:  # brochure email --csv
            method = "draft" if how.get("draft") else "email"
            consented = rules.consent_of(how["encrypt"], how.get("consented", False), row.consented)
            options = {
                "to": row.email,
                "encrypt": how["encrypt"],
                "consented": consented,
                "language": how.get("language"),
                "follow_ups": row.follow_ups and method == "email",
            }
        else:
            method = "print"
            options = {k: how[k] for k in ("printer", "copies", "duplex") if k in how}
        # Repeats were asked about for the whole batch, before anything was sent.
        delivery = Request(
            row.handouts, row.patient, method, again=True, record=record is not None, **options
        )
        done = deliver(project, delivery, settings=settings, packet=packet, record=record, by=how.get("by"))
        warned = "".join(f"; warning: {w}" for w in done.warnings)
        if done.email is not None:
            passphrase = done.email.passphrase
            said = f"passphrase {passphrase}" if passphrase else "sent"
            return Outcome(row.number, True, said + warned, passphrase)
        assert done.job is not None  # printed
        return Outcome(row.number, True, f"job {done.job.job_id}{warned}")

    failed = 0
    try:
        for outcome in deliver_rows(project, rows, give, paper=paper):
            failed += not outcome.ok
            label = "ok" if outcome.ok else "FAILED"
            click.echo(f"{csv_file}:{outcome.row}: {label}: {outcome.detail}", err=not outcome.ok)
    finally:
        if record is not None:
            record.close()
    click.echo(f"{len(rows) - failed} delivered, {failed} failed.")
    if failed:
        sys.exit(1)


#: The front desk's commands, added to the brochure command by brochure.cli.main.
COMMANDS = (print_command, email_command, printers, history, settings)
