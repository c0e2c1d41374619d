"""The render server itself: WeasyPrint kept warm between commands, in a background process.

It stops by itself after ``IDLE_SECONDS`` without a build, when brochure
itself is updated (a new version starts its own), on SIGTERM, or with
``brochure server stop``. It reads a project only when asked to render it,
writes nothing to disk but its socket and a file with its process id, and
logs nothing; the PDFs go back to the build, which checks and writes them.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from brochure.warm.protocol import _LOST, _same_user, lock_path, receive, send
from brochure.warm.workers import Renderer

log = logging.getLogger(__name__)


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
    from brochure import __version__

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

    from brochure.base.errors import BrochureError

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

    from brochure.base.errors import BrochureError

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
