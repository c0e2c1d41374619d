"""The content status: each document's state and the check's findings, kept current by the watcher.

`brochure desk` runs brochure.watch in a background thread; its callbacks
land here. Pages read a snapshot; the status page's event stream waits on
``changes`` to learn that something moved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from brochure.base.errors import BrochureError

if TYPE_CHECKING:
    from brochure.build.run import Outcome, Summary
    from brochure.project.model import Project

log = logging.getLogger(__name__)

WAITING, UP_TO_DATE, REBUILT, FAILED = "waiting", "up to date", "rebuilt", "failed"
#: How often the desk renders a blank handout to keep the render server from stopping (it stops
#: after 15 idle minutes).
WARM_SECONDS = 10 * 60


@dataclass(frozen=True)
class DocState:
    """What the editor needs to know about one document."""

    name: str
    state: str = WAITING
    when: float | None = None  # when it was last rebuilt or failed (time.time())
    pages: int = 0
    message: str = ""  # why it failed
    fit_pt: float | None = None  # the body size auto-fit chose, when it had to tighten
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One line of `brochure check`'s report."""

    level: str
    check: str
    where: str
    message: str
    fix: str


@dataclass(frozen=True)
class Snapshot:
    """The status at one moment, for a page."""

    version: int
    docs: tuple[DocState, ...]
    findings: tuple[Finding, ...]
    problems: tuple[str, ...]  # what stopped the last build (a broken config, say)
    building: bool
    changed: tuple[str, ...]
    last_build: float | None
    summary: str


@dataclass
class _State:
    docs: dict[str, DocState] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    problems: tuple[str, ...] = ()
    building: bool = True
    changed: tuple[str, ...] = ()
    last_build: float | None = None
    summary: str = ""


class Live:
    """The project as the watcher last saw it; thread-safe."""

    def __init__(self, root: Path, out: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self.out = (out or self.root / "out").resolve()
        self.changes = threading.Condition()
        self.version = 0
        self._state = _State()
        self._project: Project | None = None
        self._project_version = -1
        #: Called after each build with the names of the documents it wrote (thumbnails).
        self.after_build: Callable[[list[str]], None] | None = None
        self.thread: threading.Thread | None = None

    # -- reading -----------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self.changes:
            s = self._state
            return Snapshot(
                self.version,
                tuple(s.docs.values()),
                s.findings,
                s.problems,
                s.building,
                s.changed,
                s.last_build,
                s.summary,
            )

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the version moves past ``seen`` (or ``timeout`` passes); the version now."""
        with self.changes:
            self.changes.wait_for(lambda: self.version != seen, timeout)
            return self.version

    def project(self) -> Project:
        """The project as last read well; read again after each build. Raises BrochureError if never read."""
        from brochure.project.model import load_project

        with self.changes:
            version = self.version
            if self._project is not None and self._project_version == version:
                return self._project
        try:
            project = load_project(self.root)
        except BrochureError:
            if self._project is None:
                raise
            return self._project
        with self.changes:
            self._project, self._project_version = project, version
        return project

    # -- the watcher's callbacks ---------------------------------------------

    def _bump(self) -> None:
        self.version += 1
        self.changes.notify_all()

    def changed(self, paths: list[str]) -> None:
        with self.changes:
            self._state.building, self._state.changed = True, tuple(paths)
            self._bump()

    def done(self, outcome: Outcome, seconds: float) -> None:
        with self.changes:
            self._state.docs[outcome.name] = _after(self._state.docs.get(outcome.name), outcome)
            self._bump()

    def built(self, summary: Summary | None, error: BrochureError | None) -> None:
        """After a build: settle every document's state, then read the check's findings."""
        written: list[str] = []
        with self.changes:
            state = self._state
            state.building, state.last_build = False, time.time()
            if error is not None:
                state.problems = tuple(str(p) for p in error.problems)
                state.summary = "The last change stopped the build."
            else:
                assert summary is not None  # a build that did not stop has its summary
                state.problems = ()
                state.summary = summary.describe()
                docs: dict[str, DocState] = {}
                for outcome in summary.outcomes:
                    docs[outcome.name] = _after(state.docs.get(outcome.name), outcome)
                    if outcome.status == "built":
                        written.append(outcome.name)
                state.docs = docs
            self._bump()
        if self.after_build is not None and written:
            try:
                self.after_build(written)
            except Exception:  # a thumbnail must never stop the watcher
                log.warning("desk: could not make thumbnails", exc_info=True)
        self.check()

    def check(self) -> None:
        """Read `brochure check`'s findings (without rendering: the build did that)."""
        from brochure.build.check import check_project

        report = check_project(self.root, render=False)
        findings = tuple(
            Finding(
                f.level,
                f.check,
                "" if f.problem.file is None else _where(f.problem.file, f.problem.line),
                f.problem.message,
                f.problem.fix or "",
            )
            for f in report.findings
        )
        with self.changes:
            self._state.findings = findings
            self._bump()

    # -- running the watcher ---------------------------------------------------

    def start(self, *, jobs: int | None = None) -> threading.Thread:
        """Watch the project in a daemon thread: build now, then on every saved change."""
        from brochure.build.watch import watch

        def run() -> None:
            try:
                watch(
                    self.root,
                    self.out,
                    jobs=jobs,
                    on_change=self.changed,
                    on_build=self.built,
                    on_done=self.done,
                )
            except Exception as exc:  # noqa: BLE001 - shown on the status page instead
                log.warning("desk: the watcher stopped", exc_info=True)
                with self.changes:
                    self._state.problems = (
                        f"Watching stopped ({type(exc).__name__}); restart brochure desk to rebuild again.",
                    )
                    self._state.building = False
                    self._bump()

        self.thread = threading.Thread(target=run, name="brochure-desk-watch", daemon=True)
        self.thread.start()
        threading.Thread(target=self._keep_warm, name="brochure-desk-warm", daemon=True).start()
        return self.thread

    def _keep_warm(self) -> None:
        """Render a blank handout now and then, so the first preview of the day and every later one
        find the render server (or this process) warm, rather than paying to start WeasyPrint."""
        from brochure.deliver import personalise

        with self.changes:  # after the first build, which needs the cores more
            self.changes.wait_for(lambda: self._state.last_build is not None)
        while True:
            try:
                project = self.project()
                handout = next(e.name for e in _handouts(project))
                personalise(project, [handout], None)
            except (BrochureError, StopIteration):
                pass
            except Exception:  # noqa: BLE001 - warming is a courtesy; it must never stop the desk
                log.debug("desk: warming up failed", exc_info=True)
            time.sleep(WARM_SECONDS)


def _after(before: DocState | None, outcome: Outcome) -> DocState:
    """A document's state after a build's outcome."""
    base = before or DocState(outcome.name)
    if outcome.status == "failed":
        message = "\n".join(str(p) for p in outcome.error.problems) if outcome.error else "failed"
        return replace(base, state=FAILED, when=time.time(), message=message)
    if outcome.status == "built":
        fit = outcome.fit
        fit_pt = fit.body_pt if fit is not None and fit.tightened else None
        warnings = tuple(outcome.warnings)
        return DocState(outcome.name, REBUILT, time.time(), outcome.pages, "", fit_pt, warnings)
    # Up to date: a document rebuilt or failed before keeps its details; the state says what it is now.
    return replace(base, state=UP_TO_DATE, message="")


def _handouts(project: Project) -> list:
    from brochure.project.model import documents

    return [d for d in documents(project) if d.spec.kind == "handout"]


def _where(file: object, line: int | None) -> str:
    return f"{file}:{line}" if line else str(file)
