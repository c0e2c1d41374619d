"""The command line's edge: the options every command shares, and the one place where a library
error becomes 'Error: ...' lines on stderr and an exit code, never a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

import click

from brochure.base.errors import BrochureError
from brochure.base.paper import NAMES as PAPER_NAMES

log = logging.getLogger("brochure")

PROJECT = click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default="the current folder",
    help="The project folder (the one holding content/).",
)


def paper_option(help_text: str = "Paper size.") -> Callable[..., Any]:
    """--paper, one of the paper sizes brochure knows (brochure.base.paper)."""
    return click.option("--paper", type=click.Choice(list(PAPER_NAMES)), default=None, help=help_text)


def report(problems: list[Any], prefix: str) -> None:
    for problem in problems:
        click.echo(f"{prefix}: {problem}", err=True)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a BrochureError into 'Error: ...' lines on stderr and exit 1, without a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrochureError as exc:
            report(exc.problems, "Error")
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


def load(project_dir: Path):  # noqa: ANN201 - a project.Project
    """The project in ``project_dir``, its warnings shown (every command that reads one shows them)."""
    from brochure.project.model import load_project

    project = load_project(project_dir)
    report(list(project.warnings), "Warning")
    return project


def table(header: tuple[str, ...], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min"
