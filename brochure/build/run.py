"""Building: each document rendered to bytes within its budget, then written safely, only when stale."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brochure.base.errors import BrochureError, Problem
from brochure.base.paths import is_inside
from brochure.build.output import (
    Manifest,
    check_writable,
    locked,
    remove_stale_temporaries,
    unwritable,
    write_atomic,
)
from brochure.document.fit import FitHint, FitResult
from brochure.project.inputs import Hasher, Keys, fingerprint_options, project_fingerprint
from brochure.project.model import Document, Project, select

if TYPE_CHECKING:
    from brochure.warm.client import RemoteRenderer
    from brochure.warm.workers import Renderer, Result

log = logging.getLogger(__name__)


BUILT, UP_TO_DATE, FAILED = "built", "up to date", "failed"
#: The print shop's file of document NAME is NAME.press.pdf, in the manifest as NAME.press.
PRESS = ".press"


def press_key(key: str) -> str:
    """The key of a document's print-shop file: its own inputs, and that it is the press file."""
    return f"{key}{PRESS}"


@dataclass
class Outcome:
    """What happened to one document in a build."""

    name: str
    status: str = FAILED
    path: Path | None = None
    pages: int = 0
    error: BrochureError | None = None
    warnings: list[str] = field(default_factory=list)
    fit: FitResult | None = None
    #: The hash of its inputs (see inputs.Keys).
    key: str = ""
    #: The hash of the inputs that set its look, not its words (see inputs.Keys.look).
    look: str = ""
    #: Its print-shop file (NAME.press.pdf), and what happened to it; "" when none was asked for.
    press: Path | None = None
    press_status: str = ""


def check_out_dir(project: Project, out: Path) -> Path:
    """Refuse an output folder that is, or contains, the project (or sits inside content/)."""
    out = out.resolve()
    if is_inside(project.root, out):
        raise BrochureError.at(
            str(out),
            None,
            "cannot be the output folder: it is or contains the project",
            "choose a folder inside the project such as out/",
        )
    for keep in ("content", "templates", "styles"):
        if is_inside(out, project.root / keep):
            raise BrochureError.at(
                str(out),
                None,
                f"cannot be the output folder: it is inside {keep}/",
                "choose a folder such as out/",
            )
    return out


@dataclass
class Summary:
    """What a build did, for its closing line."""

    outcomes: list[Outcome]
    removed: list[str]
    seconds: float
    #: Things to know about the build as a whole, such as another project's PDFs in the folder.
    notes: list[Problem] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def describe(self) -> str:
        parts = [
            f"{self.count(BUILT)} rebuilt",
            f"{self.count(UP_TO_DATE)} up to date",
            f"{self.count(FAILED)} failed",
        ]
        if self.removed:
            parts.append(f"{len(self.removed)} removed")
        pressed = [o for o in self.outcomes if o.press_status]
        if pressed:
            built = sum(o.press_status == BUILT for o in pressed)
            fresh = sum(o.press_status == UP_TO_DATE for o in pressed)
            files = "print-shop file" if len(pressed) == 1 else "print-shop files"
            parts.append(f"{files}: {built} rebuilt, {fresh} up to date")
        return f"{', '.join(parts)} in {self.seconds:.2f} s"


def _expected_seconds(doc: Document, manifest: Manifest) -> float:
    """How long a document took last time; a guess from its size before that."""
    entry = manifest.entries.get(doc.name)
    if entry and entry.seconds:
        return entry.seconds
    return _size(doc)


def _size(doc: Document) -> float:
    """A guess at a document's render time from its text alone (large print sets fewer words a page)."""
    guess = 0.05 * len(doc.topics) + sum(len(t.body) for t in doc.topics) / 100_000
    return guess * 2 if doc.large else guess


def build(project: Project, out: Path, **options: Any) -> list[Outcome]:  # noqa: ANN401
    """Build the chosen documents into ``out/NAME.pdf``; the options are build_summary's."""
    return build_summary(project, out, **options).outcomes


