"""Render documents in warm worker processes, one per core by default.

The parent imports WeasyPrint once, then forks the workers, so each starts
warm; each keeps its own font configuration and Jinja environment between
documents (and, under `brochure watch`, between builds). Each worker caps
its own memory, so a document that would exhaust the machine fails alone.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brochure.base import caches
from brochure.base.errors import BrochureError, Problem, RenderError

log = logging.getLogger(__name__)

#: Address space a worker may add on top of what it has when it starts.
MAX_RENDER_MEMORY_MB = 2048

_PENDING = object()  # a check still running
_IGNORED = object()  # a check whose answer is no longer needed
_NO_CHECK = object()  # a document rendered without one

if TYPE_CHECKING:
    from brochure.document.fit import FitResult
    from brochure.project.model import Document, Project


@dataclass
class Result:
    """One document's render: its PDF bytes and details, or the error that stopped it."""

    name: str
    seconds: float
    pdf: bytes = b""
    pages: int = 0
    warnings: Sequence[str] = ()
    fit: FitResult | None = None
    error: BrochureError | None = None
    #: The print shop's file (NAME.press.pdf), when the document asked for one.
    press: bytes = b""
    #: Why the print shop's file could not be made, when it could not (the PDF is good).
    press_error: BrochureError | None = None


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _vm_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):  # pragma: no cover - not Linux
        pass
    return 0


