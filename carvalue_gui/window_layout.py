"""The window's frame: its menus and toolbar, where it opens and how it is split (restored from
the settings, fitted to the screen it opens on, and stored back when it closes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import QByteArray, QRect, QSize
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QMainWindow, QMenu, QSpinBox, QSplitter

from carvalue_gui.settings import Settings
from core.pricing import current_year

DEFAULT_SIZE = (1360, 860)  # a first start's window, less where the screen's free area is smaller
# Room kept around the window for the window manager's frame and title bar: they are not part of
# the size asked for and are not known before the window is first shown.
FRAME_ROOM = (16, 48)


def fitted_geometry(size: QSize, free: QRect) -> QRect:
    """``size``, shrunk to fit ``free`` (a screen's available geometry) with its frame, centred
    in it: a 1360x860 window on a 1280x800 screen would hide the price panel off the edge."""
    w = min(size.width(), free.width() - FRAME_ROOM[0])
    h = min(size.height(), free.height() - FRAME_ROOM[1])
    rect = QRect(0, 0, w, h)
    rect.moveCenter(free.center())
    return rect


def restore_layout(window: QMainWindow, s: Settings, splits: dict[str, QSplitter], year: QSpinBox) -> None:
    restored = bool(s.geometry) and window.restoreGeometry(QByteArray.fromBase64(s.geometry.encode()))
    screen = QGuiApplication.screenAt(window.geometry().center()) or window.screen()
    free = screen.availableGeometry()
    if not restored:  # a first start: the default size, or less on a small screen
        window.setGeometry(fitted_geometry(QSize(*DEFAULT_SIZE), free))
    elif (not (window.isMaximized() or window.isFullScreen())
          and fitted_geometry(window.size(), free).size() != window.size()):
        window.setGeometry(fitted_geometry(window.size(), free))  # saved on a larger screen
    if s.window_state:
        window.restoreState(QByteArray.fromBase64(s.window_state.encode()))
    if s.year_of_sale:
        year.setValue(s.year_of_sale)
    for name, split in splits.items():
        sizes = s.splitters.get(name)
        if sizes and len(sizes) == split.count():
            split.setSizes(sizes)


def store_layout(window: QMainWindow, s: Settings, splits: dict[str, QSplitter], year: QSpinBox) -> None:
    s.geometry = bytes(window.saveGeometry().toBase64().data()).decode()
    s.window_state = bytes(window.saveState().toBase64().data()).decode()
    s.splitters = {name: split.sizes() for name, split in splits.items()}
    s.year_of_sale = 0 if year.value() == current_year() else year.value()


def add_menus(window: QMainWindow, menus: Mapping[str, Sequence[QAction | QMenu | None]],
              toolbar: Sequence[QAction]) -> None:
    """The menu bar (None: a separator) and the main toolbar."""
    for title, items in menus.items():
        menu = window.menuBar().addMenu(title)
        for item in items:
            if item is None:
                menu.addSeparator()
            elif isinstance(item, QAction):
                menu.addAction(item)
            else:
                menu.addMenu(item)
    bar = window.addToolBar("Main")
    bar.setObjectName("main_toolbar")
    for a in toolbar:
        bar.addAction(a)