def build_summary(
    project: Project,
    out: Path,
    *,
    names: Iterable[str] = (),
    paper: str | None = None,
    strict: bool = False,
    force: bool = False,
    jobs: int | None = None,
    renderer: Renderer | RemoteRenderer | None = None,
    lock_timeout: float = 300.0,
    on_wait: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[Outcome, float], None] | None = None,
    hasher: Hasher | None = None,
    quick_first: bool = False,
    print_shop: bool = False,
) -> Summary:
    """Render the documents whose inputs changed, in worker processes, and write each good one.

    A document is rebuilt only when the hash of its inputs (topics, templates,
    styles, fonts, pictures, config, options, tool versions) differs from the
    one its PDF was made from. A document that fails is reported in its
    Outcome; its old PDF is left untouched and the others still build. With
    nothing to do, WeasyPrint is never imported.

    Stale documents render the longest first, which finishes soonest overall;
    with ``quick_first`` (as ``brochure watch`` asks), the quickest one goes
    first, so the handout being edited shows before the brochure that also
    uses it, and the rest the longest first.

    With ``print_shop``, every document but the handouts also gets its print
    shop's file, NAME.press.pdf (engine.press), rebuilt when its inputs
    change like the PDF's; a handout never does.

    ``on_start(count)`` is called with the number of documents once they are
    known, ``on_done(outcome, seconds)`` once for each as it is settled (up
    to date, written or failed), always from one thread at a time.
    """
    started = time.perf_counter()
    out = check_out_dir(project, out)
    names = list(names)
    docs = select(project, names)
    paper_option = paper
    paper = paper or project.brand.paper
    hasher = hasher or Hasher(project.root)
    with locked(out, lock_timeout, on_wait):
        remove_stale_temporaries(out)
        manifest = Manifest(out, project.root)
        known = manifest.hashes.get(manifest.root, {})
        hasher.known = hasher.known or known
        outcomes = {doc.name: Outcome(doc.name) for doc in docs}
        writer = _Writer(out, manifest, on_done)
        try:
            if on_start:
                on_start(len(docs))
            keys = Keys(project, fingerprint_options(paper, strict), hasher)
            order = sorted(docs, key=lambda d: _expected_seconds(d, manifest), reverse=True)
            # Documents of the topics just read again (changed since the last build) come first: the
            # first render starts at once, and the other keys are worked out while it runs.
            changed = {path.name for path in hasher.reads if path.suffix == ".md"}
            if changed:
                order.sort(key=lambda d: not any(t.path.name in changed for t in d.topics))
            stale = _stale(order, keys, manifest, outcomes, writer, force, print_shop)
            if quick_first:
                # The quickest stale one first (the handout being edited shows at once), then the
                # rest the longest first, so the brochure starts on the other core, not last.
                todo_first = sorted(stale, key=_size, reverse=True)
                if todo_first:
                    todo_first.insert(0, todo_first.pop())
                stale = iter(todo_first)
            first = next(stale, None)
            if first is not None:
                check_writable(out)  # a read-only folder fails once, before anything is rendered
                # Keys are worked out as the renderer asks for more, and PDFs written by the
                # writer's thread while the next ones render: rendering sets the pace.
                todo = itertools.chain([first], stale)
                if quick_first:
                    # The handout being edited renders alone, with no other document sharing the
                    # cores: it shows sooner; the rest follow at once.
                    from brochure.warm.workers import Renderer

                    pool = renderer or Renderer(jobs)
                    try:
                        handed = _render(project, iter([first]), paper, strict, pool, jobs, outcomes, writer)
                        handed += _render(project, stale, paper, strict, pool, jobs, outcomes, writer)
                    finally:
                        if renderer is None:
                            pool.close()
                else:
                    handed = _render(project, todo, paper, strict, renderer, jobs, outcomes, writer)
                writer.close()
                for doc in handed:  # every document handed out is settled, or it is a bug of ours
                    outcome = outcomes[doc.name]
                    if outcome.status == FAILED and outcome.error is None:  # pragma: no cover
                        problem = Problem(doc.source, None, "the renderer gave no result", "please report it")
                        outcome.error = BrochureError(problem)
                        writer.report(outcome, 0.0)
            writer.close()
        finally:
            writer.close(cancel=True)
            manifest.close()
        dirty = writer.wrote or manifest.dirty
        removed: list[str] = []
        if not names:
            # A print-shop file stays while its document does, built with --print-shop or not.
            removed = manifest.remove_others({n for d in docs for n in (d.name, d.name + PRESS)})
            dirty = dirty or bool(removed)
        # Only a build of everything, with everything now good, may vouch for the whole project.
        everything_good = not names and all(o.status != FAILED for o in outcomes.values())
        fingerprint = (
            project_fingerprint(project.root, fingerprint_options(paper_option, strict), hasher)
            if everything_good
            else ""
        )
        if fingerprint != manifest.fingerprint:
            manifest.fingerprint = fingerprint
            dirty = True
        # What was hashed, and how each file was when it was: the next build reads only what changed.
        hashes = hasher.seen if everything_good else {**known, **hasher.seen}
        if hashes != known:
            manifest.hashes[manifest.root] = hashes
            dirty = True
        if dirty:
            manifest.save()
        notes = _other_projects(out, manifest)
    return Summary([outcomes[d.name] for d in docs], removed, time.perf_counter() - started, notes)