def _die_with(parent: int) -> None:
    """End this worker when its parent ends, even when the parent was killed and could not stop it."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # it ended before the line above
        os._exit(1)


def _start_worker(memory_mb: int, parent: int, folder: str) -> None:
    """Set a worker up: it ends with its parent, and a runaway render raises MemoryError (not the machine).

    Its temporary files (WeasyPrint's copies of the fonts) go in ``folder``, which the parent removes.
    """
    import tempfile

    # Ctrl-C is for the parent, which stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    tempfile.tempdir = folder
    from brochure.engine import pdf

    pdf.start_after_fork()
    try:
        import resource

        limit = _vm_bytes() + memory_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - no rlimits here
        pass


#: The projects this worker was sent, by token (see Renderer._share): a few, the newest last.
_projects: dict[str, object] = caches.kept("warm.projects")


def _project(shared: tuple[str, str]):  # noqa: ANN202 - a project.Project
    """The project a build shared with the workers: read once by each worker, then kept."""
    import pickle

    token, path = shared
    project = _projects.pop(token, None)
    if project is None:
        project = pickle.loads(Path(path).read_bytes())  # noqa: S301 - written by this user's build
        while len(_projects) >= 3:
            _projects.pop(next(iter(_projects)))
    _projects[token] = project
    return project


def _render(shared: tuple[str, str], doc: Document, paper: str, strict: bool, memory_mb: int) -> Result:  # noqa: ANN001
    """Render one document in a worker (``doc`` is a project.Document of the shared project)."""
    from brochure.document.compose import render_document

    started = time.perf_counter()
    project = _project(shared)
    try:
        rendered = render_document(project, doc, paper, _environment(project.root), strict=strict)
    except BrochureError as exc:
        return Result(doc.name, time.perf_counter() - started, error=exc)
    except MemoryError:
        return Result(doc.name, time.perf_counter() - started, error=_out_of_memory(doc, memory_mb))
    seconds = time.perf_counter() - started
    return Result(
        doc.name,
        seconds,
        rendered.pdf,
        rendered.pages,
        tuple(rendered.warnings),
        rendered.fit,
        press=rendered.press,
        press_error=rendered.press_error,
    )


def _probe(shared: tuple[str, str], doc: Document, paper: str, css: str) -> bool | None:  # noqa: ANN001
    """Whether ``doc`` fits with auto-fit's ``css``, laid out in a worker; None if it could not be told."""
    from brochure.document.compose import fits_with

    try:
        project = _project(shared)
        return fits_with(project, doc, paper, css, _environment(project.root))
    except Exception:  # noqa: BLE001 - the document's own render reports what is wrong
        return None


class Pickled:
    """A project pickled once, by the build, and passed on as it is: the token names its bytes.

    A build sends its project to the render server this way, and the server
    hands the bytes to its workers without unpickling and pickling them
    again: at 1,000 topics (2 MB) that saved a tenth of a second per build.
    """

    __slots__ = ("blob", "token")

    def __init__(self, blob: bytes) -> None:
        import hashlib

        self.blob = blob
        self.token = hashlib.blake2b(blob, digest_size=16).hexdigest()

    @classmethod
    def of(cls, project: Project) -> Pickled:  # noqa: ANN001 - project.Project
        import pickle

        return cls(pickle.dumps(project, protocol=pickle.HIGHEST_PROTOCOL))

    def __getstate__(self) -> bytes:
        return self.blob

    def __setstate__(self, blob: bytes) -> None:
        # The token names a file: made here from the bytes, never taken from the sender.
        self.__init__(blob)  # type: ignore[misc]


def _out_of_memory(doc: Document, memory_mb: int) -> RenderError:  # noqa: ANN001
    message = f"rendering needed more than the {memory_mb} MB of memory allowed and was stopped"
    return RenderError.at(doc.source, None, message, "shorten the document or make its pictures smaller")


class Renderer:
    """A pool of warm workers; use it as a context manager, or keep it open across builds."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = jobs or default_jobs()
        self.memory_mb = MAX_RENDER_MEMORY_MB
        self._pool: Any = None  # a ProcessPoolExecutor, made when there is something to render
        self._folder: Path | None = None  # where projects are shared with the workers
        self._shared: dict[int, tuple[object, tuple[str, str]]] = {}
        #: Remembered fits whose next size up was laid out in another worker at the same time.
        self.side_checks = 0

    def _executor(self):  # noqa: ANN202 - concurrent.futures.ProcessPoolExecutor
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            from brochure.document import markup, templates  # noqa: F401 - Jinja and Markdown, before the fork
            from brochure.engine.pdf import import_engine

            import_engine()  # before the fork: every worker starts with WeasyPrint loaded
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(self.memory_mb, os.getpid(), str(self._private_folder())),
            )
        return self._pool

    @property
    def started(self) -> bool:
        """Whether the workers are running (a build or start() forked them)."""
        return self._pool is not None

    def start(self) -> None:
        """Fork the workers now rather than at the first document."""
        pool = self._executor()
        for future in [pool.submit(os.getpid) for _ in range(self.jobs)]:
            future.result()

    def _private_folder(self) -> Path:
        """This pool's private folder, removed by close(): shared projects, and the workers' temporary files.

        WeasyPrint copies the brand's fonts into a temporary folder of each
        worker; a worker ends without removing it (or is stopped by a
        signal), so those folders are made here, and go with this one.
        """
        if self._folder is None or not self._folder.is_dir():
            import tempfile

            self._stop_pool()  # its workers' temporary files would go to the folder that went away
            self._folder = Path(tempfile.mkdtemp(prefix="brochure-workers-"))
            self._shared = {}  # the projects shared went with the old folder
        return self._folder

    def pool(self):  # noqa: ANN201 - concurrent.futures.ProcessPoolExecutor
        """The workers, for a call outside render(); started again if their private folder went away."""
        self._private_folder()
        return self._executor()

    def _share(self, project: Project) -> tuple[str, str]:  # noqa: ANN001
        """(token, file) for ``project``, written once, so a task carries a name, not the project.

        A project of 1,000 topics pickles to about 2 MB: sent with every
        document, it cost more than rendering the small ones. Each worker
        reads the file once and keeps the project. The folder is private to
        this user; a project holds only what is in the project's files.
        """
        folder = self._private_folder()
        known = self._shared.get(id(project))
        if known is not None and known[0] is project:
            return known[1]
        pickled = project if isinstance(project, Pickled) else Pickled.of(project)
        blob, token = pickled.blob, pickled.token
        path = folder / f"{token}.pickle"
        if not path.exists():
            for old in sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime)[:-3]:
                old.unlink(missing_ok=True)  # workers keep the newest three
            partial = path.with_suffix(".partial")
            partial.write_bytes(blob)
            partial.replace(path)
        self._shared = {id(project): (project, (token, str(path)))}
        return token, str(path)

    def render(  # noqa: ANN001
        self, project, docs: Iterable, paper: str, strict: bool, jobs: int | None = None
    ) -> Iterator[Result]:
        """Render ``docs`` (longest first, as given); yield each result as it is done.

        At most ``jobs`` documents (all the workers by default) are handed
        out at a time, so a caller may use fewer workers than the pool has,
        and a caller that stops early leaves little work behind. ``docs`` is
        read only as workers come free: it may be a generator that works
        each document out meanwhile.
        """
        from concurrent.futures import FIRST_COMPLETED, wait

        waiting = iter(docs)
        running: dict[Any, tuple[str, Any]] = {}  # each task: ("render" or "check", its document)
        checks: dict[str, bool | None | object] = {}  # a check's answer, by document, or _PENDING
        parked: dict[str, Result] = {}  # rendered, waiting for the answer of its check
        spent: dict[str, int] = {}  # layouts spent on a remembered fit that no longer held
        shared = self._share(project)
        limit = max(1, min(jobs or self.jobs, self.jobs))

        def render(doc) -> None:  # noqa: ANN001
            # A pool broken by an earlier document is replaced, so the rest still build.
            running[self._executor().submit(_render, shared, doc, paper, strict, self.memory_mb)] = (
                "render",
                doc,
            )

        try:
            while True:
                while len(running) < limit and (doc := next(waiting, None)) is not None:
                    hint = getattr(doc, "fit_hint", None)
                    if hint is not None and not hint.same_inputs and len(running) + 2 <= limit:
                        # A remembered fit after an edit takes two layouts: the remembered size and
                        # the next size up. With a worker free, they are laid out at once, side by side.
                        check = self._executor().submit(_probe, shared, doc, paper, hint.up_css())
                        running[check] = ("check", doc)
                        self.side_checks += 1
                        checks[doc.name] = _PENDING
                        doc = replace(doc, fit_hint=replace(hint, up_elsewhere=True))
                    render(doc)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, doc = running.pop(future)
                    if kind == "check":
                        answer = self._answer(future)
                        if checks.pop(doc.name, _PENDING) is _IGNORED:
                            continue  # its render settled without it
                        if doc.name not in parked:
                            checks[doc.name] = answer
                            continue  # its render is still running
                        result, check = parked.pop(doc.name), answer
                    else:
                        result = self._result(future, doc)
                        check = checks.pop(doc.name, _NO_CHECK)
                        if check is _PENDING:
                            if result.error is None and getattr(result.fit, "remembered", False):
                                parked[doc.name] = result
                                continue
                            checks[doc.name], check = _IGNORED, _NO_CHECK  # searched there: not needed
                    settled = self._settled(result, check, spent)
                    if settled is not None:
                        yield settled
                    elif check is None:  # the check failed (its worker stopped): check it in turn
                        spent[doc.name] = 1
                        render(replace(doc, fit_hint=replace(doc.fit_hint, up_elsewhere=False)))
                    else:  # the next size up fits now: search afresh
                        spent[doc.name] = 2
                        render(replace(doc, fit_hint=None))
        finally:
            for future in running:
                future.cancel()

    def _answer(self, future) -> bool | None:  # noqa: ANN001
        """A check's answer (see _probe); None when its worker failed."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            self._stop_pool()  # as _result does: the next task starts new workers
            return None
        except Exception:  # noqa: BLE001 - the document's own render reports what is wrong
            return None

    @staticmethod
    def _settled(result: Result, check: object, spent: dict[str, int]) -> Result | None:
        """``result`` with its check's answer (see render); None when it must be rendered afresh."""
        fitted = result.fit
        if check is _NO_CHECK or result.error is not None or not getattr(fitted, "remembered", False):
            extra = spent.pop(result.name, 0)
            if extra and fitted is not None:
                result.fit = replace(fitted, extra_layouts=fitted.extra_layouts + extra)
            return result  # no check, or the remembered size itself no longer held (searched there)
        assert fitted is not None  # remembered, so fitted
        if check is False:  # the next size up does not fit: the remembered size is the one
            result.fit = replace(fitted, extra_layouts=fitted.extra_layouts + 1)
            return result
        return None

    def _result(self, future, doc: Document) -> Result:  # noqa: ANN001
        from concurrent.futures.process import BrokenProcessPool

        try:
            return future.result()
        except BrokenProcessPool:
            self._stop_pool()  # the next document starts new workers
            message = "the renderer stopped while making this document (it ran out of memory or crashed)"
            problem = Problem(doc.source, None, message, "shorten the document or make its pictures smaller")
            return Result(doc.name, 0.0, error=RenderError(problem))
        except MemoryError:
            return Result(doc.name, 0.0, error=_out_of_memory(doc, self.memory_mb))
        except Exception as exc:  # a bug of ours: fail this document, keep the others
            log.debug("rendering %s failed", doc.name, exc_info=True)
            message = f"brochure failed while making this document: {type(exc).__name__}: {exc}"
            problem = Problem(doc.source, None, message, "run with -v for details, and please report it")
            return Result(doc.name, 0.0, error=RenderError(problem))

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self._stop_pool()
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder, self._shared = None, {}

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _environment(root: Path):  # noqa: ANN202 - a Jinja environment
    from brochure.document.templates import process_environment

    return process_environment(root)
