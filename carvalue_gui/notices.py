"""Non-modal notices (unreadable files, a model that would not load, export results).

Messages collect in a small list above the status bar; nothing blocks the window, and a folder
with a thousand bad files gives one growing list, not a thousand dialogs.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MAX_KEPT = 2000  # older messages are dropped beyond this (the count still says how many)


class NoticeArea(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("NoticeArea { background: #fff8e1; }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        row = QHBoxLayout()
        self.summary = QLabel("")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.summary, 1)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear)
        row.addWidget(dismiss)
        layout.addLayout(row)
        self.list = QListWidget()
        self.list.setMaximumHeight(90)
        self.list.setWordWrap(True)
        layout.addWidget(self.list)
        self.messages: list[str] = []
        self._count = 0
        self.hide()

    def add(self, messages: list[str], summary: str = "") -> None:
        """Show ``messages`` (one line each); ``summary`` replaces the headline when given."""
        if not messages:
            return
        self._count += len(messages)
        self.messages = (self.messages + messages)[-MAX_KEPT:]
        self.list.addItems(messages)
        while self.list.count() > MAX_KEPT:
            self.list.takeItem(0)
        self.list.scrollToBottom()
        self.summary.setText(summary or (messages[0] if self._count == 1 else
                                         f"{self._count} problems (newest last):"))
        self.list.setVisible(self._count > 1)
        self.show()

    def clear(self) -> None:
        self.messages = []
        self._count = 0
        self.list.clear()
        self.hide()
