"""The brochure command: parses options, calls the library, prints results."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import BrochureError

log = logging.getLogger("brochure")

PROJECT = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default="the current folder",
    help="The project folder (the one holding content/).",
)


def _report(problems: list[Any], prefix: str) -> None:
    for problem in problems:
        click.echo(f"{prefix}: {problem}", err=True)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a BrochureError into 'Error: ...' lines on stderr and exit 1, without a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrochureError as exc:
            _report(exc.problems, "Error")
            sys.exit(1)
        except OSError as exc:
            # A file the command writes (or reads) that the system refuses: a read-only
            # folder, a full disk. Named with the system's reason, never a traceback.
            log.debug("file error", exc_info=True)
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(
                f"Error: {where}{exc.strerror or exc} "
                "(check the folder's permissions and free space, or choose another place)",
                err=True,
            )
            sys.exit(1)
        except KeyboardInterrupt:
            # PDFs are written atomically: nothing half-written is left behind.
            click.echo("Stopped.", err=True)
            sys.exit(130)

    return wrapper


def _load(project_dir: Path):  # noqa: ANN202
    from .project import load_project

    project = load_project(project_dir)
    _report(list(project.warnings), "Warning")
    return project


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
@click.option(
    "--paper",
    type=click.Choice(["letter", "a4"]),
    default=None,
    help="Paper size.  [default: the brand's 'paper', else letter]",
)
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
) -> None:
    """Build PDFs: every document, or just the NAMEs given.

    Each document is written to OUT/NAME.pdf. Only documents whose inputs
    changed are rebuilt. A document that fails keeps its previous PDF, and
    the others still build.

    \b
    Example:
        brochure build
        brochure build aftercare side-effects --paper a4
        brochure build --force --jobs 2
        brochure build --project ../lakeside --out ~/handouts
    """
    hasher = None
    if not names and not force:
        # Nothing changed since the last build of everything: say so without parsing anything.
        started = time.perf_counter()
        from .inputs import fingerprint_options
        from .noop import check, said

        target = out if out is not None else project / "out"
        # What the check reads, the build below need not read again.
        count, hasher = check(project, target, fingerprint_options(paper, strict))
        if count is not None:
            click.echo(said(count, started))
            return
    from . import server
    from .build import build_summary

    loaded = _load(project)
    out = out if out is not None else loaded.root / "out"
    renderer = server.RemoteRenderer(jobs) if server.enabled() else None
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
        )
    finally:
        shown.finish()
        if renderer is not None:
            renderer.close()
    _report(summary.notes, "Warning")
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
            text += f", about {_duration(elapsed / self.done_count * (self.total - self.done_count))} left"
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
@click.option(
    "--paper",
    type=click.Choice(["letter", "a4"]),
    default=None,
    help="Paper size to check the page budgets on.",
)
@user_errors
def check(names: tuple[str, ...], project: Path, output: str, strict: bool, paper: str | None) -> None:
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
        brochure check --format json > report.json
    """
    from .check import check_project

    report = check_project(project, names, paper=paper)
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
        _table(("LEVEL", "CHECK", "WHERE", "PROBLEM"), rows)
        click.echo()
    if report.documents:
        rows = [(d.name, str(d.pages or "-"), d.budget, d.describe()) for d in report.documents]
        _table(("DOCUMENT", "PAGES", "BUDGET", "FIT"), rows)
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


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


@cli.command()
@click.argument("names", nargs=-1)
@PROJECT
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where the PDFs go."
)
@click.option("--paper", type=click.Choice(["letter", "a4"]), default=None, help="Paper size.")
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
    from .watch import watch as run_watch

    shown = _Progress("lines")

    def built(summary, error) -> None:  # noqa: ANN001
        shown.finish()
        if error is not None:
            _report(error.problems, "Error")
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


