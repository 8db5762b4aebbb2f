"""No module over 400 lines without a one-line reason at its top (issue 31).

A module longer than ``MAX_LINES`` says why it is one module in a comment line right after its
docstring (or first, when it has none), e.g. ``# Over 400 lines: one table of op shape rules``;
the reason is for the next engineer, who otherwise splits it or adds to it blind."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("benchmarks", "carvalue_gui", "core", "docs", "packaging", "scripts", "tests", "training")
MAX_LINES = 400
REASON = re.compile(r"# Over 400 lines: \S.{9,}")  # a reason of a few words, not a placeholder


def modules() -> list[Path]:
    return sorted(p for d in PACKAGES for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts)


def reason_line(source: str) -> str:
    """The first non-blank line after the module docstring (the first line when there is none)."""
    body = ast.parse(source).body
    has_doc = bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)
    after = (body[0].end_lineno or 0) if has_doc else 0
    lines = source.splitlines()[after:]
    if not has_doc:
        lines = [x for x in lines if not x.startswith("#!") and "coding" not in x[:20]]
    return next((x for x in lines if x.strip()), "")


def test_the_modules_are_found() -> None:
    found = {p.relative_to(REPO).as_posix() for p in modules()}
    assert {"carvalue_gui/main_window.py", "core/predictor.py", "tests/test_module_sizes.py"} <= found


def test_every_module_over_400_lines_says_why_at_its_top() -> None:
    missing = []
    for path in modules():
        source = path.read_text(encoding="utf-8")
        n = len(source.splitlines())
        if n > MAX_LINES and not REASON.fullmatch(reason_line(source).strip()):
            missing.append(f"{path.relative_to(REPO)} ({n} lines)")
    assert not missing, ("modules over 400 lines need '# Over 400 lines: <why it is one module>' right "
                         "after the docstring, or a split: " + ", ".join(missing))


@pytest.mark.parametrize(("source", "ok"), [
    ('"""Doc."""\n# Over 400 lines: one table of op shape rules\n\nimport os\n', True),
    ('"""Doc\n\nmore."""\n\n# Over 400 lines: one table of op shape rules\n', True),
    ("# Over 400 lines: one table of op shape rules\nimport os\n", True),
    ('"""Doc."""\n\nimport os\n# Over 400 lines: one table of op shape rules\n', False),  # not at the top
    ('"""Doc."""\n# Over 400 lines: TODO\n', False),  # no reason
    ('"""Doc."""\n# over 400 lines because\n', False),
])
def test_the_reason_is_read_from_right_after_the_docstring(source: str, ok: bool) -> None:
    assert bool(REASON.fullmatch(reason_line(source).strip())) is ok