def _stale(
    docs: list[Document],
    keys: Keys,
    manifest: Manifest,
    outcomes: dict[str, Outcome],
    writer: _Writer,
    force: bool,
    print_shop: bool = False,
) -> Iterator[Document]:
    """The documents to render, in order, each as soon as its key is known; the others are settled here."""
    for doc in docs:
        outcome = outcomes[doc.name]
        outcome.key = keys.key(doc)
        press = print_shop and doc.pressable
        if press:
            doc = replace(doc, press=True)
        fresh = not force and manifest.up_to_date(doc.name, outcome.key)
        if fresh and press and not manifest.up_to_date(doc.name + PRESS, press_key(outcome.key)):
            fresh = False
        if fresh:
            outcome.status, outcome.path = UP_TO_DATE, manifest.out / manifest.entries[doc.name].file
            if press:
                outcome.press_status = UP_TO_DATE
                outcome.press = manifest.out / manifest.entries[doc.name + PRESS].file
            writer.report(outcome, 0.0)
        elif owner := manifest.owner(doc.name):
            outcome.error = _taken(manifest.out / f"{doc.name}.pdf", owner)
            writer.report(outcome, 0.0)
        else:
            yield _with_hint(doc, keys, manifest.entries.get(doc.name), outcome)


def _with_hint(doc: Document, keys: Keys, entry, outcome: Outcome) -> Document:  # noqa: ANN001 - output.Entry
    """``doc`` with how it fitted last time, when its look (template, styles, brand, tool) is unchanged."""
    outcome.look = keys.look(doc)
    fitted = entry.fit if entry is not None else None
    if not (isinstance(fitted, list) and len(fitted) == 3 and fitted[2] == outcome.look):
        return doc
    size, base, _look = fitted
    try:
        size = None if size is None else float(size)
        hint = FitHint(size, float(base), same_inputs=entry.key == outcome.key)
    except (TypeError, ValueError):  # a manifest edited by hand
        return doc
    return replace(doc, fit_hint=hint)


def _render(
    project: Project,
    docs: Iterator[Document],
    paper: str,
    strict: bool,
    renderer: Renderer | RemoteRenderer | None,
    jobs: int | None,
    outcomes: dict[str, Outcome],
    writer: _Writer,
) -> list[Document]:
    """Render ``docs``, handing each result to the writer; return the documents handed out."""
    from brochure.warm.workers import Renderer

    pool = renderer or Renderer(jobs)
    handed: list[Document] = []

    def hand_out() -> Iterator[Document]:
        for doc in docs:
            handed.append(doc)
            yield doc

    # Both the local workers and the render server's client read the documents
    # as they go, so keys are worked out while the first documents render.
    try:
        for result in pool.render(project, hand_out(), paper, strict):
            writer.write(outcomes[result.name], result)
    finally:
        if renderer is None:
            pool.close()
    return handed


