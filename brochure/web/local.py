"""The desk for one computer: served on 127.0.0.1 by Werkzeug's threaded server (brochure desk)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from brochure.base.errors import BrochureError


def open_desk(project: Path, port: int, *, jobs: int | None = None) -> Any:  # noqa: ANN401 - a Werkzeug server
    """The desk's server for ``project`` on 127.0.0.1:``port`` (0: any free port), not yet serving."""
    import socket  # here, not at the top: the desk's command loads this module

    from werkzeug.serving import make_server

    from brochure.project.model import load_project
    from brochure.web.app import create_app

    load_project(project)  # a folder that is not a project stops here, with its message
    try:
        # Werkzeug would print its own message and exit on a port in use: try the port first.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
        server = make_server("127.0.0.1", port, None, threaded=True)  # type: ignore[arg-type]  # app set below
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BrochureError.at(
                None,
                None,
                f"port {port} is in use (is the desk already open at http://127.0.0.1:{port}/ ?)",
                "open that address, or choose another port with --port",
            ) from None
        raise BrochureError.at(
            None, None, f"cannot listen on port {port}: {exc.strerror}", "choose another port with --port"
        ) from None
    server.app = create_app(project, watch=True, jobs=jobs)
    return server
