"""The clinic server (brochure serve): the desk for every PC on the clinic network, over HTTPS.

Served by cheroot, a production WSGI server in pure Python: one process
with a pool of threads, so every desk shares one warm render server and one
set of sign-ins, and TLS comes from Python's own ssl module (TLS 1.2 or
later). A plain-HTTP request to the port gets cheroot's one-line refusal,
never a page.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brochure.base.errors import BrochureError

log = logging.getLogger(__name__)

#: Threads answering requests: each open Content status page holds one for its event stream.
THREADS = (16, 64)


@dataclass(frozen=True)
class Certificate:
    """The certificate (with its chain) and key to serve; ``root`` when it is this server's own."""

    certificate: Path
    key: Path
    root: Path | None = None


def open_clinic(
    project: Path,
    host: str,
    port: int,
    names: tuple[str, ...],
    certificate: Certificate,
    *,
    jobs: int | None = None,
) -> Any:  # noqa: ANN401 - a cheroot server
    """The clinic server for ``project`` on ``host``:``port`` (0: any free port), answering the host
    ``names``, bound and ready: call ``safe_start()``, and ``stop()`` to end it."""
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    from brochure.project.model import load_project
    from brochure.web.app import Clinic, create_app
    from brochure.web.local import cannot_listen, try_port

    load_project(project)  # a folder that is not a project stops here, with its message
    try:
        adapter = BuiltinSSLAdapter(str(certificate.certificate), str(certificate.key))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise BrochureError.at(
            str(certificate.certificate),
            None,
            f"the certificate or its key cannot be used: {reason}",
            "give the certificate in PEM form with --cert and its key with --key",
        ) from None
    adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
    server = wsgi.Server(
        (host, port), None, numthreads=THREADS[0], max=THREADS[1], server_name=names[0], shutdown_timeout=2
    )
    server.ssl_adapter = adapter
    try:
        try_port(host, port)
        server.prepare()  # listens (no request is answered before serve())
    except OSError as exc:
        in_use = f"port {port} is in use (is brochure serve already running?)"
        fix = "choose another --bind"
        raise cannot_listen(exc, f"{host}:{port}", in_use, fix, fix) from None
    # The app, and its watcher's first build, only once the port is ours.
    server.wsgi_app = create_app(project, watch=True, jobs=jobs, clinic=Clinic(names, certificate.root))
    return server
