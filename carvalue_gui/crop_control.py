"""The shown photo's crop box and its live estimate.

Every move of the box (drag, nudge, reset, undo/redo) asks the inference worker for the estimate
of the new box; the newest request wins (older results are dropped on arrival). A photo not yet
estimated gets the automatic estimate: the car is found, the box moves onto it, and that estimate
becomes the photo's own. The box and its estimate are kept in the photo session.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from carvalue_gui.box_history import BoxHistory
from carvalue_gui.crop_view import CropView
from carvalue_gui.photo_collection import PhotoEntry
from carvalue_gui.photo_session import PhotoSession
from carvalue_gui.result_panel import ResultPanel
from carvalue_gui.worker import CropRequest, InferenceWorker
from core.geometry import Box
from core.predictor import Prediction


class CropControl(QObject):
    def __init__(self, parent: QWidget, session: PhotoSession, worker: InferenceWorker, crop_view: CropView,
                 panel: ResultPanel, user_moved_box: Callable[[], None]) -> None:
        super().__init__(parent)
        self.session, self.worker, self.crop_view, self.panel = session, worker, crop_view, panel
        self.user_moved_box = user_moved_box  # (a sweep being computed then leaves the box alone)
        self.history = BoxHistory(self._apply_box, self)
        crop_view.box_changed.connect(self._on_box_changed)
        worker.crop_done.connect(self._on_crop_done)

    def show_photo(self, entry: PhotoEntry) -> None:
        """The photo's box on screen and its estimate asked for (the photo is decoded)."""
        self.history.reset(entry.box)
        self.crop_view.set_photo(entry.photo, entry.box, found=entry.found_box())
        self.request()

    def show(self, pred: Prediction | None) -> int:
        """Show an estimate the window already has (or none) as the newest request."""
        rid = self.session.requests.next()
        self.panel.show_prediction(rid, pred)
        return rid

    def request(self) -> int:
        """Ask for the estimate of the box on screen; returns the request id (0: none)."""
        entry, box = self.session.current, self.crop_view.box()
        if entry is None or box is None or entry.photo is None:
            return 0
        # A photo not yet estimated: find the car and predict on it (at most two passes).
        return self._submit(entry, box, auto=entry.box is None and entry.prediction is None)

    def _submit(self, entry: PhotoEntry, box: Box, auto: bool = False) -> int:
        if self.session.meta is None or entry.photo is None:
            return self.show(None)
        rid = self.session.requests.next()
        self.worker.submit_crop(CropRequest(rid, entry.photo, box, auto=auto))
        return rid

    def _on_box_changed(self, box: Box) -> None:
        entry = self.session.current
        if entry is not None:
            self.user_moved_box()
            self.session.set_box(entry, box)
            self.history.moved(entry.box)
            self._submit(entry, box)

    def _apply_box(self, box: Box | None) -> None:
        """Undo/redo: put the box back (the estimate follows as for any move)."""
        entry = self.session.current
        if entry is not None:  # None: the automatic box (the car found, else the whole photo)
            self.crop_view.set_box(box or entry.found_box() or Box.full(entry.size))

    def _on_crop_done(self, rid: int, pred: Prediction) -> None:
        if rid != self.session.requests.latest:
            return  # the box moved on: a newer estimate is coming
        entry = self.session.current
        if entry is not None and self.session.take_crop(entry, pred):
            self.show_found_car(entry)
        self.panel.show_prediction(rid, pred)

    def show_found_car(self, entry: PhotoEntry) -> None:
        """Outline where the car was found; while the user has not set a box of their own, the
        crop box moves onto it (quietly: the estimate on it is the one just made)."""
        if entry is not self.session.current or entry.photo is None:
            return
        found = entry.found_box()
        self.crop_view.set_found_box(found)
        if entry.box is None and found is not None and self.crop_view.box() != found:
            self.crop_view.set_box(found, notify=False)
