"""The import graph (issue 31): no cycle among the project's modules, counting imports inside
functions and under TYPE_CHECKING, and nothing outside tests imports them.  The layers and the
other contracts are import-linter's (pyproject.toml; `lint-imports` in scripts/test.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_no_import_cycle_and_nothing_imports_tests() -> None:
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "import_cycles.py")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no import cycle" in run.stdout


def test_the_screenshot_script_imports_no_tests() -> None:
    """docs/make_screenshot.py is no package, so no contract sees it."""
    text = (REPO / "docs" / "make_screenshot.py").read_text(encoding="utf-8")
    assert "from tests" not in text and "import tests" not in text
