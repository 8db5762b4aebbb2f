"""Build CarValue's installers: one command from a fresh checkout.

    python3 packaging/build.py            # -> dist/CarValue/, dist/carvalue_<v>_<arch>.deb,
                                          #    dist/CarValue-<v>-linux-<machine>.tar.gz

Steps: (1) make or reuse a clean venv (build/pkg-venv) holding only the app's runtime
dependencies from pyproject.toml, pinned by packaging/constraints.txt, plus PyInstaller, and
refuse to go on if a training-side package (torch, scipy, ...) is in it; (2) PyInstaller onedir
from packaging/carvalue.spec; (3) strip debug info from the Python interpreter's own libraries
only (never strip=True: that broke numpy); (4) check the bundle (no training packages, no
dangling links, every needed system library is one the .deb depends on) and run its
``--self-test``; (5) the .deb (dpkg-deb) and the .tar.gz.  Prints a JSON summary last.

Runs on Linux; Windows/macOS use packaging/windows and packaging/macos (see README.md).
"""
# Over 400 lines: one stdlib-only script the system python3 runs from a fresh checkout

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
DIST = REPO / "dist"
BUILD = REPO / "build"
APP_NAME = "CarValue"
PACKAGE_NAME = "carvalue"
INSTALL_DIR = Path("/opt/carvalue")
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

# Packages that must never be in the build venv (training side; they would bloat the bundle).
FORBIDDEN_PACKAGES = frozenset({"torch", "torchvision", "scipy", "scikit-learn", "open-clip-torch",
                                "matplotlib", "onnx", "pandas", "tensorflow"})
# Top-level folders that must never be in the bundle.
FORBIDDEN_IN_BUNDLE = ("torch", "torchvision", "scipy", "sklearn", "open_clip", "matplotlib",
                       "training", "tests", "onnx")

# System libraries the bundle may need but does not carry, and the Debian package of each.
# Anything else a bundled ELF needs must be inside the bundle (checked after the build).
GLIBC_SONAMES = frozenset({"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                           "libutil.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
                           "libresolv.so.2", "libanl.so.1"})
# PyInstaller never bundles these (its own list: the GL stack and libxcb must match the system's
# graphics drivers; see PyInstaller/depend/dylib.py).
SYSTEM_LIB_PACKAGES: dict[str, str] = {
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libGLESv2.so.2": "libgles2",
    "libxcb.so.1": "libxcb1",
    "libdrm.so.2": "libdrm2",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libcrypt.so.1": "libcrypt1",
}
# Not linked but read at run time: fontconfig's configuration (the bundled libfontconfig reads
# /etc/fonts), which itself pulls in a font.
EXTRA_DEPENDS = ("fontconfig-config",)

DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Version=1.4
Name=CarValue
GenericName=Used-car price estimator
Comment=Estimate what a used car is worth from a photo, offline
Exec=carvalue %F
TryExec=carvalue
Icon=carvalue
Terminal=false
Categories=Graphics;Viewer;
MimeType=image/jpeg;image/png;image/webp;image/bmp;image/gif;image/tiff;
Keywords=car;price;valuation;photo;
StartupWMClass=CarValue
"""


class BuildError(Exception):
    """A build step failed; the message says which and why."""


@dataclass(frozen=True)
class Project:
    version: str
    runtime_deps: tuple[str, ...]
    package_deps: tuple[str, ...]
    description: str


def read_project(pyproject: Path = REPO / "pyproject.toml") -> Project:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    proj = data["project"]
    return Project(
        version=str(proj["version"]),
        runtime_deps=tuple(proj["dependencies"]),
        package_deps=tuple(proj.get("optional-dependencies", {}).get("package", ("pyinstaller>=6.6",))),
        description=str(proj.get("description", "")),
    )


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


@functools.cache
def _load_bundle_filter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carvalue_bundle_filter", PACKAGING / "bundle_filter.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("carvalue_bundle_filter", mod)
    spec.loader.exec_module(mod)
    return mod


def known_system_libs() -> dict[str, str]:
    """Sonames the bundle expects from the system -> Debian dependency."""
    return {**SYSTEM_LIB_PACKAGES, **_load_bundle_filter().SYSTEM_PROVIDED}


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> None:
    log(" ".join(cmd))
    proc = subprocess.run(cmd, env=env, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise BuildError(f"command failed with exit code {proc.returncode}: {' '.join(cmd)}")


# -- 1. the clean venv ----------------------------------------------------------------------
def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(venv: Path, project: Project, constraints: Path, base_python: str) -> Path:
    """Create ``venv`` (if needed) and install exactly the runtime deps + PyInstaller."""
    reqs = [*project.runtime_deps, *project.package_deps]
    stamp_text = json.dumps({"reqs": reqs, "constraints": constraints.read_text(encoding="utf-8"),
                             "python": base_python}, sort_keys=True)
    stamp = venv / ".carvalue-build-deps"
    py = venv_python(venv)
    if py.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == stamp_text:
        log(f"reusing {venv} (dependencies unchanged)")
    else:
        if venv.exists():
            log(f"recreating {venv}")
            shutil.rmtree(venv)
        run([base_python, "-m", "venv", str(venv)])
        run([str(py), "-m", "pip", "install", "--no-input", "--quiet", "-c", str(constraints), *reqs])
        stamp.write_text(stamp_text, encoding="utf-8")
    check_venv(py)
    return py


def installed_packages(py: Path) -> dict[str, str]:
    res = subprocess.run([str(py), "-m", "pip", "list", "--format", "json"], capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise BuildError(f"cannot list the build venv's packages ({res.stderr.strip()[-300:]})")
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(res.stdout)}


def check_venv(py: Path) -> None:
    pkgs = installed_packages(py)
    bad = sorted(FORBIDDEN_PACKAGES & pkgs.keys())
    if bad:
        raise BuildError(f"the build venv holds training-side packages {bad}; delete {py.parent.parent} "
                         "and run again")
    probe = "from PyInstaller.depend.bindepend import get_python_library_path as g; print(g() or '')"
    res = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=False)
    if res.returncode != 0 or not res.stdout.strip():
        raise BuildError(f"PyInstaller finds no shared libpython for {py} ({res.stderr.strip()[-300:]}); "
                         "Debian/Ubuntu: apt-get install libpython3-dev (or libpython3.X); pyenv: "
                         "PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.11")


# -- 2. PyInstaller -------------------------------------------------------------------------
def pyinstaller(py: Path, model: Path, workpath: Path, dist: Path, wayland: bool) -> Path:
    env = dict(os.environ)
    env["CARVALUE_BUNDLE_MODEL"] = str(model)
    env["CARVALUE_WAYLAND"] = "1" if wayland else "0"
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
        env.pop(var, None)
    run([str(py), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(workpath), str(PACKAGING / "carvalue.spec")], env=env)
    out = dist / APP_NAME
    if not (out / APP_NAME).exists():
        raise BuildError(f"PyInstaller finished but {out / APP_NAME} is missing")
    return out


# -- 3. strip the interpreter's debug info ----------------------------------------------------
def interpreter_binaries(app_dir: Path) -> list[Path]:
    """libpython and the standard library's extension modules: built with the interpreter
    (a pyenv build keeps full debug info in them: 23 MB of 27 for libpython)."""
    internal = app_dir / "_internal"
    found = [p for p in internal.glob("libpython3*.so*") if p.is_file() and not p.is_symlink()]
    found += sorted(internal.glob("python3*/lib-dynload/*.so"))
    return found


def has_debug_info(path: Path) -> bool:
    """True if the ELF file has a .debug_info section (read with readelf, from binutils like strip)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        raise BuildError("`readelf` not found: apt-get install binutils")
    out = subprocess.run([readelf, "-S", "-W", str(path)], capture_output=True, text=True, check=False).stdout
    return ".debug_info" in out


