"""Histogram of the estimate's price ranges on a log-price axis, with the median and the likely
(middle-50%) range marked.

Each range is drawn as wide as its dollars on a log scale ($10k-15k as wide as $100k-150k),
so the bars read as prices.  The two open ends (below the first cutoff, above the last) have no
width of their own: they are drawn one neighbouring range wide, in a lighter colour, and their
axis labels say they are open ("<$2.5k", "$250k+").  Axis labels are thinned so that they never
overlap at the chart's current width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QWidget

from core.modelfile import PriceSpec
from core.money import format_dollars, short_dollars
from core.predictor import Prediction

BAR_BRUSH = (70, 130, 200)
OPEN_BRUSH = (170, 198, 228)  # the open-ended lowest and highest ranges
MEDIAN_PEN = (220, 60, 40)
LIKELY_BRUSH = (220, 60, 40, 28)
# Tops the probability axis snaps to.  A range that follows every estimate makes pyqtgraph
# re-layout the axis and its grid on each crop-box move: the largest cost of a live update.
Y_STEPS = (0.1, 0.25, 0.5, 0.75, 1.0)
MIN_OPEN_WIDTH = 0.15  # log10 units (a factor ~1.4) for an open end next to a narrow range
CHAR_PX = 7  # a tick label's width per character, with the gap between labels below
TICK_GAP_PX = 10
X_MARGIN = 0.05  # of the drawn span, each side


def slots(bounds: Sequence[tuple[float, float | None]]) -> list[tuple[float, float]]:
    """(left, right) of each range on the log10-dollar axis; the open ends one neighbour wide."""
    n = len(bounds)
    if n == 0:
        return []
    inner = [(math.log10(lo), math.log10(hi)) for lo, hi in bounds if lo > 0 and hi is not None]
    if not inner:  # one range, or two open ends only: a nominal width around the cutoff
        cut = math.log10(bounds[0][1] or bounds[-1][0] or 1.0)
        return [(cut - 0.3, cut), (cut, cut + 0.3)][:n] if n == 2 else [(cut - 0.3, cut + 0.3)]
    first_w = max(inner[0][1] - inner[0][0], MIN_OPEN_WIDTH)
    last_w = max(inner[-1][1] - inner[-1][0], MIN_OPEN_WIDTH)
    out = []
    for lo, hi in bounds:
        if lo <= 0:
            right = math.log10(hi) if hi is not None else 0.0
            out.append((right - first_w, right))
        elif hi is None:
            out.append((math.log10(lo), math.log10(lo) + last_w))
        else:
            out.append((math.log10(lo), math.log10(hi)))
    return out


def tick_labels(bounds: Sequence[tuple[float, float | None]]) -> list[tuple[float, str]]:
    """A label at every cutoff; the open ends read "<$first" and "$last+" at their middles."""
    sl = slots(bounds)
    ticks: list[tuple[float, str]] = []
    for (lo, hi), (left, right) in zip(bounds, sl, strict=True):
        if lo <= 0 and hi is not None:
            ticks.append(((left + right) / 2, f"<{short_dollars(hi)}"))
        elif hi is None:
            ticks.append(((left + right) / 2, f"{short_dollars(lo)}+"))
        else:
            ticks.append((left, short_dollars(lo)))
    return ticks


def thin_ticks(ticks: Sequence[tuple[float, str]], px_per_unit: float,
               char_px: float = CHAR_PX, gap_px: float = TICK_GAP_PX) -> list[tuple[float, str]]:
    """The ticks that fit without overlapping: left to right, a label is kept when it clears the
    last kept one (half of each label's width plus a gap); the open top label is preferred to
    the cutoff just below it."""
    if not ticks or px_per_unit <= 0:
        return list(ticks)
    order = sorted(ticks)

    def clear(a: tuple[float, str], b: tuple[float, str]) -> bool:
        need = (len(a[1]) + len(b[1])) * char_px / 2 + gap_px
        return abs(b[0] - a[0]) * px_per_unit >= need

    kept = [order[0]]
    for t in order[1:]:
        if clear(kept[-1], t):
            kept.append(t)
        elif t is order[-1] and t[1].endswith("+"):
            while kept and not clear(kept[-1], t):  # the open end says the most: keep it
                kept.pop()
            kept.append(t)
    return kept


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
    """``show_prediction`` replaces the bars, the median marker and the likely band."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMinimumHeight(120)
        item = self.getPlotItem()
        item.setMouseEnabled(False, False)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setLabel("left", "probability")
        item.getAxis("left").enableAutoSIPrefix(False)
        item.setLabel("bottom", "price (log scale)")
        item.showGrid(y=True, alpha=0.25)
        self._likely = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(LIKELY_BRUSH),
                                           pen=pg.mkPen(None))
        self._likely.hide()
        item.addItem(self._likely)
        self._bars = pg.BarGraphItem(x0=[], height=[], width=1.0, brush=BAR_BRUSH, pen=pg.mkPen("w"))
        item.addItem(self._bars)
        self._median = pg.InfiniteLine(angle=90, pen=pg.mkPen(MEDIAN_PEN, width=2),
                                       label="median", labelOpts={"position": 0.92, "color": MEDIAN_PEN,
                                                                  "fill": (255, 255, 255, 200)})
        self._median.hide()
        item.addItem(self._median)
        self._currency = "USD"
        self._bounds: list[tuple[float, float | None]] = []
        self._slots: list[tuple[float, float]] = []
        self._ticks: list[tuple[float, str]] = []
        self.shown_ticks: list[tuple[float, str]] = []  # the labels drawn now (tests)
        self.heights: np.ndarray = np.zeros(0)  # what the bars show now (tests, benchmark)
        self.median_x: float | None = None
        self.y_max: float | None = None

    def set_price_spec(self, spec: PriceSpec | None,
                       bounds: list[tuple[float, float | None]] | None = None) -> None:
        """A new model: clears the bars and lays the axis out for ``bounds``, the ranges its
        estimates will carry (``core.pricing.display_bounds``: the price model's, which are not
        the price head's ``spec.bounds()`` when the file has one); each estimate brings its own."""
        self._currency = spec.currency if spec is not None else "USD"
        self.getPlotItem().setLabel("bottom", f"price ({self._currency}, log scale)")
        self._layout(bounds if bounds is not None else spec.bounds() if spec is not None else [])
        self.show_prediction(None)

    def _layout(self, bounds: list[tuple[float, float | None]]) -> None:
        """Bars and axis for a set of ranges (only when the ranges change, not per estimate)."""
        self._bounds = bounds
        self._slots = slots(bounds)
        self._ticks = tick_labels(bounds)
        brushes = [OPEN_BRUSH if lo <= 0 or hi is None else BAR_BRUSH for lo, hi in bounds]
        lefts = np.array([a for a, _ in self._slots], dtype=float)
        widths = np.array([b - a for a, b in self._slots], dtype=float)
        self._bars.setOpts(x0=lefts, width=widths * 0.96, height=np.zeros(len(bounds)), brushes=brushes)
        if self._slots:  # room at both ends for the open ends' labels
            span = self._slots[-1][1] - self._slots[0][0]
            self.getPlotItem().setXRange(self._slots[0][0] - X_MARGIN * span, self._slots[-1][1] + X_MARGIN * span,
                                         padding=0)
        self._update_ticks()
        self.y_max = None

    def _update_ticks(self) -> None:
        if not self._slots:
            self.shown_ticks = []
            self.getPlotItem().getAxis("bottom").setTicks([[]])
            return
        span = (self._slots[-1][1] - self._slots[0][0]) * (1 + 2 * X_MARGIN)
        width_px = max(self.getPlotItem().getViewBox().width(), self.width() - 60, 1)
        self.shown_ticks = thin_ticks(self._ticks, width_px / span)
        self.getPlotItem().getAxis("bottom").setTicks([self.shown_ticks])

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if "_ticks" in self.__dict__:  # Qt resizes the widget inside super().__init__ already
            self._update_ticks()

    def median_text(self) -> str:
        """The median marker's label as drawn ("" when there is no marker)."""
        return self._median.label.toPlainText() if self._median.isVisible() else ""

    def position(self, dollars: float) -> float:
        """Where ``dollars`` falls on the axis (inside the open ends' drawn widths)."""
        if not self._slots:
            return 0.0
        return float(np.clip(math.log10(max(dollars, 1.0)), self._slots[0][0], self._slots[-1][1]))

    def show_prediction(self, pred: Prediction | None) -> None:
        item = self.getPlotItem()
        if pred is not None:
            bounds = [(b.low, b.high) for b in pred.price_bins]
            if bounds != self._bounds:
                self._layout(bounds)
        if pred is None or not self._bounds:
            self.heights = np.zeros(0)
            self.median_x = None
            self._bars.setOpts(height=np.zeros(len(self._bounds)))
            self._median.hide()
            self._likely.hide()
        else:
            self.heights = np.array([b.probability for b in pred.price_bins])
            self._bars.setOpts(height=self.heights)
            self.median_x = self.position(pred.median_price)
            self._median.show()  # first: pyqtgraph's line label ignores new text while hidden
            self._median.setValue(self.median_x)
            self._median.label.setFormat(f"median {format_dollars(pred.median_price)}")
            self._likely.setRegion((self.position(pred.price_low), self.position(pred.price_high)))
            self._likely.show()
        top = float(self.heights.max()) if self.heights.size else 1.0
        y_max = y_top(top, self.y_max)
        if y_max != self.y_max:
            self.y_max = y_max
            item.setYRange(0, y_max, padding=0)
