"""What the CarValue bundle leaves out of a PyInstaller Analysis, and why.

Used by ``carvalue.spec`` (so it must import nothing outside the standard library and
PyInstaller) and unit-tested in ``tests/test_packaging.py``.

PyInstaller's PySide6 hooks collect every plugin of each plugin category a used Qt module may
need (all platform plugins, platform themes, Wayland/EGLFS integrations, image formats ...)
plus all Qt translations, and its binary analysis then pulls in the Qt and host libraries
those plugins link against (GTK, cairo, pango, Wayland, krb5, systemd ...).  The app needs
little of that:

* platform plugins ``xcb`` (X11, and XWayland on Wayland desktops) and ``offscreen``
  (headless tests, benchmarks); optionally ``wayland`` (``include_wayland``);
* the GLX integration for xcb (pyqtgraph imports QtOpenGL);
* a few image formats and the SVG icon engine; the compose-key input context.

Everything else under ``PySide6/Qt/plugins`` and all of ``PySide6/Qt/translations`` is dropped,
then :func:`drop_system_provided` leaves a few base desktop libraries to the system (see
SYSTEM_PROVIDED), and :func:`prune_orphan_libraries` drops the shared libraries that only the
dropped files needed (an ELF DT_NEEDED closure from everything that stays).
"""

from __future__ import annotations

import os
import re
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# (dest_name, src_name, typecode): PyInstaller's TOC entry.
TocEntry = tuple[str, str, str]

QT_PREFIX = PurePosixPath("PySide6/Qt")
PYTHON_EXTENSION = re.compile(r"\.(cpython-\d+[^.]*|abi3)\.so$")
PLUGIN_DIR = QT_PREFIX / "plugins"
TRANSLATION_DIR = QT_PREFIX / "translations"
QT_LIB_DIR = QT_PREFIX / "lib"

KEEP_PLUGINS: dict[str, frozenset[str]] = {
    "platforms": frozenset({"libqxcb.so", "libqoffscreen.so"}),
    "xcbglintegrations": frozenset({"libqxcb-glx-integration.so"}),
    "imageformats": frozenset({"libqjpeg.so", "libqgif.so", "libqico.so", "libqsvg.so", "libqwebp.so"}),
    "iconengines": frozenset({"libqsvgicon.so"}),
    "platforminputcontexts": frozenset({"libcomposeplatforminputcontextplugin.so"}),
}
# Windows and macOS (untested here: the builds run on those systems; see packaging/README.md).
KEEP_PLUGINS_WINDOWS: dict[str, frozenset[str]] = {
    "platforms": frozenset({"qwindows.dll", "qoffscreen.dll"}),
    "styles": frozenset({"qmodernwindowsstyle.dll", "qwindowsvistastyle.dll"}),
    "imageformats": frozenset({"qjpeg.dll", "qgif.dll", "qico.dll", "qsvg.dll", "qwebp.dll"}),
    "iconengines": frozenset({"qsvgicon.dll"}),
}
KEEP_PLUGINS_MACOS: dict[str, frozenset[str]] = {
    "platforms": frozenset({"libqcocoa.dylib", "libqoffscreen.dylib"}),
    "styles": frozenset({"libqmacstyle.dylib"}),
    "imageformats": frozenset({"libqjpeg.dylib", "libqgif.dylib", "libqico.dylib", "libqsvg.dylib",
                               "libqwebp.dylib", "libqmacheif.dylib"}),
    "iconengines": frozenset({"libqsvgicon.dylib"}),
}
WAYLAND_PLUGINS: dict[str, frozenset[str]] = {
    "platforms": frozenset({"libqwayland.so"}),
    "wayland-shell-integration": frozenset({"libxdg-shell.so"}),
    "wayland-decoration-client": frozenset({"libbradient.so"}),
    "wayland-graphics-integration-client": frozenset({"libqt-plugin-wayland-egl.so"}),
}

# Host libraries left to the target system (soname -> Debian dependency).  PySide6's wheels
# expect exactly these from the system (run from a venv, the app uses the system's copies), so
# this is the configuration the venv tests exercise; a bundled fontconfig/freetype can disagree
# with the system's font configuration, and a bundled libstdc++ older than the system's breaks
# loading the system's Mesa GL drivers.  Every desktop Debian/Ubuntu has them.  The xcb-util
# libraries (e.g. libxcb-cursor0, which Qt >= 6.5 needs and minimal systems lack) stay bundled.
SYSTEM_PROVIDED: dict[str, str] = {
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0t64 | libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0t64 | libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libz.so.1": "zlib1g",
    "libexpat.so.1": "libexpat1",
}

