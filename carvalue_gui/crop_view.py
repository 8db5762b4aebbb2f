"""The selected photo with a crop box the user draws, drags, resizes, resets and nudges.

The image item is stretched over the photo's ORIGINAL pixel size, so the ROI's coordinates
are original-image coordinates: exactly the ``Box`` that ``core`` expects, whatever the size
of the image shown: the working copy at first, then (see ``sharp_copy``) a copy decoded at the
view's size when the view is larger than the working copy.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ROI import Handle
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics, QKeyEvent, QMouseEvent, QPainter, QPen, QResizeEvent
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QWidget

from carvalue_gui.sharp_copy import SharpCopies, wanted_side
from core.geometry import Box
from core.preprocess import Photo

NUDGE_FRACTION = 0.01  # arrow key: 1% of the photo's width/height; with Shift: 10%
MIN_BOX_FRACTION = 0.05  # the box cannot shrink below 5% of the photo's side
PLACEHOLDER = "Drop photos or folders here\nor use File > Open photos"
DRAW_MIN_PX = 5  # a press that moves less than this many screen pixels is a click, not a box
SHARP_DELAY_MS = 250  # ask for a sharper copy once the first estimate and resizing are done
# How to change the crop, in the photo's bottom-left corner: the longest form that fits.
CROP_HINTS = ("Drag the box to move it, its corners to resize it; drag outside it for a new box; "
              "Ctrl+R: back to the car",
              "Drag the box or its corners; drag outside it for a new box; Ctrl+R: the car",
              "Drag the box or its corners · Ctrl+R: the car",
              "Drag the box or its corners")
HINT_MARGIN = 6


def crop_hint(fm: QFontMetrics, width: int) -> str:
    """The longest of CROP_HINTS that fits ``width`` pixels ("" when none does)."""
    return next((h for h in CROP_HINTS if fm.horizontalAdvance(h) + 4 * HINT_MARGIN <= width), "")


class CropView(pg.GraphicsView):
    """Shows one photo and a ``pg.RectROI``; emits ``box_changed(Box)`` when the user moves it."""

    box_changed = Signal(object)  # Box, original-image coordinates
    box_reset = Signal()
    box_moved = Signal()  # any move of the box, quiet ones (set_box(notify=False)) too

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=QColor(40, 40, 40))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Drag outside the box (or Shift+drag anywhere) to draw a new one; drag the box "
                        "to move it, its handles to resize it; double-click puts it back on the car "
                        "found in the photo (or the whole photo); arrow keys nudge it (Shift: more).")
        self._vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self._vb.setMouseEnabled(False, False)
        self.setCentralItem(self._vb)
        self._image = pg.ImageItem(axisOrder="row-major")
        # Keep the photo scaled to the screen in a pixmap: a moving box then repaints by copying
        # it instead of rescaling the whole photo each frame (work that competes with the
        # network for this machine's cores).
        self._image.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._vb.addItem(self._image)
        self._placeholder = pg.TextItem(PLACEHOLDER, color=(200, 200, 200), anchor=(0.5, 0.5))
        self._vb.addItem(self._placeholder)
        self._placeholder.setPos(0.5, 0.5)
        self._vb.setRange(QRectF(0, 0, 1, 1), padding=0)
        self._roi: pg.RectROI | None = None
        self._size: tuple[int, int] | None = None
        # Where the model found the car (dashed outline); the box "reset" goes back to.
        self._found: Box | None = None
        self._found_item = QGraphicsRectItem()
        pen = QPen(QColor(80, 220, 255), 0)
        pen.setStyle(Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        pen.setWidth(2)
        self._found_item.setPen(pen)
        self._found_item.setZValue(5)
        self._found_item.hide()
        self._vb.addItem(self._found_item)
        self._quiet = False
        self._photo: Photo | None = None
        self._draw_from: QPointF | None = None  # image point where a drawn box started
        self._draw_press = QPointF()  # ... and the press, in viewport pixels
        self._shown_side = 0  # long side of the image shown, in its own pixels
        self._token = object()  # identifies the photo shown, for sharper copies
        self._sharp = SharpCopies(self)
        self._sharp.ready.connect(self._on_sharp_copy)
        self._sharp_timer = QTimer(self, singleShot=True, interval=SHARP_DELAY_MS)
        self._sharp_timer.timeout.connect(self._ask_sharp_copy)

    def hint_text(self) -> str:
        """The crop hint drawn now ("" without a photo or room)."""
        if self._photo is None:
            return ""
        return crop_hint(self.fontMetrics(), self.viewport().width())

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        """The crop hint, in viewport pixels (it stays put while the box and photo change)."""
        super().drawForeground(painter, rect)
        text = self.hint_text()
        if not text:
            return
        painter.save()
        painter.resetTransform()
        fm = self.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 2 * HINT_MARGIN, fm.height() + HINT_MARGIN
        box = QRectF(HINT_MARGIN, self.viewport().height() - h - HINT_MARGIN, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
        painter.restore()

    # -- state --------------------------------------------------------------------------------
    @property
    def roi(self) -> pg.RectROI | None:
        return self._roi

    def add_overlay_item(self, item: QGraphicsItem) -> None:
        """Draw ``item`` over the photo, in original-image coordinates (e.g. drivers_overlay)."""
        self._vb.addItem(item)

    def image_size(self) -> tuple[int, int] | None:
        return self._size

    def shown_image_shape(self) -> tuple[int, ...] | None:
        """Shape of the pixel array on screen (the working copy or a sharper one)."""
        image = self._image.image
        return None if image is None else tuple(image.shape)

    def shutdown(self) -> None:
        """Drop pending sharper copies and wait for one being decoded (window closing)."""
        self._sharp_timer.stop()
        self._sharp.cancel()
        self._sharp.wait()

    def set_photo(self, photo: Photo | None, box: Box | None = None, message: str = "",
                  found: Box | None = None) -> None:
        """Show ``photo`` (its working copy, never re-decoded) with the box (default: the found
        car, else the whole photo); None shows ``message`` (or how to get photos in).  ``found``:
        where the model found the car (outlined; "reset" returns the box there)."""
        self.set_found_box(None)
        if self._roi is not None:
            self._vb.removeItem(self._roi)
            self._roi = None
        self._photo, self._token, self._draw_from = photo, object(), None
        self._sharp.cancel()
        self._sharp_timer.stop()
        if photo is None:
            self._size = None
            self._image.clear()
            self._placeholder.setText(message or PLACEHOLDER)
            self._placeholder.show()
            self._vb.setRange(QRectF(0, 0, 1, 1), padding=0)
            return
        self._placeholder.hide()
        w, h = photo.original_size
        self._size = (w, h)
        self._show_pixels(np.asarray(photo.image))
        b = (box or found or photo.full_box()).clamp((w, h))
        roi = pg.RectROI((b.x, b.y), (b.w, b.h), pen=pg.mkPen((255, 200, 0), width=3),
                         hoverPen=pg.mkPen((255, 240, 120), width=3), maxBounds=QRectF(0, 0, w, h),
                         removable=False)
        for handle, center in (((0, 0), (1, 1)), ((1, 0), (0, 1)), ((0, 1), (1, 0)),
                               ((0.5, 0), (0.5, 1)), ((0.5, 1), (0.5, 0)),
                               ((0, 0.5), (1, 0.5)), ((1, 0.5), (0, 0.5))):
            roi.addScaleHandle(handle, center)
        roi.sigRegionChanged.connect(self._on_roi_changed)
        self._roi = roi
        self._vb.addItem(roi)
        self._vb.setRange(QRectF(0, 0, w, h), padding=0.02)
        self._sharp_timer.start()
        self.set_found_box(found)

    @property
    def found_box(self) -> Box | None:
        return self._found

    def set_found_box(self, box: Box | None) -> None:
        """Outline where the model found the car (None: hide it)."""
        self._found = box if self._size is not None else None
        if self._found is None:
            self._found_item.hide()
            return
        self._found_item.setRect(QRectF(box.x, box.y, box.w, box.h))
        self._found_item.show()

    def _show_pixels(self, rgb: np.ndarray) -> None:
        assert self._size is not None
        self._image.setImage(rgb, autoLevels=False, levels=(0, 255))
        self._image.setRect(QRectF(0, 0, *self._size))
        self._shown_side = max(rgb.shape[:2])

    def _view_side(self) -> float:
        """The shown photo's long side on screen, in device pixels."""
        assert self._size is not None
        px_w, px_h = self._vb.viewPixelSize()  # view units per logical pixel
        if px_w <= 0 or px_h <= 0:
            return 0.0
        return max(self._size[0] / px_w, self._size[1] / px_h) * self.devicePixelRatioF()

    def _ask_sharp_copy(self) -> None:
        if self._photo is None or not self.isVisible():
            return
        side = wanted_side(self._photo, self._shown_side, self._view_side())
        if side is not None:
            self._sharp.request(self._token, self._photo, side)

    def _on_sharp_copy(self, token: object, rgb: np.ndarray) -> None:
        if token is self._token and self._size is not None:
            self._show_pixels(rgb)

    def resizeEvent(self, ev: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(ev)
        # pg.GraphicsView.__init__ calls this before our attributes exist.
        if getattr(self, "_photo", None) is not None:
            self._sharp_timer.start()  # restarts: one request once the resizing stops

    def box(self) -> Box | None:
        if self._roi is None or self._size is None:
            return None
        pos, size = self._roi.pos(), self._roi.size()
        return Box(float(pos.x()), float(pos.y()), float(size.x()), float(size.y())).clamp(self._size)

    def set_box(self, box: Box, notify: bool = True) -> None:
        """Move the ROI; ``notify=False`` moves it without emitting ``box_changed``."""
        if self._roi is None or self._size is None:
            return
        b = box.clamp(self._size, min_side=self._min_side())
        self._quiet = not notify
        try:
            self._roi.setState({"pos": QPointF(b.x, b.y), "size": QPointF(b.w, b.h), "angle": 0.0})
        finally:
            self._quiet = False

    def reset_box(self) -> None:
        """The box back on the found car (the whole photo when no car was found)."""
        if self._size is not None:
            self.set_box(self._found or Box.full(self._size))
            self.box_reset.emit()

    def whole_photo_box(self) -> None:
        if self._size is not None:
            self.set_box(Box.full(self._size))

    def nudge(self, dx: float, dy: float) -> None:
        """Move the box by fractions of the photo's width and height."""
        b, size = self.box(), self._size
        if b is None or size is None:
            return
        self.set_box(Box(b.x + dx * size[0], b.y + dy * size[1], b.w, b.h))

    def _min_side(self) -> float:
        assert self._size is not None
        return max(8.0, MIN_BOX_FRACTION * min(self._size))

    # -- events -------------------------------------------------------------------------------
    def _on_roi_changed(self) -> None:
        self.box_moved.emit()
        if self._quiet:
            return
        b = self.box()
        if b is not None:
            self.box_changed.emit(b)

    def _to_image(self, pos: QPointF) -> QPointF:
        """Viewport pixels -> original-image coordinates."""
        return self._vb.mapSceneToView(self.mapToScene(pos.toPoint()))

    def _press_draws(self, pos: QPointF, modifiers: Qt.KeyboardModifier) -> bool:
        """Whether a left press here starts drawing a new box: on the photo, not on a resize
        handle, and outside the box, or anywhere with Shift, or anywhere when the box is the
        whole photo (which cannot be moved)."""
        if self._roi is None or self._size is None:
            return False
        p = self._to_image(pos)
        w, h = self._size
        if not (0 <= p.x() <= w and 0 <= p.y() <= h):
            return False
        if any(isinstance(item, Handle) for item in self.items(pos.toPoint())):
            return False
        b = self.box()
        assert b is not None
        inside = b.x <= p.x() <= b.x + b.w and b.y <= p.y() <= b.y + b.h
        whole = b.w >= 0.99 * w and b.h >= 0.99 * h
        return bool(modifiers & Qt.KeyboardModifier.ShiftModifier) or not inside or whole

    def _draw_to(self, pos: QPointF) -> None:
        assert self._draw_from is not None and self._size is not None
        a, q = self._draw_from, self._to_image(pos)
        w, h = self._size
        x0, x1 = sorted((min(max(a.x(), 0.0), w), min(max(q.x(), 0.0), w)))
        y0, y1 = sorted((min(max(a.y(), 0.0), h), min(max(q.y(), 0.0), h)))
        self.set_box(Box(x0, y0, x1 - x0, y1 - y0))

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if ev.button() == Qt.MouseButton.LeftButton and self._press_draws(ev.position(), ev.modifiers()):
            self._draw_from, self._draw_press = self._to_image(ev.position()), ev.position()
            ev.accept()
            return
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._draw_from is not None:
            if (ev.position() - self._draw_press).manhattanLength() >= DRAW_MIN_PX:
                self._draw_to(ev.position())
            ev.accept()
            return
        if ev.buttons() == Qt.MouseButton.NoButton:
            draws = self._press_draws(ev.position(), ev.modifiers())
            self.viewport().setCursor(Qt.CursorShape.CrossCursor if draws else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._draw_from is not None and ev.button() == Qt.MouseButton.LeftButton:
            if (ev.position() - self._draw_press).manhattanLength() >= DRAW_MIN_PX:
                self._draw_to(ev.position())
            self._draw_from = None
            ev.accept()
            return
        super().mouseReleaseEvent(ev)

    def mouseDoubleClickEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 - Qt override
        # Anywhere in the view, on the box too (where the ROI grabs the mouse first).
        if ev.button() == Qt.MouseButton.LeftButton and self._roi is not None:
            self.reset_box()
            ev.accept()
            return
        super().mouseDoubleClickEvent(ev)

    def keyPressEvent(self, ev: QKeyEvent) -> None:  # noqa: N802 - Qt override
        step = NUDGE_FRACTION * (10 if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1)
        moves = {Qt.Key.Key_Left: (-step, 0.0), Qt.Key.Key_Right: (step, 0.0),
                 Qt.Key.Key_Up: (0.0, -step), Qt.Key.Key_Down: (0.0, step)}
        key = Qt.Key(ev.key())
        if key in moves and self._roi is not None:
            self.nudge(*moves[key])
            ev.accept()
            return
        super().keyPressEvent(ev)
