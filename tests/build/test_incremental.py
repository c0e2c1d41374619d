"""Incremental builds: each kind of input rebuilds exactly the documents that depend on it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import copy_sample

from brochure.base.paths import builtin_dir, default_font_dir
from brochure.build.run import BUILT, UP_TO_DATE, build_summary
from brochure.project.model import load_project

HANDOUTS = {
    "what-is-botox",
    "treatment-areas",
    "results",
    "side-effects",
    "aftercare",
    "unwanted-results",
    "choosing-an-injector",
}
ALL = HANDOUTS | {"brochure"}


@pytest.fixture(scope="module")
def built_clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with its own copies of the built-in templates and styles, built once."""
    root = copy_sample(tmp_path_factory.mktemp("incremental") / "clinic")
    shutil.copytree(builtin_dir("templates"), root / "templates")
    shutil.copytree(builtin_dir("styles"), root / "styles")
    (root / "content/images/photo.svg").write_text(
        "<svg xmlns='http://www.w3.org/2000/svg' width='40' height='20'/>"
    )
    aftercare = root / "content/topics/aftercare.md"
    aftercare.write_text(aftercare.read_text() + "\n![A cold pack in a cloth](../images/photo.svg)\n")
    fonts = root / "content/fonts"
    fonts.mkdir()
    for name in ("Regular", "Bold", "Italic", "BoldItalic"):
        shutil.copy(default_font_dir() / f"Lato-{name}.ttf", fonts / f"House-{name}.ttf")
    brand = root / "content/brand.toml"
    brand.write_text(
        brand.read_text().replace(
            'family = "Lato"             # built in; or give your own files:',
            'family = "House Sans"\nregular = "fonts/House-Regular.ttf"\nbold = "fonts/House-Bold.ttf"\n'
            'italic = "fonts/House-Italic.ttf"\nbold_italic = "fonts/House-BoldItalic.ttf"',
        )
    )
    summary = build_summary(load_project(root), root / "out")
    assert {o.name for o in summary.outcomes if o.status == BUILT} == ALL, [
        (o.name, o.status, str(o.error)) for o in summary.outcomes
    ]
    return root


