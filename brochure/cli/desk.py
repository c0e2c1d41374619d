"""`brochure desk`: the command that starts the front-desk page."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from brochure.cli.edge import PROJECT, user_errors

DEFAULT_PORT = 8765  # as the README says


@click.command()
@PROJECT
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="The port on 127.0.0.1 to listen on.",
)
@click.option("--no-browser", is_flag=True, help="Do not open the page in a browser.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes for builds.")
@user_errors
def desk(project: Path, port: int, no_browser: bool, jobs: int | None) -> None:
    """Open the front-desk page: pick, personalise, print or email handouts.

    The page is for this computer only: it listens on 127.0.0.1 and answers
    no other machine. It keeps the project built while it runs, like
    `brochure watch`, and its Content status page shows each document's
    state and the problems `brochure check` finds. Stop it with Ctrl-C.

    \b
    Example:
        brochure desk
        brochure desk --project ../lakeside --port 8800 --no-browser
    """
    try:
        run(project, port, browser=not no_browser, jobs=jobs)
    except KeyboardInterrupt:
        pass
    click.echo("Stopped.")
    # The watcher's thread cannot be asked to stop (brochure.watch has no stop signal yet), and a
    # rebuild it has under way must not be torn apart by the interpreter's shutdown: end here.
    # Its worker processes end with this one.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run(project: Path, port: int, *, browser: bool, jobs: int | None = None) -> None:
    """Serve the desk on 127.0.0.1:``port`` until Ctrl-C."""
    from brochure.web.local import open_desk

    server = open_desk(project, port, jobs=jobs)
    url = f"http://127.0.0.1:{server.port}/"
    click.echo(f"Front desk at {url} (Ctrl-C to stop)")
    if browser:
        import threading
        import webbrowser

        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()  # Werkzeug's ends quietly on Ctrl-C
    finally:
        server.server_close()
