"""Real print and mail servers for tests: a private CUPS scheduler and aiosmtpd with TLS.

Loaded by tests/conftest.py (``pytest_plugins = ["servers"]``), so any test
may ask for these fixtures; the browser tests of the front-desk page reuse
them.

``cups_server`` (session): a private ``cupsd`` on a free loopback port,
    in a 0755 temporary folder (CUPS filters run as user lp), with a private
    snmp.conf. ``cups_server.add_queue(name)`` makes a file-backed
    Generic-PDF queue and returns it; ``queue.wait_job()`` waits for the
    next job's output and returns it as a ``PrintedJob`` (its PDF bytes
    and PJL header). Tests point the client at it with
    ``monkeypatch.setenv("CUPS_SERVER", cups_server.address)`` or the
    ``cups_env`` fixture. Where cupsd is missing the fixture skips, except
    in CI (CI=true), where it fails.

``smtp_server`` (session): aiosmtpd on a free loopback port that requires
    STARTTLS, with a certificate from a throw-away CA (trustme) for
    127.0.0.1; ``smtp_server.cafile`` is the CA's PEM file for the client.
    It accepts the login ``frontdesk`` / ``s3cret`` (only after TLS) and
    keeps each received message in ``smtp_server.messages`` (clear it with
    ``smtp_server.reset()``). ``smtp_plain_server`` offers no STARTTLS,
    ``smtp_implicit_server`` speaks TLS from the start (port 465 style);
    ``other_ca_file`` is a CA that signed none of their certificates.

``smtp_settings_file`` writes a settings file for ``smtp_server`` and
    points BROCHURE_SETTINGS at it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

GENERIC_PDF_PPD = Path("/usr/share/ppd/cupsfilters/Generic-PDF_Printer-PDF.ppd")
SMTP_USER, SMTP_PASSWORD = "frontdesk", "s3cret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _missing(what: str) -> None:
    """Skip on a developer's machine; fail in CI, where every prerequisite must be installed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing: CI must install it (see .ci/run)")
    pytest.skip(f"{what} is not installed")


# -- CUPS -------------------------------------------------------------------------


@dataclass
class PrintedJob:
    """What a file-backed Generic-PDF queue wrote for one job."""

    raw: bytes

    @property
    def pdf(self) -> bytes:
        start, end = self.raw.find(b"%PDF-"), self.raw.rfind(b"%%EOF")
        return self.raw[start : end + len(b"%%EOF")]

    @property
    def header(self) -> str:
        """The PJL lines before the PDF (job name, duplex, paper)."""
        return self.raw[: self.raw.find(b"%PDF-")].decode("latin-1")


@dataclass
class Queue:
    name: str
    output: Path
    server: CupsServer

    def wait_job(self, timeout: float = 30.0) -> PrintedJob:
        """Wait until the queue has no job left and its output is complete; return it and clear it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.server.lpstat("-o", self.name).strip()
            data = self.output.read_bytes() if self.output.exists() else b""
            if not pending and b"%%EOF" in data:
                self.output.write_bytes(b"")
                return PrintedJob(data)
            time.sleep(0.05)
        log = (self.server.root / "log" / "error_log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"no job printed on {self.name} within {timeout} s; cupsd's log:\n{log}")


@dataclass
class CupsServer:
    root: Path
    port: int
    process: subprocess.Popen | None = None
    queues: dict[str, Queue] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "CUPS_SERVER": self.address, "LC_ALL": "C"}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, env=self.env(), capture_output=True, text=True, check=check, timeout=30
        )

    def lpstat(self, *args: str) -> str:
        result = self.run("lpstat", *args, check=False)
        return result.stdout + result.stderr

    def add_queue(self, name: str) -> Queue:
        """A file-backed Generic-PDF queue (made once per session and name)."""
        if name not in self.queues:
            output = self.root / "printed" / f"{name}.prn"
            output.write_bytes(b"")
            output.chmod(0o666)
            self.run("lpadmin", "-p", name, "-E", "-v", output.as_uri(), "-P", str(GENERIC_PDF_PPD))
            self.queues[name] = Queue(name, output, self)
        return self.queues[name]

    def logs(self) -> bytes:
        """Everything the scheduler wrote: its logs and its spool (job control files)."""
        found = b""
        for folder in (self.root / "log", self.root / "spool"):
            for path in folder.rglob("*"):
                if path.is_file():
                    found += path.read_bytes()
        return found

    def start(self) -> None:
        root = self.root
        for sub in ("conf", "spool", "spool/tmp", "cache", "state", "log", "printed"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub).chmod(0o755)
        (root / "spool/tmp").chmod(0o1777)
        (root / "printed").chmod(0o777)
        conf = root / "conf"
        (conf / "cupsd.conf").write_text(
            f"Listen 127.0.0.1:{self.port}\n"
            "Browsing No\nWebInterface No\nPreserveJobFiles No\nLogLevel info\n"
            "<Location />\n  Order allow,deny\n  Allow 127.0.0.1\n</Location>\n"
            "<Policy default>\n  JobPrivateValues default\n"
            "  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
        )
        (conf / "cups-files.conf").write_text(
            f"ServerRoot {conf}\nRequestRoot {root / 'spool'}\nTempDir {root / 'spool/tmp'}\n"
            f"CacheDir {root / 'cache'}\nStateDir {root / 'state'}\n"
            f"AccessLog {root / 'log/access_log'}\nErrorLog {root / 'log/error_log'}\n"
            f"PageLog {root / 'log/page_log'}\nPrintcap {root / 'state/printcap'}\n"
            "FileDevice Yes\nSystemGroup root\n"
        )
        # An empty community: no SNMP probe (4 s) for network devices.
        (conf / "snmp.conf").write_text("Community\n")
        self.process = subprocess.Popen(
            ["cupsd", "-f", "-c", str(conf / "cupsd.conf"), "-s", str(conf / "cups-files.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_end_with_parent,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cupsd stopped: {self.process.stderr.read().decode(errors='replace')}")
            if "scheduler is running" in self.lpstat("-r"):
                return
            time.sleep(0.05)
        raise RuntimeError("cupsd did not start within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _end_with_parent() -> None:
    """In the child: stop (SIGTERM) when the test process ends, even if it is killed before its teardown."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def cupsd_path() -> str | None:
    return shutil.which("cupsd") or next(
        (p for p in ("/usr/sbin/cupsd", "/sbin/cupsd") if os.access(p, os.X_OK)), None
    )


