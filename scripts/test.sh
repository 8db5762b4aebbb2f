#!/usr/bin/env bash
# Fresh Debian machine -> the whole test suite (what CI runs).
#   scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev,train
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
.venv/bin/lint-imports
.venv/bin/ruff check core carvalue_gui training tests benchmarks packaging
# --run-slow: every test, the slow ones too (a plain `pytest` skips them while working);
# --durations: the slowest tests in the log, to see which deserve the slow marker (over ~20 s).
# -n auto --dist loadfile: one worker per core, each test file on one worker (its module fixtures,
# which train or export, are made once); PYTEST_WORKERS=0 runs in this one process.
# pytest exits 5 when it collected nothing: that is a failure here too (set -e).
.venv/bin/python -m pytest -q --run-slow --durations=25 -n "${PYTEST_WORKERS:-auto}" --dist loadfile "$@"
