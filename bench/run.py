"""brochure's benchmark: one table, every figure measured in this one run on this machine.

Run it with `make bench`. It copies the sample project into a temporary
folder, so the checkout's out/ is left alone, and uses a render server of
its own. Times are wall-clock times of whole processes (medians), as a
person at the desk sees them. Every comparison is timed in the same run,
on the same HTML, with the other side as warm as brochure's side.

Settings, from the environment: BENCH_RUNS (default 3) runs of each short
measure; BENCH_SCALE (default "300,1000") the topic counts of the scale
rows, "" for none; BENCH_SCALE_RUNS (default 1) runs of each forced full
build at scale; BENCH_SECTIONS (default "sample,scale,extra") which parts
to run; BENCH_ROWS (default: all) which bench/rows_NAME.py modules, by NAME
("serve,desk"). A quick trial: `BENCH_SCALE=20 BENCH_RUNS=1 .venv/bin/python bench/run.py`.

Other modules may add rows. Every bench/rows_*.py is imported, in name
order, after the sample and scale rows, and its `rows(context)` is called;
it returns a list of rows, each a `Row`, a tuple of the same six fields or
a dict of them: `id` (such as "m1"; a dict may leave it out), `what` is
measured, the figures `measured`, the `result`, the `target` as text, and
whether it is `met` (True, False, or None for a row without a target; a
dict may say `ok`). `context` is a `Context`: `python` (this interpreter),
`brochure` (the command that runs brochure), `env` (the environment
subprocesses get: the benchmark's private render server is on, in
`runtime`, and already warm; `server_pid` is its process id), `sample`
(also `project`: a fresh copy of the sample project for this module alone,
not yet built), `work` (an empty folder for this module alone), `runs`
(BENCH_RUNS), and `run(command)` and `median(command, before=None,
runs=None)`, which time a command in seconds. A module that raises gets a
row saying so; the others still run. Everything is removed at the end.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BROCHURE = [PYTHON, "-m", "brochure"]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SCALE = [int(n) for n in re.split(r"[,\s]+", os.environ.get("BENCH_SCALE", "300,1000")) if n.strip()]
SCALE_RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "1"))
SECTIONS = set(os.environ.get("BENCH_SECTIONS", "sample,scale,extra").split(","))
#: Processes of the bare WeasyPrint runs: one per core, as brochure has workers.
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

# The targets of the scale rows, by topic count (issue 9).
EDIT_TARGET = {300: 0.3, 1000: 0.5}
NO_OP_TARGET = {1000: 0.100}
FULL_TARGET = {1000: 1.10}


class Row(NamedTuple):
    """One line of the table."""

    id: str
    what: str
    measured: str
    result: str
    target: str
    met: bool | None


@dataclass
class Context:
    """What a bench/rows_*.py module's ``rows(context)`` gets (see the module docstring)."""

    python: str
    brochure: list[str]
    env: dict[str, str]
    runtime: Path
    server_pid: int | None
    sample: Path
    work: Path
    runs: int = RUNS
    run: Callable[..., float] = field(default=None)  # type: ignore[assignment]
    median: Callable[..., float] = field(default=None)  # type: ignore[assignment]

    @property
    def project(self) -> Path:
        """The same as ``sample``."""
        return self.sample


# The bare side: a process that has imported WeasyPrint and made one
# FontConfiguration, then renders each HTML file it is given, as a person
# would script it. BarePool keeps one per core busy.
BARE_WORKER = """
import sys
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

fonts = FontConfiguration()
print("ready", flush=True)
for line in sys.stdin:
    html, pdf = line.rstrip("\\n").split("\\t")
    HTML(filename=html).write_pdf(pdf, font_config=fonts, pdf_variant="pdf/ua-1")
    print("done", flush=True)
"""

