"""`python -m brochure` and the brochure command: Ctrl-C at any moment stops with 'Stopped.' and exit 130."""

import sys


def main() -> None:
    """Run the command line; a Ctrl-C while it is still loading stops it cleanly too."""
    try:
        from . import noop

        if noop.answer(sys.argv[1:]):
            _leave(0)
        from .cli import cli

        try:
            cli(prog_name="brochure")
        except SystemExit as done:
            if sys.argv[1:2] == ["build"]:
                _leave(done.code)
            raise
    except KeyboardInterrupt:
        # PDFs are written atomically: nothing half-written is left behind.
        print("Stopped.", file=sys.stderr)  # noqa: T201 - click may not be imported yet
        sys.exit(130)


def _leave(code: object) -> None:
    """End a build's process at once, as Python would, without taking every object apart first.

    By then every PDF, the manifest and the lock are written and closed and
    the workers have stopped; tearing down what the build still holds (the
    project, its topics and keys, every module loaded) took 60-140 ms of an
    edit's build here. Exit handlers (logging, the fonts' folder) still run.
    """
    import atexit
    import os

    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # noqa: T201 - as Python does with sys.exit("message")
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
