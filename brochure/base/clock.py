"""The time of day, as brochure reads it: the computer's clock, or a fixed one for tests.

BROCHURE_NOW (an ISO 8601 time with its UTC offset, such as
2026-12-07T10:00:00+00:00) fixes the clock for one process, so the tests can
deliver a handout on "day 0" and send its follow-ups on "day 1" without
waiting a day. Nothing else sets it.
"""

from __future__ import annotations

import datetime as dt
import os

ENV = "BROCHURE_NOW"


def now() -> dt.datetime:
    """The time now, with the local UTC offset (or BROCHURE_NOW's)."""
    fixed = os.environ.get(ENV)
    if fixed:
        try:
            when = dt.datetime.fromisoformat(fixed)
        except ValueError:
            raise SystemExit(f"brochure: {ENV} is not an ISO 8601 time: unset it") from None
        return when if when.tzinfo else when.astimezone()
    return dt.datetime.now().astimezone()


def today() -> dt.date:
    """Today's date by `now`."""
    return now().date()
