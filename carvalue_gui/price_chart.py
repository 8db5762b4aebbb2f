"""Histogram of the model's price ranges with the median marked.

Ranges have unequal widths and the top one is open, so each range gets one slot of width 1 and
the x axis is labelled at the range boundaries with the dollar cutoffs from the model file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from carvalue_gui.export import format_dollars
from core.modelfile import PriceSpec
from core.predictor import Prediction

BAR_BRUSH = (70, 130, 200)
MEDIAN_PEN = (220, 60, 40)
# Tops the probability axis snaps to.  A range that follows every estimate makes pyqtgraph
# re-layout the axis and its grid on each crop-box move: the largest cost of a live update.
Y_STEPS = (0.1, 0.25, 0.5, 0.75, 1.0)


def short_dollars(v: float) -> str:
    return f"${v / 1000:.0f}k" if v >= 1000 else f"${v:.0f}"


def median_position(median: float, bounds: Sequence[tuple[float, float | None]]) -> float:
    """Where ``median`` falls on the slot axis (range i spans [i, i+1]), linear within a range;
    the open top range is drawn as spanning its low edge to 1.5x it."""
    for i, (lo, hi) in enumerate(bounds):
        top = hi if hi is not None else lo * 1.5
        if median < top or i == len(bounds) - 1:
            frac = (median - lo) / (top - lo) if top > lo else 0.0
            return i + float(np.clip(frac, 0.0, 1.0))
    return float(len(bounds))


def y_top(top: float, current: float | None) -> float:
    """Top of the probability axis for a tallest bar ``top``: the smallest step that holds it
    with a margin, except that a taller current step is kept while the bar still fills most of
    the smaller one, so the axis does not flick back and forth as the box moves."""
    need = min(1.0, top * 1.1)
    fit = next(s for s in Y_STEPS if s >= need)
    if current is not None and current in Y_STEPS and current > fit and need > 0.7 * fit:
        return current
    return fit


class PriceChart(pg.PlotWidget):
    """``show_prediction`` replaces the bars and the median marker."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMinimumHeight(180)
        item = self.getPlotItem()
        item.setMouseEnabled(False, False)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setLabel("left", "probability")
        item.getAxis("left").enableAutoSIPrefix(False)
        item.setLabel("bottom", "price range")
        item.showGrid(y=True, alpha=0.25)
        self._bars = pg.BarGraphItem(x0=[], height=[], width=1.0, brush=BAR_BRUSH, pen=pg.mkPen("w"))
        item.addItem(self._bars)
        self._median = pg.InfiniteLine(angle=90, pen=pg.mkPen(MEDIAN_PEN, width=2),
                                       label="median", labelOpts={"position": 0.92, "color": MEDIAN_PEN,
                                                                  "fill": (255, 255, 255, 200)})
        self._median.hide()
        item.addItem(self._median)
        self._bounds: list[tuple[float, float | None]] = []
        self.heights: np.ndarray = np.zeros(0)  # what the bars show now (tests, benchmark)
        self.median_x: float | None = None
        self.y_max: float | None = None

    def set_price_spec(self, spec: PriceSpec | None) -> None:
        """Axis labels from the model file's cutoffs; clears the bars."""
        self._bounds = spec.bounds() if spec is not None else []
        n = len(self._bounds)
        # Range i spans [i, i+1]; boundaries carry the cutoffs, the open top range reads "$60k+".
        ticks = [(float(i), short_dollars(lo)) for i, (lo, _) in enumerate(self._bounds)]
        if n:
            ticks[-1] = (float(n - 1), short_dollars(self._bounds[-1][0]) + "+")
        self.getPlotItem().getAxis("bottom").setTicks([ticks])
        self.getPlotItem().setLabel("bottom", f"price range ({spec.currency})" if spec else "price range")
        self.y_max = None  # the x range follows the new number of ranges
        self.show_prediction(None)

    def median_text(self) -> str:
        """The median marker's label as drawn ("" when there is no marker)."""
        return self._median.label.toPlainText() if self._median.isVisible() else ""

    def show_prediction(self, pred: Prediction | None) -> None:
        item = self.getPlotItem()
        n = len(self._bounds)
        if pred is None or not n:
            self.heights = np.zeros(0)
            self.median_x = None
            self._bars.setOpts(x0=[], height=[], width=1.0)
            self._median.hide()
        else:
            self.heights = np.array([b.probability for b in pred.price_bins])
            self._bars.setOpts(x0=np.arange(n, dtype=float) + 0.05, height=self.heights, width=0.9)
            self.median_x = median_position(pred.median_price, self._bounds)
            self._median.show()  # first: pyqtgraph's line label ignores new text while hidden
            self._median.setValue(self.median_x)
            self._median.label.setFormat(f"median {format_dollars(pred.median_price)}")
        top = float(self.heights.max()) if self.heights.size else 1.0
        y_max = y_top(top, self.y_max)
        if y_max != self.y_max:
            self.y_max = y_max
            item.setXRange(0, max(n, 1), padding=0.02)
            item.setYRange(0, y_max, padding=0)
