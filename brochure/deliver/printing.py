"""Printing through CUPS with its own commands: `lp` reads the PDF on standard input.

So no file holding a patient's details is written, and the job's title is
a generic one: CUPS shows titles in its queue, its logs and on the
printer's own display. CUPS_SERVER, when set, is passed through.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

from brochure.base.errors import BrochureError
from brochure.base.paper import paper
from brochure.deliver import rules
from brochure.deliver.packet import Packet
from brochure.deliver.settings import MachineSettings, load_settings

#: The title every job gets: never a patient's name or a handout's.
JOB_TITLE = "brochure handout"
TIMEOUT = 30


class PrintError(BrochureError):
    """A print job could not be handed to CUPS. ``kind`` says what went wrong, for the desk's own
    words: "service" (no print service), "printer" (no such printer, or none chosen), "refused"
    (the printer takes no jobs), "failed" (lp said no)."""

    kind = "failed"


def _failed(kind: str, message: str, fix: str) -> PrintError:
    error = PrintError.at(None, None, message, fix)
    error.kind = kind
    return error


@dataclass(frozen=True)
class PrintJob:
    """A job CUPS accepted."""

    job_id: str
    printer: str
    warnings: list[str] = field(default_factory=list)
    #: The printer was paused when the job was handed over: it waits there until it is resumed.
    paused: bool = False


def _run(command: list[str], data: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}  # CUPS' messages are read below
    try:
        return subprocess.run(command, input=data, capture_output=True, env=env, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise _failed(
            "service",
            f"the '{command[0]}' command is not installed",
            "install CUPS' commands (Debian: apt install cups-client cups-bsd)",
        ) from None
    except subprocess.TimeoutExpired:
        raise _failed(
            "service", f"the print service did not answer within {TIMEOUT} s", "check that CUPS is running"
        ) from None


def _text(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr).decode("utf-8", "replace")


def check_scheduler() -> None:
    """Raise PrintError when no CUPS scheduler answers (`lp` would only say the printer does not exist)."""
    out = _text(_run(["lpstat", "-r"]))
    if "scheduler is running" not in out or "not running" in out:
        where = os.environ.get("CUPS_SERVER")
        place = f" at {where} (CUPS_SERVER)" if where else ""
        raise _failed(
            "service",
            f"the print service (CUPS) is not running{place}",
            "start it (sudo systemctl start cups), or ask IT",
        )


def printers() -> tuple[list[str], str | None]:
    """The print queues and the default one (None when there is none)."""
    check_scheduler()
    queues = [line.strip() for line in _text(_run(["lpstat", "-e"])).splitlines() if line.strip()]
    match = re.search(r"system default destination: (\S+)", _text(_run(["lpstat", "-d"])))
    return queues, match.group(1) if match else None


def _state(printer: str) -> tuple[bool, bool]:
    """Whether ``printer`` accepts jobs, and whether it is paused."""
    accepting = _text(_run(["lpstat", "-a", printer]))
    status = _text(_run(["lpstat", "-p", printer]))
    return "not accepting" not in accepting, " disabled" in status


def choose_printer(printer: str | None, settings: MachineSettings) -> tuple[str, bool]:
    """The queue a job goes to (``printer``, else the settings', else the system's default) and
    whether it is paused; PrintError when there is none, it is unknown, or it takes no jobs. The
    command line asks this before it asks anything about the patient."""
    queues, default = printers()
    printer = printer or settings.printer or default
    if not printer:
        raise _failed(
            "printer",
            "no printer chosen and the computer has no default printer",
            "give --printer NAME (see 'brochure printers'), or set [printer] name in the settings file",
        )
    if printer not in queues:
        known = ", ".join(queues) if queues else "none"
        raise _failed(
            "printer", f"there is no printer named {printer!r} (printers: {known})", "check the name"
        )
    accepting, paused = _state(printer)
    if not accepting:
        raise _failed(
            "refused",
            f"printer {printer!r} is not accepting jobs",
            f"ask IT to enable it (cupsaccept {printer}), or choose another printer",
        )
    return printer, paused


def print_packet(
    packet: Packet,
    *,
    printer: str | None = None,
    copies: int = 1,
    duplex: bool = False,
    settings: MachineSettings | None = None,
) -> PrintJob:
    """Hand ``packet`` to CUPS as one job; raise PrintError with a plain message when it cannot be."""
    rules.check_copies(copies)
    printer, paused = choose_printer(printer, settings or load_settings())
    warnings = []
    if paused:
        warnings.append(
            f"printer {printer!r} is paused: the job waits until it is resumed (cupsenable {printer})"
        )
    command = [
        "lp",
        "-d",
        printer,
        "-n",
        str(copies),
        "-t",
        JOB_TITLE,
        "-o",
        f"media={paper(packet.paper).cups_media}",
    ]
    command += ["-o", "sides=two-sided-long-edge" if duplex else "sides=one-sided"]
    result = _run(command, packet.pdf)  # no file named: lp reads standard input
    out = _text(result)
    match = re.search(r"request id is (\S+)", out)
    if result.returncode != 0 or not match:
        reason = out.strip().removeprefix("lp: ") or f"lp exited with {result.returncode}"
        kind = "refused" if "not accepting" in reason else "failed"
        raise _failed(kind, f"printing failed: {reason}", "check the printer with 'lpstat -p'")
    return PrintJob(match.group(1), printer, warnings, paused)
