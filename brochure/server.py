"""The render server: WeasyPrint kept warm between commands.

Starting Python and importing WeasyPrint costs more than rendering every
handout of a clinic. So ``brochure build`` hands its rendering to a
background process that keeps WeasyPrint loaded and its workers warm. The
first build starts it; it stops by itself after ``IDLE_SECONDS`` without a
build, when brochure itself is updated (a new version starts its own), or
with ``brochure server stop``. With BROCHURE_SERVER=off, every build
renders in its own processes, as it would if the server could not start.

Only the user who started it can reach it: its socket is in a folder only
that user may enter, and it checks the user id of every caller. It reads a
project only when asked to render it, writes nothing to disk and logs
nothing; the PDFs go back to the build, which checks and writes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .output import FileLock
from .workers import Renderer, Result, default_jobs

log = logging.getLogger(__name__)

#: How long the server waits for a build before it stops.
IDLE_SECONDS = 15 * 60
#: How long a build waits for a new server to be ready before rendering by itself.
START_SECONDS = 30.0
PROTOCOL = 1
_HEADER = struct.Struct("!Q")
_MAX_MESSAGE = 1 << 30
#: What a connection that closed, or a message that cannot be read, raises.
_LOST = (OSError, EOFError, pickle.PickleError, AttributeError)


def enabled() -> bool:
    """Whether builds use the server: on unless BROCHURE_SERVER=off, where there are unix sockets."""
    if not (hasattr(socket, "AF_UNIX") and hasattr(os, "getuid")):  # pragma: no cover - Windows
        return False
    return os.environ.get("BROCHURE_SERVER", "on").strip().lower() not in ("off", "0", "no", "false")


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("BROCHURE_SERVER_IDLE", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


def runtime_dir() -> Path | None:
    """This user's private folder for server sockets; None when it is not private."""
    env = os.environ.get
    base = env("BROCHURE_RUNTIME_DIR") or env("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"brochure-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        log.debug("no render server: cannot make %s (%s)", path, exc)
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.debug("no render server: %s is not a folder only this user can enter", path)
        return None
    return path


def server_key() -> str:
    """Which server a build may use: the same brochure, WeasyPrint, Python and reproducibility setting."""
    from .inputs import tool_fingerprint

    h = hashlib.sha256(f"{PROTOCOL} {sys.executable} {os.environ.get('SOURCE_DATE_EPOCH', '0')}".encode())
    h.update(tool_fingerprint().encode())
    return h.hexdigest()[:16]


def socket_path() -> Path | None:
    directory = runtime_dir()
    if directory is None:
        return None
    path = directory / f"{server_key()}.sock"
    if len(os.fsencode(path)) >= 100:  # the limit of a unix socket's address
        log.debug("no render server: %s is too long a path for a socket", path)
        return None
    return path


# Messages are pickles, length first. Only this user can connect (see above),
# and this user can run any code anyway, so a pickle gives nobody anything new.


def send(conn: socket.socket, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    conn.sendall(_HEADER.pack(len(data)) + data)


def receive(conn: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_read(conn, _HEADER.size))
    if size > _MAX_MESSAGE:
        raise ConnectionError("message too large")
    return pickle.loads(_read(conn, size))  # noqa: S301 - from this user only


def _read(conn: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):  # pragma: no cover - not Linux: the folder's mode guards it
        return True
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    return conn


def connect(start: bool = True) -> socket.socket | None:
    """A connection to this brochure's server, starting one if there is none (and ``start``)."""
    path = socket_path()
    if path is None:
        return None
    conn = _connect(path)
    if conn is not None or not start:
        return conn
    # One build starts the server; a build started meanwhile waits here, then connects.
    with FileLock(path.parent / "start.lock") as lock:
        lock.acquire(wait=True)
        conn = _connect(path)
        if conn is not None:
            return conn
        path.unlink(missing_ok=True)  # left by a server that was killed
        log.debug("starting the render server")
        process = subprocess.Popen(
            [sys.executable, "-m", "brochure", "server", "run", "--socket", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # Ctrl-C in this terminal is not for it
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            conn = _connect(path)
            if conn is not None:
                return conn
            time.sleep(0.01)
    log.debug("the render server did not start")
    return None


def request(conn: socket.socket, message: tuple) -> Any:
    with conn:
        send(conn, message)
        return receive(conn)


class RemoteRenderer:
    """Renders through the server when it can, and in its own workers when it cannot.

    Used like workers.Renderer by the build. A server that cannot start,
    or stops part way, costs nothing but time: what it did not render is
    rendered here.
    """

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs
        self._local: Renderer | None = None

    def render(self, project, docs: Sequence, paper: str, strict: bool) -> Iterator[Result]:  # noqa: ANN001
        left = {doc.name: doc for doc in docs}
        try:
            conn = self._connect()
            if conn is not None:
                with conn:
                    send(conn, ("render", project, list(docs), paper, strict, self.jobs))
                    while (message := receive(conn)) != "done":
                        left.pop(message.name, None)
                        yield message
        except _LOST as exc:
            log.debug("the render server failed (%s); rendering here", exc)
        if left:
            self._local = self._local or Renderer(self.jobs)
            yield from self._local.render(project, [d for d in docs if d.name in left], paper, strict)

    def _connect(self) -> socket.socket | None:
        if (self.jobs or 0) > default_jobs():  # the server has a worker per core
            log.debug("--jobs %s is more than the cores: rendering without the render server", self.jobs)
            return None
        return connect()

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None


def serve(path: Path, idle: float) -> None:
    """Answer builds on the socket at ``path`` until ``idle`` seconds pass without one."""
    os.umask(0o077)
    renderer = Renderer()
    renderer.start()  # WeasyPrint imported and the workers forked before the first build comes
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # fails if another server took the place meanwhile
    inode = os.stat(path).st_ino
    listener.listen(16)
    listener.settimeout(idle)
    started, builds = time.time(), 0
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            with conn:
                conn.settimeout(None)
                if not _same_user(conn):
                    continue
                try:
                    message = receive(conn)
                    if message[0] == "render":
                        builds += 1
                        _, project, docs, paper, strict, jobs = message
                        for result in renderer.render(project, docs, paper, strict, jobs):
                            send(conn, result)
                        send(conn, "done")
                    elif message[0] == "call":
                        send(conn, _call(renderer, *message[1:]))
                        message = None  # a call may carry a patient's details: keep nothing
                    elif message[0] == "call_many":
                        for reply in _call_many(renderer, *message[1:]):
                            send(conn, reply)
                        send(conn, "done")
                        message = None
                    elif message[0] == "status":
                        send(
                            conn,
                            {
                                "pid": os.getpid(),
                                "jobs": renderer.jobs,
                                "started": started,
                                "builds": builds,
                                "idle": idle,
                            },
                        )
                    elif message[0] == "stop":
                        send(conn, "stopping")
                        return
                except (*_LOST, IndexError, ValueError):
                    continue  # the build went away (Ctrl-C) or sent nonsense: wait for the next one
            if not _is_ours(path, inode):
                return  # our socket was removed or replaced: nobody can reach us any more
    finally:
        listener.close()
        if _is_ours(path, inode):
            path.unlink(missing_ok=True)
        renderer.close()


def call(function: Any, *args: Any) -> tuple[bool, Any]:  # noqa: ANN401
    """Run the module-level ``function(*args)`` in a warm worker of the server (for brochure.deliver).

    Returns (True, its result), or (False, None) when there is no server or
    it went away, so the caller can run it itself. An error the function
    raises is raised here.
    """
    conn = connect()
    if conn is None:
        return False, None
    try:
        status, value = request(conn, ("call", function, args))
    except _LOST as exc:
        log.debug("the render server failed (%s); rendering here", exc)
        return False, None
    if status == "error":
        raise value
    return True, value


def call_many(function: Any, jobs: Sequence[tuple]) -> Iterator[Any]:  # noqa: ANN401
    """``function(*job)`` for each job in the server's workers at once; yield each result in order.

    A BrochureError a job raises is yielded in its place. When there is no
    server, or it goes away, this stops early: the caller does the rest.
    """
    conn = connect() if jobs else None
    if conn is None:
        return
    try:
        with conn:
            send(conn, ("call_many", function, list(jobs)))
            while (reply := receive(conn)) != "done":
                yield reply[1]
    except _LOST as exc:
        log.debug("the render server failed (%s); rendering here", exc)


def _call_many(renderer: Renderer, function: Any, jobs: list[tuple]) -> Iterator[tuple[str, Any]]:  # noqa: ANN401
    from concurrent.futures.process import BrokenProcessPool

    from .errors import BrochureError

    pool = renderer._executor()
    futures = [pool.submit(function, *job) for job in jobs]
    jobs.clear()
    try:
        for future in futures:
            try:
                yield "ok", future.result()
            except BrochureError as exc:
                yield "error", exc
    except BrokenProcessPool:
        renderer.close()
        raise ConnectionError("a worker stopped") from None
    except Exception as exc:  # a bug of ours: the caller runs the rest itself and sees it
        raise ConnectionError(type(exc).__name__) from None
    finally:
        for future in futures:
            future.cancel()


def _call(renderer: Renderer, function: Any, args: tuple) -> tuple[str, Any]:  # noqa: ANN401
    from concurrent.futures.process import BrokenProcessPool

    from .errors import BrochureError

    try:
        return "ok", renderer._executor().submit(function, *args).result()
    except BrochureError as exc:
        return "error", exc
    except BrokenProcessPool:
        renderer.close()
        raise ConnectionError("a worker stopped") from None
    except Exception as exc:  # a bug of ours: the caller runs it itself and sees it
        raise ConnectionError(type(exc).__name__) from None


def _is_ours(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def servers() -> list[Path]:
    """The sockets of every server of this user (of any brochure version)."""
    directory = runtime_dir()
    return sorted(directory.glob("*.sock")) if directory else []


def status() -> list[dict]:
    found = []
    current = socket_path()
    for path in servers():
        conn = _connect(path)
        if conn is None:
            continue
        try:
            info = request(conn, ("status",))
        except _LOST:
            continue
        if isinstance(info, dict):
            found.append({**info, "current": path == current})
    return found


def stop() -> int:
    """Stop every server of this user; how many there were."""
    stopped = 0
    for path in servers():
        conn = _connect(path)
        if conn is None:
            continue  # a server that was killed: the next build clears its socket away
        with contextlib.suppress(*_LOST):
            request(conn, ("stop",))
            stopped += 1
    return stopped
