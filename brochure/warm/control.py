"""`brochure server status` and `stop`: the render servers of this user, found and stopped."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from brochure.warm.protocol import (
    _LOST,
    STOP_SECONDS,
    _connect,
    _holder,
    lock_path,
    request,
    runtime_dir,
    socket_path,
)

log = logging.getLogger(__name__)


def _keys() -> list[Path]:
    """The socket path of every server of this user's runtime folder (of any brochure version)."""
    directory = runtime_dir()
    if directory is None:
        return []
    found = {p.with_suffix(".sock") for pattern in ("*.sock", "*.lock") for p in directory.glob(pattern)}
    return sorted(p for p in found if len(p.stem) == 16 and all(c in "0123456789abcdef" for c in p.stem))


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
