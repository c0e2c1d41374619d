"""The render server: same PDFs and messages as a build without it, private, and never in the way."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MINIMAL_BRAND, copy_sample, pdf_text, topic

from brochure.base.paths import default_font_dir

# A server a failed test leaves behind stops after two idle minutes, not fifteen.
SERVER_ENV = {"BROCHURE_SERVER_IDLE": "120"}


def brochure(runtime: Path, *args: str, server: str = "on", **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        **SERVER_ENV,
        "BROCHURE_SERVER": server,
        "BROCHURE_RUNTIME_DIR": str(runtime),
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "brochure", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


def server_pid(runtime: Path) -> int | None:
    status = brochure(runtime, "server", "status").stdout
    found = re.search(r"Render server (\d+):", status)
    return int(found.group(1)) if found else None


def ready_server(runtime: Path, **env: str) -> int:
    """The pid of this brochure's server once it answers (a first build starts it in the background)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = brochure(runtime, "server", "status", **env).stdout
        found = re.search(r"Render server (\d+): \d+ workers", status)
        if found:
            return int(found.group(1))
        time.sleep(0.2)
    raise AssertionError(f"the render server did not start: {status!r}")


def start_server(runtime: Path, root: Path, **env: str) -> int:
    """Build one handout, which starts the server, and wait until the server answers."""
    done = brochure(runtime, "build", "--force", "aftercare", "--project", str(root), **env)
    assert done.returncode == 0, done.stderr
    return ready_server(runtime, **env)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, ended but not yet reaped by its parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    if state != "Z":
        return True
    try:  # our own child (a build started in this process): reap it
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return False