# Python modules the app never imports (training side, test tools, other GUI toolkits).
EXCLUDED_MODULES: tuple[str, ...] = (
    "torch", "torchvision", "open_clip", "scipy", "sklearn", "matplotlib", "pandas", "IPython",
    "tkinter", "_tkinter", "pytest", "hypothesis", "onnx", "onnxscript", "safetensors", "h5py",
    "training", "tests",
    # No network and no interactive console in the app: ssl/_hashlib drag in OpenSSL (~5.5 MB;
    # hashlib falls back to its built-in digests), readline drags in libreadline + libtinfo.
    "ssl", "_ssl", "_hashlib", "readline",
    "PIL.ImageTk", "PIL._imagingtk", "numpy.f2py", "pydoc_data",
    # Qt bindings that nothing in the app or pyqtgraph's import graph uses:
    "PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets",
    "PySide6.QtPrintSupport", "PySide6.QtSql", "PySide6.QtDBus", "PySide6.QtDesigner",
    "PySide6.QtUiTools", "PySide6.QtHelp", "PySide6.QtXml", "PySide6.QtConcurrent",
    "PySide6.QtSvgWidgets",
    # pyqtgraph extras that pull in optional stacks
    "pyqtgraph.opengl", "pyqtgraph.examples", "pyqtgraph.jupyter", "cupy", "numba", "h5py",
)


@dataclass
class FilterReport:
    """What was dropped, for the build log."""

    plugins: list[str] = field(default_factory=list)
    translations: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    system: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"dropped {len(self.plugins)} Qt plugins, {len(self.translations)} translation files, "
                f"{len(self.system)} libraries the system provides, "
                f"{len(self.orphans)} libraries only those needed")


def drop_system_provided(entries: Iterable[TocEntry], report: FilterReport) -> list[TocEntry]:
    """Drop top-level host libraries listed in SYSTEM_PROVIDED (and links named like them)."""
    out: list[TocEntry] = []
    for e in entries:
        p = PurePosixPath(e[0].replace(os.sep, "/"))
        if len(p.parts) == 1 and p.name in SYSTEM_PROVIDED:
            report.system.append(e[0])
        else:
            out.append(e)
    return out


def keep_plugins(include_wayland: bool, platform: str = sys.platform) -> dict[str, frozenset[str]]:
    """The Qt plugins to keep, by category, for the platform being built on."""
    if platform == "win32":
        return dict(KEEP_PLUGINS_WINDOWS)
    if platform == "darwin":
        return dict(KEEP_PLUGINS_MACOS)
    keep = dict(KEEP_PLUGINS)
    if include_wayland:
        for cat, names in WAYLAND_PLUGINS.items():
            keep[cat] = keep.get(cat, frozenset()) | names
    return keep


def _is_under(dest: str, folder: PurePosixPath) -> bool:
    p = PurePosixPath(dest.replace(os.sep, "/"))
    return p.parts[: len(folder.parts)] == folder.parts and len(p.parts) > len(folder.parts)


def is_wanted(dest: str, keep: dict[str, frozenset[str]]) -> bool:
    """False for Qt plugins outside ``keep`` and for every Qt translation file."""
    p = PurePosixPath(dest.replace(os.sep, "/"))
    if _is_under(dest, TRANSLATION_DIR):
        return False
    if _is_under(dest, PLUGIN_DIR):
        rel = p.parts[len(PLUGIN_DIR.parts):]
        if len(rel) < 2:
            return True
        return rel[-1] in keep.get(rel[0], frozenset())
    return True


def drop_unwanted(entries: Iterable[TocEntry], keep: dict[str, frozenset[str]],
                  report: FilterReport) -> list[TocEntry]:
    out: list[TocEntry] = []
    for entry in entries:
        dest = entry[0]
        if is_wanted(dest, keep):
            out.append(entry)
        elif _is_under(dest, TRANSLATION_DIR):
            report.translations.append(dest)
        else:
            report.plugins.append(dest)
    return out


