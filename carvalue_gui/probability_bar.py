"""A thin horizontal bar showing one probability, with its percentage written on it.

QProgressBar would do, but it repaints synchronously on every ``setValue`` (each forcing the
window to paint whatever else is pending); with ten bars per result that is ten paints per
crop-box move.  This widget only schedules an update, so a result costs one paint.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget


class ProbabilityBar(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._p: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # paints every pixel itself

    @property
    def probability(self) -> float | None:
        return self._p

    def set_probability(self, p: float | None) -> None:
        """None blanks the bar (an empty row keeps its place, so the list never jumps)."""
        p = None if p is None else min(1.0, max(0.0, float(p)))
        if p != self._p:
            self._p = p
            self.update()

    def text(self) -> str:
        return "" if self._p is None else f"{self._p:.0%}"

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(120, max(16, self.fontMetrics().height() + 2))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        pal = self.palette()
        painter = QPainter(self)
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Window))
        if self._p is not None:
            frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
            painter.setPen(pal.color(QPalette.ColorRole.Mid))
            painter.setBrush(pal.color(QPalette.ColorRole.Base))
            painter.drawRect(frame)
            fill = frame.adjusted(1, 1, -1, -1)
            fill.setWidth(fill.width() * self._p)
            painter.fillRect(fill, pal.color(QPalette.ColorRole.Highlight))
            painter.setPen(pal.color(QPalette.ColorRole.Text))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.text())
        painter.end()
