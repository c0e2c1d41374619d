"""brochure's benchmark: one table, every figure measured in this one run on this machine.

Run it with `make bench`. It copies the sample project into a temporary
folder, so the checkout's out/ is left alone. Times are wall-clock times of
whole processes (the median of a few runs), as a person at the desk sees them.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BROCHURE = [PYTHON, "-m", "brochure"]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

BARE_SCRIPT = """
import sys
from pathlib import Path
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration

fonts = FontConfiguration()
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    html = Path(name)
    HTML(filename=str(html)).write_pdf(out / (html.stem + ".pdf"), font_config=fonts, pdf_variant="pdf/ua-1")
"""


def run(command: list[str], **kwargs: object) -> float:
    """Seconds one process takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - started


def median(command: list[str], before: object = None, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(run(command))
    return statistics.median(times)


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


def watch_latency(project: Path, runs: int = 5) -> list[float]:
    """Seconds from saving a topic to its new one-page PDF on disk, under `brochure watch`."""
    process = subprocess.Popen(
        [*BROCHURE, "watch", "--project", str(project)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout:
            if line.startswith("Watching for changes"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(60):
            raise RuntimeError("brochure watch did not start")
        topic = project / "content/topics/aftercare.md"
        pdf = project / "out/aftercare.pdf"
        original = topic.read_text()
        latencies = []
        for index in range(runs):
            time.sleep(1.0)  # let the previous rebuild (and the brochure's) finish
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


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="brochure-bench-"))
    # A render server of the benchmark's own, stopped at the end: a server
    # the user already runs is neither used nor disturbed.
    os.environ.update(BROCHURE_SERVER="on", BROCHURE_RUNTIME_DIR=str(work / "run"))
    (work / "run").mkdir(mode=0o700)
    stop_server = [*BROCHURE, "server", "stop"]
    # An installed package has its bytecode compiled; an editable one gets it
    # at its first import, unless PYTHONDONTWRITEBYTECODE is set (it is, on
    # some machines): compile it now, so no run pays for that.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "brochure")], check=True)
    try:
        project = work / "clinic"
        shutil.copytree(REPO / "content", project / "content")
        out = project / "out"
        build = [*BROCHURE, "build", "--project", str(project), "--no-progress"]

        # The HTML of every document, for the bare WeasyPrint runs.
        html_dir = work / "html"
        names = subprocess.run(
            [*BROCHURE, "list", "--project", str(project)], check=True, capture_output=True, text=True
        ).stdout.splitlines()[1:]
        names = [line.split()[0] for line in names]
        for name in names:
            subprocess.run(
                [*BROCHURE, "html", name, "--project", str(project), "-o", str(html_dir / f"{name}.html")],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        htmls = [str(html_dir / f"{name}.html") for name in names]
        bare_out = work / "bare"
        bare_out.mkdir()

        bare = median([PYTHON, "-c", BARE_SCRIPT, str(bare_out), *htmls])
        weasyprint_cli = str(Path(PYTHON).parent / "weasyprint")
        per_document = median(
            [
                "sh",
                "-c",
                " && ".join(
                    f'"{weasyprint_cli}" --pdf-variant pdf/ua-1 "{h}" "{bare_out}/x.pdf"' for h in htmls
                ),
            ],
            runs=1,
        )
        # The first build after the server stopped (it starts the server) ...
        first = median([*build, "--force"], before=lambda: run(stop_server))
        run([*build, "--force"])  # ... and from here on, builds find it warm.
        full = median([*build, "--force"], runs=5)
        full_one_job = median([*build, "--force", "--jobs", "1"], runs=5)
        os.environ["BROCHURE_SERVER"] = "off"
        alone = median([*build, "--force"])
        alone_one_job = median([*build, "--force", "--jobs", "1"])
        os.environ["BROCHURE_SERVER"] = "on"
        run(build)  # everything up to date from here
        no_op = median(build, runs=5)
        import_only = median([PYTHON, "-c", "import weasyprint"], runs=5)

        topic = project / "content/topics/aftercare.md"
        topic.write_text(topic.read_text() + "\nOne more sentence for the benchmark.\n")
        started = time.perf_counter()
        edited = subprocess.run([*build, "--progress"], check=True, capture_output=True, text=True).stdout
        after_edit = time.perf_counter() - started
        rebuilt = sorted(
            Path(line.split()[1]).stem for line in edited.splitlines() if line.startswith("built ")
        )

        latencies = watch_latency(project)
        sizes = {p.stem: p.stat().st_size for p in out.glob("*.pdf")}
        one_pager = max(size for name, size in sizes.items() if name != "brochure")

        rows = [
            (
                "a",
                "full build vs bare warm WeasyPrint script",
                f"{full:.2f} s vs {bare:.2f} s",
                f"{full / bare:.2f}",
                "<= 1.15",
                full / bare <= 1.15,
            ),
            (
                "a1",
                "the same, first build (starts the server)",
                f"{first:.2f} s vs {bare:.2f} s",
                f"{first / bare:.2f}",
                "<= 1.15",
                first / bare <= 1.15,
            ),
            (
                "b",
                "full build vs one weasyprint process per document",
                f"{full:.2f} s vs {per_document:.2f} s",
                f"{per_document / full:.1f}x faster",
                ">= 4x",
                per_document / full >= 4,
            ),
            (
                "c",
                "no-op build vs import weasyprint",
                f"{no_op * 1000:.0f} ms vs {import_only * 1000:.0f} ms",
                f"{no_op / import_only:.2f}",
                "<= 0.2",
                no_op / import_only <= 0.2,
            ),
            (
                "d",
                "one topic edited: rebuilt",
                ", ".join(rebuilt),
                f"{after_edit:.2f} s",
                "the handout and the brochure",
                rebuilt == ["aftercare", "brochure"],
            ),
            (
                "e",
                "--jobs 1 vs default, full build",
                f"{full_one_job:.2f} s vs {full:.2f} s",
                f"{full_one_job / full:.2f}x",
                ">= 1.6x",
                full_one_job / full >= 1.6,
            ),
            (
                "e1",
                "the same, BROCHURE_SERVER=off",
                f"{alone_one_job:.2f} s vs {alone:.2f} s",
                f"{alone_one_job / alone:.2f}x",
                "(for comparison)",
                None,
            ),
            (
                "f",
                "watch: save to new one-page PDF",
                f"median of {len(latencies)}",
                f"{statistics.median(latencies) * 1000:.0f} ms",
                "<= 250 ms",
                statistics.median(latencies) <= 0.25,
            ),
            (
                "g",
                "PDF sizes: largest one-pager, brochure",
                f"{one_pager / 1024:.1f} KiB, {sizes['brochure'] / 1024:.1f} KiB",
                "",
                "<= 30 KiB, <= 120 KiB",
                one_pager <= 30 * 1024 and sizes["brochure"] <= 120 * 1024,
            ),
        ]
        when = f"brochure benchmark, {dt.date.today().isoformat()}, {machine()}"
        print(f"{when}; medians of {RUNS} runs (5 of each warm full build)\n")
        header = ("", "what", "measured", "result", "target", "met")
        met = {True: "yes", False: "NO", None: ""}
        table = [header, *[(r[0], r[1], r[2], r[3], r[4], met[r[5]]) for r in rows]]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in table[1:]:
            print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    finally:
        subprocess.run(stop_server, stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