def gone(pid: int, within: float = 15.0) -> bool:
    """Whether the process has ended, or ends ``within`` seconds."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def runtime(tmp_path_factory: pytest.TempPathFactory):
    """A folder for server sockets of this test alone; every server in it is stopped afterwards."""
    folder = tmp_path_factory.mktemp("run", numbered=True)
    yield folder
    brochure(folder, "server", "stop")


def socket_files(runtime: Path) -> list[Path]:
    return list(runtime.glob("brochure-*/*.sock"))


def test_builds_through_the_server_match_a_build_without_it(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    alone = brochure(runtime, "build", "--project", str(root), "--out", str(tmp_path / "alone"), server="off")
    assert alone.returncode == 0, alone.stderr
    assert not socket_files(runtime)
    # The first renders by itself and starts the server; the second is rendered by the server.
    for out in ("first", "second"):
        done = brochure(runtime, "build", "--force", "--project", str(root), "--out", str(tmp_path / out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("8 rebuilt, 0 up to date, 0 failed")
    names = sorted(p.name for p in (tmp_path / "alone").glob("*.pdf"))
    assert len(names) == 8
    for name in names:
        expected = (tmp_path / "alone" / name).read_bytes()
        assert (tmp_path / "first" / name).read_bytes() == expected, name
        assert (tmp_path / "second" / name).read_bytes() == expected, name
    [sock] = socket_files(runtime)
    assert sock.stat().st_mode & 0o777 == 0o700 or sock.stat().st_mode & 0o077 == 0
    assert sock.parent.stat().st_mode & 0o777 == 0o700
    status = brochure(runtime, "server", "status").stdout
    assert re.fullmatch(
        r"Render server \d+: \d+ workers, 1 build in \d+ (s|min); stops after 2 min without a build\.\n",
        status,
    )


def test_a_build_through_the_server_does_not_load_the_engine(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    assert brochure(runtime, "build", "--project", str(root)).returncode == 0
    probe = (
        "import sys\nfrom brochure.cli.main import cli\n"
        f"try:\n    cli(['build', '--force', 'aftercare', '--project', {str(root)!r}])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('weasyprint', 'markdown', 'jinja2') if m in sys.modules))\n"
    )
    env = {**os.environ, **SERVER_ENV, "BROCHURE_SERVER": "on", "BROCHURE_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "1 rebuilt, 0 up to date, 0 failed" + done.stdout.split("failed")[1].splitlines()[0],
        "[]",
    ]


def test_status_and_stop(tmp_path, runtime):
    assert brochure(runtime, "server", "status").stdout == "No render server is running.\n"
    assert brochure(runtime, "server", "stop").stdout == "No render server of this version was running.\n"
    assert brochure(runtime, "server", "stop", "--all").stdout == "No render server was running.\n"
    root = copy_sample(tmp_path / "clinic")
    pid = start_server(runtime, root)
    workers = children(pid)
    assert workers
    stopped = brochure(runtime, "server", "stop")
    assert stopped.stdout == f"Stopped render server {pid} (this version of brochure).\n"
    # It has ended, with its workers, when `stop` returns.
    assert gone(pid, within=0)
    assert all(gone(worker, within=0) for worker in workers)
    assert not socket_files(runtime)
    assert brochure(runtime, "server", "status").stdout == "No render server is running.\n"


def test_stop_stops_this_versions_server_and_all_stops_every_one(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    # Another reproducibility setting is another server, as another version of brochure is.
    other = {"SOURCE_DATE_EPOCH": "86400"}
    theirs = start_server(runtime, root, **other)
    ours = start_server(runtime, root)
    assert theirs != ours
    status = brochure(runtime, "server", "status").stdout
    assert re.search(rf"^Render server {theirs} \(another version of brochure\): \d+ workers", status, re.M)
    assert re.search(rf"^Render server {ours}: \d+ workers", status, re.M)

    stopped = brochure(runtime, "server", "stop")
    assert stopped.stdout == (
        f"Stopped render server {ours} (this version of brochure).\n"
        "1 render server of another version is still running (stop with: brochure server stop --all).\n"
    )
    assert gone(ours, within=0)
    status = brochure(runtime, "server", "status").stdout
    assert re.fullmatch(rf"Render server {theirs} \(another version of brochure\): \d+ workers.*\n", status)
    assert brochure(runtime, "server", "stop").stdout == (
        "No render server of this version was running.\n"
        "1 render server of another version is still running (stop with: brochure server stop --all).\n"
    )

    ours = start_server(runtime, root)
    stopped = brochure(runtime, "server", "stop", "--all")
    assert sorted(stopped.stdout.splitlines()) == sorted(
        [
            f"Stopped render server {ours} (this version of brochure).",
            f"Stopped render server {theirs} (another version of brochure).",
        ]
    )
    assert gone(ours, within=0)
    assert gone(theirs, within=0)
    assert not socket_files(runtime)
    assert brochure(runtime, "server", "status").stdout == "No render server is running.\n"


def test_a_server_ended_by_sigterm_removes_its_socket(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    pid = start_server(runtime, root)
    workers = children(pid)
    [sock] = socket_files(runtime)
    os.kill(pid, signal.SIGTERM)
    assert gone(pid)
    assert all(gone(worker) for worker in workers)
    assert not sock.exists()
    assert server_pid(runtime) is None
    # The next build renders by itself and starts a new one.
    done = brochure(runtime, "build", "--force", "aftercare", "--project", str(root))
    assert done.returncode == 0, done.stderr
    assert ready_server(runtime) != pid


def test_the_first_build_renders_by_itself_and_does_not_wait_for_the_server(tmp_path, runtime):
    """A server that takes its time to start (here: forever) does not hold the build that started it."""
    root = copy_sample(tmp_path / "clinic")
    slow = tmp_path / "slow"
    slow.mkdir()
    # Python imports sitecustomize at start-up; this one stalls the render server only.
    (slow / "sitecustomize.py").write_text(
        "import time\n"
        "with open('/proc/self/cmdline', 'rb') as f:\n"
        "    if b'\\0server\\0run\\0' in f.read():\n"
        "        time.sleep(600)\n"
    )
    env = {"PYTHONPATH": str(slow)}
    done = brochure(runtime, "-v", "build", "--project", str(root), **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("8 rebuilt, 0 up to date, 0 failed")
    assert "started the render server" in done.stderr
    status = brochure(runtime, "server", "status").stdout
    found = re.fullmatch(r"Render server (\d+): starting\.\n", status)
    assert found, status
    assert not socket_files(runtime)
    alone = brochure(runtime, "build", "--project", str(root), "--out", str(tmp_path / "alone"), server="off")
    assert alone.returncode == 0, alone.stderr
    for pdf in (tmp_path / "alone").glob("*.pdf"):
        assert (root / "out" / pdf.name).read_bytes() == pdf.read_bytes(), pdf.name
    # A later build waits for a server that is starting, but not for one stuck for so long.
    lock = next(runtime.glob("brochure-*/*.lock"))
    os.utime(lock, (time.time() - 60, time.time() - 60))
    later = brochure(runtime, "-v", "build", "--force", "aftercare", "--project", str(root), **env)
    assert later.returncode == 0, later.stderr
    assert "the render server has been starting for more than 30 s: rendering here" in later.stderr
    assert "started the render server" not in later.stderr
    # A server that is still starting can be stopped too.
    pid = int(found.group(1))
    stopped = brochure(runtime, "server", "stop")
    assert stopped.stdout == f"Stopped render server {pid} (this version of brochure).\n"
    assert gone(pid)


def test_a_killed_server_is_replaced_and_a_stopped_build_leaves_it_working(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    first = start_server(runtime, root)
    workers = children(first)
    assert workers
    os.kill(first, signal.SIGKILL)
    assert gone(first)
    assert all(gone(pid) for pid in workers)  # its workers do not linger
    done = brochure(runtime, "build", "--project", str(root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("7 rebuilt, 1 up to date, 0 failed")
    second = ready_server(runtime)
    assert second not in (None, first)

    # A build stopped with Ctrl-C while the server renders for it: the next build is served as usual.
    env = {**os.environ, **SERVER_ENV, "BROCHURE_SERVER": "on", "BROCHURE_RUNTIME_DIR": str(runtime)}
    command = [sys.executable, "-m", "brochure", "build", "--force", "--project", str(root)]
    stopped = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    stopped.send_signal(signal.SIGINT)
    stopped.wait(60)
    done = brochure(runtime, "build", "--force", "--project", str(root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("8 rebuilt")
    assert server_pid(runtime) == second


def test_the_server_stops_by_itself_when_idle(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    pid = start_server(runtime, root, BROCHURE_SERVER_IDLE="1")
    deadline = time.monotonic() + 20
    while socket_files(runtime) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not socket_files(runtime)
    assert gone(pid)
    assert server_pid(runtime) is None


def test_a_socket_folder_others_can_enter_is_not_used(tmp_path, runtime):
    folder = runtime / f"brochure-{os.getuid()}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    root = copy_sample(tmp_path / "clinic")
    done = brochure(runtime, "-v", "build", "aftercare", "--project", str(root))
    assert done.returncode == 0, done.stderr
    assert "is not a folder only this user can enter" in done.stderr
    assert (root / "out/aftercare.pdf").exists()
    assert not socket_files(runtime)


def test_errors_read_the_same_through_the_server(tmp_path, runtime):
    root = copy_sample(tmp_path / "clinic")
    results = root / "content/topics/results.md"
    results.write_text(
        results.read_text() + "\n" + "\n\n".join(["More to say about the results here."] * 120)
    )
    start_server(runtime, copy_sample(tmp_path / "warm-up"))
    through = brochure(runtime, "build", "results", "aftercare", "--project", str(root))
    (root / "out").rename(root / "out-server")
    alone = brochure(runtime, "build", "results", "aftercare", "--project", str(root), server="off")
    assert through.returncode == alone.returncode == 1
    assert through.stderr == alone.stderr
    assert "Error: content/topics/results.md: document 'results' does not fit on 1 page" in through.stderr
    assert (root / "out-server/aftercare.pdf").read_bytes() == (root / "out/aftercare.pdf").read_bytes()


def test_warm_workers_see_a_new_template_and_a_changed_font_file(make_project, runtime):
    fonts = default_font_dir()
    root = make_project(
        {
            "content/brand.toml": MINIMAL_BRAND
            + '\n[font]\nfamily = "House Sans"\nregular = "fonts/House.ttf"\n',
            "content/fonts/House.ttf": (fonts / "Lato-Regular.ttf").read_bytes(),
            "content/topics/care.md": topic("Care", "Rest today and drink water."),
        }
    )
    pdf = root / "out/care.pdf"

    def build() -> bytes:
        """Build through the server, and check the PDF is the one a build without it makes."""
        done = brochure(runtime, "build", "care", "--project", str(root))
        assert done.returncode == 0, done.stderr
        alone = root / "alone"
        done = brochure(runtime, "build", "care", "--project", str(root), "--out", str(alone), server="off")
        assert done.returncode == 0, done.stderr
        assert pdf.read_bytes() == (alone / "care.pdf").read_bytes()
        return pdf.read_bytes()

    regular = build()
    (root / "content/fonts/House.ttf").write_bytes((fonts / "Lato-Light.ttf").read_bytes())
    assert build() != regular
    (root / "templates").mkdir()
    (root / "templates/handout.html").write_text(
        '{% extends "builtin/handout.html" %}{% block after_topic %}<p>Ask us anything.</p>{% endblock %}'
    )
    build()
    assert "Ask us anything." in pdf_text(pdf)[0]
    (root / "templates/handout.html").unlink()
    build()
    assert "Ask us anything." not in pdf_text(pdf)[0]
    assert brochure(runtime, "server", "status").stdout.count("Render server") == 1


def test_documents_stream_to_the_server_and_an_error_of_their_own_goes_up(tmp_path, runtime, monkeypatch):
    from brochure.project.model import documents, load_project
    from brochure.warm.client import RemoteRenderer

    root = copy_sample(tmp_path / "clinic")
    pid = start_server(runtime, root)
    monkeypatch.setenv("BROCHURE_SERVER", "on")
    monkeypatch.setenv("BROCHURE_RUNTIME_DIR", str(runtime))
    project = load_project(root)
    docs = [d for d in documents(project) if d.name != "brochure"]
    pulled = []

    def one_by_one(fail: bool):  # noqa: ANN202
        for doc in docs:
            pulled.append(doc.name)
            yield doc
        if fail:
            raise OSError("the disk went away")

    renderer = RemoteRenderer()
    try:
        results = list(renderer.render(project, one_by_one(fail=False), "letter", False))
        assert sorted(r.name for r in results) == sorted(pulled) == sorted(d.name for d in docs)
        assert all(r.error is None and r.pdf.startswith(b"%PDF") for r in results)
        # A generator that fails is the build's error: not taken for the server failing, and not
        # rendered again here.
        pulled.clear()
        with pytest.raises(OSError, match="the disk went away"):
            list(renderer.render(project, one_by_one(fail=True), "letter", False))
        assert renderer._local is None
    finally:
        renderer.close()
    assert ready_server(runtime) == pid
    assert "2 builds" in brochure(runtime, "server", "status").stdout  # both went to the server
