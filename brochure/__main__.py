"""`python -m brochure` and the brochure command: Ctrl-C at any moment stops with 'Stopped.' and exit 130."""

import sys


def main() -> None:
    """Run the command line; a Ctrl-C while it is still loading stops it cleanly too."""
    try:
        from brochure.cli import noop

        if noop.answer(sys.argv[1:]):
            _leave(0)
        from brochure.cli.main import cli

        try:
            cli(prog_name="brochure")
        except SystemExit as done:
            if sys.argv[1:2] == ["build"] and done.code in (None, 0, 1) and _alone():
                _leave(done.code)
            raise
    except KeyboardInterrupt:
        # PDFs are written atomically: nothing half-written is left behind.
        print("Stopped.", file=sys.stderr)  # noqa: T201 - click may not be imported yet
        sys.exit(130)


def _alone() -> bool:
    """Whether no other thread is still at work (one would be cut short by _leave)."""
    import threading

    return all(t.daemon for t in threading.enumerate() if t is not threading.main_thread())


def _leave(code: int | None) -> None:
    """End a finished build's process at once, as Python would, without taking every object apart first.

    Only for a build that ended (done or failed, not stopped by Ctrl-C) with
    no other thread at work: every PDF, the manifest and the lock are
    written and closed and the workers have stopped. Tearing down what the
    build still holds (the project, its topics and keys, every module
    loaded) took 60-140 ms of an edit's build here. Exit handlers (logging,
    the fonts' folder) still run. Not for a caller in the same process:
    this ends it.
    """
    import atexit
    import os

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
