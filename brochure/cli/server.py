"""`brochure server`: the render server's status, stop, and the hidden command that runs it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from brochure.cli.edge import duration


@click.group()
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
    from brochure.warm.control import status as server_status

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
            f"in {duration(time.time() - info['started'])}; "
            f"stops after {duration(info['idle'])} without a build."
        )


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
    from brochure.warm.control import status as server_status
    from brochure.warm.control import stop as stop_servers

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
    from brochure.warm.daemon import serve
    from brochure.warm.protocol import idle_seconds

    serve(path, idle_seconds(), lock_fd)