# The HTML brochure renders for every document, as `brochure html NAME` writes it.
WRITE_HTML = """
import sys
from pathlib import Path
from brochure.document.compose import document_html
from brochure.project.model import documents, load_project

project = load_project(Path(sys.argv[1]))
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for doc in documents(project):
    text = document_html(project, doc, project.brand.paper)
    (out / f"{doc.name}.html").write_text(text, encoding="utf-8")
"""


def run(command: list[str], **kwargs: object) -> float:
    """Seconds one process takes, start to exit; a failure stops the benchmark with its message."""
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def median(command: list[str], before: Callable[[], object] | None = None, runs: int | None = None) -> float:
    times = []
    for _ in range(runs or RUNS):
        if before:
            before()
        times.append(run(command))
    return statistics.median(times)


def output(command: list[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import weasyprint

    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"WeasyPrint {weasyprint.__version__}, {platform.system()}"
    )


# ---------------------------------------------------------------- the server


def stop_server() -> None:
    """Stop the benchmark's server; `brochure server stop` returns once it has ended."""
    run([*BROCHURE, "server", "stop", "--all"])


def ready_server(timeout: float = 120) -> int:
    """The pid of the benchmark's server once it answers (a first build starts it in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"^Render server (\d+): \d+ workers", output([*BROCHURE, "server", "status"]), re.M)
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise RuntimeError("the render server did not start")


def warm_server(project: Path) -> int:
    """Make sure the server runs and has rendered (one handout of ``project``); its pid."""
    build = [
        *BROCHURE,
        "build",
        "--force",
        "aftercare",
        "--project",
        str(project),
        "--out",
        str(project / "warm"),
    ]
    run(build)  # the first build renders by itself and starts the server
    ready_server()
    run(build)  # the server renders this one
    return ready_server()


# ---------------------------------------------------------------- bare WeasyPrint


class BarePool:
    """Warm bare WeasyPrint processes, one per core, fed one HTML file at a time, largest first."""

    def __init__(self, count: int = CORES) -> None:
        self.processes = [
            subprocess.Popen(
                [PYTHON, "-c", BARE_WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            for _ in range(count)
        ]
        for process in self.processes:
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("a bare WeasyPrint process did not start")

    def render(self, htmls: list[Path], out: Path) -> float:
        """Seconds to render every file of ``htmls`` into ``out``, using every process."""
        waiting = sorted(htmls, key=lambda p: p.stat().st_size)  # popped from the end: largest first
        started = time.perf_counter()
        with selectors.DefaultSelector() as selector:
            for process in self.processes:
                selector.register(process.stdout, selectors.EVENT_READ, process)
            busy = 0
            for process in self.processes:
                if waiting:
                    self._give(process, waiting.pop(), out)
                    busy += 1
            while busy:
                for key, _ in selector.select():
                    process = key.data
                    if process.stdout.readline().strip() != "done":
                        raise RuntimeError("a bare WeasyPrint process failed")
                    busy -= 1
                    if waiting:
                        self._give(process, waiting.pop(), out)
                        busy += 1
        return time.perf_counter() - started

    @staticmethod
    def _give(process: subprocess.Popen, html: Path, out: Path) -> None:
        process.stdin.write(f"{html}\t{out / (html.stem + '.pdf')}\n")
        process.stdin.flush()

    def close(self) -> None:
        for process in self.processes:
            process.stdin.close()
        for process in self.processes:
            process.wait(timeout=60)


def write_html(project: Path, folder: Path) -> list[Path]:
    run([PYTHON, "-c", WRITE_HTML, str(project), str(folder)])
    return sorted(folder.glob("*.html"))


# ---------------------------------------------------------------- memory


def _process_tree(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class PeakMemory:
    """The peak of the summed PSS of some processes and all their children, sampled every 0.2 s.

    PSS (proportional set size, /proc/PID/smaps_rollup) shares each page
    among the processes that map it, so the pages forked workers share with
    their parent are counted once, and the sum is the memory they take.
    """

    def __init__(self, roots: Callable[[], list[int]]) -> None:
        self.roots = roots
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            pids = {pid for root in self.roots() for pid in _process_tree(root)}
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(pid) for pid in pids))
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_build(command: list[str], server_pid: int | None = None) -> tuple[float, int]:
    """Seconds a build takes, and the peak memory (KiB) of it, the server and their workers."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    roots = [process.pid] + ([server_pid] if server_pid else [])
    with PeakMemory(lambda: roots) as memory:
        _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-2000:]}")
    return seconds, memory.peak_kib


