"""What leaves the window: File > Export predictions (CSV or JSON), File > Save charts as PNG and
Edit > Copy result as text. Every price written is the photo session's (each photo priced with
its own inputs), so an export says what the window and the list say.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QRect, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPainter,
    QPixmap,
)
from PySide6.QtWidgets import QFileDialog, QStatusBar, QWidget

from carvalue_gui.actions import action
from carvalue_gui.export import write_csv, write_json
from carvalue_gui.notices import NoticeArea
from carvalue_gui.photo_session import PhotoSession
from carvalue_gui.result_panel import ResultPanel
from carvalue_gui.sweep_plot import SweepPlot
from core.money import format_dollars
from core.report import prediction_text


class ResultExport(QObject):
    def __init__(self, parent: QWidget, session: PhotoSession, panel: ResultPanel, sweep_plot: SweepPlot,
                 notices: NoticeArea, status_bar: QStatusBar, start_dir: Callable[[], str]) -> None:
        super().__init__(parent)
        self.parent_widget, self.session, self.panel, self.sweep_plot = parent, session, panel, sweep_plot
        self.notices, self.status_bar, self.start_dir = notices, status_bar, start_dir

        self.act_export = action(parent, "&Export predictions…", self.ask_export, "Ctrl+E")
        self.act_charts = action(parent, "Save &charts as PNG…", self.ask_save_charts)
        self.act_copy = action(parent, "&Copy result as text", self.copy_result, QKeySequence.StandardKey.Copy)

    # == writing ================================================================================
    def export_predictions(self, path: str) -> int:
        """Write every photo's predictions (and sweeps) as CSV or JSON by suffix; returns the
        number of photos written."""
        meta = self.session.meta
        if meta is None:
            raise ValueError("no model is loaded, so there are no predictions to export")
        results = self.session.priced_results()
        if path.lower().endswith(".json"):
            write_json(path, results, meta, self.session.model_path)
        else:
            write_csv(path, results, meta)
        return len(results)

    def chart_title(self) -> str:
        """What a saved chart says it shows: the photo, the crop, the estimate and the model."""
        pred, entry = self.panel.shown, self.session.current
        if pred is None or entry is None:
            return ""
        if entry.box is None:
            where = "the car found" if entry.found_box() is not None else "whole photo"
        else:
            where = "crop x={:.0f} y={:.0f} w={:.0f} h={:.0f}".format(*pred.crop.as_tuple())
        model = f" · model {self.session.meta.name}" if self.session.meta else ""
        return (f"{Path(entry.path).name} ({where}): {format_dollars(pred.median_price)}, likely "
                f"{format_dollars(pred.price_low)} – {format_dollars(pred.price_high)} · "
                f"{pred.make_models[0].label}{model}")

    def save_charts(self, path: str) -> list[str]:
        """One PNG: a title line (photo, crop, estimate, model), the price histogram and, when
        the photo has a sweep, the sweep plot below it. Returns the files written."""
        title = self.chart_title()
        if not title:
            raise ValueError("there is no estimate on screen to save")
        charts = [self.panel.chart.grab()]
        if self.session.current is not None and self.sweep_plot.sweep is not None:
            charts.append(self.sweep_plot.grab())
        image = titled_image(title, charts)
        if not image.save(path, "PNG"):
            raise OSError(f"could not write {path}")
        return [path]

    def copy_result(self) -> str:
        pred = self.panel.shown
        if pred is None:
            self.notices.add(["There is no result to copy yet"])
            return ""
        text = prediction_text(pred, self.session.meta)
        QGuiApplication.clipboard().setText(text)
        self.status_bar.showMessage("Result copied", 3000)
        return text

    # == dialogs ================================================================================
    def ask_export(self) -> None:
        if self.session.meta is None:
            self.notices.add(["Nothing to export: no model is loaded (File > Open model…)"])
            return
        if not len(self.session.photos):
            self.notices.add(["Nothing to export: open or drop some photos first"])
            return
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, "Export predictions",
                                              str(Path(self.start_dir()) / "carvalue.csv"), "CSV (*.csv);;JSON (*.json)")
        if not path:
            return
        try:
            n = self.export_predictions(path)
        except OSError as e:
            self.notices.add([f"Export failed: {path}: {e}"])
            return
        pending = self.session.batch_pending()
        extra = f" ({pending} still being estimated were left out)" if pending else ""
        self.status_bar.showMessage(f"Exported {n} photos to {path}{extra}", 8000)

    def ask_save_charts(self) -> None:
        entry = self.session.current
        stem = Path(entry.path).stem if entry is not None and entry.reloadable else "carvalue"
        what = "price chart and sweep plot" if self.sweep_plot.sweep is not None else "price chart"
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, f"Save the {what} as one PNG",
                                              str(Path(self.start_dir()) / f"{stem}-chart.png"), "PNG (*.png)")
        if not path:
            return
        try:
            written = self.save_charts(path)
        except (OSError, ValueError) as e:
            self.notices.add([f"Saving charts failed: {e}"])
            return
        self.status_bar.showMessage(f"Saved the {what} to {written[0]}", 8000)


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