@cli.group()
def server() -> None:
    """The render server that keeps builds fast.

    The first `brochure build` renders by itself, then starts the server in
    the background. It keeps WeasyPrint loaded, so later builds skip half a
    second or more of start-up, and it stops by itself after 15 minutes
    without a build. Only your user can reach it, and it writes nothing to
    disk. Set BROCHURE_SERVER=off to build without it.

    \b
    Example:
        brochure server status
        brochure server stop
        brochure server stop --all
    """


@server.command()
def status() -> None:
    """Say whether a render server is running.

    \b
    Example:
        brochure server status
    """
    from .server import status as server_status

    found = server_status()
    if not found:
        click.echo("No render server is running.")
    for info in found:
        which = "" if info["current"] else " (another version of brochure)"
        if info["starting"]:
            click.echo(f"Render server {info['pid']}{which}: starting.")
            continue
        click.echo(
            f"Render server {info['pid']}{which}: {info['jobs']} workers, "
            f"{info['builds']} build{'s' if info['builds'] != 1 else ''} "
            f"in {_duration(time.time() - info['started'])}; "
            f"stops after {_duration(info['idle'])} without a build."
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min"


@server.command()
@click.option(
    "--all", "every", is_flag=True, help="Stop the servers of every version of brochure, not just this one's."
)
def stop(every: bool) -> None:
    """Stop this version of brochure's render server (the next build starts a new one).

    Each version of brochure has a server of its own. With --all, stop
    every one of your render servers, whatever version started it. Says
    which it stopped, once each has ended.

    \b
    Example:
        brochure server stop
        brochure server stop --all
    """
    from .server import status as server_status
    from .server import stop as stop_servers

    stopped = stop_servers(every=every)
    for info in stopped:
        which = "this version of brochure" if info["current"] else "another version of brochure"
        pid = f" {info['pid']}" if info["pid"] else ""
        click.echo(f"Stopped render server{pid} ({which}).")
    if not stopped:
        mine = "" if every else " of this version"
        click.echo(f"No render server{mine} was running.")
    others = 0 if every else len(server_status())
    if others:
        plural = "s of other versions are" if others != 1 else " of another version is"
        click.echo(f"{others} render server{plural} still running (stop with: brochure server stop --all).")


@server.command(hidden=True)
@click.option("--socket", "path", type=click.Path(path_type=Path), required=True)
@click.option("--lock-fd", type=int, default=None)
def run(path: Path, lock_fd: int | None) -> None:
    """Run a render server on the socket PATH (builds start it themselves)."""
    from .server import idle_seconds, serve

    serve(path, idle_seconds(), lock_fd)


@cli.command(name="list")
@PROJECT
@user_errors
def list_documents(project: Path) -> None:
    """List the documents, their topics and their page budgets.

    \b
    Example:
        brochure list
        brochure list --project ../lakeside
    """
    from .project import documents

    loaded = _load(project)
    docs = documents(loaded)
    width = max(len(d.name) for d in docs)
    click.echo(f"{'NAME'.ljust(width)}  {'KIND':8}  {'PAGES':11}  TOPICS")
    for doc in docs:
        topics = ", ".join(t.slug for t in doc.topics)
        click.echo(f"{doc.name.ljust(width)}  {doc.spec.kind:8}  {str(doc.budget):11}  {topics}")


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
@click.option("--paper", type=click.Choice(["letter", "a4"]), default=None, help="Paper size.")
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
    from .compose import document_html
    from .output import write_atomic
    from .project import select

    loaded = _load(project)
    (doc,) = select(loaded, [name])
    text = document_html(loaded, doc, paper or loaded.brand.paper)
    target = output if output is not None else loaded.root / "out" / f"{doc.name}.html"
    write_atomic(target, text.encode("utf-8"))
    click.echo(f"wrote {target}")


# The front desk's commands (print, email, printers, history, settings): brochure/deliver/.
from .deliver.commands import register  # noqa: E402

register(cli, PROJECT, user_errors)

from .web.commands import desk  # noqa: E402 - the front-desk page, kept in its own package

cli.add_command(desk)
