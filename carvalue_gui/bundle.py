"""Where the shipped resources lie (PyInstaller bundle or source checkout) and the app's
desktop identity (window icon, .desktop name).  Importing this module does not import Qt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

SAMPLE_NAME = "synthetic-sedan.jpg"
DESKTOP_FILE_NAME = "carvalue"  # /usr/share/applications/carvalue.desktop (packaging/build.py)
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def resource_root() -> Path:
    """The folder holding resources/: sys._MEIPASS in the installed app, else the checkout."""
    bundle = getattr(sys, "_MEIPASS", None)
    return Path(bundle) if bundle else Path(__file__).resolve().parent.parent


def sample_photo_path() -> Path:
    return resource_root() / "resources" / "samples" / SAMPLE_NAME


def icon_paths() -> list[Path]:
    icons = resource_root() / "resources" / "icons"
    return [p for p in (icons / f"carvalue-{s}.png" for s in ICON_SIZES) if p.is_file()]


def apply_app_identity(app: QApplication) -> None:
    """Window icon from the bundled PNGs, and the .desktop name (Wayland/GNOME match windows to
    their launcher entry by it)."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for path in icon_paths():
        icon.addFile(str(path))
    if not icon.isNull():
        app.setWindowIcon(icon)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
