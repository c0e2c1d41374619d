"""The render server: WeasyPrint kept warm between commands.

Starting Python and importing WeasyPrint costs more than rendering every
handout of a clinic. So ``brochure build`` hands its rendering to a
background process that keeps WeasyPrint loaded and its workers warm.

A build that finds no server renders by itself, exactly as it would with
BROCHURE_SERVER=off, and only then starts one in the background, so the
first build never waits for it nor shares the cores with its start; a
build that comes while a server is starting waits for it. The server stops
by itself after ``IDLE_SECONDS`` without a build, when brochure itself is
updated (a new version starts its own), on SIGTERM, or with
``brochure server stop``.

Only the user who started it can reach it: its socket is in a folder only
that user may enter, and it checks the user id of every caller. It reads a
project only when asked to render it, writes nothing to disk but its socket
and a file with its process id, and logs nothing; the PDFs go back to the
build, which checks and writes them.

Each server of the runtime folder has two files named for its key (see
``server_key``): ``KEY.sock``, where it answers, and ``KEY.lock``, which
holds its process id and which it (and its workers) keep locked while it
runs or starts. So a locked ``KEY.lock`` without a socket is a server that
is still starting.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import queue
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .workers import Pickled, Renderer, Result, default_jobs

log = logging.getLogger(__name__)

#: How long the server waits for a build before it stops.
IDLE_SECONDS = 15 * 60
#: How long a build waits for a server that is starting before rendering by itself.
START_SECONDS = 30.0
#: How long `brochure server stop` waits for a server to end after SIGTERM, before SIGKILL.
STOP_SECONDS = 15.0
PROTOCOL = 2
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
    base = env("BROCHURE_RUNTIME_DIR") or env("XDG_RUNTIME_DIR")
    if not base:
        import tempfile  # loaded only here: a build's start-up is timed

        base = tempfile.gettempdir()
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


def lock_path(sock: Path) -> Path:
    """The file a server keeps locked, with its process id in it, while it starts and runs."""
    return sock.with_suffix(".lock")


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


def _holder(lock: Path) -> int | None:
    """The process id of the server holding ``lock`` (0 if unknown), or None when no server holds it."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass  # held: a server is starting or running
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        # The starter writes the id just after the server process exists: wait a moment for it.
        for _ in range(200):
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            if text.isdigit():
                return int(text)
            time.sleep(0.005)
        return 0  # held by a process that did not say which
    finally:
        os.close(fd)


def connect(wait: bool = True, start: bool = False) -> socket.socket | None:
    """A connection to this brochure's server; with ``wait``, to one that is still starting too.

    None when no server is running (nor, with ``wait``, starting): the
    caller renders by itself, and may then call ``start_in_background``.
    With ``start`` (and ``wait``), a server is started and waited for instead.
    """
    path = socket_path()
    if path is None:
        return None
    conn = _connect(path)
    if conn is not None or not wait:
        return conn
    lock = lock_path(path)
    if _holder(lock) is None:
        if not start:
            return None
        log.debug("starting the render server")
        start_in_background()
    # A server is starting: it is importing WeasyPrint, as this build would
    # have to, on the same cores. Waiting for it costs no more, unless it
    # has been starting for too long already (then it is stuck).
    try:
        deadline = lock.stat().st_mtime + START_SECONDS  # written when it was started
    except OSError:
        deadline = time.time() + START_SECONDS
    if time.time() >= deadline:
        log.debug("the render server has been starting for more than %.0f s: rendering here", START_SECONDS)
        return None
    log.debug("waiting for the render server to start")
    while time.time() < deadline:
        conn = _connect(path)
        if conn is not None:
            return conn
        if _holder(lock) is None:
            break  # it ended without answering
        time.sleep(0.01)
    log.debug("the render server did not start")
    return None


_started: list = []  # subprocess.Popen


