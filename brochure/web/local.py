"""The desk for one computer: served on 127.0.0.1 by Werkzeug's threaded server (brochure desk)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from brochure.base.errors import BrochureError


def cannot_listen(exc: OSError, where: str, in_use: str, in_use_fix: str, fix: str) -> BrochureError:
    """Why a server could not listen on ``where``, in words (a port in use has its own)."""
    if exc.errno == errno.EADDRINUSE:
        return BrochureError.at(None, None, in_use, in_use_fix)
    return BrochureError.at(None, None, f"cannot listen on {where}: {exc.strerror or exc}", fix)


def try_port(host: str, port: int) -> None:
    """Bind ``host``:``port`` for a moment (OSError when it cannot be): the server libraries say a
    port is in use in their own way (Werkzeug prints and exits; cheroot drops the errno)."""
    import socket  # here, not at the top: the desk's command loads this module

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def open_desk(project: Path, port: int, *, jobs: int | None = None) -> Any:  # noqa: ANN401 - a Werkzeug server
    """The desk's server for ``project`` on 127.0.0.1:``port`` (0: any free port), not yet serving."""
    from werkzeug.serving import make_server

    from brochure.project.model import load_project
    from brochure.web.app import create_app

    load_project(project)  # a folder that is not a project stops here, with its message
    try:
        try_port("127.0.0.1", port)
        server = make_server("127.0.0.1", port, None, threaded=True)  # type: ignore[arg-type]  # app set below
    except OSError as exc:
        in_use = f"port {port} is in use (is the desk already open at http://127.0.0.1:{port}/ ?)"
        fix = "choose another port with --port"
        raise cannot_listen(exc, f"port {port}", in_use, f"open that address, or {fix}", fix) from None
    server.app = create_app(project, watch=True, jobs=jobs)
    return server