@pytest.fixture(scope="session")
def cups_server() -> CupsServer:
    """A private CUPS scheduler for the whole session (see the module's docstring)."""
    cupsd = cupsd_path()
    if cupsd is None or not shutil.which("lp") or not GENERIC_PDF_PPD.is_file():
        _missing("CUPS (cups, cups-client, cups-bsd)")
    os.environ["PATH"] = f"{os.environ.get('PATH', '')}:{Path(cupsd).parent}"
    # Not pytest's tmp_path: it is 0700, and CUPS filters run as user lp.
    root = Path(tempfile.mkdtemp(prefix="brochure-cups-"))
    root.chmod(0o755)
    server = CupsServer(root, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cups_env(cups_server: CupsServer, monkeypatch: pytest.MonkeyPatch) -> CupsServer:
    """CUPS_SERVER set to the private scheduler for one test."""
    monkeypatch.setenv("CUPS_SERVER", cups_server.address)
    return cups_server


# -- SMTP -------------------------------------------------------------------------


@dataclass
class SmtpServer:
    host: str
    port: int
    cafile: Path
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    controller: object = None

    def reset(self) -> None:
        self.messages.clear()
        self.envelopes.clear()
        self.logins.clear()


class _Keep:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.server.messages.append(message)
        self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def _authenticator(server: SmtpServer):  # noqa: ANN202
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(smtp, session, envelope, mechanism, data) -> AuthResult:  # noqa: ANN001
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            server.logins.append(data.login.decode())
        return AuthResult(success=ok)

    return check


@pytest.fixture(scope="session")
def smtp_ca():  # noqa: ANN201 - trustme.CA
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture(scope="session")
def smtp_ca_file(smtp_ca, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    smtp_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def other_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed none of the test servers' certificates."""
    trustme = pytest.importorskip("trustme")
    path = tmp_path_factory.mktemp("other-ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _server_context(ca) -> ssl.SSLContext:  # noqa: ANN001
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@contextlib.contextmanager
def _running(server: SmtpServer, **smtp_options: object):  # noqa: ANN202
    from aiosmtpd.controller import Controller

    controller = Controller(
        _Keep(server),
        hostname=server.host,
        port=server.port,
        authenticator=_authenticator(server),
        **smtp_options,
    )
    controller.start()
    server.controller = controller
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtp_server(smtp_ca, smtp_ca_file: Path) -> SmtpServer:  # noqa: ANN001
    """aiosmtpd requiring STARTTLS, AUTH only after TLS (see the module's docstring)."""
    pytest.importorskip("aiosmtpd")
    server = SmtpServer("127.0.0.1", free_port(), smtp_ca_file)
    with _running(server, tls_context=_server_context(smtp_ca), require_starttls=True, auth_require_tls=True):
        yield server


@pytest.fixture(scope="session")
def smtp_plain_server(smtp_ca_file: Path) -> SmtpServer:
    """aiosmtpd that offers no STARTTLS: a client must refuse to send to it."""
    pytest.importorskip("aiosmtpd")
    server = SmtpServer("127.0.0.1", free_port(), smtp_ca_file)
    with _running(server, auth_require_tls=False):
        yield server


@pytest.fixture(scope="session")
def smtp_implicit_server(smtp_ca, smtp_ca_file: Path) -> SmtpServer:  # noqa: ANN001
    """aiosmtpd with TLS from the start (SMTP_SSL, port 465 style)."""
    pytest.importorskip("aiosmtpd")
    from aiosmtpd.controller import Controller

    server = SmtpServer("127.0.0.1", free_port(), smtp_ca_file)
    context = _server_context(smtp_ca)
    controller = Controller(
        _Keep(server),
        hostname=server.host,
        port=server.port,
        ssl_context=context,
        authenticator=_authenticator(server),
        # aiosmtpd counts only STARTTLS as TLS; this connection is TLS from its first byte.
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def write_settings(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def smtp_settings_file(smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A settings file for ``smtp_server`` (STARTTLS, its CA), named by BROCHURE_SETTINGS;
    the record and drafts go to tmp_path."""
    path = write_settings(
        tmp_path / "settings.toml",
        f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\nuser = "{SMTP_USER}"\n'
        f'sender = "Test Clinic <desk@clinic.test>"\ncafile = "{smtp_server.cafile}"\n'
        f'[record]\npath = "{tmp_path / "record" / "deliveries.sqlite"}"\n'
        f'[drafts]\npath = "{tmp_path / "drafts"}"\n',
    )
    monkeypatch.setenv("BROCHURE_SETTINGS", str(path))
    monkeypatch.setenv("BROCHURE_SMTP_PASSWORD", SMTP_PASSWORD)
    return path