class _Writer:
    """Writes each rendered PDF into place and notes it in the manifest, in a thread of its own.

    The main thread goes straight back to the renderer, so the next
    documents render while a PDF is flushed to disk. Reports to ``on_done``
    all come from this thread, in order, once it has started.
    """

    def __init__(
        self, out: Path, manifest: Manifest, on_done: Callable[[Outcome, float], None] | None
    ) -> None:
        self.out, self.manifest, self.on_done = out, manifest, on_done
        self.wrote = False
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future] = []

    def _run(self, job: Callable[[], None]) -> None:
        if self._pool is None:
            # Started at the first result, after the renderer forked its workers.
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brochure-writer")
        self._futures.append(self._pool.submit(job))
        self._futures = [f for f in self._futures if not f.done() or f.exception() is not None]

    def report(self, outcome: Outcome, seconds: float) -> None:
        """Pass on a settled document, after everything before it."""
        if self.on_done is None:
            return
        if self._pool is None:
            self.on_done(outcome, seconds)
        else:
            on_done = self.on_done
            self._run(lambda: on_done(outcome, seconds))

    def write(self, outcome: Outcome, result: Result) -> None:
        """Write a rendered document (or note why it failed), then report it."""
        self.wrote = True

        def job() -> None:
            _finish(outcome, result, self.out, self.manifest)
            if self.on_done:
                self.on_done(outcome, result.seconds)

        self._run(job)

    def close(self, cancel: bool = False) -> None:
        """Wait for what is queued (only the current write, with ``cancel``); raise what failed in it."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        pool.shutdown(wait=True, cancel_futures=cancel)
        futures, self._futures = self._futures, []
        if not cancel:
            for future in futures:
                future.result()


def _taken(path: Path, owner: str) -> BrochureError:
    return BrochureError.at(
        path,
        None,
        f"was written by another project ({owner}); this build does not replace it",
        "build each project into a folder of its own with --out, or rename the document",
    )


def _other_projects(out: Path, manifest: Manifest) -> list[Problem]:
    """A note for each other project whose PDFs share the folder: they are left alone."""
    notes = []
    for owner, count in sorted(manifest.others().items()):
        pdfs = "PDF" if count == 1 else "PDFs"
        notes.append(
            Problem(
                out,
                None,
                f"also holds {count} {pdfs} of another project ({owner}); this build leaves them alone",
                "build each project into a folder of its own with --out",
            )
        )
    return notes


def _finish(outcome: Outcome, result: Result, out: Path, manifest: Manifest) -> None:
    """Write a rendered document into place, or record why it failed."""
    if result.error is not None:
        outcome.status, outcome.error = FAILED, result.error
        return
    path = out / f"{result.name}.pdf"
    try:
        write_atomic(path, result.pdf)
    except OSError as exc:
        outcome.status, outcome.error = FAILED, unwritable(path, exc)
        return
    fitted = result.fit.hint(outcome.look) if result.fit is not None else None
    manifest.record(result.name, outcome.key, result.pdf, result.seconds, fitted)
    outcome.status, outcome.path, outcome.pages = BUILT, path, result.pages
    outcome.warnings, outcome.fit = list(result.warnings), result.fit
    if result.press_error is not None:
        # The PDF is written; its print-shop file is not, and any old one is left as it was.
        outcome.status, outcome.error, outcome.press_status = FAILED, result.press_error, FAILED
    elif result.press:
        press = out / f"{result.name}{PRESS}.pdf"
        try:
            write_atomic(press, result.press)
        except OSError as exc:
            outcome.status, outcome.error, outcome.press_status = FAILED, unwritable(press, exc), FAILED
            return
        manifest.record(result.name + PRESS, press_key(outcome.key), result.press, result.seconds)
        outcome.press, outcome.press_status = press, BUILT
    elif result.name + PRESS in manifest.entries and not manifest.up_to_date(
        result.name + PRESS, press_key(outcome.key)
    ):
        # Rebuilt without --print-shop: the print shop's file is left as it was, now out of date.
        outcome.warnings.append(
            f"{result.name}{PRESS}.pdf is from before this change: run 'brochure build --print-shop' "
            "before you send it to the print shop"
        )
