"""Draws a "what drives this estimate" map (core.occlusion.DriversMap) over the crop view.

A translucent heat map over the part of the photo the network saw: red where hiding the region
LOWERS the chosen quantity (the top make/model's probability, or the median price), blue where
it raises it; the colour's opacity follows the size of the change, scaled to the map's largest
one.  The price changes of the few cells that move the price most are written on the map, and a
small legend in the view's corner says what the colours mean and lets the user pick which
quantity the colours show.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QVBoxLayout

from core.occlusion import DriversMap
from core.report import format_dollars, signed_short_dollars

MODES = {"make_model": "Make/model influence", "price": "Price influence"}
RED = (230, 40, 30)
BLUE = (40, 110, 240)
MAX_ALPHA = 190  # of 255, at the map's largest change
RES = 56  # heat map pixels per side (the 7x7 grid's squares overlap every 1/8 of the side)
NUMBERS = 3  # price changes written on the map: the cells that move the price most
Z_VALUE = 3  # over the photo, under the found-car outline (5) and the crop box (10)


def heat_rgba(heat: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8: red for positive values, blue for negative, alpha by |value| relative to
    the largest |value| (all transparent when every value is 0 or not finite)."""
    v = np.nan_to_num(np.asarray(heat, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    scale = float(np.abs(v).max()) if v.size else 0.0
    out = np.zeros((*v.shape, 4), dtype=np.uint8)
    if scale <= 0:
        return out
    out[..., :3] = np.where((v >= 0)[..., None], np.array(RED, np.uint8), np.array(BLUE, np.uint8))
    out[..., 3] = np.rint(MAX_ALPHA * np.abs(v) / scale).astype(np.uint8)
    return out


def dollars_change(x: float) -> str:
    """Signed, short: "+$1.2k", "-$850" (core.report's)."""
    return signed_short_dollars(x)


def largest(values: np.ndarray) -> float:
    """The value of largest magnitude, with its sign (0 for none)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    return float(flat[np.argmax(np.abs(flat))]) if flat.size else 0.0


def legend_text(m: DriversMap, mode: str) -> str:
    if mode == "price":
        what = f"the price ({format_dollars(m.median_price)})"
        strongest = dollars_change(largest(m.price_change))
    else:
        what = f"P({html.escape(m.label)}) ({m.probability:.0%})"
        strongest = f"{-largest(m.prob_drop):+.0%}"
    return (f"<span style='color:rgb{RED}'>&#9632;</span> red: hiding this lowers {what} most<br>"
            f"<span style='color:rgb{BLUE}'>&#9632;</span> blue: hiding this raises it<br>"
            f"largest change: {strongest}; numbers: price change")


class DriversOverlay(QObject):
    """The heat map, the price numbers and the legend on one ``CropView``."""

    mode_changed = Signal(str)

    def __init__(self, view: pg.GraphicsView, parent: QObject | None = None) -> None:
        super().__init__(parent or view)
        self._view = view
        self._map: DriversMap | None = None
        self._mode = "make_model"
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(Z_VALUE)
        self.image.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.image.hide()
        view.add_overlay_item(self.image)  # type: ignore[attr-defined]
        self.numbers: list[pg.TextItem] = []
        for _ in range(NUMBERS):
            t = pg.TextItem("", color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 150), anchor=(0.5, 0.5))
            t.setZValue(Z_VALUE + 1)
            t.hide()
            view.add_overlay_item(t)  # type: ignore[attr-defined]
            self.numbers.append(t)
        self.legend = QFrame(view)
        self.legend.setObjectName("drivers_legend")
        self.legend.setStyleSheet("#drivers_legend { background: rgba(20, 20, 20, 200); border-radius: 4px; }"
                                  " QLabel { color: white; }")
        layout = QVBoxLayout(self.legend)
        layout.setContentsMargins(6, 4, 6, 4)
        self.mode_box = QComboBox()
        for key, text in MODES.items():
            self.mode_box.addItem(text, key)
        self.mode_box.setToolTip("Colour the map by what hiding each region does to the make/model "
                                 "probability or to the price")
        self.mode_box.currentIndexChanged.connect(lambda _i: self.set_mode(self.mode_box.currentData()))
        self.label = QLabel("What drives this estimate: computing…")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.mode_box)
        layout.addWidget(self.label)
        self.legend.move(8, 8)
        self.legend.hide()

    # -- state --------------------------------------------------------------------------------
    @property
    def shown(self) -> DriversMap | None:
        """The map on screen (None: none)."""
        return self._map

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        """"make_model" or "price": which change the colours show."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == self._mode:
            return
        self._mode = mode
        self.mode_box.setCurrentIndex(list(MODES).index(mode))
        self._draw()
        self.mode_changed.emit(mode)

    def set_active(self, on: bool) -> None:
        """Show the legend (and any map) while the toggle is on; off hides everything."""
        self.legend.setVisible(on)
        if on:
            self.legend.adjustSize()
            self.legend.raise_()
        else:
            self.clear()

    def show_map(self, m: DriversMap) -> None:
        self._map = m
        self._draw()

    def clear(self, waiting: bool = False) -> None:
        """Take the map off (the box moved, another photo); ``waiting``: a new one is coming."""
        self._map = None
        self.image.hide()
        for t in self.numbers:
            t.hide()
        self.label.setText("What drives this estimate: computing…" if waiting else "What drives this estimate")
        self.legend.adjustSize()

    def show_failure(self, message: str) -> None:
        """The map could not be made: say so in the legend (one line) instead of "computing"."""
        self.clear()
        self.label.setText(f"What drives this estimate: not available ({html.escape(message)})")
        self.legend.adjustSize()

    def heat(self) -> np.ndarray | None:
        """The values the colours show (positive: hiding lowers the chosen quantity)."""
        m = self._map
        if m is None:
            return None
        values = m.prob_drop if self._mode == "make_model" else -m.price_change
        return m.spread(values, RES)

    # -- drawing ------------------------------------------------------------------------------
    def _draw(self) -> None:
        m = self._map
        heat = self.heat()
        if m is None or heat is None:
            return
        r = m.region
        self.image.setImage(heat_rgba(heat), autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(r.x, r.y, r.w, r.h))
        self.image.show()
        order = np.argsort(-np.abs(m.price_change.ravel()), kind="stable")[:NUMBERS]
        for t, i in zip(self.numbers, order, strict=False):
            x0, y0, x1, y1 = m.cells[int(i)]
            t.setText(dollars_change(float(m.price_change.ravel()[i])))
            t.setPos(r.x + (x0 + x1) / 2 * r.w, r.y + (y0 + y1) / 2 * r.h)
            t.show()
        self.label.setText(legend_text(m, self._mode))
        self.legend.adjustSize()

