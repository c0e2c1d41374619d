"""The errors brochure raises for a user's mistake, each naming file, line and fix."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

TYPE_CHECKING = False  # typing is not loaded: a no-op build is timed
if TYPE_CHECKING:
    from typing import Self

# A named tuple rather than a dataclass: errors load with every command, the
# dataclasses module costs a hundredth of a second, and a no-op build is timed.
_Problem = namedtuple("_Problem", "file line message fix check", defaults=(None, ""))


class Problem(_Problem):
    """One thing wrong with the project: where it is, what it is, how to fix it.

    Fields: ``file`` (Path, text or None), ``line`` (or None), ``message``,
    ``fix`` (or None), and ``check``: which check found it, for `brochure
    check`; not part of the message.
    """

    __slots__ = ()

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        fix = f" ({self.fix})" if self.fix else ""
        return f"{where}{self.message}{fix}"


class BrochureError(Exception):
    """A mistake in the user's project or command, reported without a traceback.

    Holds one or more problems; the message is one problem per line.
    """

    def __init__(self, problems: Problem | list[Problem]) -> None:
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple:
        # Errors travel back from worker processes: rebuild them from their problems.
        return (self.__class__, (self.problems,))

    @classmethod
    def at(
        cls,
        file: Path | str | None,
        line: int | None,
        message: str,
        fix: str | None = None,
    ) -> Self:
        """Make an error holding a single problem."""
        return cls(Problem(file, line, message, fix))


class ConfigError(BrochureError):
    """The brand or documents configuration is wrong."""


class ContentError(BrochureError):
    """A topic's front matter or Markdown is wrong."""


class RenderError(BrochureError):
    """A document could not be rendered (missing resource, font fallback, ...)."""


class BudgetError(RenderError):
    """A document does not fit its page budget, even after auto-fit."""
