#!/usr/bin/env bash
# macOS: CarValue.app (PyInstaller BUNDLE, see packaging/carvalue.spec) -> CarValue-<v>-macos.dmg
# UNTESTED: written on Linux, where neither the macOS build nor hdiutil can run.  See
# packaging/README.md.  Run from the repository root on a Mac, in a venv holding only the
# runtime deps + PyInstaller (the pins in packaging/constraints.txt):
#   packaging/macos/make_dmg.sh [version]
# Signing: ad-hoc (`codesign -s -`) so it runs on the build Mac; for other Macs set
# CODESIGN_IDENTITY="Developer ID Application: ..." and notarise the .dmg (xcrun notarytool).
set -euo pipefail
cd "$(dirname "$0")/../.."
version="${1:-$(python3 -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')}"
identity="${CODESIGN_IDENTITY:--}"

pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/carvalue.spec
app="dist/CarValue.app"
test -d "$app" || { echo "PyInstaller did not produce $app" >&2; exit 1; }

codesign --force --deep --options runtime --sign "$identity" "$app"
# The installer's smoke test, headless (the console executable inside the bundle).
"$app/Contents/MacOS/carvalue-cli" --self-test

stage="build/dmg"
rm -rf "$stage" && mkdir -p "$stage"
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
dmg="dist/CarValue-${version}-macos-$(uname -m).dmg"
rm -f "$dmg"
hdiutil create -volname "CarValue" -srcfolder "$stage" -ov -format UDZO "$dmg"
echo "$dmg"