def start_in_background() -> int | None:
    """Start this brochure's server without waiting for it; its process id, or None if one runs or starts."""
    import fcntl
    import subprocess

    path = socket_path()
    if path is None:
        return None
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # another server holds it
        # The server inherits the locked file, so the lock passes to it
        # with no moment in which another build could start a second one.
        process = subprocess.Popen(
            [sys.executable, "-m", "brochure", "server", "run", "--socket", str(path), "--lock-fd", str(fd)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            pass_fds=(fd,),
            start_new_session=True,  # Ctrl-C in this terminal is not for it
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{process.pid}\n".encode("ascii"), 0)
        log.debug("started the render server (%s) in the background", process.pid)
        _started.append(process)  # kept, and reaped if it ends while this process still runs
        for earlier in _started[:-1]:
            if earlier.poll() is not None:
                _started.remove(earlier)
        return process.pid
    finally:
        os.close(fd)


def request(conn: socket.socket, message: tuple) -> Any:
    """Send one message on ``conn``, return the one answer, and close it."""
    with conn:
        send(conn, message)
        return receive(conn)


def ask(message: tuple, wait: bool = True) -> Any:
    """One request to this brochure's server (never started for it); None when there is no server."""
    conn = connect(wait=wait)
    if conn is None:
        return None
    try:
        return request(conn, message)
    except _LOST as exc:
        log.debug("the render server failed (%s)", exc)
        return None


def _io(action: Callable[..., Any], *args: object) -> Any:
    """``action(*args)``, or None when the server has gone (a failed send gives None, a good one True)."""
    try:
        result = action(*args)
    except _LOST as exc:
        log.debug("the render server failed (%s); rendering here", exc)
        return None
    return True if result is None else result


def call(function: Any, *args: Any) -> tuple[bool, Any]:  # noqa: ANN401
    """Run the module-level ``function(*args)`` in a warm worker of the server (for brochure.deliver).

    Returns (True, its result), or (False, None) when there is no server or
    it went away, so the caller can run it itself. An error the function
    raises is raised here. Starts the server, and waits for it, if none runs.
    """
    conn = connect(start=True)
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
    Starts the server, and waits for it, if none runs.
    """
    conn = connect(start=True) if jobs else None
    if conn is None:
        return
    try:
        with conn:
            send(conn, ("call_many", function, list(jobs)))
            while (reply := receive(conn)) != "done":
                yield reply[1]
    except _LOST as exc:
        log.debug("the render server failed (%s); rendering here", exc)


def _unless_empty(items: Iterator) -> Iterator | None:
    """``items`` as they were, or None when there are none."""
    first = next(items, _NONE)
    return None if first is _NONE else itertools.chain([first], items)


_NONE = object()


def _readable(conn: socket.socket) -> bool:
    """Whether something (a result, or the end of the connection) waits to be read."""
    return bool(select.select([conn], [], [], 0)[0])


class RemoteRenderer:
    """Renders through the server when it can, and in its own workers when it cannot.

    Used like workers.Renderer by the build. A server that is not running
    costs nothing: the build renders here, then starts one for the next
    build. A server that stops part way costs nothing but time: what it
    did not render is rendered here.
    """

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs
        self._local: Renderer | None = None
        self.started: int | None = None  # the process id of a server this renderer started
        self._start_server = False  # rendered here: start a server for the next build (see close)

    def render(self, project, docs: Iterable, paper: str, strict: bool) -> Iterator[Result]:  # noqa: ANN001
        """Render ``docs`` (longest first, as given); yield each result as it is done.

        ``docs`` may be a generator that works each document out meanwhile:
        it is read only as the server (or the workers here) come free.
        """
        docs = iter(docs)
        pending: dict[str, Any] = {}  # sent to the server, not yet back
        conn = self._connect()
        if conn is not None:
            with conn:
                yield from self._through(conn, project, docs, paper, strict, pending)
        left = _unless_empty(itertools.chain(pending.values(), docs))  # what the server did not render
        if left is not None:
            self._local = self._local or Renderer(self.jobs)
            yield from self._local.render(project, left, paper, strict)
        if conn is None and self._usable():
            # Started by close(), when the build is done: the server's start (importing WeasyPrint)
            # would share the cores with this build's rendering and writing.
            self._start_server = True

    def _through(  # noqa: ANN001
        self, conn: socket.socket, project, docs: Iterator, paper: str, strict: bool, pending: dict
    ) -> Iterator[Result]:
        """Render through the server until every document is back, or until the server fails.

        Each document goes to the server as soon as ``docs`` gives it, and
        the results that are back are read between two documents, so the
        server's workers and this build's work on the next document
        overlap. What the server did not render is left in ``pending`` (and
        ``docs``). An error of ``docs`` itself is the build's, and goes up.
        """
        # Pickled here, once: the server passes the bytes on to its workers as they are.
        if not _io(send, conn, ("render", Pickled.of(project), paper, strict, self.jobs)):
            return
        for doc in docs:  # outside _io: an error here is the build's own
            pending[doc.name] = doc
            if not _io(send, conn, doc):
                return
            while pending and _readable(conn):
                if (result := _io(receive, conn)) is None:
                    return
                pending.pop(result.name, None)
                yield result
        if not _io(send, conn, None):
            return
        while pending:
            result = _io(receive, conn)
            if result is None or result == "done":
                return
            pending.pop(result.name, None)
            yield result
        _io(receive, conn)  # "done"

    def _usable(self) -> bool:
        if (self.jobs or 0) > default_jobs():  # the server has a worker per core
            log.debug("--jobs %s is more than the cores: rendering without the render server", self.jobs)
            return False
        return True

    def _connect(self) -> socket.socket | None:
        return connect() if self._usable() else None

    def close(self) -> None:
        """Stop the workers here, if any; then, if this renderer rendered without a server, start one."""
        if self._local is not None:
            self._local.close()
            self._local = None
        if self._start_server:
            self._start_server = False
            self.started = start_in_background()


@dataclass
class State:
    """What a request handler may use: the server's warm renderer, and what status reports."""

    renderer: Renderer
    idle: float
    started: float
    builds: int = 0
    stopping: bool = False


#: A handler answers one kind of request: it gets the connection, the message
#: (a tuple whose first item is the kind) and the server's State, and sends
#: its answer (one message, or several the caller knows how to read).
Handler = Callable[[socket.socket, tuple, State], None]


def _on_render(conn: socket.socket, message: tuple, state: State) -> None:
    """("render", project, paper, strict, jobs), then each document, then None.

    The project comes as workers.Pickled, and goes to the workers unopened.

    Answers each Result as it is done, then "done". The documents are read
    in a thread of their own as they come, so a build that sends the next
    one while it reads a result never waits for the server, nor it for the
    build.
    """
    _, project, paper, strict, jobs = message
    state.builds += 1
    incoming: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        try:
            while (doc := receive(conn)) is not None:
                incoming.put(doc)
        except _LOST:
            pass  # the build went away: render what came, and the sending fails
        finally:
            incoming.put(None)

    def documents() -> Iterator:
        while (doc := incoming.get()) is not None:
            yield doc

    reader = threading.Thread(target=read, name="brochure-reader", daemon=True)
    reader.start()
    for result in state.renderer.render(project, documents(), paper, strict, jobs):
        send(conn, result)
    send(conn, "done")
    reader.join()


def _on_status(conn: socket.socket, message: tuple, state: State) -> None:
    """("status",): a dict of the process id, workers, start time, builds and idle time."""
    from . import __version__

    send(
        conn,
        {
            "pid": os.getpid(),
            "jobs": state.renderer.jobs,
            "started": state.started,
            "builds": state.builds,
            "idle": state.idle,
            "version": __version__,
        },
    )


def _on_stop(conn: socket.socket, message: tuple, state: State) -> None:
    """("stop",): "stopping", then the server ends."""
    state.stopping = True
    send(conn, "stopping")


def _on_call(conn: socket.socket, message: tuple, state: State) -> None:
    """("call", function, args): ("ok", its result) or ("error", the BrochureError it raised)."""
    from concurrent.futures.process import BrokenProcessPool

    from .errors import BrochureError

    _, function, args = message
    try:
        reply = "ok", state.renderer.pool().submit(function, *args).result()
    except BrochureError as exc:
        reply = "error", exc
    except BrokenProcessPool:
        state.renderer._stop_pool()
        raise ConnectionError("a worker stopped") from None
    except Exception as exc:  # a bug of ours: the caller runs it itself and sees it
        raise ConnectionError(type(exc).__name__) from None
    send(conn, reply)


def _on_call_many(conn: socket.socket, message: tuple, state: State) -> None:
    """("call_many", function, jobs): ("ok", result) or ("error", BrochureError) for each job, then "done"."""
    from concurrent.futures.process import BrokenProcessPool

    from .errors import BrochureError

    _, function, jobs = message
    # A few jobs a worker in flight, not the whole batch: a result is sent and let go as soon as
    # it is back, so the server's memory stays flat however long the batch.
    window: collections.deque = collections.deque()
    try:
        pool = state.renderer.pool()
        jobs.reverse()
        while jobs or window:
            while jobs and len(window) < 2 * state.renderer.jobs:
                window.append(pool.submit(function, *jobs.pop()))
            try:
                reply = "ok", window.popleft().result()
            except BrochureError as exc:
                reply = "error", exc
            send(conn, reply)
            del reply
    except BrokenProcessPool:
        state.renderer._stop_pool()
        raise ConnectionError("a worker stopped") from None
    except _LOST:
        raise
    except Exception as exc:  # a bug of ours: the caller runs the rest itself and sees it
        raise ConnectionError(type(exc).__name__) from None
    finally:
        jobs.clear()  # a job may carry a patient's details: keep nothing
        for future in window:
            future.cancel()
    send(conn, "done")


#: Every request the server answers, by kind. To add one, write a Handler
#: and add it here; a client sends ``(kind, ...)`` with ``request`` or ``ask``.
HANDLERS: dict[str, Handler] = {
    "render": _on_render,
    "call": _on_call,
    "call_many": _on_call_many,
    "status": _on_status,
    "stop": _on_stop,
}


class _Terminated(BaseException):
    """SIGTERM arrived. Not an Exception, so no ``except Exception`` on the way can swallow it."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def serve(path: Path, idle: float, lock_fd: int | None = None) -> None:
    """Answer builds on the socket at ``path`` until ``idle`` seconds pass without one, or SIGTERM.

    ``lock_fd`` is the locked ``lock_path(path)``, handed down by the build
    that started this server; without it the server locks that file itself,
    and ends at once when another server holds it.
    """
    import fcntl

    os.umask(0o077)
    if lock_fd is None:
        lock_fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.debug("another render server is running or starting for %s", path)
            return
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, f"{os.getpid()}\n".encode("ascii"), 0)
    signal.signal(signal.SIGTERM, _terminate)
    # Workers forked from here end on SIGTERM as usual (the pool's own way of stopping them).
    os.register_at_fork(after_in_child=_default_sigterm)
    renderer = Renderer()
    listener: socket.socket | None = None
    inode = -1
    try:
        renderer.start()  # WeasyPrint imported and the workers forked before the first build comes
        path.unlink(missing_ok=True)  # left by a server that was killed: we hold the lock, so it is no one's
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        inode = os.stat(path).st_ino
        listener.listen(16)
        listener.settimeout(idle)
        _answer(listener, State(renderer, idle, time.time()), path, inode)
    except _Terminated:
        log.debug("render server: SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cleaning up is not to be cut short
        if listener is not None:
            listener.close()
        if _is_ours(path, inode):
            path.unlink(missing_ok=True)
        renderer.close()
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


def _answer(listener: socket.socket, state: State, path: Path, inode: int) -> None:
    """Answer one connection at a time until idle, stopped, or no longer reachable."""
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
                _handle(conn, state)
            except (*_LOST, IndexError, ValueError, TypeError) as exc:
                # The build went away (Ctrl-C) or sent nonsense: wait for the next one.
                log.debug("render server: a request failed (%s)", exc, exc_info=True)
        if state.stopping or not _is_ours(path, inode):
            return  # asked to stop, or our socket was removed or replaced: nobody can reach us any more


def _handle(conn: socket.socket, state: State) -> None:
    """Read one request and answer it. The request (it may carry a patient's details) goes with this call."""
    message = receive(conn)
    handler = HANDLERS.get(message[0]) if isinstance(message, tuple) and message else None
    if handler is not None:
        handler(conn, message, state)


def _is_ours(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _keys() -> list[Path]:
    """The socket path of every server of this user's runtime folder (of any brochure version)."""
    directory = runtime_dir()
    if directory is None:
        return []
    found = {p.with_suffix(".sock") for pattern in ("*.sock", "*.lock") for p in directory.glob(pattern)}
    return sorted(p for p in found if len(p.stem) == 16 and all(c in "0123456789abcdef" for c in p.stem))


def servers() -> list[Path]:
    """The sockets of every server of this user (of any brochure version)."""
    return [p for p in _keys() if p.exists()]


def status() -> list[dict]:
    """What each server of this runtime folder says about itself; one that is starting says only its pid."""
    found = []
    current = socket_path()
    for path in _keys():
        info = None
        conn = _connect(path)
        if conn is not None:
            with contextlib.suppress(*_LOST):
                info = request(conn, ("status",))
        if isinstance(info, dict):
            found.append({**info, "current": path == current, "starting": False})
        elif (pid := _holder(lock_path(path))) is not None:
            found.append({"pid": pid, "current": path == current, "starting": True})
    return found


def stop(every: bool = False) -> list[dict]:
    """Stop this brochure's server of this runtime folder, or with ``every`` all of them.

    Returns what was stopped: for each, its process id (None if it did not
    say) and whether it was this brochure's. Each is gone, workers and
    socket too, when this returns.
    """
    current = socket_path()
    stopped = []
    for path in _keys():
        if not every and path != current:
            continue
        pid = _stop_one(path)
        if pid is not False:
            stopped.append({"pid": pid, "current": path == current})
    return stopped


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs; one that has ended but is not yet reaped by its parent does not."""
    if not pid:
        return False
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except (OSError, IndexError):
            return False
    try:  # pragma: no cover - no /proc
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # pragma: no cover
        return False
    return True  # pragma: no cover


def _stop_one(path: Path) -> int | None | bool:
    """End the server of ``path``: its process id, None for one that did not say it, False for none."""
    lock = lock_path(path)
    pid = _holder(lock)
    if pid is not None:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while (_holder(lock) is not None or _running(pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid and (_holder(lock) is not None or _running(pid)):
            log.debug("render server %s did not end on SIGTERM: killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # its workers end with it
            path.unlink(missing_ok=True)
        return pid or None
    # A server of an older brochure keeps no lock: ask it to stop.
    info = None
    conn = _connect(path)
    if conn is None:
        path.unlink(missing_ok=True)  # left by a server that was killed
        return False
    with contextlib.suppress(*_LOST):
        info = request(conn, ("status",))
    conn = _connect(path)
    if conn is None:
        return False
    with contextlib.suppress(*_LOST):
        request(conn, ("stop",))
    return info.get("pid") if isinstance(info, dict) else None
