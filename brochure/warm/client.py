"""The render server's client: a build, a check or a personalised copy hands its rendering to the server.

Starting Python and importing WeasyPrint costs more than rendering every
handout of a clinic. So ``brochure build`` hands its rendering to a
background process that keeps WeasyPrint loaded and its workers warm.

A build that finds no server renders by itself, exactly as it would with
BROCHURE_SERVER=off, and only then starts one in the background, so the
first build never waits for it nor shares the cores with its start; a
build that comes while a server is starting waits for it.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from brochure.warm.protocol import (
    _LOST,
    START_SECONDS,
    _connect,
    _holder,
    lock_path,
    receive,
    request,
    send,
    socket_path,
)
from brochure.warm.workers import Pickled, Renderer, Result, default_jobs

log = logging.getLogger(__name__)


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
