"""Draws a "what drives this estimate" map (core.occlusion.DriversMap) over the crop view.

A translucent heat map over the part of the photo the network saw: red where covering the region
LOWERS the chosen quantity (how sure the model is of the top make/model, or the median price),
blue where it raises it; the colour's opacity follows the size of the change, scaled to the map's
largest one.  The price changes of the few cells that move the price most are written on the map
("−$315 if covered"), and a small legend in the view's corner says, in a buyer's words, what the
colours and numbers mean and lets the user pick which quantity the colours show.  The legend is
kept to a share of the view (LEGEND_WIDTH_SHARE) so that it never hides much of the photo.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QVBoxLayout, QWidget

from core.money import format_dollars, signed_short_dollars
from core.occlusion import DriversMap

MODES = {"make_model": "Colours: make/model", "price": "Colours: price"}  # short: the legend is narrow
RED = (230, 40, 30)
BLUE = (40, 110, 240)
MAX_ALPHA = 190  # of 255, at the map's largest change
RES = 56  # heat map pixels per side (the 7x7 grid's squares overlap every 1/8 of the side)
NUMBERS = 3  # price changes written on the map: the cells that move the price most
Z_VALUE = 3  # over the photo, under the found-car outline (5) and the crop box (10)
LEGEND_WIDTH_SHARE = 0.45  # the legend is at most this share of the view's width ...
LEGEND_MAX_WIDTH = 340  # ... and of these pixels; its text wraps inside
LEGEND_MIN_WIDTH = 150
LEGEND_MARGIN = 8  # from the view's top-left corner
LABEL_PAD_PX = 12  # a number label's padding (its text document's 4-px margins) and a 4-px gap to the next, in screen pixels
COMPACT_BELOW_PX = 480  # a photo view narrower than this gets the legend's first two lines (all in its tooltip)


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


def number_text(price_change: float) -> str:
    """A number on the map: what covering that square does to the price ("−$315 / if covered",
    on two lines to stay narrow), never a bare "+$315" that reads as "this part adds $315"."""
    return f"{dollars_change(price_change)}\nif covered"


def numbered_cells(m: DriversMap, n: int = NUMBERS, label: tuple[float, float] = (0.0, 0.0)) -> list[int]:
    """The cells whose price change is written on the map: those that move the price most, each
    square clear of the squares already taken (the 7x7 squares overlap every eighth of the box,
    so the top few are often neighbours, and their labels would be written over each other), and
    at least ``label`` (a label's width and height, as fractions of the box) from them."""
    chosen: list[int] = []
    for i in np.argsort(-np.abs(m.price_change.ravel()), kind="stable"):
        x0, y0, x1, y1 = m.cells[int(i)]
        dx, dy = max(x1 - x0, label[0]) - 1e-9, max(y1 - y0, label[1]) - 1e-9
        if all(abs(x0 - m.cells[j][0]) >= dx or abs(y0 - m.cells[j][1]) >= dy for j in chosen):
            chosen.append(int(i))
            if len(chosen) == n:
                break
    return chosen


def largest(values: np.ndarray) -> float:
    """The value of largest magnitude, with its sign (0 for none)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    return float(flat[np.argmax(np.abs(flat))]) if flat.size else 0.0


def swatch(rgb: tuple[int, int, int]) -> str:
    return f"<span style='color:rgb{rgb}'>&#9632;</span>"


def legend_lines(m: DriversMap, mode: str) -> list[str]:
    """What the colours mean, in a buyer's words (no "P(...)", no "largest change"), as rich-text
    lines, most needed first; the numbers on the map say themselves what they are."""
    if mode == "price":
        change = largest(m.price_change)
        return [f"The price: <b>{format_dollars(m.median_price)}</b>",
                f"{swatch(RED)} red: covering that part lowers it; {swatch(BLUE)} blue: raises it",
                f"Covering the part that matters most {'lowers' if change < 0 else 'raises'} it by "
                f"{signed_short_dollars(abs(change))[1:]}"]
    after = min(max(m.probability - largest(m.prob_drop), 0.0), 1.0)
    return [f"How sure it is of <b>{html.escape(m.label)}</b>: {m.probability:.0%}",
            f"{swatch(RED)} red: covering that part makes it less sure; {swatch(BLUE)} blue: surer",
            f"Covering the part that matters most: {m.probability:.0%} → {after:.0%}"]


def legend_text(m: DriversMap, mode: str, compact: bool = False) -> str:
    """The legend's text; ``compact`` (a small photo view): the first two lines only."""
    lines = legend_lines(m, mode)
    return "<br>".join(lines[:2] if compact else lines)


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
        self.number_cells: list[int] = []  # the cells whose numbers are shown
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
        self.mode_box.setToolTip("Colour the map by what covering each part does to how sure the model is "
                                 "of the make/model, or to the price")
        self.mode_box.currentIndexChanged.connect(lambda _i: self.set_mode(self.mode_box.currentData()))
        self.label = QLabel("What drives this estimate: computing…")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        font = self.label.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))  # a legend: a size below the window's text
        self.label.setFont(font)
        self.mode_box.setFont(font)
        layout.addWidget(self.mode_box)
        layout.addWidget(self.label)
        self.legend.move(LEGEND_MARGIN, LEGEND_MARGIN)
        self.legend.hide()
        view.installEventFilter(self)  # a resized view resizes the legend

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self._view and event.type() == QEvent.Type.Resize:
            if self._map is not None:
                self._draw()  # the numbers' spacing and the legend follow the new size
            else:
                self._fit_legend()
        return False

    def _label_share(self, box_w: float, box_h: float) -> tuple[float, float]:
        """A number label's size as fractions of a box of ``box_w`` x ``box_h`` photo pixels on
        screen now ((0, 0) before the map is in a view)."""
        vb = self.image.getViewBox()
        if vb is None or box_w <= 0 or box_h <= 0:
            return 0.0, 0.0
        px_w, px_h = vb.viewPixelSize()  # photo pixels per screen pixel
        if not (px_w > 0 and px_h > 0):
            return 0.0, 0.0
        fm = QFontMetrics(self.numbers[0].textItem.font())
        w = max(fm.horizontalAdvance(line) for line in number_text(-88_800.0).splitlines()) + LABEL_PAD_PX
        h = 2 * fm.lineSpacing() + LABEL_PAD_PX
        return w * px_w / box_w, h * px_h / box_h

    def _legend_text(self) -> None:
        """The shown map's legend, whole or compact by the view's width; then its size."""
        m = self._map
        if m is not None:
            self.label.setText(legend_text(m, self._mode, compact=self._view.width() < COMPACT_BELOW_PX))
            self.label.setToolTip(legend_text(m, self._mode))
        self._fit_legend()

    def _fit_legend(self) -> None:
        """The legend's width: a share of the view's (its text wraps), so it covers little of the photo."""
        view = self._view
        assert isinstance(view, QWidget)
        margins = self.legend.layout().contentsMargins()
        least = max(LEGEND_MIN_WIDTH, self.mode_box.sizeHint().width() + margins.left() + margins.right())
        width = max(least, min(LEGEND_MAX_WIDTH, int(view.width() * LEGEND_WIDTH_SHARE)))  # the choice never cut
        self.label.setFixedWidth(width - margins.left() - margins.right())
        self.mode_box.setMaximumWidth(width - margins.left() - margins.right())
        self.legend.adjustSize()

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
            self._fit_legend()
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
        self.label.setToolTip("")
        self._fit_legend()

    def show_failure(self, message: str) -> None:
        """The map could not be made: say so in the legend (one line) instead of "computing"."""
        self.clear()
        self.label.setText(f"What drives this estimate: not available ({html.escape(message)})")
        self._fit_legend()

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
        self.number_cells = numbered_cells(m, label=self._label_share(r.w, r.h))
        for t, i in zip(self.numbers, self.number_cells, strict=False):
            x0, y0, x1, y1 = m.cells[i]
            t.setText(number_text(float(m.price_change.ravel()[i])))
            t.setPos(r.x + (x0 + x1) / 2 * r.w, r.y + (y0 + y1) / 2 * r.h)
            t.show()
        for t in self.numbers[len(self.number_cells):]:
            t.hide()
        self._legend_text()

