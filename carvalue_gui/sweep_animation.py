"""The pan-across animation: the crop box walks the sweep's positions one ``step_ms`` apart.

It only counts and times; the window shows each position (``step``) from the sweep it holds,
so the animation never needs a prediction of its own.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

SWEEP_STEP_MS = 70  # time the box rests at each sweep position


class SweepAnimation(QObject):
    step = Signal(int)  # show position i
    finished = Signal()  # the last position was shown, or the animation was stopped

    def __init__(self, parent: QObject | None = None, step_ms: int = SWEEP_STEP_MS) -> None:
        super().__init__(parent)
        self.step_ms = step_ms
        self._n = 0
        self._next = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)

    def running(self) -> bool:
        return self._timer.isActive()

    def start(self, n: int) -> None:
        """Walk positions 0..n-1 (with ``step_ms`` <= 0: straight to the last one)."""
        self._timer.stop()
        self._n, self._next = n, 0
        if n <= 0:
            self.finished.emit()
        elif self.step_ms <= 0:
            self.step.emit(n - 1)
            self.finished.emit()
        else:
            self._timer.start(self.step_ms)
            self._advance()

    def stop(self) -> None:
        """End a running animation where it is (``finished`` is emitted)."""
        if self._timer.isActive():
            self._timer.stop()
            self.finished.emit()

    def _advance(self) -> None:
        index = self._next
        self._next += 1
        if self._next >= self._n:
            self._timer.stop()
        self.step.emit(index)
        if self._next >= self._n:
            self.finished.emit()
