"""Pan-across results: median price (with its likely range as a band) and the probabilities of
the make/models ranked first anywhere along the sweep (one line each, with a legend) against the
crop box's position; clicking the plot moves the box to the nearest position (the title says so)."""

from __future__ import annotations

from collections import Counter
from html import escape as _html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QWidget

from core.framing import WholeCar
from core.money import short_dollars
from core.predictor import Sweep

PRICE_PEN = (40, 90, 170)
BAND_BRUSH = (40, 90, 170, 50)
PROB_PEN = (200, 110, 0)
PARTIAL_BRUSH = (255, 255, 255)  # a position that is not a whole car: a hollow grey point
PARTIAL_PEN = (160, 160, 160)
# One colour per followed make/model (the first is PROB_PEN).
LINE_PENS = (PROB_PEN, (150, 50, 160), (30, 140, 90))
MAX_FOLLOWED = len(LINE_PENS)
EMPTY_TITLE = "Tools > Pan across (Ctrl+P) fills this plot"
CLICK_TITLE = "Click the plot to move the box there"
# Each title with its shorter forms, for a narrow plot.
TITLES = {CLICK_TITLE: (CLICK_TITLE, "Click to move the box there", "Click: move box"),
          EMPTY_TITLE: (EMPTY_TITLE, "Tools > Pan across", "")}
HEAD_ROOM = 0.8  # over the lines, a share of their height: the legend's place
LEGEND_CHARS = 30  # a legend entry's make/model is cut to this many characters


class DollarAxis(pg.AxisItem):
    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [short_dollars(v) for v in values]


def followed_label(sweep: Sweep) -> str:
    """The make/model to follow first along the sweep: the one ranked first at most positions."""
    return followed_labels(sweep)[0]


