"""The brochure command: parses options, calls the library, prints results."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from brochure import __version__
from brochure.cli.edge import PROJECT, duration, load, paper_option, report, table, user_errors

log = logging.getLogger("brochure")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="brochure")
@click.option("-v", "--verbose", is_flag=True, help="Say more about what happens.")
def cli(verbose: bool) -> None:
    """Make branded, print-ready PDF handouts and a brochure from Markdown topics.

    \b
    Example:
        brochure build            # every document of the project here, into out/
        brochure list             # what documents there are
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")


@cli.command()
@click.argument("names", nargs=-1)
@PROJECT
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the PDFs go.  [default: out/ in the project]",
)
@paper_option("Paper size.  [default: the brand's 'paper', else letter]")
@click.option(
    "--strict", is_flag=True, help="Fail a document on any warning from the engine (a missing glyph, ...)."
)
@click.option("--force", is_flag=True, help="Rebuild every document, even those that are up to date.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes.  [default: one per core]",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress: on a terminal one bar with the time left, elsewhere a line per document "
    "built. Errors and warnings are always shown.  [default: on a terminal only]",
)
@click.option(
    "--print-shop",
    is_flag=True,
    help="Also make OUT/NAME.press.pdf of each document that is not a handout: a PDF/X-4 file in "
    "CMYK, with 3 mm bleed and crop marks, for a print shop.",
)
@user_errors
def build(
    names: tuple[str, ...],
    project: Path,
    out: Path | None,
    paper: str | None,
    strict: bool,
    force: bool,
    jobs: int | None,
    progress: bool | None,
    print_shop: bool,
) -> None:
    """Build PDFs: every document, or just the NAMEs given.

    Each document is written to OUT/NAME.pdf. Only documents whose inputs
    changed are rebuilt. A document that fails keeps its previous PDF, and
    the others still build. With --print-shop, every document but the
    handouts (the brochure, a tri-fold) also gets OUT/NAME.press.pdf to
    send to a print shop.

    \b
    Example:
        brochure build
        brochure build --print-shop
        brochure build aftercare side-effects --paper a4
        brochure build --force --jobs 2
        brochure build --project ../lakeside --out ~/handouts
    """
    hasher = None
    if not names and not force and not print_shop:
        # Nothing changed since the last build of everything: say so without parsing anything.
        started = time.perf_counter()
        from brochure.cli.noop import check, said
        from brochure.project.inputs import fingerprint_options

        target = out if out is not None else project / "out"
        # What the check reads, the build below need not read again.
        count, hasher = check(project, target, fingerprint_options(paper, strict))
        if count is not None:
            click.echo(said(count, started))
            return
    from brochure.build.run import build_summary
    from brochure.warm import client, protocol

    loaded = load(project)
    out = out if out is not None else loaded.root / "out"
    renderer = client.RemoteRenderer(jobs) if protocol.enabled() else None
    terminal = sys.stdout.isatty()
    if progress is False:
        shown = _Progress("quiet")
    else:
        shown = _Progress("bar" if terminal else "lines" if progress else "quiet")
    try:
        summary = build_summary(
            loaded,
            out,
            names=names,
            paper=paper,
            strict=strict,
            force=force,
            jobs=jobs,
            renderer=renderer,
            on_wait=lambda: click.echo(f"Waiting for another build writing to {out} ...", err=True),
            on_start=shown.start,
            on_done=shown.done,
            hasher=hasher,
            print_shop=print_shop,
        )
    finally:
        shown.finish()
        if renderer is not None:
            renderer.close()
    report(summary.notes, "Warning")
    click.echo(summary.describe())
    if summary.failed:
        sys.exit(1)


