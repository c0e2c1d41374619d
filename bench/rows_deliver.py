"""The front desk's rows of the benchmark: personalised copies through the warm render server, to CUPS.

`rows(context)` returns the rows for bench/run.py's table. Until run.py
documents its hook, this guesses it: ``context`` may carry ``project`` (a
copy of the sample project) and ``runs``; each row is a dict with ``what``,
``result``, ``target`` and ``ok``. Run on its own, it prints its rows:
`python bench/rows_deliver.py`. It starts its own render server (in a
private runtime folder) and its own private cupsd, and stops both.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = 30
BATCH = 1000


def _memory_kb(pid: int) -> int:
    """Resident memory of a process and its children (the render server and its workers)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def _server_pid() -> int | None:
    from brochure.warm import control as server

    found = [s for s in server.status() if s.get("current")]
    return found[0]["pid"] if found else None


def rows(context: object = None) -> list[dict]:
    project_dir = Path(getattr(context, "project", None) or REPO)
    runs = int(getattr(context, "runs", 0) or RUNS)
    runtime = Path(tempfile.mkdtemp(prefix="br-bench-"))
    saved = {k: os.environ.get(k) for k in ("BROCHURE_SERVER", "BROCHURE_RUNTIME_DIR", "CUPS_SERVER")}
    os.environ.update({"BROCHURE_SERVER": "on", "BROCHURE_RUNTIME_DIR": str(runtime)})
    sys.path.insert(0, str(REPO / "tests"))
    from servers import CupsServer, cupsd_path, free_port

    from brochure.deliver import check_patient, personalise, personalise_many, print_packet, staff
    from brochure.project.model import load_project
    from brochure.warm import control as server

    project = load_project(project_dir)
    people = staff(project)
    fields = {"name": "Bench Patient", "treatment": "Botox", "note": "20 units, forehead"}
    patient = check_patient(project, {**fields, "injector": people[0].name if people else ""})
    handout = _handouts(project)[0]
    found: list[dict] = []
    cups = None
    try:
        for _ in range(3):  # start the server; warm both workers
            personalise(project, [handout], patient)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            personalise(project, [handout], patient)
            times.append(time.perf_counter() - started)
        p50 = statistics.median(times) * 1000
        found.append(
            _row("personalised one-pager through the warm render server, p50", f"{p50:.0f} ms", 120, p50)
        )

        if cupsd_path():
            root = Path(tempfile.mkdtemp(prefix="brochure-cups-"))
            root.chmod(0o755)
            cups = CupsServer(root, free_port())
            cups.start()
            os.environ["CUPS_SERVER"] = cups.address
            queue = cups.add_queue("bench")
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                print_packet(personalise(project, [handout], patient), printer="bench")
                times.append(time.perf_counter() - started)
            queue.wait_job(120)
            p50 = statistics.median(times) * 1000
            found.append(_row("personalise + hand to lp (private cupsd), p50", f"{p50:.0f} ms", 250, p50))
        else:
            found.append(
                {"what": "personalise + hand to lp", "result": "cupsd missing", "target": "", "ok": False}
            )

        # Memory (the resident sizes of the server and its workers) before the batch, after its
        # first tenth (the workers' caches are warm by then) and after nine tenths, both while
        # copies are in flight, and at its end: flat means the copies between the first tenth
        # and the ninth grew it by less than 5 %. The server must render the whole batch.
        pid = _server_pid()
        memory = [_memory_kb(pid) if pid else 0]
        started = time.perf_counter()
        done = 0
        for _ in personalise_many(project, [([handout], patient)] * BATCH):
            done += 1
            if done in (BATCH // 10, BATCH * 9 // 10):
                memory.append(_memory_kb(pid) if pid else 0)
        seconds = time.perf_counter() - started
        memory.append(_memory_kb(pid) if pid else 0)
        rate = done / seconds
        same_server = pid is not None and _server_pid() == pid
        first_tenth, ninth_tenth = memory[1], memory[2]
        flat = first_tenth > 0 and ninth_tenth - first_tenth < first_tenth * 0.05
        found.append(
            {
                "what": f"batch of {BATCH} personalised one-pagers",
                "result": f"{rate:.0f}/s; server memory {' -> '.join(f'{m / 1024:.0f}' for m in memory)} MB"
                + ("" if same_server else "; the render server did not last the batch"),
                "target": "at least 25 per second, memory flat",
                "ok": rate >= 25 and flat and same_server,
            }
        )
    finally:
        server.stop()
        if cups is not None:
            cups.stop()
            shutil.rmtree(cups.root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return found


def _handouts(project) -> list[str]:  # noqa: ANN001
    from brochure.project.model import documents

    return [d.name for d in documents(project) if d.spec.kind == "handout"]


def _row(what: str, result: str, target_ms: float, measured_ms: float) -> dict:
    return {
        "what": what,
        "result": result,
        "target": f"at most {target_ms:g} ms",
        "ok": measured_ms <= target_ms,
    }


if __name__ == "__main__":
    for row in rows():
        mark = "ok" if row["ok"] else "MISSED"
        print(f"{row['what']}: {row['result']} (target {row['target']}) {mark}")
