"""File > Export predictions and File > Save charts: ask where, write, say what was written
(the writing itself is the window's ``export_predictions`` / ``save_charts``)."""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import Any, Protocol, cast

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QFileDialog, QStatusBar, QWidget

from carvalue_gui.notices import NoticeArea
from carvalue_gui.sweep_plot import SweepPlot


class ExportHost(Protocol):
    """What the dialogs need of the window (carvalue_gui.main_window.MainWindow, a QWidget);
    named here so that this module does not import the window that imports it."""

    predictor: Any
    entries: Sized
    notices: NoticeArea
    sweep_plot: SweepPlot

    def start_dir(self) -> str: ...
    def export_predictions(self, path: str) -> int: ...
    def batch_pending(self) -> int: ...
    def current_entry(self) -> Any: ...
    def save_charts(self, path: str) -> list[str]: ...
    def statusBar(self) -> QStatusBar: ...  # Qt's name


class ExportDialogs:
    def __init__(self, window: ExportHost) -> None:
        self.window = window

    def ask_export(self) -> None:
        w = self.window
        if w.predictor is None:
            w.notices.add(["Nothing to export: no model is loaded (File > Open model…)"])
            return
        if not w.entries:
            w.notices.add(["Nothing to export: open or drop some photos first"])
            return
        path, _ = QFileDialog.getSaveFileName(cast(QWidget, w), "Export predictions", str(Path(w.start_dir()) / "carvalue.csv"),
                                              "CSV (*.csv);;JSON (*.json)")
        if not path:
            return
        try:
            n = w.export_predictions(path)
        except OSError as e:
            w.notices.add([f"Export failed: {path}: {e}"])
            return
        pending = w.batch_pending()
        extra = f" ({pending} still being estimated were left out)" if pending else ""
        w.statusBar().showMessage(f"Exported {n} photos to {path}{extra}", 8000)

    def ask_save_charts(self) -> None:
        w = self.window
        entry = w.current_entry()
        stem = Path(entry.path).stem if entry is not None and entry.reloadable else "carvalue"
        what = "price chart and sweep plot" if w.sweep_plot.sweep is not None else "price chart"
        path, _ = QFileDialog.getSaveFileName(cast(QWidget, w), f"Save the {what} as one PNG",
                                              str(Path(w.start_dir()) / f"{stem}-chart.png"), "PNG (*.png)")
        if not path:
            return
        try:
            written = w.save_charts(path)
        except (OSError, ValueError) as e:
            w.notices.add([f"Saving charts failed: {e}"])
            return
        w.statusBar().showMessage(f"Saved the {what} to {written[0]}", 8000)


def titled_image(title: str, pixmaps: list[QPixmap], margin: int = 8) -> QImage:
    """The pixmaps one above the other on white, under ``title`` (wrapped to their width)."""
    width = max(p.width() for p in pixmaps) + 2 * margin
    font = QFont()
    font.setPointSize(11)
    metrics = QFontMetrics(font)
    flags = int(Qt.TextFlag.TextWordWrap)
    text_rect = metrics.boundingRect(QRect(0, 0, width - 2 * margin, 10_000), flags, title)
    top = text_rect.height() + 2 * margin
    image = QImage(width, top + sum(p.height() for p in pixmaps) + margin, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setFont(font)
    painter.setPen(QColor("black"))
    painter.drawText(QRect(margin, margin, width - 2 * margin, text_rect.height()), flags, title)
    y = top
    for p in pixmaps:
        painter.drawPixmap(margin, y, p)
        y += p.height()
    painter.end()
    return image