def is_prunable(dest: str) -> bool:
    """Libraries that are in the bundle only because something links them: host libraries
    PyInstaller copied to the top level, and Qt's own libraries.  Python extensions (top-level
    ones too, e.g. pi-heif's ``_pi_heif.cpython-311-x86_64-linux-gnu.so``, which Python loads and
    nothing links), package data and libraries that packages load themselves (e.g. onnxruntime's)
    are never pruned."""
    p = PurePosixPath(dest.replace(os.sep, "/"))
    if ".so" not in p.name or PYTHON_EXTENSION.search(p.name):
        return False
    if len(p.parts) == 1:
        return not p.name.startswith("libpython")
    return p.parent == QT_LIB_DIR


def prune_orphan_libraries(binaries: list[TocEntry], needed_of: Callable[[str], Iterable[str]],
                           report: FilterReport) -> list[TocEntry]:
    """Drop prunable libraries that no remaining binary needs (transitively).

    ``needed_of(src_path)`` returns the DT_NEEDED sonames of one ELF file.
    """
    by_name: dict[str, list[TocEntry]] = {}
    for e in binaries:
        by_name.setdefault(PurePosixPath(e[0].replace(os.sep, "/")).name, []).append(e)
    roots = [e for e in binaries if not is_prunable(e[0]) and e[2] != "SYMLINK"]
    reached: set[str] = set()
    stack = [e[1] for e in roots]
    seen_src: set[str] = set()
    while stack:
        src = stack.pop()
        if src in seen_src:
            continue
        seen_src.add(src)
        for soname in needed_of(src):
            for dep in by_name.get(soname, []):
                if dep[0] not in reached:
                    reached.add(dep[0])
                    stack.append(dep[1])
    out: list[TocEntry] = []
    for e in binaries:
        if is_prunable(e[0]) and e[0] not in reached:
            report.orphans.append(e[0])
        else:
            out.append(e)
    return out


def drop_dangling_symlinks(entries: Iterable[TocEntry], kept_dests: set[str],
                           report: FilterReport) -> list[TocEntry]:
    """Drop SYMLINK entries whose target was dropped.  PyInstaller records a symlink as
    (link dest, target dest, "SYMLINK"), e.g. ``libQt6Core.so.6 -> PySide6/Qt/lib/libQt6Core.so.6``,
    and keeps them in ``datas``."""
    norm = {d.replace(os.sep, "/") for d in kept_dests}
    out: list[TocEntry] = []
    for e in entries:
        if e[2] == "SYMLINK":
            target = PurePosixPath(e[0].replace(os.sep, "/")).parent / e[1].replace(os.sep, "/")
            if _normpath(str(target)) not in norm:
                report.orphans.append(e[0])
                continue
        out.append(e)
    return out


def _normpath(p: str) -> str:
    return os.path.normpath(p).replace(os.sep, "/")


def elf_needed(path: str) -> list[str]:
    """DT_NEEDED entries of an ELF file: its *direct* dependencies (``ldd``, which PyInstaller
    uses, lists the whole transitive closure, which would keep libraries that only a dropped
    file needed).  Empty for files that are not ELF or cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    return parse_elf_needed(data)


def parse_elf_needed(data: bytes) -> list[str]:
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return []
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None  # (offset, size)
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + phentsize > len(data):
            return []
        if is64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(end + "IIQQQQ", data, off)
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(end + "IIIII", data, off)
        if p_type == 1:  # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:  # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    entry = struct.Struct(end + ("qQ" if is64 else "iI"))
    needed: list[int] = []
    strtab_addr: int | None = None
    pos, stop = dynamic[0], min(dynamic[0] + dynamic[1], len(data))
    while pos + entry.size <= stop:
        tag, val = entry.unpack_from(data, pos)
        pos += entry.size
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            needed.append(val)
        elif tag == 5:  # DT_STRTAB
            strtab_addr = val
    if strtab_addr is None:
        return []
    strtab = next((strtab_addr - v + o for v, o, n in loads if v <= strtab_addr < v + n), None)
    if strtab is None:
        return []
    names = []
    for off in needed:
        start = strtab + off
        stop_at = data.find(b"\0", start)
        if start < len(data) and stop_at > start:
            names.append(data[start:stop_at].decode("utf-8", "replace"))
    return names
