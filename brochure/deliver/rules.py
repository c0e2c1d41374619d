"""The front desk's rules for a delivery's options, written once for every front end.

The command line, the desk page and the batch all check a delivery with
these (through brochure.deliver.service), so a rule changed here changes
for all of them. A broken rule raises OptionsError, which names the field
(the page shows it beside the box) and says what is wrong in words that fit
any front end; the message never repeats what was typed.
"""

from __future__ import annotations

from brochure.base.errors import BrochureError, Problem

#: A print job's copies: at least one, at most this many.
MAX_COPIES = 20
#: The same handouts given to the same patient within this many minutes are asked about first.
AGAIN_MINUTES = 5
#: How a packet can be given: printed, emailed, written as an email draft, or downloaded.
METHODS = ("print", "email", "draft", "download")


class OptionsError(BrochureError):
    """A delivery's options break a rule; ``fields`` maps each field to what is wrong with it."""

    def __init__(self, fields: dict[str, tuple[str, str]]) -> None:
        self.fields = {name: message for name, (message, _fix) in fields.items()}
        super().__init__([Problem(None, None, message, fix) for message, fix in fields.values()])


def copies_problem(copies: object) -> tuple[str, str] | None:
    """What is wrong with ``copies`` for a print job, or None."""
    if isinstance(copies, int) and not isinstance(copies, bool) and 1 <= copies <= MAX_COPIES:
        return None
    return (
        f"copies must be a whole number from 1 to {MAX_COPIES}",
        f"ask for 1 to {MAX_COPIES} copies, or print again for more",
    )


def consent_problem(encrypt: bool, consented: bool) -> tuple[str, str] | None:
    """An emailed PDF is encrypted, or goes unencrypted with the patient's consent: one of the two."""
    if encrypt and consented:
        return (
            "encrypt the PDF or send it unencrypted with the patient's consent, not both",
            "choose one of them",
        )
    if not encrypt and not consented:
        return (
            "an unencrypted PDF may only be emailed with the patient's consent",
            "encrypt it, or say that the patient agreed to an unencrypted email",
        )
    return None


def check_copies(copies: object) -> int:
    if problem := copies_problem(copies):
        raise OptionsError({"copies": problem})
    return copies  # type: ignore[return-value]
