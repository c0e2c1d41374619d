"""`brochure serve`: the desk page for every PC on the clinic network, over HTTPS, staff signed in."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from pathlib import Path

import click

from brochure.base.errors import BrochureError
from brochure.cli.edge import PROJECT, user_errors

DEFAULT_BIND = "0.0.0.0:8443"


def _bind(value: str) -> tuple[str, int]:
    """'0.0.0.0:8443', '[::]:8443' or '192.168.1.20:8443' as (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise click.BadParameter(f"{value!r} is not ADDRESS:PORT (for example 0.0.0.0:8443)")
    return host.strip("[]"), int(port)


@click.command()
@PROJECT
@click.option(
    "--bind",
    default=DEFAULT_BIND,
    show_default=True,
    help="The address and port to listen on (0.0.0.0: every network of this machine).",
)
@click.option(
    "--host-name",
    "host_names",
    multiple=True,
    metavar="NAME",
    help="A name the desks use for this server (repeat for several). "
    "Default: this machine's name, its full name and localhost.",
)
@click.option(
    "--cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The clinic's certificate (PEM, with its chain). Default: one this server makes for itself.",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The private key of --cert (PEM).",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes for builds.")
@click.option(
    "--follow-ups-every",
    "every",
    type=click.IntRange(min=0, max=1440),
    default=10,
    show_default=True,
    metavar="MINUTES",
    help="Send the follow-up emails that are due at start and then this often (0: never; use "
    "'brochure followups send' on a timer instead).",
)
@user_errors
def serve(
    project: Path,
    bind: str,
    host_names: tuple[str, ...],
    cert: Path | None,
    key: Path | None,
    jobs: int | None,
    every: int,
) -> None:
    """Serve the desk to every PC on the clinic network, over HTTPS.

    Each person signs in with their own name and password (see `brochure
    staff add`); after 10 minutes without a click they are signed out (an
    admin can change that on the Staff and settings page). Every sign-in,
    preview and delivery is a line of the audit trail. Plain HTTP gets no
    page. Without --cert, the server makes its own certificate, signed by
    its own root certificate: install that root once on each desk PC (the
    command prints where it is; the README shows how). It also sends the
    follow-up emails that are due, every 10 minutes within the sending
    hours (see 'brochure followups'). Stop it with Ctrl-C.

    \b
    Example:
        brochure serve --host-name desk.lakeside.lan
        brochure serve --bind 192.168.1.20:8443 --cert clinic.pem --key clinic.key
        brochure serve --host-name desk.lakeside.lan --follow-ups-every 0
    """
    from brochure.deliver import accounts, load_settings
    from brochure.web.network import Certificate, open_clinic

    host, port = _bind(bind)
    names = tuple(dict.fromkeys(host_names or _default_names(host)))
    settings = load_settings()
    if not accounts.accounts(settings):
        raise BrochureError.at(
            None,
            None,
            "there are no staff accounts yet, so nobody could sign in",
            "add the first admin: brochure staff add 'Your Name' --role admin",
        )
    if (cert is None) != (key is None):
        raise BrochureError.at(None, None, "--cert and --key go together", "give both, or neither")
    if cert is not None and key is not None:
        certificate = Certificate(cert, key)
    else:
        from brochure.web.tls import own_certificate

        own = own_certificate(settings.record_file.expanduser().parent / "tls", names)
        certificate = Certificate(own.certificate, own.key, own.root)
    server = open_clinic(project, host, port, names, certificate, jobs=jobs)
    bound_port = server.bind_addr[1]
    # One line a request on stderr (the journal, under systemd): who, from which desk, what page.
    logging.getLogger("brochure.web").setLevel(logging.INFO)
    logging.getLogger("brochure.deliver.followups").setLevel(logging.INFO)
    click.echo(f"Clinic desk at https://{names[0]}:{bound_port}/ (Ctrl-C to stop)")
    click.echo(f"Host names: {', '.join(names)}")
    if certificate.root is not None:
        click.echo(f"Root certificate for the desk PCs: {certificate.root}")
    sys.stdout.flush()
    # systemd and docker stop a service with SIGTERM: end as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    if every:
        import threading

        from brochure.deliver.followups import keep_sending

        keep_sending(project, every, threading.Event())  # a daemon: it ends with the process
        click.echo(f"Follow-up emails: sent when due, checked every {every} min")
        sys.stdout.flush()
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    click.echo("Stopped.")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the watcher's thread and a rebuild under way end with the process (as brochure desk)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _default_names(host: str) -> list[str]:
    names = [socket.gethostname(), socket.getfqdn(), "localhost"]
    if host not in ("0.0.0.0", "::", ""):
        names.insert(0, host)
    return [n for n in names if n]