def followed_labels(sweep: Sweep, n: int = MAX_FOLLOWED) -> list[str]:
    """The make/models to draw along the sweep: those ranked first at some position, most
    positions first (ties: the higher peak first), at most ``n``; so the plot shows how the
    make/model changes as the box moves, not just one label."""
    # Only positions that show a whole car name one (a part of a car names nothing for sure).
    preds = [p for p in sweep.predictions if p.whole_car is WholeCar.YES] or list(sweep.predictions)
    counts = Counter(p.make_models[0].label for p in preds)
    peak: dict[str, float] = {}
    for p in preds:
        top = p.make_models[0]
        peak[top.label] = max(peak.get(top.label, 0.0), top.probability)
    return sorted(counts, key=lambda label: (-counts[label], -peak[label], label))[:n]


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
        item.setLabel("bottom", "box centre (fraction of photo width)")
        item.setLabel("left", "median price", color=f"rgb{PRICE_PEN}")
        item.showGrid(x=True, y=True, alpha=0.2)
        for axis in ("left", "bottom"):
            item.getAxis(axis).enableAutoSIPrefix(False)
        self._set_title(EMPTY_TITLE)
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
        item.getAxis("right").setLabel("how sure", color=f"rgb{PROB_PEN}")
        item.getAxis("right").enableAutoSIPrefix(False)
        item.getAxis("right").setTicks([[(v, f"{v:g}") for v in (0.0, 0.5, 1.0)],
                                        [(v, "") for v in (0.25, 0.75)]])  # never above 1
        self._prob_view.setXLink(item)
        self._prob_view.setYRange(0, 1.02, padding=0)
        self._probs = [pg.PlotDataItem(pen=pg.mkPen(pen, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                       symbol="t", symbolSize=6, symbolBrush=pen) for pen in LINE_PENS]
        for curve in self._probs:
            self._prob_view.addItem(curve)
        self._prob = self._probs[0]
        # The legend names each line; it sits in the plot's top-left corner, over the grid.
        self.legend = pg.LegendItem(offset=(4, 2), labelTextSize="8pt", verSpacing=-8, labelTextColor=(40, 40, 40),
                                    brush=pg.mkBrush(255, 255, 255, 210), pen=pg.mkPen(200, 200, 200))
        self.legend.setParentItem(item.vb)
        self.legend.hide()
        item.vb.sigResized.connect(self._sync_views)
        self._cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((120, 120, 120), width=1,
                                                              style=pg.QtCore.Qt.PenStyle.DotLine))
        self._cursor.hide()
        item.addItem(self._cursor)
        self.scene().sigMouseClicked.connect(self._on_click)
        self.sweep: Sweep | None = None
        self.followed = ""
        self.followed_all: list[str] = []
        self.x = np.zeros(0)
        self.medians = np.zeros(0)
        self.probabilities = np.zeros(0)
        self.whole = np.zeros(0, dtype=bool)  # per position: judged a whole car

    def _set_title(self, text: str) -> None:
        """A title never widens the plot past its widget (pyqtgraph makes a title's width the
        plot's minimum width): a narrow plot gets the title's short form, or none."""
        self._title = text
        item = self.getPlotItem()
        room = self.width() - item.getAxis("left").width() - item.getAxis("right").width() - 8
        for shown in (*TITLES.get(text, (text,)), " "):
            item.setTitle(shown, size="9pt", color="#555")
            if item.titleLabel.item.boundingRect().width() <= room:
                break
        self.shown_title = shown

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if "_title" in self.__dict__:  # Qt resizes the widget inside super().__init__ already
            self._set_title(self._title)

    def _sync_views(self) -> None:
        self._prob_view.setGeometry(self.getPlotItem().vb.sceneBoundingRect())
        self._prob_view.linkedViewChanged(self.getPlotItem().vb, self._prob_view.XAxis)

    def show_sweep(self, sweep: Sweep | None) -> None:
        self.sweep = sweep
        item = self.getPlotItem()
        if sweep is None or not sweep.predictions:
            self.x = self.medians = self.probabilities = np.zeros(0)
            self.whole = np.zeros(0, dtype=bool)
            for curve in (self._low, self._high, self._median, *self._probs):
                curve.setData([], [])
            self._cursor.hide()
            self.followed = ""
            self.followed_all = []
            self.legend.clear()
            self.legend.hide()
            self.setToolTip("")
            self._set_title(EMPTY_TITLE)
            item.setXRange(0, 1, padding=0.03)
            item.setYRange(0, 50_000, padding=0)
            return
        preds = sweep.predictions
        self.x = np.array(sweep.positions)
        self.medians = np.array([p.median_price for p in preds])
        # Positions that do not show a whole car: hollow grey points, no make/model line.
        self.whole = np.array([p.whole_car is WholeCar.YES for p in preds])
        self._low.setData(self.x, [p.price_low for p in preds])
        self._high.setData(self.x, [p.price_high for p in preds])
        self._median.setData(self.x, self.medians,
                             symbolBrush=[pg.mkBrush(PRICE_PEN if w else PARTIAL_BRUSH) for w in self.whole],
                             symbolPen=[pg.mkPen(PRICE_PEN if w else PARTIAL_PEN) for w in self.whole])
        self.followed_all = followed_labels(sweep)
        self.followed = self.followed_all[0]
        self.legend.clear()
        for i, curve in enumerate(self._probs):
            if i < len(self.followed_all):
                label = self.followed_all[i]
                curve.setData(self.x, np.where(self.whole, sweep.probabilities_of(label), np.nan), connect="finite")
                self.legend.addItem(curve, f"how sure: {_html(_elide(label, LEGEND_CHARS))}")
            else:
                curve.setData([], [])
        self.legend.show()
        self.probabilities = sweep.probabilities_of(self.followed)
        self._set_title(CLICK_TITLE)
        self.setToolTip("Blue: the median price at each box position (band: the likely range). Dashed: the "
                        "probability of each make/model ranked first somewhere along the sweep: "
                        + ", ".join(self.followed_all) + ". Click a point to move the box there.")
        values = [v for p in preds for v in (p.price_low, p.median_price, p.price_high)]
        lo, hi = min(values), max(values)
        item.setXRange(0, 1, padding=0.03)
        # Head room over the highest price for the legend (top-left) to sit above the lines.
        item.setYRange(lo * 0.9, hi + (hi - lo * 0.9) * HEAD_ROOM, padding=0)
        self._prob_view.setYRange(0, 1.02 * (1 + HEAD_ROOM), padding=0)
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


def _elide(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