@pytest.fixture
def clinic(built_clinic: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built clinic, output and manifest included."""
    root = tmp_path / "clinic"
    shutil.copytree(built_clinic, root)
    return root


def rebuilt(root: Path, **options: object) -> set[str]:
    summary = build_summary(load_project(root), root / "out", **options)
    failed = {o.name: str(o.error) for o in summary.outcomes if o.error}
    assert not failed, failed
    return {o.name for o in summary.outcomes if o.status == BUILT}


def edit(path: str, old: str | None = None, new: str = "") -> Callable[[Path], None]:
    """A change to one file: replace ``old`` with ``new``, or append ``new``."""

    def change(root: Path) -> None:
        target = root / path
        text = target.read_text()
        target.write_text(text.replace(old, new, 1) if old else text + new)

    return change


def touch_bytes(path: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        target = root / path
        target.write_bytes(target.read_bytes() + b"\n")

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            edit("content/topics/aftercare.md", new="\nOne more line.\n"),
            {"aftercare", "brochure"},
            id="topic",
        ),
        pytest.param(touch_bytes("content/images/photo.svg"), {"aftercare", "brochure"}, id="topic picture"),
        pytest.param(edit("templates/base.html", new="\n"), ALL, id="shared template"),
        pytest.param(edit("templates/_qr.html", new="\n"), ALL, id="included template"),
        pytest.param(edit("templates/_footer.html", new="\n"), HANDOUTS, id="template included by handouts"),
        pytest.param(edit("templates/handout.html", new="\n"), HANDOUTS, id="handout template"),
        pytest.param(edit("templates/brochure.html", new="\n"), {"brochure"}, id="brochure template"),
        pytest.param(edit("styles/base.css", new="\n"), ALL, id="shared stylesheet"),
        pytest.param(edit("styles/handout.css", new="\n"), HANDOUTS, id="handout stylesheet"),
        pytest.param(edit("styles/brochure.css", new="\n"), {"brochure"}, id="brochure stylesheet"),
        pytest.param(touch_bytes("content/images/logo.svg"), ALL, id="logo"),
        pytest.param(touch_bytes("content/fonts/House-Bold.ttf"), ALL, id="font"),
        pytest.param(edit("content/brand.toml", "555-0142", "555-0143"), ALL, id="brand config"),
        pytest.param(
            edit("content/documents.toml", "max_pages = 16", "max_pages = 15"), ALL, id="documents config"
        ),
    ],
)
def test_each_kind_of_input_rebuilds_exactly_its_dependents(clinic, change, expected):
    assert rebuilt(clinic) == set()
    change(clinic)
    assert rebuilt(clinic) == expected
    assert rebuilt(clinic) == set()


def test_a_heading_change_rebuilds_every_document_that_may_link_to_it(clinic):
    # Links between topics are checked against headings: a new heading can make or break one.
    edit("content/topics/results.md", "## The first days", "## The very first days")(clinic)
    assert rebuilt(clinic) == ALL


def test_options_are_part_of_the_key(clinic):
    assert rebuilt(clinic, paper="a4") == ALL
    assert rebuilt(clinic, paper="a4") == set()
    assert rebuilt(clinic, names=["aftercare"], paper="a4", strict=True) == {"aftercare"}


def test_force_rebuilds_everything(clinic):
    assert rebuilt(clinic, force=True) == ALL


def test_a_changed_or_missing_pdf_is_rebuilt(clinic):
    (clinic / "out/results.pdf").unlink()
    (clinic / "out/aftercare.pdf").write_bytes(b"someone else's file")
    assert rebuilt(clinic) == {"results", "aftercare"}


def test_up_to_date_documents_are_counted(clinic):
    summary = build_summary(load_project(clinic), clinic / "out")
    assert [o.status for o in summary.outcomes] == [UP_TO_DATE] * len(ALL)
    assert summary.describe().startswith("0 rebuilt, 8 up to date, 0 failed in ")


def test_a_removed_topic_takes_only_its_own_pdf(clinic):
    (clinic / "out/notes-from-the-owner.pdf").write_bytes(b"not ours")
    (clinic / "content/topics/results.md").unlink()
    brochure = clinic / "content/documents.toml"
    summary = build_summary(load_project(clinic), clinic / "out")
    assert summary.removed == ["results"]
    assert not (clinic / "out/results.pdf").exists()
    assert (clinic / "out/notes-from-the-owner.pdf").read_bytes() == b"not ours"
    assert brochure.exists()


def test_a_removed_topic_whose_pdf_was_changed_is_kept(clinic):
    (clinic / "out/results.pdf").write_bytes(b"edited by hand")
    (clinic / "content/topics/results.md").unlink()
    summary = build_summary(load_project(clinic), clinic / "out")
    assert summary.removed == []
    assert (clinic / "out/results.pdf").read_bytes() == b"edited by hand"


def test_building_some_documents_removes_nothing(clinic):
    (clinic / "content/topics/results.md").unlink()
    summary = build_summary(load_project(clinic), clinic / "out", names=["aftercare"])
    assert summary.removed == []
    assert (clinic / "out/results.pdf").exists()


NO_OP = """
import sys
import time
from brochure.cli.main import cli
try:
    cli.main(["build", "--project", *sys.argv[1:]], standalone_mode=False)
finally:
    heavy = sorted(m for m in ("weasyprint", "markdown", "jinja2") if m in sys.modules)
    print("imported:", ",".join(heavy) or "none")
"""


@pytest.mark.parametrize(
    ("names", "count"),
    [
        pytest.param([], 8, id="everything (fast path)"),
        pytest.param(["aftercare", "brochure"], 2, id="by name"),
    ],
)
def test_a_build_with_nothing_to_do_imports_no_engine(clinic, names, count):
    command = [sys.executable, "-c", NO_OP, str(clinic), *names]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"0 rebuilt, {count} up to date, 0 failed in ")
    assert lines[-1] == "imported: none"


COMMAND = """
import atexit
import sys

@atexit.register  # the command ends its process at once after a build, exit handlers still run
def loaded():
    loaded = [m for m in ("click", "yaml", "jinja2", "weasyprint") if m in sys.modules]
    print("loaded:", ",".join(loaded) or "none")

from brochure.__main__ import main
sys.argv = ["brochure", "build", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        pytest.param(["--project", "{p}", "--no-progress"], "none", id="plain"),
        pytest.param(["--project={p}", "--out", "{p}/out", "--progress"], "none", id="plain, with --out"),
        pytest.param(["--project", "{p}", "aftercare"], "click,yaml", id="by name"),
        pytest.param(["--project", "{p}", "--paper", "letter"], "click,yaml", id="another option"),
    ],
)
def test_the_brochure_command_answers_a_plain_no_op_before_loading_click(clinic, args, loaded):
    args = [arg.replace("{p}", str(clinic)) for arg in args]
    # The copy's first build records its own fingerprint (the manifest was written for another folder).
    subprocess.run([sys.executable, "-c", COMMAND, "--project", str(clinic)], capture_output=True, check=True)
    result = subprocess.run([sys.executable, "-c", COMMAND, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"0 rebuilt, [18] up to date, 0 failed in \d+\.\d\d s", lines[0])
    assert lines[-1] == f"loaded: {loaded}"


def test_after_its_check_finds_a_change_the_brochure_command_builds_what_changed(clinic):
    edit("content/topics/results.md", new="\nOne more line.\n")(clinic)
    command = [sys.executable, "-c", COMMAND, "--project", str(clinic), "--no-progress"]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "BROCHURE_SERVER": "off"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2].startswith("2 rebuilt, 6 up to date, 0 failed in ")
    # A project folder that is not there: the full command says so.
    missing = subprocess.run(
        [sys.executable, "-c", COMMAND, "--project", str(clinic / "nowhere")], capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert "nowhere" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_command_line_notices_every_change_after_a_no_op(clinic):
    from click.testing import CliRunner

    from brochure.cli.main import cli

    def build() -> str:
        result = CliRunner().invoke(cli, ["build", "--project", str(clinic)])
        assert result.exit_code == 0, result.stderr
        return result.stdout.split(" in ")[0]

    assert build() == "0 rebuilt, 8 up to date, 0 failed"
    (clinic / "content/notes-for-staff.txt").write_text("Not used by any document.")
    assert build() == "0 rebuilt, 8 up to date, 0 failed"
    edit("content/topics/results.md", new="\nOne more line.\n")(clinic)
    assert build() == "2 rebuilt, 6 up to date, 0 failed"
    assert build() == "0 rebuilt, 8 up to date, 0 failed"


class CountingRenderer:
    """Real workers, counting the documents handed to them as it reads them."""

    def __init__(self) -> None:
        from brochure.warm.workers import Renderer

        self.inner = Renderer()
        self.handed: list[str] = []
        self.keys: list[str] = []  # the documents whose keys were worked out, in order (see count_keys)
        self.keys_before_first: int | None = None

    def count_keys(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from brochure.project.inputs import Keys

        key = Keys.key
        monkeypatch.setattr(Keys, "key", lambda keys, doc: self.keys.append(doc.name) or key(keys, doc))

    def render(self, project, docs, paper, strict):  # noqa: ANN001, ANN201
        def counted():  # noqa: ANN202
            for doc in docs:
                if self.keys_before_first is None:
                    self.keys_before_first = len(self.keys)
                self.handed.append(doc.name)
                yield doc

        return self.inner.render(project, counted(), paper, strict)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.slow
def test_one_edit_among_300_topics_hashes_each_file_once_and_renders_one_document(make_project, monkeypatch):
    from conftest import topic

    from brochure.build.output import nothing_to_do
    from brochure.project import inputs
    from brochure.project.inputs import Hasher, fingerprint_options, readable_roots

    topics = {
        f"content/topics/t{i:03}.md": topic(f"Topic {i}", f"## Part {i}\n\nSome text.\n") for i in range(300)
    }
    root = make_project({**topics, "content/documents.toml": '[[document]]\nname = "{topic}"\n'})
    an_hour_ago = time.time() - 3600  # files saved a while ago, as in a real project
    for path in root.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    first = build_summary(load_project(root), root / "out")
    assert first.count(BUILT) == 300, [str(o.error) for o in first.failed][:3]

    edited = root / "content/topics/t150.md"
    edited.write_text(edited.read_text() + "\nOne more line.\n")
    scans = []
    monkeypatch.setattr(inputs, "headings", lambda body: scans.append(1) or inputs._HEADING.findall(body))
    hasher, renderer = Hasher(root), CountingRenderer()
    renderer.count_keys(monkeypatch)
    # As the command does: the quick check that nothing changed, then the build, sharing one hasher.
    assert nothing_to_do(root, root / "out", fingerprint_options(None, False), hasher) is None
    try:
        summary = build_summary(load_project(root), root / "out", hasher=hasher, renderer=renderer)
    finally:
        renderer.close()
    assert renderer.handed == ["t150"]
    # The edited topic's key first: its render started before the other 299 keys were worked out.
    assert renderer.keys_before_first == 1
    assert len(renderer.keys) == 300
    assert summary.count(BUILT) == 1
    assert summary.count(UP_TO_DATE) == 299
    # Each file read at most once: the keys and the project's fingerprint share what they read;
    # and of the topics only the edited one is read again (the others are as the last build hashed them).
    assert len(hasher.reads) == len(set(hasher.reads))
    assert {p for p in hasher.reads if p.suffix == ".md"} == {edited}
    readable = {p for folder in readable_roots(root) for p in folder.rglob("*") if p.is_file()}
    assert set(hasher.reads) <= readable
    # The topic index: each topic's headings scanned once, not once per document.
    assert len(scans) == 300


@pytest.mark.parametrize(("quick_first", "first"), [(False, "brochure"), (True, "aftercare")])
def test_watch_renders_the_edited_handout_before_the_brochure(clinic, quick_first, first):
    edit("content/topics/aftercare.md", new="\nOne more line.\n")(clinic)
    renderer = CountingRenderer()
    try:
        build_summary(load_project(clinic), clinic / "out", renderer=renderer, quick_first=quick_first)
    finally:
        renderer.close()
    assert sorted(renderer.handed) == ["aftercare", "brochure"]
    assert renderer.handed[0] == first
