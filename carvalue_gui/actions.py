"""The one way the app makes a menu/toolbar action that runs a slot."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence


def action(parent: QObject, text: str, slot: Callable[[], object],
           shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None, tip: str = "") -> QAction:
    """A QAction calling ``slot()`` with no argument: ``triggered`` passes its ``checked`` flag,
    which a slot with a defaulted first parameter would take for its argument."""
    a = QAction(text, parent)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setToolTip(tip)
    a.triggered.connect(lambda _checked=False: slot())
    return a
