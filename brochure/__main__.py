"""`python -m brochure`: the same as the brochure command."""

from .cli import cli

cli(prog_name="brochure")
