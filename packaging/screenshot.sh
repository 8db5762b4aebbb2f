#!/usr/bin/env bash
# Screenshot of the *installed* app under Xvfb: extract the .deb into a temporary root
# (dpkg -x), start /opt/carvalue/CarValue from there on the bundled sample photo, capture the
# screen after it has predicted.  Needs: apt-get install -y xvfb xauth imagemagick
#   packaging/screenshot.sh [dist/carvalue_*.deb] [docs/screenshot-installed.png] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
deb="${1:-$(ls -t dist/carvalue_*.deb | head -1)}"
out="${2:-docs/screenshot-installed.png}"
wait_s="${3:-20}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
home="$root/home" && mkdir -p "$home"
mkdir -p "$(dirname "$out")"
# A clean desktop-like environment: no Python variables, no venv on PATH.
env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 \
    CARVALUE_CONFIG_DIR="$home/config" CARVALUE_CACHE_DIR="$home/cache" \
    xvfb-run -a -s "-screen 0 1920x1080x24" bash -c '
        "$1/opt/carvalue/CarValue" "$1/opt/carvalue/_internal/resources/samples/synthetic-sedan.jpg" &
        app=$!
        sleep "$2"
        kill -0 "$app" || { echo "the app exited early" >&2; exit 1; }
        import -window root "$3"
        mogrify -trim +repage "$3"  # the window without the empty (black) screen around it
        kill "$app"
        wait "$app" || true
    ' _ "$root" "$wait_s" "$(realpath -m "$out")"
echo "$out"
