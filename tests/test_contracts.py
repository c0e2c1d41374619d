"""The house's shape holds: `lint-imports` (the real tool, as `make lint` runs it) refuses a copy of
the package that imports WeasyPrint, click or Flask outside their rooms, or adds a room no layer names."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS)], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "brochure", tmp_path / "brochure", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_package_as_it_is_keeps_every_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("document/compose.py", "import weasyprint", "WeasyPrint and pydyf only in the engine BROKEN"),
        ("deliver/service.py", "from pydyf import String", "WeasyPrint and pydyf only in the engine BROKEN"),
        ("deliver/service.py", "import click", "click only in the command line BROKEN"),
        ("build/run.py", "from flask import Flask", "Flask and the web server only in the web page BROKEN"),
        ("engine/pdf.py", "from brochure.document import compose", "base BROKEN"),  # an arrow back up
    ],
)
def test_an_import_outside_its_room_breaks_a_contract(tree, module, line, contract):
    with (tree / "brochure" / module).open("a") as source:
        source.write(f"\n{line}  # noqa\n")
    result = lint(tree)
    assert result.returncode == 1
    assert contract in result.stdout


def test_a_new_room_must_be_placed_in_a_layer(tree):
    (tree / "brochure" / "clinic").mkdir()
    (tree / "brochure" / "clinic" / "__init__.py").write_text("")
    result = lint(tree)
    assert result.returncode == 1
    assert "brochure.clinic" in result.stdout
