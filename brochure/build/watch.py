"""`brochure watch`: rebuild what a change affects, as soon as it is saved."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from brochure.base.errors import BrochureError
from brochure.base.paths import builtin_dir, is_inside
from brochure.build.run import Outcome, Summary, build_summary
from brochure.project.model import documents, load_project
from brochure.warm.workers import Renderer

#: How long to wait for more changes after the first one (an editor may
#: write a file in several steps), in milliseconds.
DEBOUNCE_MS = 20
IDLE_TICK_MS = 200
_KNOWN = {
    ".md",
    ".toml",
    ".html",
    ".css",
    ".svg",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".ttf",
    ".otf",
    ".woff",
    ".woff2",
}


def watched_folders(root: Path) -> list[Path]:
    """content/, the project's templates/ and styles/, and the built-in ones."""
    folders = [
        root / "content",
        root / "templates",
        root / "styles",
        builtin_dir("templates"),
        builtin_dir("styles"),
    ]
    unique: list[Path] = []
    for folder in folders:
        folder = folder.resolve()
        if folder.is_dir() and not any(is_inside(folder, u) for u in unique):
            unique = [u for u in unique if not is_inside(u, folder)] + [folder]
    return unique


def watch(
    root: Path,
    out: Path | None,
    *,
    names: Iterable[str] = (),
    paper: str | None = None,
    jobs: int | None = None,
    on_change: Callable[[list[str]], None],
    on_build: Callable[[Summary | None, BrochureError | None], None],
    on_done: Callable[[Outcome, float], None] | None = None,
) -> None:
    """Build, then rebuild on every change until interrupted.

    ``on_change(paths)`` is called with what changed, before each rebuild;
    ``on_build(summary, error)`` after each build, with its summary or the
    error that stopped it (a broken config, say); watching goes on.
    """
    from watchfiles import watch as watch_files

    root = Path(root).resolve()
    names = list(names)
    with Renderer(jobs) as renderer:

        def run(first: bool = False) -> None:
            try:
                project = load_project(root)
                target = out if out is not None else project.root / "out"
                summary = build_summary(
                    project,
                    target,
                    names=names,
                    paper=paper,
                    renderer=renderer,
                    on_done=on_done,
                    lock_timeout=30,
                    quick_first=True,
                )
            except BrochureError as exc:
                on_build(None, exc)
            else:
                if first:  # warm before saying it watches: the first change then finds it ready
                    _warm(renderer, root, paper)
                on_build(summary, None)

        started = False
        # The first build runs once the watcher is ready (its first idle tick),
        # so a file saved during that build is not missed. watchfiles' default
        # filter already skips editors' swap and backup files.
        for changes in watch_files(
            *watched_folders(root),
            debounce=DEBOUNCE_MS * 10,
            step=DEBOUNCE_MS,
            yield_on_timeout=True,
            rust_timeout=IDLE_TICK_MS,
        ):
            if not started:
                started = True
                run(first=True)
            paths = sorted({Path(path) for _change, path in changes})
            # Drop an editor's short-lived temporary files (sed's, say): gone already, no known type.
            paths = [p for p in paths if p.exists() or p.suffix.lower() in _KNOWN]
            if paths:
                on_change([_shown(p, root) for p in paths])
                run()


def _warm(renderer: Renderer, root: Path, paper: str | None) -> None:
    """Start the workers and render the smallest handout once in each, unwritten, when the
    first build had nothing to render: the first saved change then costs a render, not a
    start of WeasyPrint, fonts and stylesheets (about a second)."""
    if renderer.started:
        return
    try:
        project = load_project(root)
        docs = sorted(
            (d for d in documents(project) if d.spec.kind == "handout"), key=lambda d: len(d.topics[0].body)
        )
        if docs:
            for _result in renderer.render(
                project, [docs[0]] * renderer.jobs, paper or project.brand.paper, False
            ):
                pass
    except BrochureError:
        pass  # the first change shows the problem


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
