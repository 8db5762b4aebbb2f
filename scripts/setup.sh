#!/usr/bin/env bash
# Set up a development environment on a fresh Debian machine: the system libraries Qt needs,
# a virtual environment in .venv, and the project with the chosen extras.
#   scripts/setup.sh            # the app only (runtime dependencies)
#   scripts/setup.sh dev,train  # plus tests and the training/export tools (torch 2.13.0 CPU)
#                               # and, with train, the non-car image packages (training/data/negatives.py)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"

# Qt (PySide6) needs these on a bare Debian; install only what is missing.
QT_LIBS=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
         libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
         libxcb-render-util0 libxcb-image0 libxcb-xkb1
         binutils)  # strip/readelf for packaging/build.py (the slow packaging test skips without)
SYSTEM_PKGS=("${QT_LIBS[@]}")
if [[ ",$EXTRAS," == *",train,"* ]]; then
  # Non-car images that train and test the whole-car check (training/data/negatives.py): desktop
  # wallpapers (photos, abstract art) and public-domain clip art, ~350 MB installed; without
  # them the tests that read them skip and training has only the drawn negatives.
  SYSTEM_PKGS+=(mate-backgrounds gnome-backgrounds ukui-wallpapers plasma-workspace-wallpapers
                openclipart-png)
fi
missing=()
for pkg in "${SYSTEM_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "Installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [[ ",$EXTRAS," == *",train,"* ]]; then
  # Pinned first so nothing pulls a multi-GB CUDA build of torch.
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
if [ -n "$EXTRAS" ]; then
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
else
  .venv/bin/python -m pip install -q -e .
fi
