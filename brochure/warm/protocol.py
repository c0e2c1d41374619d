"""The render server's protocol: where a server lives, who may reach it, and how messages travel.

Each server of the runtime folder has two files named for its key (see
``server_key``): ``KEY.sock``, where it answers, and ``KEY.lock``, which
holds its process id and which it (and its workers) keep locked while it
runs or starts. So a locked ``KEY.lock`` without a socket is a server that
is still starting. Only the user who started it can reach it: its socket is
in a folder only that user may enter, and it checks the user id of every
caller.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import socket
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Any

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
    from brochure.project.inputs import tool_fingerprint

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


def request(conn: socket.socket, message: tuple) -> Any:
    """Send one message on ``conn``, return the one answer, and close it."""
    with conn:
        send(conn, message)
        return receive(conn)
