"""Tools > What drives this estimate: the occlusion map of the shown photo's box, asked for once
the box has stood still after its estimate was shown, and dropped whenever it no longer fits
(another box, photo or model, the toggle off).  The map is computed on the inference worker,
after any crop request, priced with the photo's own inputs; the overlay draws it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from carvalue_gui.crop_view import CropView
from carvalue_gui.drivers_overlay import DriversOverlay
from carvalue_gui.photo_session import PhotoSession
from carvalue_gui.worker import DriversRequest, InferenceWorker
from core.geometry import Box

# The map is asked for once the box has stood still this long after its estimate was shown, so
# a dragged box's estimates never wait behind a map that the next move would throw away.
DRIVERS_DELAY_MS = 200


class DriversControl(QObject):
    def __init__(self, parent: QWidget, session: PhotoSession, worker: InferenceWorker, crop_view: CropView,
                 overlay: DriversOverlay) -> None:
        super().__init__(parent)
        self.session, self.worker, self.crop_view, self.overlay = session, worker, crop_view, overlay
        self._request = 0  # the newest map asked for
        self._key: tuple[str, Box, dict[str, object]] | None = None  # what it is of
        self._timer = QTimer(self, singleShot=True, interval=DRIVERS_DELAY_MS)
        self._timer.timeout.connect(self.request)
        self.action = QAction("What &drives this estimate", parent, checkable=True)
        self.action.setShortcut(QKeySequence("Ctrl+D"))
        self.action.setToolTip("Colour the box by what covering each part does to how sure the model is "
                               "of the make/model, or to the price")
        self.action.toggled.connect(self.set_shown)
        worker.drivers_done.connect(self._on_done)
        crop_view.box_moved.connect(self._on_box_moved)

    def set_shown(self, on: bool) -> None:
        """While on, each estimate shown is followed by the occlusion map of the current box."""
        if self.action.isChecked() != on:
            self.action.setChecked(on)  # emits toggled, which comes back here
            return
        self.overlay.set_active(on)
        if on:
            self.request()
        else:
            self.drop()

    def estimate_shown(self) -> None:
        """An estimate is on screen: the map of its box follows once the box stands still."""
        if self.action.isChecked():
            self._timer.start()

    def request(self) -> int:
        """Ask for the map of the shown photo's box, priced with the photo's inputs, unless that
        map is shown or on its way already; returns the request id (0: none)."""
        entry, box = self.session.current, self.crop_view.box()
        if (not self.action.isChecked() or self.session.meta is None or entry is None or box is None
                or entry.photo is None):
            return 0
        inputs = self.session.inputs_for(entry)
        key = (entry.path, box, inputs.to_dict())
        if key == self._key:
            return self._request
        self._key = key
        self._request += 1
        self.overlay.clear(waiting=True)
        self.worker.submit_drivers(DriversRequest(self._request, entry.photo, box, inputs))
        return self._request

    def drop(self) -> None:
        """Forget the map shown and any on its way (another photo, another model, toggle off)."""
        self._key = None
        self._request += 1
        self._timer.stop()
        self.worker.cancel_drivers()
        self.overlay.clear(waiting=self.action.isChecked())

    def failed(self, ident: int, message: str) -> None:
        """The worker could not make map ``ident``: say so; the next estimate shown asks again."""
        if ident == self._request:
            self._key = None
            self.overlay.show_failure(message)

    def _on_box_moved(self) -> None:
        """The box moved (dragged, nudged, reset, a sweep position): the map no longer fits it;
        a new one is asked for once the new box's estimate is shown."""
        self._timer.stop()
        if self._key is not None and self._key[1] != self.crop_view.box():
            self.drop()

    def _on_done(self, rid: int, drivers: object) -> None:
        if rid == self._request and self.action.isChecked():
            self.overlay.show_map(drivers)  # type: ignore[arg-type]
