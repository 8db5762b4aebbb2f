"""Packaging: the self-test, the start-up probe, the bundle filter, the build helpers, and
(marked slow) a real build installed into a temporary root and run from there."""
# Over 400 lines: the packaging tests share the build module loaded by path

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
SAMPLE = REPO / "resources" / "samples" / "synthetic-sedan.jpg"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


bundle_filter = _load("carvalue_bundle_filter", PACKAGING / "bundle_filter.py")
build = _load("carvalue_build", PACKAGING / "build.py")
make_assets = _load("carvalue_make_assets", PACKAGING / "make_assets.py")


# -- self-test ------------------------------------------------------------------------------------
def test_self_test_predicts_the_bundled_sample(model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carvalue_gui.selftest import main

    assert main(["--model", str(model_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok"
    assert Path(result["photo"]) == SAMPLE
    assert result["median_price"] > 0
    lo, hi = result["price_range"]
    assert 0 < lo <= hi
    assert result["make_model"] and result["year"]
    assert result["frozen"] is False


def test_self_test_leaves_no_onnxruntime_telemetry(model_file: Path, tmp_path: Path) -> None:
    """onnxruntime 1.32 writes a device id and an event store under ~/.cache/Microsoft unless
    ORT_DISABLE_TELEMETRY=1 is set before it is imported (core.modelfile does that)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO), "LANG": "C.UTF-8",
           "CARVALUE_CONFIG_DIR": str(tmp_path / "config")}
    res = subprocess.run([sys.executable, "-m", "carvalue_gui.launcher", "--self-test", "--model",
                          str(model_file)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (tmp_path / ".cache" / "Microsoft").exists()


def test_self_test_text_output(model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carvalue_gui.launcher import main

    assert main(["--self-test", "--model", str(model_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CarValue self-test: ok")
    assert "median:" in out and "make/model:" in out


def test_self_test_fails_with_reason_for_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carvalue_gui.selftest import main

    assert main(["--model", str(tmp_path / "nope.onnx")]) == 1
    err = capsys.readouterr().err
    assert "self-test FAILED" in err and "model file not found" in err and "nope.onnx" in err


def test_self_test_fails_with_reason_for_unreadable_photo(model_file: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from carvalue_gui.selftest import main

    bad = tmp_path / "car.jpg"
    bad.write_bytes(b"this is not a JPEG")
    assert main(["--model", str(model_file), "--photo", str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "failed"
    assert "cannot read the sample photo" in captured.err and "car.jpg" in captured.err


def test_self_test_bad_usage_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    from carvalue_gui.selftest import main

    assert main(["--no-such-option"]) == 2


def test_python_outside_bundle_lists_the_dev_interpreter() -> None:
    """From a venv the check must see this interpreter (so an empty list from an installed app
    means something)."""
    from carvalue_gui.selftest import python_outside_bundle

    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc")
    found = python_outside_bundle()
    assert any("lib-dynload" in p or "site-packages" in p or "libpython" in p for p in found)


# -- start-up probe -------------------------------------------------------------------------------
def test_startup_probe_reports_first_paint(qtbot: object, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from PySide6.QtWidgets import QApplication, QWidget

    from carvalue_gui import startup_probe

    monkeypatch.setenv("CARVALUE_STARTUP_PROBE", "window")
    # The probe ends the app with QApplication.exit(); on the test session's shared application
    # (whose exec() never runs) that would leave every later event loop quitting at once, so the
    # quit is recorded here instead (the slow packaging test runs the real one).
    quits: list[int] = []
    monkeypatch.setattr(startup_probe._Probe, "_quit", lambda self, code: quits.append(code))
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    w = QWidget()
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    before = time.time()
    startup_probe.install(app, w)
    w.show()
    probe = startup_probe._ACTIVE[-1]
    qtbot.waitUntil(lambda: probe.done and quits == [0], timeout=5000)  # type: ignore[attr-defined]
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(startup_probe.MARK)][-1]
    facts = json.loads(line[len(startup_probe.MARK):])
    assert facts["event"] == "window"
    assert before <= facts["window_epoch"] <= time.time()


def test_startup_probe_is_inert_without_env(qtbot: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QApplication, QWidget

    from carvalue_gui import startup_probe

    monkeypatch.delenv("CARVALUE_STARTUP_PROBE", raising=False)
    n = len(startup_probe._ACTIVE)
    w = QWidget()
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    startup_probe.install(QApplication.instance(), w)  # type: ignore[arg-type]
    assert len(startup_probe._ACTIVE) == n


def test_startup_probe_rejects_unknown_mode(qtbot: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QApplication, QWidget

    from carvalue_gui import startup_probe

    monkeypatch.setenv("CARVALUE_STARTUP_PROBE", "paint")
    w = QWidget()
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    with pytest.raises(SystemExit, match="window, prediction"):
        startup_probe.install(QApplication.instance(), w)  # type: ignore[arg-type]


# -- bundle filter ----------------------------------------------------------------------------------
def test_filter_keeps_only_listed_plugins_and_no_translations() -> None:
    keep = bundle_filter.keep_plugins(include_wayland=False)
    wanted = bundle_filter.is_wanted
    assert wanted("PySide6/Qt/plugins/platforms/libqxcb.so", keep)
    assert wanted("PySide6/Qt/plugins/platforms/libqoffscreen.so", keep)
    assert not wanted("PySide6/Qt/plugins/platforms/libqwayland.so", keep)
    assert not wanted("PySide6/Qt/plugins/platformthemes/libqgtk3.so", keep)
    assert not wanted("PySide6/Qt/plugins/imageformats/libqpdf.so", keep)
    assert not wanted("PySide6/Qt/translations/qtbase_de.qm", keep)
    assert wanted("PySide6/QtOpenGL.abi3.so", keep)  # pyqtgraph imports it at import time
    assert wanted("PySide6/Qt/lib/libQt6Core.so.6", keep)
    with_wayland = bundle_filter.keep_plugins(include_wayland=True)
    assert wanted("PySide6/Qt/plugins/platforms/libqwayland.so", with_wayland)
    assert wanted("PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so", with_wayland)


def test_filter_keeps_each_platforms_own_platform_plugin() -> None:
    win = bundle_filter.keep_plugins(False, platform="win32")
    assert bundle_filter.is_wanted("PySide6/Qt/plugins/platforms/qwindows.dll", win)
    mac = bundle_filter.keep_plugins(False, platform="darwin")
    assert bundle_filter.is_wanted("PySide6/Qt/plugins/platforms/libqcocoa.dylib", mac)
    assert not bundle_filter.is_wanted("PySide6/Qt/plugins/platforms/libqxcb.so", mac)


def test_filter_never_excludes_modules_pyqtgraph_imports() -> None:
    for needed in ("PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtSvg", "PySide6.QtTest",
                   "PySide6.QtWidgets", "numpy", "onnxruntime", "PIL"):
        assert needed not in bundle_filter.EXCLUDED_MODULES
    for banned in ("torch", "torchvision", "scipy", "sklearn", "open_clip", "training"):
        assert banned in bundle_filter.EXCLUDED_MODULES


def test_prune_orphans_follows_needed_closure() -> None:
    binaries = [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "/s/libqxcb.so", "BINARY"),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", "/s/libQt6XcbQpa.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6Gui.so.6", "/s/libQt6Gui.so.6", "BINARY"),
        ("PySide6/Qt/lib/libQt6WaylandClient.so.6", "/s/libQt6WaylandClient.so.6", "BINARY"),
        ("libX11.so.6", "/usr/lib/libX11.so.6", "BINARY"),
        ("libgtk-3.so.0", "/usr/lib/libgtk-3.so.0", "BINARY"),
        ("libcairo.so.2", "/usr/lib/libcairo.so.2", "BINARY"),
        ("libpython3.11.so.1.0", "/py/libpython3.11.so.1.0", "BINARY"),
        ("onnxruntime/capi/libonnxruntime_providers_shared.so", "/s/prov.so", "BINARY"),
        ("_pi_heif.cpython-311-x86_64-linux-gnu.so", "/s/_pi_heif.so", "EXTENSION"),  # top-level extension
        ("libheif-7a3e919c.so.1.23.0", "/s/libheif.so", "BINARY"),  # ... and the library it links
    ]
    needed = {
        "/s/libqxcb.so": ["libQt6XcbQpa.so.6"],
        "/s/libQt6XcbQpa.so.6": ["libQt6Gui.so.6", "libX11.so.6"],
        "/usr/lib/libgtk-3.so.0": ["libcairo.so.2"],
        "/s/_pi_heif.so": ["libheif-7a3e919c.so.1.23.0"],
    }
    report = bundle_filter.FilterReport()
    kept = bundle_filter.prune_orphan_libraries(binaries, lambda src: needed.get(src, []), report)
    names = {e[0] for e in kept}
    assert "PySide6/Qt/lib/libQt6Gui.so.6" in names and "libX11.so.6" in names
    assert "libpython3.11.so.1.0" in names  # never pruned
    assert "onnxruntime/capi/libonnxruntime_providers_shared.so" in names  # loaded by its package
    assert {"_pi_heif.cpython-311-x86_64-linux-gnu.so", "libheif-7a3e919c.so.1.23.0"} <= names
    assert set(report.orphans) == {"PySide6/Qt/lib/libQt6WaylandClient.so.6", "libgtk-3.so.0", "libcairo.so.2"}


def test_elf_needed_matches_readelf() -> None:
    """Direct DT_NEEDED entries, not ldd's transitive closure."""
    import sysconfig

    lib = Path(sysconfig.get_config_var("LIBDIR") or "") / str(sysconfig.get_config_var("LDLIBRARY") or "")
    target = lib if lib.is_file() and lib.suffix != ".a" else Path(sys.executable).resolve()
    needed = bundle_filter.elf_needed(str(target))
    assert "libc.so.6" in needed
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-d", str(target)], capture_output=True, text=True, check=True).stdout
        expected = [ln.split("[", 1)[1].split("]", 1)[0] for ln in out.splitlines() if "(NEEDED)" in ln]
        assert needed == expected
    assert bundle_filter.elf_needed(str(SAMPLE)) == []  # not ELF
    assert bundle_filter.parse_elf_needed(b"\x7fELF" + b"\0" * 10) == []  # truncated


def test_system_provided_libraries_are_dropped() -> None:
    report = bundle_filter.FilterReport()
    entries = [("libstdc++.so.6", "/usr/lib/libstdc++.so.6", "BINARY"),
               ("libxcb-cursor.so.0", "/usr/lib/libxcb-cursor.so.0", "BINARY"),
               ("PySide6/Qt/lib/libQt6Core.so.6", "/s/libQt6Core.so.6", "BINARY")]
    kept = bundle_filter.drop_system_provided(entries, report)
    assert [e[0] for e in kept] == ["libxcb-cursor.so.0", "PySide6/Qt/lib/libQt6Core.so.6"]
    assert report.system == ["libstdc++.so.6"]
    assert build.known_system_libs()["libstdc++.so.6"] == "libstdc++6"


def test_dangling_symlinks_dropped() -> None:
    entries = [("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
               ("libQt6Network.so.6", "PySide6/Qt/lib/libQt6Network.so.6", "SYMLINK"),
               ("resources/icons/a.png", "/x/a.png", "DATA")]
    report = bundle_filter.FilterReport()
    out = bundle_filter.drop_dangling_symlinks(entries, {"PySide6/Qt/lib/libQt6Core.so.6"}, report)
    assert [e[0] for e in out] == ["libQt6Core.so.6", "resources/icons/a.png"]
    assert report.orphans == ["libQt6Network.so.6"]


# -- build helpers -----------------------------------------------------------------------------------
def test_project_runtime_deps_have_no_training_packages() -> None:
    project = build.read_project()
    names = {d.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for d in project.runtime_deps}
    assert {"onnxruntime", "pyside6-essentials", "pyqtgraph", "numpy", "pillow", "platformdirs"} <= names
    assert not names & {"torch", "torchvision", "scipy", "scikit-learn", "open-clip-torch"}


def test_constraints_pin_every_runtime_dep() -> None:
    pins = {ln.split("==")[0].strip().lower() for ln in (PACKAGING / "constraints.txt").read_text().splitlines()
            if "==" in ln and not ln.startswith("#")}
    for dep in build.read_project().runtime_deps:
        name = dep.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        assert name in pins, f"{name} is not pinned in packaging/constraints.txt"


def test_desktop_entry_is_well_formed() -> None:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(build.DESKTOP_ENTRY)
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "carvalue %F"
    assert entry["Icon"] == "carvalue"
    assert entry["Categories"].endswith(";") and entry["MimeType"].endswith(";")


def test_desktop_entry_passes_desktop_file_validate(tmp_path: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("needs desktop-file-validate (apt-get install desktop-file-utils)")
    path = tmp_path / "carvalue.desktop"
    path.write_text(build.DESKTOP_ENTRY)
    res = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_deb_control_fields() -> None:
    project = build.Project(version="1.2.3", runtime_deps=(), package_deps=(), description="Estimate cars.")
    text = build.deb_control(project, "amd64", 12345, ["libgl1", "libxcb1"])
    fields = dict(line.split(": ", 1) for line in text.splitlines() if line and not line.startswith(" "))
    assert fields["Package"] == "carvalue" and fields["Version"] == "1.2.3"
    assert fields["Architecture"] == "amd64" and fields["Installed-Size"] == "12345"
    assert fields["Depends"].startswith("libc6 (>= ") and "libgl1" in fields["Depends"]
    assert "fontconfig-config" in fields["Depends"]
    assert text.endswith("\n")


def test_normalise_permissions(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "data.txt"
    f.write_text("x")
    f.chmod(0o600)
    elf = tmp_path / "d" / "lib.so"
    elf.write_bytes(b"\x7fELF" + b"\0" * 16)
    elf.chmod(0o600)
    (tmp_path / "d").chmod(0o700)
    build.normalise_permissions(tmp_path)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert f.stat().st_mode & 0o777 == 0o644
    assert elf.stat().st_mode & 0o777 == 0o755


def test_stage_deb_layout(tmp_path: Path) -> None:
    app = tmp_path / "CarValue"
    (app / "_internal").mkdir(parents=True)
    (app / "CarValue").write_bytes(b"\x7fELF" + b"\0" * 16)
    project = build.Project(version="0.0.1", runtime_deps=(), package_deps=(), description="x")
    stage = build.stage_deb(app, project, ["libgl1"], tmp_path / "stage")
    assert (stage / "opt/carvalue/CarValue").stat().st_mode & 0o777 == 0o755
    assert os.readlink(stage / "usr/bin/carvalue") == "/opt/carvalue/CarValue"
    assert (stage / "usr/share/applications/carvalue.desktop").is_file()
    for size in build.ICON_SIZES:
        assert (stage / f"usr/share/icons/hicolor/{size}x{size}/apps/carvalue.png").is_file()
    assert (stage / "usr/share/icons/hicolor/scalable/apps/carvalue.svg").is_file()
    assert "Installed-Size:" in (stage / "DEBIAN/control").read_text()


# -- assets ----------------------------------------------------------------------------------------
def test_icon_svg_and_pngs_match_sizes() -> None:
    root = ET.fromstring(make_assets.icon_svg())
    assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 256 256"
    from PIL import Image

    for size in make_assets.ICON_SIZES:
        with Image.open(REPO / "resources" / "icons" / f"carvalue-{size}.png") as im:
            assert im.size == (size, size) and im.mode == "RGBA"
    assert (REPO / "resources" / "icons" / "carvalue.svg").read_text() == make_assets.icon_svg()


def test_sample_photo_is_ours_and_documented() -> None:
    from PIL import Image

    with Image.open(SAMPLE) as im:
        assert im.format == "JPEG" and im.size == (800, 500)
    readme = (REPO / "resources" / "samples" / "README.md").read_text()
    assert SAMPLE.name in readme and "make_assets.py" in readme and "licence" in readme


# -- the real thing (slow) ------------------------------------------------------------------------
def _minimal_env(home: Path) -> dict[str, str]:
    """What a desktop session gives a program: no PYTHON*, no venv on PATH."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "CARVALUE_CONFIG_DIR": str(home / "config"), "CARVALUE_CACHE_DIR": str(home / "cache")}


@pytest.mark.slow
def test_build_install_and_run_from_deb(model_file: Path, tmp_path: Path) -> None:
    """Build the onedir + .deb (uncompressed, to save ~4 min of xz), install it with dpkg -x
    into a temporary root, run --self-test and the GUI (offscreen; and on X11 under Xvfb when
    xvfb-run is installed) from there."""
    for tool, package in (("dpkg-deb", "dpkg"), ("strip", "binutils"), ("readelf", "binutils")):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (apt-get install {package})")
    dist, work = tmp_path / "dist", tmp_path / "work"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), "--model", str(model_file), "--dist", str(dist),
         "--work", str(work), "--deb-compression", "none", "--no-tarball"],
        cwd=REPO, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("\n{") + 1:])
    build_s = time.perf_counter() - t0
    assert summary["onedir_bytes"] <= 230e6, f"dist/CarValue is {summary['onedir_bytes'] / 1e6:.1f} MB"
    assert summary["self_test"]["frozen"] is True

    deb = Path(summary["deb"])
    info = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Depends"], capture_output=True,
                          text=True, check=True).stdout
    assert "Package: carvalue" in info and "libc6" in info
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    exe_line = next(ln for ln in listing.splitlines() if ln.endswith("./opt/carvalue/CarValue"))
    assert exe_line.startswith("-rwxr-xr-x root/root")

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    exe = root / "opt/carvalue/CarValue"
    assert os.readlink(root / "usr/bin/carvalue") == "/opt/carvalue/CarValue"
    desktop = (root / "usr/share/applications/carvalue.desktop").read_text()
    assert "Exec=carvalue %F" in desktop and "Icon=carvalue" in desktop
    assert (root / "usr/share/icons/hicolor/256x256/apps/carvalue.png").is_file()
    assert not (root / "opt/carvalue/_internal/torch").exists()

    home = tmp_path / "home"
    home.mkdir()
    st = subprocess.run([str(exe), "--self-test", "--json"], env=_minimal_env(home), capture_output=True,
                        text=True, timeout=120, check=False)
    assert st.returncode == 0, st.stdout + st.stderr
    result = json.loads(st.stdout.strip().splitlines()[-1])
    assert result["status"] == "ok" and result["frozen"] is True
    assert Path(result["model"]).is_relative_to(root / "opt/carvalue")
    assert result["python_outside_bundle"] == []  # runs on its own interpreter
    assert not (home / ".cache" / "Microsoft").exists()  # no onnxruntime telemetry store
    pillow_heif = pytest.importorskip("pillow_heif")  # the bundle must carry the HEIC decoder
    heic = tmp_path / "phone.heic"
    with Image.open(SAMPLE) as im:
        pillow_heif.from_pillow(im.convert("RGB")).save(heic, quality=90)
    hs = subprocess.run([str(exe), "--self-test", "--json", "--photo", str(heic)], env=_minimal_env(home),
                        capture_output=True, text=True, timeout=120, check=False)
    assert hs.returncode == 0, hs.stdout + hs.stderr
    assert json.loads(hs.stdout.strip().splitlines()[-1])["photo"] == str(heic)

    gui_env = dict(_minimal_env(home), QT_QPA_PLATFORM="offscreen", CARVALUE_STARTUP_PROBE="prediction",
                   CARVALUE_STARTUP_PROBE_TIMEOUT="90")
    gui = subprocess.run([str(exe), str(SAMPLE)], env=gui_env, capture_output=True, text=True, timeout=150,
                         check=False)
    assert gui.returncode == 0, gui.stdout + gui.stderr
    line = next(ln for ln in gui.stdout.splitlines() if ln.startswith("CARVALUE_STARTUP_PROBE "))
    facts = json.loads(line.split(" ", 1)[1])
    assert facts["event"] == "prediction" and facts["frozen"] is True
    if shutil.which("xvfb-run"):  # the X11 (xcb) platform plugin and the bundled xcb libraries
        x_env = dict(_minimal_env(home), QT_QPA_PLATFORM="xcb", CARVALUE_STARTUP_PROBE="window",
                     CARVALUE_STARTUP_PROBE_TIMEOUT="60")
        xr = subprocess.run(["xvfb-run", "-a", str(exe)], env=x_env, capture_output=True, text=True,
                            timeout=120, check=False)
        assert xr.returncode == 0, xr.stdout + xr.stderr
        assert '"event": "window"' in xr.stdout
    print(f"\nslow packaging test: build {build_s:.0f} s, total {time.perf_counter() - t0:.0f} s")