def pdf_times(out: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in out.glob("*.pdf")}


def rebuilt(before: dict[str, int], out: Path) -> list[str]:
    """The documents whose PDF was written since ``before``."""
    return sorted(name for name, when in pdf_times(out).items() if before.get(name) != when)


# ---------------------------------------------------------------- the sample


def watch_latency(project: Path, runs: int = 5) -> list[float]:
    """Seconds from saving a topic to its new one-page PDF on disk, under `brochure watch`."""
    process = subprocess.Popen(
        [*BROCHURE, "watch", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    idle = threading.Semaphore(0)  # released each time watch has finished a build

    def read() -> None:
        for line in process.stdout:
            if line.startswith("Watching for changes"):
                idle.release()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not idle.acquire(timeout=60):
            raise RuntimeError("brochure watch did not start")
        topic = project / "content/topics/aftercare.md"
        pdf = project / "out/aftercare.pdf"
        original = topic.read_text()
        latencies = []
        for index in range(runs):
            if index and not idle.acquire(timeout=60):  # the previous rebuild, brochure and all, is done
                raise RuntimeError("brochure watch did not finish a rebuild")
            time.sleep(0.2)
            before = pdf.stat().st_mtime_ns
            saved = time.perf_counter()
            topic.write_text(original + f"\nEdit number {index}.\n")
            while pdf.stat().st_mtime_ns == before:
                if time.perf_counter() - saved > 30:
                    raise RuntimeError("the PDF did not change")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - saved)
        topic.write_text(original)
        return latencies
    finally:
        process.terminate()
        process.wait(timeout=30)


def copy_sample(target: Path) -> Path:
    shutil.copytree(REPO / "content", target / "content")
    return target


def sample_rows(work: Path) -> list[Row]:
    """The rows measured on the sample project (rows a to g)."""
    project = copy_sample(work / "clinic")
    out = project / "out"
    build = [*BROCHURE, "build", "--project", str(project), "--no-progress"]
    force = [*build, "--force"]

    # The first build after the server stopped renders by itself and starts
    # the server; against a build without the server, in turns, each with
    # no server starting or running beside it.
    first, alone = [], []
    for _ in range(max(RUNS, 5)):  # single builds vary by a tenth here: five of each
        stop_server()
        first.append(run(force))
        stop_server()
        os.environ["BROCHURE_SERVER"] = "off"
        alone.append(run(force))
        os.environ["BROCHURE_SERVER"] = "on"
    first_build, alone_build = statistics.median(first), statistics.median(alone)

    warm_server(project)
    html = write_html(project, work / "html")
    bare_out = work / "bare"
    bare_out.mkdir()
    pool = BarePool()
    try:
        pool.render(html, bare_out)  # as warm as the server's workers
        full_runs, bare_runs = [], []
        for _ in range(max(RUNS, 5)):  # in turns, so both see the same machine
            full_runs.append(run(force))
            bare_runs.append(pool.render(html, bare_out))
    finally:
        pool.close()
    full, bare = statistics.median(full_runs), statistics.median(bare_runs)

    weasyprint_cli = str(Path(PYTHON).parent / "weasyprint")
    per_document = median(
        [
            "sh",
            "-c",
            " && ".join(f'"{weasyprint_cli}" --pdf-variant pdf/ua-1 "{h}" "{bare_out}/x.pdf"' for h in html),
        ],
        runs=1,
    )
    full_one_job = median([*force, "--jobs", "1"], runs=max(RUNS, 5))
    os.environ["BROCHURE_SERVER"] = "off"
    alone_one_job = median([*force, "--jobs", "1"])
    os.environ["BROCHURE_SERVER"] = "on"
    run(build)  # everything up to date from here
    no_op = median(build, runs=max(RUNS, 5))
    import_only = median([PYTHON, "-c", "import weasyprint"], runs=max(RUNS, 5))

    topic = project / "content/topics/aftercare.md"
    topic.write_text(topic.read_text() + "\nOne more sentence for the benchmark.\n")
    before = pdf_times(out)
    after_edit = run(build)
    edited = rebuilt(before, out)
    # The documents made of the topic: its handouts, the brochure and a tri-fold that takes it in
    # (aftercare.es is a translation, a topic of its own: it stays as it was).
    from brochure.project.model import documents, load_project

    made_of_it = sorted(
        d.name for d in documents(load_project(project)) if any(t.path == topic for t in d.topics)
    )

    latencies = watch_latency(project)
    sizes = {p.stem: p.stat().st_size for p in out.glob("*.pdf")}
    one_pager = max(size for name, size in sizes.items() if name != "brochure")
    cores = f"{CORES} warm bare WeasyPrint processes"
    return [
        Row(
            "a",
            f"full build vs {cores}",
            f"{full:.2f} s vs {bare:.2f} s",
            f"{full / bare:.2f}x",
            "<= 1.15x",
            full / bare <= 1.15,
        ),
        Row(
            "a1",
            "first build (starts the server) vs BROCHURE_SERVER=off",
            f"{first_build:.2f} s vs {alone_build:.2f} s",
            f"{first_build / alone_build:.2f}x",
            "<= 1.00x",
            first_build / alone_build <= 1.0,
        ),
        Row(
            "b",
            "full build vs one weasyprint process per document",
            f"{full:.2f} s vs {per_document:.2f} s",
            f"{per_document / full:.1f}x faster",
            ">= 4x",
            per_document / full >= 4,
        ),
        Row(
            "c",
            "no-op build vs import weasyprint",
            f"{no_op * 1000:.0f} ms vs {import_only * 1000:.0f} ms",
            f"{no_op / import_only:.2f}",
            "<= 0.2",
            no_op / import_only <= 0.2,
        ),
        Row(
            "d",
            "one topic edited: rebuilt",
            ", ".join(edited),
            f"{after_edit:.2f} s",
            "the documents made of the topic",
            edited == made_of_it,
        ),
        Row(
            "e",
            "--jobs 1 vs default, full build",
            f"{full_one_job:.2f} s vs {full:.2f} s",
            f"{full_one_job / full:.2f}x",
            ">= 1.6x",
            full_one_job / full >= 1.6,
        ),
        Row(
            "e1",
            "the same, BROCHURE_SERVER=off",
            f"{alone_one_job:.2f} s vs {alone_build:.2f} s",
            f"{alone_one_job / alone_build:.2f}x",
            "(for comparison)",
            None,
        ),
        Row(
            "f",
            "watch: save to new one-page PDF",
            f"median of {len(latencies)}",
            f"{statistics.median(latencies) * 1000:.0f} ms",
            "<= 250 ms",
            statistics.median(latencies) <= 0.25,
        ),
        Row(
            "g",
            "PDF sizes: largest one-pager, brochure",
            f"{one_pager / 1024:.1f} KiB, {sizes['brochure'] / 1024:.1f} KiB",
            "",
            "<= 30 KiB, <= 120 KiB",
            one_pager <= 30 * 1024 and sizes["brochure"] <= 120 * 1024,
        ),
    ]


# ---------------------------------------------------------------- scale


HANDOUTS_ONLY = """\
# Generated by the benchmark: one handout per topic, no brochure.
[[document]]
name = "{topic}"
kind = "handout"
pages = 1
"""


def generate(target: Path, count: int) -> Path:
    """A project of ``count`` topics, copies of the sample's under new names, with a handout each."""
    project = copy_sample(target)
    topics = project / "content/topics"
    # The English topics only: a translation (aftercare.es.md) must keep its source's name.
    for translation in topics.glob("*.*.md"):
        translation.unlink()
    originals = sorted(topics.glob("*.md"))
    for index in range(len(originals), count):
        source = originals[index % len(originals)]
        (topics / f"{source.stem}-{index:04d}.md").write_bytes(source.read_bytes())
    for extra in originals[count:]:
        extra.unlink()
    (project / "content/documents.toml").write_text(HANDOUTS_ONLY)
    return project


def _target(limit: float | None, value: float, text: Callable[[float], str]) -> tuple[str, bool | None]:
    """A row's target and whether it is met; a topic count without a target is for comparison."""
    if limit is None:
        return "(for comparison)", None
    return text(limit), value <= limit


def scale_rows(work: Path, count: int) -> list[Row]:
    """Rows for a generated project of ``count`` topics: full build, no-op, one edit, memory."""
    project = generate(work / f"scale-{count}", count)
    out = project / "out"
    build = [*BROCHURE, "build", "--project", str(project), "--no-progress"]
    server_pid = ready_server()
    html = write_html(project, work / f"html-{count}")
    bare_out = work / f"bare-{count}"
    bare_out.mkdir()
    pool = BarePool()
    full_runs, bare_runs, peaks = [], [], []
    try:
        pool.render(html[: 2 * CORES], bare_out)  # warm, as the server's workers are
        # The first build of the project: every auto-fitted document searches for its size.
        first, first_peak = timed_build(build, server_pid)
        first_bare = pool.render(html, bare_out)
        peaks.append(first_peak)
        # A forced build of the built project (the target's row): each fitted size is remembered.
        for _ in range(SCALE_RUNS):  # in turns, so both see the same machine
            seconds, peak = timed_build([*build, "--force"], server_pid)
            full_runs.append(seconds)
            peaks.append(peak)
            bare_runs.append(pool.render(html, bare_out))
    finally:
        pool.close()
    full, bare = statistics.median(full_runs), statistics.median(bare_runs)

    run(build)
    no_op = median(build, runs=max(RUNS, 5))
    edits, counts = [], []
    topics = sorted((project / "content/topics").glob("*.md"))
    for index in range(max(RUNS, 3)):
        topic = topics[(index * 7919) % len(topics)]
        topic.write_text(topic.read_text() + f"\nEdit number {index} for the benchmark.\n")
        before = pdf_times(out)
        edits.append(run(build))
        counts.append(len(rebuilt(before, out)))
    edit = statistics.median(edits)

    full_target = _target(FULL_TARGET.get(count), full / bare, lambda x: f"<= {x:.2f}x")
    no_op_target = _target(NO_OP_TARGET.get(count), no_op, lambda x: f"<= {x * 1000:.0f} ms")
    edit_target = _target(EDIT_TARGET.get(count), edit, lambda x: f"<= {x:.1f} s")
    one_each = all(n == 1 for n in counts)
    n = f"{count:,} topics"
    return [
        Row(
            f"s{count}",
            f"{n}: forced full build vs {CORES} warm bare WeasyPrint processes",
            f"{full:.1f} s vs {bare:.1f} s ({count / full:.0f} handouts/s)",
            f"{full / bare:.2f}x",
            *full_target,
        ),
        Row(
            f"s{count}f",
            f"{n}: first build (auto-fit searches) vs {CORES} warm bare processes",
            f"{first:.1f} s vs {first_bare:.1f} s",
            f"{first / first_bare:.2f}x",
            "(for comparison)",
            None,
        ),
        Row(
            f"s{count}n",
            f"{n}: no-op build",
            f"median of {max(RUNS, 5)}",
            f"{no_op * 1000:.0f} ms",
            *no_op_target,
        ),
        Row(
            f"s{count}e",
            f"{n}: one topic edited",
            f"{'1 PDF' if one_each else 'PDFs'} rebuilt: {', '.join(map(str, counts))}",
            f"{edit:.2f} s",
            edit_target[0],
            None if edit_target[1] is None else edit_target[1] and one_each,
        ),
        Row(
            f"s{count}m",
            f"{n}: peak memory, build + server + workers",
            "summed PSS, every 0.2 s",
            f"{max(peaks) / 1024:.0f} MiB",
            "(for comparison)",
            None,
        ),
    ]


# ---------------------------------------------------------------- other modules' rows


def extra_rows(work: Path) -> list[Row]:
    """The rows of every bench/rows_*.py (see the module docstring)."""
    found = []
    only = {name for name in os.environ.get("BENCH_ROWS", "").split(",") if name}
    for path in sorted(Path(__file__).parent.glob("rows_*.py")):
        if only and path.stem[5:] not in only:
            continue
        folder = work / path.stem
        folder.mkdir()
        try:
            sample = copy_sample(folder / "sample")
            context = Context(
                python=PYTHON,
                brochure=list(BROCHURE),
                env=dict(os.environ),
                runtime=Path(os.environ["BROCHURE_RUNTIME_DIR"]),
                server_pid=ready_server(),
                sample=sample,
                work=folder / "work",
                run=run,
                median=median,
            )
            context.work.mkdir()
            spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            found.extend(_row(row, f"{path.stem[5:]}{i}") for i, row in enumerate(module.rows(context), 1))
        except Exception as exc:  # one module's failure is its row, not the end of the benchmark
            found.append(
                Row(path.stem, f"{path.name} failed", f"{type(exc).__name__}: {exc}"[:80], "", "", False)
            )
    return found


def _row(row: Row | tuple | dict, default_id: str) -> Row:
    """A module's row as a Row: a Row, a tuple of its six fields, or a dict of them (``ok`` for ``met``)."""
    if isinstance(row, dict):
        met = row.get("met", row.get("ok"))
        fields = ("id", "what", "measured", "result", "target")
        values = {key: str(row.get(key, "")) for key in fields}
        return Row(**{**values, "id": values["id"] or default_id}, met=None if met is None else bool(met))
    return Row(*row)


# ---------------------------------------------------------------- the table


def table(rows: list[Row]) -> str:
    header = ("", "what", "measured", "result", "target", "met")
    met = {True: "✓", False: "✗", None: ""}
    cells = [header, *[(r.id, r.what, r.measured, r.result, r.target, met[r.met]) for r in rows]]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="brochure-bench-"))
    # A render server of the benchmark's own, stopped at the end: a server
    # the user already runs is neither used nor disturbed.
    os.environ.update(BROCHURE_SERVER="on", BROCHURE_RUNTIME_DIR=str(work / "run"))
    (work / "run").mkdir(mode=0o700)
    # An installed package has its bytecode compiled; an editable one gets it
    # at its first import, unless PYTHONDONTWRITEBYTECODE is set (it is, on
    # some machines): compile it now, so no run pays for that.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "brochure")], check=True)
    rows: list[Row] = []
    try:
        if "sample" in SECTIONS:
            rows += sample_rows(work / "sample")
        if SCALE and "scale" in SECTIONS or "extra" in SECTIONS:
            warm_server(copy_sample(work / "warm"))
        if "scale" in SECTIONS:
            for count in SCALE:
                rows += scale_rows(work, count)
        if "extra" in SECTIONS:
            rows += extra_rows(work)
    finally:
        subprocess.run([*BROCHURE, "server", "stop", "--all"], stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)
    when = f"brochure benchmark, {dt.date.today().isoformat()}, {machine()}"
    print(
        f"{when}; medians of {RUNS} run{'s' if RUNS != 1 else ''} (at least 5 for the short ones), "
        f"{SCALE_RUNS} of each full build at scale\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