def strip_interpreter_debug_info(app_dir: Path) -> int:
    """``strip --strip-debug`` on interpreter binaries that carry debug info; returns bytes saved."""
    strip = shutil.which("strip")
    if strip is None:
        raise BuildError("`strip` not found: apt-get install binutils (without it ~23 MB of the "
                         "interpreter's debug info stays in the bundle and it exceeds its size budget)")
    saved = 0
    for path in interpreter_binaries(app_dir):
        if not has_debug_info(path):
            continue
        before = path.stat().st_size
        res = subprocess.run([strip, "--strip-debug", str(path)], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise BuildError(f"strip --strip-debug {path} failed: {res.stderr.strip()}")
        saved += before - path.stat().st_size
    log(f"stripped debug info from the interpreter's libraries: {saved / 1e6:.1f} MB saved")
    return saved


# -- 4. checks --------------------------------------------------------------------------------
def dir_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def elf_files(root: Path) -> list[Path]:
    out = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with p.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def needed_sonames(path: Path) -> list[str]:
    return list(_load_bundle_filter().elf_needed(str(path)))


def external_sonames(app_dir: Path) -> dict[str, list[str]]:
    """Sonames some bundled ELF file needs that the bundle does not contain -> who needs them."""
    present = {p.name for p in app_dir.rglob("*")}
    missing: dict[str, list[str]] = {}
    for elf in elf_files(app_dir):
        for name in needed_sonames(elf):
            if name not in present:
                missing.setdefault(name, []).append(str(elf.relative_to(app_dir)))
    return missing


def check_bundle(app_dir: Path) -> list[str]:
    """Fail on training packages, dangling links, or system libraries the .deb does not provide.
    Returns the Debian packages those system libraries come from."""
    internal = app_dir / "_internal"
    bad = [name for name in FORBIDDEN_IN_BUNDLE if (internal / name).exists()]
    if bad:
        raise BuildError(f"the bundle contains {bad}: a training-side package leaked into the app")
    dangling = [str(p.relative_to(app_dir)) for p in app_dir.rglob("*") if p.is_symlink() and not p.exists()]
    if dangling:
        raise BuildError(f"dangling links in the bundle: {dangling[:10]}")
    unknown = {}
    depends = set()
    system = known_system_libs()
    for name, users in external_sonames(app_dir).items():
        if name in GLIBC_SONAMES:
            continue
        if name in system:
            depends.add(system[name])
        else:
            unknown[name] = users[:3]
    if unknown:
        raise BuildError("bundled files need system libraries that are neither bundled nor known "
                         f"dependencies of the .deb: {unknown}; install them on the build machine "
                         "(PyInstaller then bundles them) or add them to SYSTEM_LIB_PACKAGES")
    return sorted(depends)


def self_test(app_dir: Path, work: Path) -> dict[str, object]:
    """Run the built app's --self-test with no Python environment variables; returns its JSON."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8",
           "CARVALUE_CONFIG_DIR": str(work / "selftest-config"),
           "CARVALUE_CACHE_DIR": str(work / "selftest-cache")}
    proc = subprocess.run([str(app_dir / APP_NAME), "--self-test", "--json"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise BuildError(f"the built app's --self-test failed (exit {proc.returncode}):\n"
                         f"{proc.stdout}\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"self-test ok: median {result['median_price']} {result['currency']}, {result['make_model']}")
    return result


# -- 5. installers ----------------------------------------------------------------------------
def deb_arch() -> str:
    if shutil.which("dpkg"):
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def glibc_version() -> str:
    return os.confstr("CS_GNU_LIBC_VERSION").split()[-1]  # type: ignore[union-attr]


def deb_control(project: Project, arch: str, installed_kib: int, depends: list[str]) -> str:
    deps = [f"libc6 (>= {glibc_version()})", *depends, *EXTRA_DEPENDS]
    return (
        f"Package: {PACKAGE_NAME}\n"
        f"Version: {project.version}\n"
        f"Architecture: {arch}\n"
        "Maintainer: CarValue developers <carvalue@example.org>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(deps)}\n"
        "Recommends: fonts-dejavu-core\n"
        "Section: graphics\n"
        "Priority: optional\n"
        "Homepage: https://example.org/carvalue\n"
        f"Description: {project.description.rstrip('.')}\n"
        " CarValue estimates a used car's price, make/model and model year from a photo,\n"
        " offline, with a bundled model on ONNX Runtime. Self-contained: it needs no\n"
        " Python installation. Run `carvalue --self-test` to check an installation.\n"
    )


def copyright_text() -> str:
    return ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            "Upstream-Name: CarValue\n\n"
            "Files: *\nCopyright: CarValue developers\nLicense: MIT\n"
            "Comment: The bundled third-party libraries (Qt/PySide6: LGPL-3.0; ONNX Runtime: MIT;\n"
            " NumPy, Pillow, pyqtgraph, platformdirs: BSD/MIT-style; pi-heif: BSD-3-Clause, with\n"
            " libheif and libde265: LGPL-3.0; CPython: PSF) keep their own\n"
            " licences; see /opt/carvalue/_internal/*.dist-info. The bundled model's data licence\n"
            " is described in the model card, if shipped.\n")


def normalise_permissions(root: Path) -> None:
    """Folders 0755; executables and shared libraries 0755; everything else 0644."""
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(0o755)
            continue
        mode = p.stat().st_mode
        with p.open("rb") as f:
            is_elf = f.read(4) == b"\x7fELF"
        exe = bool(mode & stat.S_IXUSR) or is_elf
        p.chmod(0o755 if exe else 0o644)


def stage_deb(app_dir: Path, project: Project, depends: list[str], stage: Path) -> Path:
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / INSTALL_DIR.relative_to("/")
    shutil.copytree(app_dir, opt, symlinks=True)
    bindir = stage / "usr" / "bin"
    bindir.mkdir(parents=True)
    (bindir / PACKAGE_NAME).symlink_to(INSTALL_DIR / APP_NAME)
    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / f"{PACKAGE_NAME}.desktop").write_text(DESKTOP_ENTRY, encoding="utf-8")
    icons = REPO / "resources" / "icons"
    hicolor = stage / "usr" / "share" / "icons" / "hicolor"
    for size in ICON_SIZES:
        d = hicolor / f"{size}x{size}" / "apps"
        d.mkdir(parents=True)
        shutil.copy2(icons / f"carvalue-{size}.png", d / f"{PACKAGE_NAME}.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copy2(icons / "carvalue.svg", hicolor / "scalable" / "apps" / f"{PACKAGE_NAME}.svg")
    doc = stage / "usr" / "share" / "doc" / PACKAGE_NAME
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(copyright_text(), encoding="utf-8")
    normalise_permissions(stage)
    installed_kib = (dir_size(stage) + 1023) // 1024
    debian = stage / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(deb_control(project, deb_arch(), installed_kib, depends), encoding="utf-8")
    normalise_permissions(debian)
    return stage


DEB_COMPRESSION = {"xz": ["-Zxz", "-z9"], "gzip": ["-Zgzip", "-z1"], "none": ["-Znone"]}


def build_deb(stage: Path, out: Path, compression: str = "xz") -> Path:
    """dpkg-deb with root ownership.  ``xz`` for releases (about 4-5 minutes on 2 busy cores);
    ``gzip``/``none`` only to test the package layout quickly."""
    if shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb not found (apt-get install dpkg) — needed for the .deb")
    out.unlink(missing_ok=True)
    run(["dpkg-deb", "--root-owner-group", *DEB_COMPRESSION[compression], "--build", str(stage), str(out)])
    return out


def build_tarball(app_dir: Path, out: Path, work: Path) -> Path:
    """``CarValue/`` as a .tar.gz, owned by root, with the icon and .desktop entry beside it."""
    out.unlink(missing_ok=True)

    def owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if not info.issym():
            info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
        return info

    extras = work / "tar-extras"
    if extras.exists():
        shutil.rmtree(extras)
    extras.mkdir(parents=True)
    (extras / f"{PACKAGE_NAME}.desktop").write_text(
        DESKTOP_ENTRY.replace("Exec=carvalue %F", f"Exec={INSTALL_DIR}/{APP_NAME} %F")
        .replace("TryExec=carvalue", f"TryExec={INSTALL_DIR}/{APP_NAME}"), encoding="utf-8")
    shutil.copy2(REPO / "resources" / "icons" / "carvalue-256.png", extras / f"{PACKAGE_NAME}.png")
    with tarfile.open(out, "w:gz", compresslevel=9) as tar:
        tar.add(app_dir, arcname=APP_NAME, filter=owner)
        for f in sorted(extras.iterdir()):
            tar.add(f, arcname=f"{APP_NAME}/share/{f.name}", filter=owner)
    return out


# -- driver -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build dist/CarValue/ and the Linux installers.")
    ap.add_argument("--venv", type=Path, default=BUILD / "pkg-venv", help="build venv (default build/pkg-venv)")
    ap.add_argument("--dist", type=Path, default=DIST, help="output folder (default dist/)")
    ap.add_argument("--work", type=Path, default=BUILD, help="scratch folder (default build/)")
    ap.add_argument("--python", default=sys.executable, help="Python that creates the venv (3.11+, shared lib)")
    ap.add_argument("--model", type=Path, default=REPO / "resources" / "models" / "carvalue.onnx",
                    help="model file to bundle (default: resources/models/carvalue.onnx)")
    ap.add_argument("--wayland", action="store_true", help="also bundle Qt's native Wayland plugin (untested)")
    ap.add_argument("--onedir-only", action="store_true", help="stop after dist/CarValue/ (no .deb/.tar.gz)")
    ap.add_argument("--no-self-test", action="store_true", help="skip running the built app's --self-test")
    ap.add_argument("--no-tarball", action="store_true", help="build the .deb but not the .tar.gz")
    ap.add_argument("--deb-compression", choices=sorted(DEB_COMPRESSION), default="xz",
                    help="xz (default, releases) or gzip/none (quick layout tests)")
    args = ap.parse_args(argv)

    if sys.platform != "linux":
        print("build.py builds the Linux installers; see packaging/README.md for Windows and macOS",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        if not args.model.is_file():
            raise BuildError(f"no model file at {args.model}: train and export one first, or pass --model")
        project = read_project()
        base_python = str(Path(getattr(sys, "_base_executable", args.python))) if args.python == sys.executable \
            else args.python
        py = ensure_venv(args.venv.resolve(), project, PACKAGING / "constraints.txt", base_python)
        t_venv = time.perf_counter()
        dist, work = args.dist.resolve(), args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        app_dir = pyinstaller(py, args.model.resolve(), work / "pyinstaller", dist, args.wayland)
        t_pyi = time.perf_counter()
        strip_interpreter_debug_info(app_dir)
        # e.g. a model file written through mkstemp is 0600: unreadable for users once root installs it
        normalise_permissions(app_dir)
        depends = check_bundle(app_dir)
        summary: dict[str, object] = {
            "version": project.version,
            "onedir": str(app_dir), "onedir_bytes": dir_size(app_dir),
            "venv_s": round(t_venv - t0, 1), "pyinstaller_s": round(t_pyi - t_venv, 1),
        }
        if not args.no_self_test:
            summary["self_test"] = self_test(app_dir, work)
        if not args.onedir_only:
            arch = deb_arch()
            stage = stage_deb(app_dir, project, depends, work / "deb-root")
            t_deb = time.perf_counter()
            deb = build_deb(stage, dist / f"{PACKAGE_NAME}_{project.version}_{arch}.deb", args.deb_compression)
            summary.update({"deb": str(deb), "deb_bytes": deb.stat().st_size, "deb_depends": depends,
                            "deb_compression": args.deb_compression,
                            "deb_s": round(time.perf_counter() - t_deb, 1)})
            if not args.no_tarball:
                t_tar = time.perf_counter()
                tgz = build_tarball(app_dir, dist / f"{APP_NAME}-{project.version}-linux-{platform.machine()}.tar.gz",
                                    work)
                summary.update({"tar_gz": str(tgz), "tar_gz_bytes": tgz.stat().st_size,
                                "tar_gz_s": round(time.perf_counter() - t_tar, 1)})
        summary["total_s"] = round(time.perf_counter() - t0, 1)
    except BuildError as e:
        print(f"build FAILED: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
