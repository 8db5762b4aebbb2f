"""Pan-across results: median price (with its likely range as a band) and one make/model's
probability against the crop box's position; clicking the plot picks the nearest position."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from core.predictor import Sweep

PRICE_PEN = (40, 90, 170)
BAND_BRUSH = (40, 90, 170, 50)
PROB_PEN = (200, 110, 0)
EMPTY_TITLE = "Pan across: run Tools > Pan across to sweep the box along the photo"


class DollarAxis(pg.AxisItem):
    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [f"${v / 1000:.0f}k" if abs(v) >= 1000 else f"${v:.0f}" for v in values]


def followed_label(sweep: Sweep) -> str:
    """The make/model to follow along the sweep: the one ranked first at most positions."""
    counts = Counter(p.make_models[0].label for p in sweep.predictions)
    return counts.most_common(1)[0][0]


class SweepPlot(pg.PlotWidget):
    """``show_sweep`` draws a Sweep; ``position_clicked(index)`` when the user clicks the plot."""

    position_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w", axisItems={"left": DollarAxis("left")})
        self.setMinimumHeight(160)
        item = self.getPlotItem()
        item.setMouseEnabled(False, False)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setLabel("bottom", "crop box centre (fraction of photo width)")
        item.setLabel("left", "median price", color=f"rgb{PRICE_PEN}")
        item.showGrid(x=True, y=True, alpha=0.2)
        for axis in ("left", "bottom"):
            item.getAxis(axis).enableAutoSIPrefix(False)
        item.setTitle(EMPTY_TITLE, size="9pt")
        item.setXRange(0, 1, padding=0.03)
        item.setYRange(0, 50_000, padding=0)
        band_pen = pg.mkPen(BAND_BRUSH[:3] + (90,), width=1)
        self._low = pg.PlotCurveItem(pen=band_pen)
        self._high = pg.PlotCurveItem(pen=band_pen)
        self._band = pg.FillBetweenItem(self._low, self._high, brush=BAND_BRUSH)
        item.addItem(self._low)
        item.addItem(self._high)
        item.addItem(self._band)
        self._median = pg.PlotDataItem(pen=pg.mkPen(PRICE_PEN, width=2), symbol="o", symbolSize=7,
                                       symbolBrush=PRICE_PEN)
        item.addItem(self._median)
        # The probability gets its own axis on the right (0..1) in a second view box.
        self._prob_view = pg.ViewBox(enableMouse=False)
        item.showAxis("right")
        item.scene().addItem(self._prob_view)
        item.getAxis("right").linkToView(self._prob_view)
        item.getAxis("right").setLabel("probability", color=f"rgb{PROB_PEN}")
        item.getAxis("right").enableAutoSIPrefix(False)
        self._prob_view.setXLink(item)
        self._prob_view.setYRange(0, 1.02, padding=0)
        self._prob = pg.PlotDataItem(pen=pg.mkPen(PROB_PEN, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                     symbol="t", symbolSize=7, symbolBrush=PROB_PEN)
        self._prob_view.addItem(self._prob)
        item.vb.sigResized.connect(self._sync_views)
        self._cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((120, 120, 120), width=1,
                                                              style=pg.QtCore.Qt.PenStyle.DotLine))
        self._cursor.hide()
        item.addItem(self._cursor)
        self.scene().sigMouseClicked.connect(self._on_click)
        self.sweep: Sweep | None = None
        self.followed = ""
        self.x = np.zeros(0)
        self.medians = np.zeros(0)
        self.probabilities = np.zeros(0)

    def _sync_views(self) -> None:
        self._prob_view.setGeometry(self.getPlotItem().vb.sceneBoundingRect())
        self._prob_view.linkedViewChanged(self.getPlotItem().vb, self._prob_view.XAxis)

    def show_sweep(self, sweep: Sweep | None) -> None:
        self.sweep = sweep
        item = self.getPlotItem()
        if sweep is None or not sweep.predictions:
            self.x = self.medians = self.probabilities = np.zeros(0)
            for curve in (self._low, self._high, self._median, self._prob):
                curve.setData([], [])
            self._cursor.hide()
            self.followed = ""
            self.setToolTip("")
            item.setTitle(EMPTY_TITLE, size="9pt")
            item.setXRange(0, 1, padding=0.03)
            item.setYRange(0, 50_000, padding=0)
            return
        preds = sweep.predictions
        self.x = np.array(sweep.positions)
        self.medians = np.array([p.median_price for p in preds])
        self._low.setData(self.x, [p.price_low for p in preds])
        self._high.setData(self.x, [p.price_high for p in preds])
        self._median.setData(self.x, self.medians)
        self.followed = followed_label(sweep)
        self.probabilities = sweep.probabilities_of(self.followed)
        self._prob.setData(self.x, self.probabilities)
        blue, orange = (f"rgb{PRICE_PEN}", f"rgb{PROB_PEN}")
        item.setTitle(f"<span style='color:{blue}'>● median price (band: likely range)</span> &nbsp; "
                      f"<span style='color:{orange}'>▲ P({_html(_elide(self.followed, 34))})</span>",
                      size="9pt")
        self.setToolTip(f"Orange: probability of {self.followed}. Click a point to move the box there.")
        values = [v for p in preds for v in (p.price_low, p.median_price, p.price_high)]
        lo, hi = min(values), max(values)
        item.setXRange(0, 1, padding=0.03)
        item.setYRange(lo * 0.9, hi * 1.05, padding=0)
        self._sync_views()

    def mark_position(self, index: int | None) -> None:
        """Draw the cursor at sweep position ``index`` (None hides it)."""
        if index is None or index >= len(self.x):
            self._cursor.hide()
        else:
            self._cursor.setValue(float(self.x[index]))
            self._cursor.show()

    def nearest_index(self, x: float) -> int | None:
        if not len(self.x):
            return None
        return int(np.argmin(np.abs(self.x - x)))

    def _on_click(self, ev: object) -> None:
        vb = self.getPlotItem().vb
        pos = ev.scenePos()  # type: ignore[attr-defined]
        if not vb.sceneBoundingRect().contains(pos):
            return
        index = self.nearest_index(vb.mapSceneToView(pos).x())
        if index is not None:
            self.position_clicked.emit(index)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _elide(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