class _Progress:
    """What a build prints as it goes: a bar, a line per document, or nothing but problems.

    ``mode`` is "bar" (one line rewritten in place, on a terminal), "lines"
    (a line per document built) or "quiet". Warnings are printed as they
    come, each error once at the end, naming every document it failed.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.total = self.done_count = self.failed_count = 0
        self.started = time.monotonic()
        self._drawn = 0  # width of the bar as last drawn
        self._last_draw = 0.0
        self._errors: dict[str, tuple[Any, list[str]]] = {}

    def start(self, total: int) -> None:
        self.total, self.done_count, self.failed_count = total, 0, 0
        self.started = time.monotonic()

    def done(self, outcome, seconds: float) -> None:  # noqa: ANN001 - build.Outcome
        self.done_count += 1
        if outcome.error:
            self.failed_count += 1
            for problem in outcome.error.problems:
                self._errors.setdefault(str(problem), (problem, []))[1].append(outcome.name)
        elif outcome.status == "built":
            if self.mode == "lines" or (self.mode == "bar" and outcome.fit and outcome.fit.tightened):
                self._print(self._built(outcome, seconds))
            self._print_problems([f"{outcome.name}: {w}" for w in outcome.warnings], "Warning")
        if self.mode == "bar":
            self._draw()

    @staticmethod
    def _built(outcome, seconds: float) -> str:  # noqa: ANN001
        pages = "page" if outcome.pages == 1 else "pages"
        fitted = f", {outcome.fit.describe()}" if outcome.fit and outcome.fit.tightened else ""
        return f"built {outcome.path} ({outcome.pages} {pages}{fitted}, {seconds:.2f} s)"

    def _print(self, line: str, err: bool = False) -> None:
        self._clear()
        click.echo(line, err=err)

    def _print_problems(self, problems: list[Any], prefix: str) -> None:
        for problem in problems:
            self._print(f"{prefix}: {problem}", err=True)

    def _draw(self) -> None:
        now = time.monotonic()
        if self.done_count < self.total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        width = 24
        filled = width * self.done_count // max(self.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        text = f"[{bar}] {self.done_count}/{self.total}"
        if self.failed_count:
            text += f", {self.failed_count} failed"
        elapsed = now - self.started
        if 0 < self.done_count < self.total and elapsed >= 1:
            text += f", about {duration(elapsed / self.done_count * (self.total - self.done_count))} left"
        click.echo("\r" + text.ljust(self._drawn), nl=False)
        self._drawn = len(text)

    def _clear(self) -> None:
        if self._drawn:
            click.echo("\r" + " " * self._drawn + "\r", nl=False)
            self._drawn = 0

    def finish(self) -> None:
        """Clear the bar, and print each error once, with the documents it failed."""
        self._clear()
        for problem, names in self._errors.values():
            click.echo(f"Error: {_naming(problem, names)}", err=True)
        self._errors.clear()


def _naming(problem, names: list[str]) -> str:  # noqa: ANN001 - errors.Problem
    """A problem as printed, with the documents it failed unless it names its only one."""
    if len(names) == 1 and f"{names[0]!r}" in str(problem):
        return str(problem)
    names = sorted(names)
    shown = [repr(n) for n in names[:5]]
    if len(names) > 5:
        shown.append(f"{len(names) - 5:,} more")
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
    which = f"document {listed}" if len(names) == 1 else f"{len(names):,} documents: {listed}"
    return str(problem._replace(message=f"{problem.message}; {which} not built"))


@cli.command()
@click.argument("names", nargs=-1)
@PROJECT
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    help="How to print the report.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@paper_option("Paper size to check the page budgets on.")
@click.option(
    "--print-shop",
    is_flag=True,
    help="Also check what a print shop would reject in each print-shop file "
    "(pictures under 300 dpi, RGB colours, bleed, fonts).",
)
@user_errors
def check(
    names: tuple[str, ...], project: Path, output: str, strict: bool, paper: str | None, print_shop: bool
) -> None:
    """Check the project, or just the NAMEd documents, without writing any PDF.

    Checks the brand and documents config and every topic's front matter,
    pictures and alt text, heading levels, links, review dates, reading
    grade, the brand colours' contrast, and whether each document fits its
    page budget. Exits with 1 when there are errors (or, with --strict,
    warnings).

    \b
    Example:
        brochure check
        brochure check aftercare --strict
        brochure check --print-shop
        brochure check --format json > report.json
    """
    from brochure.build.check import check_project

    report = check_project(project, names, paper=paper, print_shop=print_shop)
    if output == "json":
        data = {
            "ok": not report.failed(strict),
            "errors": report.errors,
            "warnings": report.warnings,
            "findings": [f.as_dict() for f in report.findings],
            "documents": [vars(d) for d in report.documents],
        }
        click.echo(json.dumps(data, indent=2))
    else:
        _print_report(report, strict)
    if report.failed(strict):
        sys.exit(1)


def _print_report(report, strict: bool) -> None:  # noqa: ANN001
    if report.findings:
        rows = [(f.level, f.check, _where(f.problem), _what(f.problem)) for f in report.findings]
        table(("LEVEL", "CHECK", "WHERE", "PROBLEM"), rows)
        click.echo()
    if report.documents:
        rows = [(d.name, str(d.pages or "-"), d.budget, d.describe()) for d in report.documents]
        table(("DOCUMENT", "PAGES", "BUDGET", "FIT"), rows)
        click.echo()
    errors, warnings = report.errors, report.warnings
    verdict = "failed" if report.failed(strict) else "passed"
    plural = "s" if warnings != 1 else ""
    click.echo(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{plural}: check {verdict}")


def _where(problem) -> str:  # noqa: ANN001
    if problem.file is None:
        return ""
    return f"{problem.file}:{problem.line}" if problem.line else str(problem.file)


def _what(problem) -> str:  # noqa: ANN001
    return f"{problem.message} ({problem.fix})" if problem.fix else problem.message


@cli.command()
@click.argument("names", nargs=-1)
@PROJECT
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where the PDFs go."
)
@paper_option("Paper size.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes.")
@user_errors
def watch(
    names: tuple[str, ...], project: Path, out: Path | None, paper: str | None, jobs: int | None
) -> None:
    """Build, then rebuild what each saved change affects, until Ctrl-C.

    Watches content/, templates/ and styles/. A change rebuilds only the
    documents that depend on it; a build that fails prints its error and
    watching goes on.

    \b
    Example:
        brochure watch
        brochure watch aftercare --out /tmp/preview
    """
    from brochure.build.watch import watch as run_watch

    shown = _Progress("lines")

    def built(summary, error) -> None:  # noqa: ANN001
        shown.finish()
        if error is not None:
            report(error.problems, "Error")
        else:
            click.echo(summary.describe())
        click.echo("Watching for changes (Ctrl-C to stop) ...")

    try:
        run_watch(
            project,
            out,
            names=names,
            paper=paper,
            jobs=jobs,
            on_change=lambda paths: click.echo(f"changed: {', '.join(paths)}"),
            on_build=built,
            on_done=shown.done,
        )
    except KeyboardInterrupt:
        click.echo("Stopped.")


@cli.command(name="list")
@PROJECT
@user_errors
def list_documents(project: Path) -> None:
    """List the documents: their titles, languages, large print and page budgets.

    \b
    Example:
        brochure list
        brochure list --project ../lakeside
    """
    from brochure.project.model import documents

    loaded = load(project)
    docs = documents(loaded)
    width = max(len(d.name) for d in docs)
    click.echo(f"{'NAME'.ljust(width)}  {'KIND':8}  {'LANGUAGE':8}  {'PRINT':7}  {'PAGES':11}  TITLE")
    for doc in docs:
        size, budget = ("large" if doc.large else "regular"), str(doc.budget)
        row = f"{doc.name.ljust(width)}  {doc.spec.kind:8}  {doc.lang:8}  {size:7}  {budget:11}"
        click.echo(f"{row}  {doc.title or doc.name}")


@cli.command()
@click.argument("name")
@PROJECT
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the HTML.  [default: out/NAME.html]",
)
@paper_option("Paper size.")
@user_errors
def html(name: str, project: Path, output: Path | None, paper: str | None) -> None:
    """Write the HTML that is rendered for document NAME, to open in a browser.

    Useful when changing templates or styles: the browser's inspector shows
    which rule applies where.

    \b
    Example:
        brochure html aftercare
        brochure html brochure -o /tmp/brochure.html
    """
    from brochure.build.output import write_atomic
    from brochure.document.compose import document_html
    from brochure.project.model import select

    loaded = load(project)
    (doc,) = select(loaded, [name])
    text = document_html(loaded, doc, paper or loaded.brand.paper)
    target = output if output is not None else loaded.root / "out" / f"{doc.name}.html"
    write_atomic(target, text.encode("utf-8"))
    click.echo(f"wrote {target}")


# The other rooms of the command line: the front desk's commands, the desk page, the render server.
from brochure.cli import audit, deliver, desk, education, followups, serve, server, staff  # noqa: E402

for command in (
    *deliver.COMMANDS,
    audit.audit,
    followups.followups,
    staff.staff,
    desk.desk,
    serve.serve,
    server.server,
    education.education,
):
    cli.add_command(command)
