"""`python -m brochure` and the brochure command: Ctrl-C at any moment stops with 'Stopped.' and exit 130."""

import sys


def main() -> None:
    """Run the command line; a Ctrl-C while it is still loading stops it cleanly too."""
    try:
        from . import noop

        if noop.answer(sys.argv[1:]):
            return
        from .cli import cli

        cli(prog_name="brochure")
    except KeyboardInterrupt:
        # PDFs are written atomically: nothing half-written is left behind.
        print("Stopped.", file=sys.stderr)  # noqa: T201 - click may not be imported yet
        sys.exit(130)


if __name__ == "__main__":
    main()
