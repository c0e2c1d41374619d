"""The front desk's rules for a delivery's options, written once for every front end.

The command line, the desk page and the batch all check a delivery with
these (through brochure.deliver.service), so a rule changed here changes
for all of them. A broken rule raises OptionsError, which names the field
(the page shows it beside the box) and says what is wrong in words that fit
any front end; the message never repeats what was typed.
"""

from __future__ import annotations

from typing import NamedTuple

from brochure.base.errors import BrochureError, Problem

#: A print job's copies: at least one, at most this many.
MAX_COPIES = 20
#: The same handouts given to the same patient within this many minutes are asked about first.
AGAIN_MINUTES = 5
#: How a packet can be given: printed, emailed, written as an email draft, or downloaded.
METHODS = ("print", "email", "draft", "download")


class Broken(NamedTuple):
    """A rule a delivery breaks: what is wrong, how to mend it, and which rule (for a front end's words)."""

    message: str
    fix: str
    rule: str


class OptionsError(BrochureError):
    """A delivery's options break rules; ``fields`` maps each field to what is wrong with it, and
    ``rules`` each field to the rule it breaks (a front end may say how to mend it in its own words)."""

    def __init__(self, fields: dict[str, Broken]) -> None:
        self.fields = {name: broken.message for name, broken in fields.items()}
        self.rules = {name: broken.rule for name, broken in fields.items()}
        super().__init__([Problem(None, None, b.message, b.fix) for b in fields.values()])


def copies_problem(copies: object) -> Broken | None:
    """What is wrong with ``copies`` for a print job, or None."""
    if isinstance(copies, int) and not isinstance(copies, bool) and 1 <= copies <= MAX_COPIES:
        return None
    return Broken(
        f"copies must be a whole number from 1 to {MAX_COPIES}",
        f"ask for 1 to {MAX_COPIES} copies, or print again for more",
        "copies",
    )


def consent_problem(encrypt: bool, consented: bool) -> Broken | None:
    """An emailed PDF is encrypted, or goes unencrypted with the patient's consent: one of the two."""
    if encrypt and consented:
        return Broken(
            "encrypt the PDF or send it unencrypted with the patient's consent, not both",
            "choose one of them",
            "consent-and-encrypt",
        )
    if not encrypt and not consented:
        return Broken(
            "an unencrypted PDF may only be emailed with the patient's consent",
            "encrypt it, or say that the patient agreed to an unencrypted email",
            "consent-or-encrypt",
        )
    return None


def consent_of(encrypt: bool, consented: bool, row_consented: bool) -> bool:
    """Whether a batch row goes with the patient's consent: a batch encrypted for all needs none,
    so a row's own 'consent' counts only for a batch sent unencrypted."""
    return (consented or row_consented) and not encrypt


def check_copies(copies: object) -> int:
    if problem := copies_problem(copies):
        raise OptionsError({"copies": problem})
    return copies  # type: ignore[return-value]
