"""Tools > Pan across: the sweep of the shown photo, its plot and its animation.

The sweep's positions are predicted as one batch on the worker; once they are in, the plot shows
them and the crop box walks them (``SweepAnimation``), ending on the position that shows the car
best (never on part of a car with a whole-car tick). Each position shown becomes the photo's box
and crop estimate in the photo session, so the list row, the panel and an export follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from carvalue_gui.actions import action
from carvalue_gui.box_history import BoxHistory
from carvalue_gui.crop_view import CropView
from carvalue_gui.notices import NoticeArea
from carvalue_gui.photo_collection import PhotoEntry
from carvalue_gui.photo_session import PhotoSession, best_sweep_position, sweep_car
from carvalue_gui.sweep_animation import SweepAnimation
from carvalue_gui.sweep_plot import SweepPlot
from carvalue_gui.worker import SWEEP_POSITIONS, InferenceWorker, SweepRequest
from core.predictor import Prediction, Sweep

SWEEP_WIDTH = 0.5  # with no car seen, the sweep box is half the photo wide, full height


class SweepControl(QObject):
    started = Signal()  # the sweep was asked for
    shown = Signal(object)  # Sweep: the plot shows it (the animation starts)
    animation_finished = Signal()

    def __init__(self, parent: QWidget, session: PhotoSession, worker: InferenceWorker, crop_view: CropView,
                 plot: SweepPlot, box_history: BoxHistory, notices: NoticeArea,
                 show: Callable[[Prediction], None]) -> None:
        super().__init__(parent)
        self.session, self.worker, self.crop_view, self.plot = session, worker, crop_view, plot
        self.box_history, self.notices, self.show = box_history, notices, show
        self._request = 0
        self._box_moved = False  # the user moved the box while the sweep was being computed
        self.animation = SweepAnimation(self)
        self.animation.step.connect(self._on_step)
        self.animation.finished.connect(self._on_animation_finished)
        self.action = action(parent, "Pan &across", self.start, "Ctrl+P",
                             tip="Sweep the crop box along the photo and plot the estimate")
        worker.sweep_done.connect(self._on_done)
        plot.position_clicked.connect(self.move_to)

    def start(self) -> int:
        """Predict the sweep positions as one batch; the box animates once results are in."""
        entry = self.session.current
        if entry is None:
            self.notices.add(["Pan across needs a photo: open or drop one first"])
            return 0
        if self.session.meta is None:
            self.notices.add(["Pan across needs a model: File > Open model…"])
            return 0
        if entry.photo is None:
            self.notices.add([f"Pan across: {Path(entry.path).name} is still loading; try again in a moment"])
            return 0
        self.animation.stop()
        self._box_moved = False
        self._request = self.session.requests.next()
        self.worker.submit_sweep(SweepRequest(self._request, entry.photo, SWEEP_POSITIONS, SWEEP_WIDTH,
                                              around=sweep_car(entry)))
        self.started.emit()
        return self._request

    def user_moved_box(self) -> None:
        """The user moved the box: the animation stops, and a sweep still being computed will
        only be plotted (their box stays)."""
        self.animation.stop()
        self._box_moved = True

    def show_photo(self, entry: PhotoEntry | None) -> None:
        """Another photo (or none): its own sweep, if it has one, priced with its inputs."""
        self.animation.stop()
        self.plot.show_sweep(None if entry is None else self.session.priced_sweep(entry))

    def _on_done(self, rid: int, sweep: Sweep) -> None:
        entry = self.session.current
        if rid != self._request or entry is None or sweep.predictions[0].source != entry.path:
            return  # another photo's, or an older sweep's
        entry.sweep = sweep
        self.plot.show_sweep(self.session.priced_sweep(entry))
        self.shown.emit(sweep)
        if self._box_moved:  # the user moved the box meanwhile: plot only, keep their box
            self.animation_finished.emit()
        else:
            self.animation.start(len(sweep.boxes))

    def _on_animation_finished(self) -> None:
        """The animation ends on the position that shows the car best; with no whole car
        anywhere, back on the car found."""
        entry = self.session.current
        if entry is not None and entry.sweep is not None:
            best = best_sweep_position(entry.sweep)
            if best is not None:
                self._show_position(entry, best)
            elif entry.sweep.boxes:
                self.crop_view.reset_box()
        self.animation_finished.emit()

    def _on_step(self, index: int) -> None:
        entry = self.session.current
        if entry is None or entry.sweep is None or index >= len(entry.sweep.boxes):
            self.animation.stop()
            return
        self._show_position(entry, index)

    def move_to(self, index: int) -> None:
        """Put the box on sweep position ``index`` (a click on the plot) and show the sweep's
        prediction for exactly that box, so nothing needs computing."""
        self.animation.stop()
        entry = self.session.current
        if entry is not None and entry.sweep is not None and 0 <= index < len(entry.sweep.boxes):
            self._show_position(entry, index)

    def _show_position(self, entry: PhotoEntry, index: int) -> None:
        box, pred = self.session.take_sweep_position(entry, index)
        self.crop_view.set_box(box, notify=False)
        self.box_history.placed(box)
        self.plot.mark_position(index)
        self.show(pred)
