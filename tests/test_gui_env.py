"""The Qt binding must not leak references to None/True/False (PySide6 6.12.0 does under
Python 3.11: every void call drops one reference to None and the app aborts with
"none_dealloc" after a few seconds of painting)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None/True/False are immortal from 3.12")
def test_void_qt_calls_keep_none_and_bools_alive(qapp: object) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    img = QImage(16, 16, QImage.Format.Format_RGB32)
    painter = QPainter(img)
    pen = QPen(QColor(1, 2, 3))
    p1, p2 = QPointF(0, 0), QPointF(5, 5)
    before = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
    for _ in range(500):
        painter.setPen(pen)
        painter.drawLine(p1, p2)
        img.isNull()
    after = (sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
    painter.end()
    # A few references may come and go through the interpreter; a leak loses ~1000.
    assert all(abs(a - b) < 50 for a, b in zip(after, before, strict=True)), (before, after)
