#!/usr/bin/env bash
# Fresh Debian machine -> the CarValue app running on its bundled model.
#   scripts/run-app.sh [PHOTO...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/carvalue "$@"
