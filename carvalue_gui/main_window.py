"""The main window: builds the widgets and wires them to the photo session and the threads.

State lives elsewhere: the photos, what the user set and every price shown or exported in the
Qt-free photo session (``photo_session``); photos coming in in ``photo_intake`` (with the loader
thread); Pan across in ``sweep_control``; the occlusion map in ``drivers_control``; exports in
``result_export``; estimates are computed on the inference worker thread. Newest request wins:
each estimate asked for the screen gets the session's next request id, and a result whose id is
not the newest is dropped on arrival. docs/architecture.md draws the parts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from carvalue_gui.actions import action
from carvalue_gui.crop_control import CropControl
from carvalue_gui.crop_view import NUDGE_FRACTION, CropView
from carvalue_gui.drivers_control import DriversControl
from carvalue_gui.drivers_overlay import DriversOverlay
from carvalue_gui.help_dialogs import HtmlDialog, about_html, crop_view_rows, shortcuts_html
from carvalue_gui.loader import PhotoLoader
from carvalue_gui.model_dialog import ModelDialog
from carvalue_gui.notices import NoticeArea
from carvalue_gui.photo_collection import PhotoEntry
from carvalue_gui.photo_intake import PhotoIntake
from carvalue_gui.photo_session import PhotoSession, fields_problem
from carvalue_gui.photo_strip import FileDropFilter, PhotoStrip
from carvalue_gui.result_export import ResultExport
from carvalue_gui.result_panel import ResultPanel
from carvalue_gui.settings import Settings, load_settings, save_settings
from carvalue_gui.sweep_control import SweepControl
from carvalue_gui.sweep_plot import SweepPlot
from carvalue_gui.window_layout import add_menus, restore_layout, store_layout
from carvalue_gui.worker import BatchItem, InferenceWorker
from core.modelfile import ModelFileError
from core.predictor import Prediction, Predictor, default_model_path


class MainWindow(QMainWindow):
    result_shown = Signal(int, object)  # request id, Prediction: chart and text now show it
    batch_finished = Signal()  # every photo has its whole-photo estimate

    def __init__(self, model_path: str | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("CarValue")
        problem = ""
        if settings is None:
            settings, problem = load_settings()
        self.settings = settings
        self.predictor: Predictor | None = None
        self.session = PhotoSession()
        self.worker = InferenceWorker(self)
        self.loader = PhotoLoader(self)
        self._build_widgets()
        s, w = self.session, self.worker
        self.crops = CropControl(self, s, w, self.crop_view, self.panel, lambda: self.sweeps.user_moved_box())
        self.box_history = self.crops.history
        self.intake = PhotoIntake(self, s, self.loader, self.strip, self.notices, settings, self._estimate,
                                  self.select_photo)
        self.sweeps = SweepControl(self, s, w, self.crop_view, self.sweep_plot, self.box_history, self.notices,
                                   self.crops.show)
        self.drivers_control = DriversControl(self, s, w, self.crop_view, self.drivers)
        self.exports = ResultExport(self, s, self.panel, self.sweep_plot, self.notices, self.statusBar(),
                                    self.intake.start_dir)
        self.loading_finished = self.intake.finished  # a loader job is done (its id)
        self.sweep_shown = self.sweeps.shown  # Sweep: the plot shows it (the animation starts)
        self.sweep_animation_finished = self.sweeps.animation_finished
        self._wire()
        self._build_actions()
        self._splits = {"main": self.main_split, "left": self.left_split}
        restore_layout(self, settings, self._splits, self.panel.price_inputs.year)
        if problem:
            self.notices.add([problem])
        self._load_initial_model(model_path)

    @property
    def entries(self) -> dict[int, PhotoEntry]:
        """The photos by key, in the order they came."""
        return self.session.photos.entries

    def current_entry(self) -> PhotoEntry | None:
        return self.session.current

    # == construction ==========================================================================
    def _build_widgets(self) -> None:
        self.strip = PhotoStrip()
        self.crop_view = CropView()
        self.drivers = DriversOverlay(self.crop_view)
        self.sweep_plot = SweepPlot()
        self.panel = ResultPanel()
        self.notices = NoticeArea()
        self.left_split = QSplitter(Qt.Orientation.Vertical)
        self.left_split.addWidget(self.crop_view)
        self.left_split.addWidget(self.sweep_plot)
        self.left_split.setStretchFactor(0, 3)
        self.left_split.setStretchFactor(1, 1)
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        for widget in (self.strip, self.left_split, self.panel):
            self.main_split.addWidget(widget)
        self.main_split.setStretchFactor(1, 3)
        self.main_split.setStretchFactor(2, 2)
        self.main_split.setSizes([220, 640, 440])
        self.left_split.setSizes([520, 220])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.main_split, 1)
        layout.addWidget(self.notices)
        self.setCentralWidget(central)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.progress_label = QLabel("")
        self.model_label = QLabel("")
        self.statusBar().addWidget(self.progress_label)
        self.statusBar().addWidget(self.progress)
        self.statusBar().addPermanentWidget(self.model_label)

    def _wire(self) -> None:
        s, panel = self.session, self.panel
        self.worker.batch_done.connect(self._on_batch_done)
        self.worker.failed.connect(self._on_worker_failed)
        self.drops = FileDropFilter(self)
        for w in (self, self.strip, self.crop_view, self.panel, self.sweep_plot):
            self.drops.watch(w)
        self.drops.paths_dropped.connect(self.intake.open_paths)
        self.intake.changed.connect(self._update_progress)
        self.intake.changed.connect(self._update_actions)
        self.sweeps.started.connect(lambda: self.progress_label.setText("Panning across…"))
        self.sweeps.shown.connect(lambda _sweep: self._update_progress())
        self.strip.photo_selected.connect(self.select_photo)
        panel.result_shown.connect(self._on_panel_shown)
        panel.model_details_requested.connect(self.show_model_dialog)
        # The fields and the car picker edit the shown photo in the session; it prices.
        panel.pricer = s.priced_current
        panel.price_inputs.fields_edited.connect(
            lambda fields: s.current and panel.price_inputs.show_problem(s.set_fields(s.current, fields)))
        panel.price_inputs.year_changed.connect(self._on_year_of_sale)
        panel.car_picker.named.connect(lambda car: s.current and s.name_car(s.current, car))
        panel.car_picker.undone.connect(lambda: s.current and s.undo_car(s.current))
        s.row_changed.connect(self._show_row)
        s.repriced.connect(self._on_repriced)

    def _build_actions(self) -> None:
        i, e = self.intake, self.exports
        self.act_open, self.act_open_folder, self.act_paste = i.act_open, i.act_open_folder, i.act_paste
        self.recent_menu = i.recent_menu
        self.act_export, self.act_charts, self.act_copy = e.act_export, e.act_charts, e.act_copy
        self.act_sweep, self.act_drivers = self.sweeps.action, self.drivers_control.action
        self.act_model = action(self, "Open &model…", self._ask_open_model, "Ctrl+M")
        self.act_model_info = action(self, "Model &details…", self.show_model_dialog)
        self.act_quit = action(self, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_reset = action(self, "&Reset crop box to the car", self.crop_view.reset_box, "Ctrl+R")
        self.act_whole = action(self, "Crop box on the &whole photo", self.crop_view.whole_photo_box, "Ctrl+Shift+R")
        self.act_undo, self.act_redo = self.box_history.actions(self)
        self.act_remove = action(self, "Re&move photo", self.remove_photo, QKeySequence.StandardKey.Delete,
                                 tip="Remove the selected photo from the list (the file stays)")
        self.act_about = action(self, "&About CarValue", self.show_about)
        self.act_shortcuts = action(self, "&Keyboard shortcuts", self.show_shortcuts,
                                    QKeySequence.StandardKey.HelpContents)
        menus = {"&File": (self.act_open, self.act_open_folder, self.act_paste, self.recent_menu, None,
                           self.act_model, self.act_model_info, None, self.act_export, self.act_charts, None,
                           self.act_quit),
                 "&Edit": (self.act_undo, self.act_redo, None, self.act_copy, self.act_paste, self.act_reset,
                           self.act_whole, self.act_remove),
                 "&Tools": (self.act_sweep, self.act_drivers),
                 "&Help": (self.act_shortcuts, self.act_about)}
        add_menus(self, menus, toolbar=(self.act_open, self.act_open_folder, self.act_reset, self.act_sweep,
                                        self.act_drivers, self.act_copy, self.act_export))

    # == model ==================================================================================
    def _load_initial_model(self, model_path: str | None) -> None:
        if model_path:
            if not self.open_model(model_path, remember=False):
                self._set_predictor(None, f"The model given on the command line was not loaded: {model_path}")
            return
        stored = self.settings.model_path
        if stored and self.open_model(stored, remember=False):
            return
        try:
            self._set_predictor(Predictor.load(None))
        except ModelFileError as e:
            self._set_predictor(None, f"The bundled model could not be loaded: {e}")

    def open_model(self, path: str, remember: bool = True) -> bool:
        """Load another model file; on failure say why and keep the current model."""
        try:
            predictor = Predictor.load(path)
        except ModelFileError as e:
            keep = f"; still using {self.predictor.metadata.name}" if self.predictor else "; no model is loaded"
            self.notices.add([f"Model not loaded: {e}{keep}"])
            if self.predictor is None:
                self.panel.set_model(None, str(e))
            return False
        self._set_predictor(predictor)
        if remember:
            self.settings.model_path = str(Path(path).resolve())
        return True

    def _set_predictor(self, predictor: Predictor | None, problem: str = "") -> None:
        self.predictor = predictor
        self.session.set_model(predictor.metadata if predictor else None, str(predictor.path) if predictor else "")
        self.worker.set_predictor(predictor)  # empties its queue: the photos waiting there ...
        self.drivers_control.drop()  # (the worker dropped its map too)
        self.loader.release(self.session.photos.drop_all_awaiting())  # ... free their loader slots
        self.panel.set_model(predictor.metadata if predictor else None, problem)
        self.act_model_info.setEnabled(predictor is not None)
        self._update_actions()
        if predictor is None:
            self.model_label.setText("No model loaded — File > Open model…")
            self.notices.add([problem or "No model loaded"])
            return
        self.model_label.setText(f"Model: {predictor.metadata.name}")
        entries = self.entries.values()
        self._estimate([e for e in entries if e.photo is not None])
        evicted = [(e.key, e.path) for e in entries if e.photo is None]
        if evicted:  # estimated when they come back (see PhotoIntake), a few at a time
            self.loader.reload(evicted, urgent=False)
        self.sweep_plot.show_sweep(None)
        self.crops.request()

    def _update_actions(self) -> None:
        """Enable what has something to act on now."""
        entry, shown = self.current_entry(), self.panel.shown is not None
        self.act_sweep.setEnabled(self.predictor is not None and entry is not None)
        self.act_export.setEnabled(self.predictor is not None and bool(self.entries))
        for a in (self.act_charts, self.act_copy):
            a.setEnabled(shown)
        for a in (self.act_reset, self.act_whole, self.act_remove):
            a.setEnabled(entry is not None)

    # == dialogs ================================================================================
    def show_about(self) -> HtmlDialog:
        meta = self.predictor.metadata if self.predictor else None
        dialog = HtmlDialog("About CarValue", about_html(meta, self.session.model_path), self)
        dialog.show()
        return dialog

    def show_shortcuts(self) -> HtmlDialog:
        actions = [a for menu in self.menuBar().actions() if menu.menu() is not None
                   for a in menu.menu().actions() if not a.isSeparator()]  # type: ignore[union-attr]
        dialog = HtmlDialog("Keyboard shortcuts", shortcuts_html(
            actions, crop_view_rows(self.act_reset, NUDGE_FRACTION)), self)
        dialog.show()
        return dialog

    def show_model_dialog(self) -> None:
        if self.predictor is not None:
            ModelDialog(self.predictor.metadata, str(self.predictor.path), self, self.session.year_of_sale).show()

    def _ask_open_model(self) -> None:
        start = str(self.predictor.path.parent) if self.predictor else str(default_model_path().parent)
        path, _ = QFileDialog.getOpenFileName(self, "Open a CarValue model", start,
                                              "CarValue models (*.onnx);;All files (*)")
        if path:
            self.open_model(path)

    # == whole-photo estimates (batch) ==========================================================
    def _estimate(self, entries: list[PhotoEntry]) -> None:
        if entries and self.predictor is not None:
            self.session.queued(len(entries))
            self.worker.submit_batch(self.session.generation, [BatchItem(e.key, e.photo) for e in entries])
        self._update_progress()

    def _on_batch_done(self, generation: int, results: list[tuple[int, Prediction | str]]) -> None:
        if generation != self.session.generation:
            return
        estimated, problems = self.session.take_batch(results)
        for entry in estimated:
            self.crops.show_found_car(entry)
        if problems:
            self.notices.add(problems)
        self.loader.release(self.session.photos.estimated(key for key, _ in results))
        self._update_progress()
        if not self.session.batch_pending():
            self.batch_finished.emit()

    def _show_row(self, entry: PhotoEntry) -> None:
        row = self.session.row(entry)
        self.strip.set_estimate(entry.key, entry.path, row.prediction, row.note, crop=row.crop)

    def _on_repriced(self, entry: PhotoEntry) -> None:
        """The shown photo's fields, named car or the year of sale changed: everything on screen
        is priced anew (no forward pass)."""
        self.panel.car_picker.show_choice(entry.cars[-1] if entry.cars else None)
        self.panel.reprice()
        if entry.sweep is not None:
            self.sweep_plot.show_sweep(self.session.priced_sweep(entry))

    def _on_year_of_sale(self, year: int) -> None:
        self.session.set_year_of_sale(year)
        if self.session.current is None:  # (else repriced with the photo) the caption names the year
            self.panel.reprice()

    def _update_progress(self) -> None:
        loading, pending, s = self.intake.loading(), self.session.batch_pending(), self.session
        if loading is not None:
            done, total = loading
            self.progress_label.setText(f"Loading photos {done}/{total}" if total else "Finding photos…")
            self.progress.setRange(0, max(total, 1) if total else 0)
            self.progress.setValue(done)
        elif pending and self.predictor is not None:
            self.progress_label.setText(f"Estimating {s.batch_done}/{s.batch_total} photos")
            self.progress.setRange(0, s.batch_total)
            self.progress.setValue(s.batch_done)
        else:
            n = len(self.entries)
            self.progress_label.setText(f"{n} photo{'s' if n != 1 else ''}" if n else "")
        self.progress.setVisible(loading is not None or bool(pending and self.predictor is not None))

    # == the selected photo and its crop ========================================================
    def select_photo(self, key: int) -> None:
        entry = self.session.select(key)
        if entry is None:
            return
        self.sweeps.show_photo(entry)
        self.drivers_control.drop()
        self.panel.price_inputs.show_fields(entry.fields, fields_problem(entry.fields))
        self.panel.car_picker.show_choice(entry.cars[-1] if entry.cars else None)
        self.setWindowTitle(f"CarValue — {Path(entry.path).name}")
        if entry.photo is None:  # let go earlier: decode it again off the GUI thread
            self.box_history.reset(entry.box)
            self.crop_view.set_photo(None, message=f"Loading {Path(entry.path).name}…")
            self.crops.show(None)
            self.loader.reload([(entry.key, entry.path)])
            return
        self.crops.show_photo(entry)
        self._update_actions()

    def _on_panel_shown(self, rid: int, pred: Prediction | None) -> None:
        self._update_actions()
        if pred is not None:  # a cleared panel is not a result
            self.drivers_control.estimate_shown()
            self.result_shown.emit(rid, pred)

    def _on_worker_failed(self, kind: str, ident: int, message: str) -> None:
        self.notices.add([f"Prediction failed ({kind}): {message}"])
        if kind == "drivers":
            self.drivers_control.failed(ident, message)

    def remove_photo(self) -> bool:
        """Take the selected photo off the list (the file stays); the next one is shown."""
        entry = self.current_entry()
        if entry is None:
            return False
        keys = self.strip.keys()
        row = keys.index(entry.key)
        self.sweeps.animation.stop()
        self.session.batch_total -= self.worker.cancel_batch({entry.key})
        if self.session.remove(entry):
            self.loader.release()
        self.strip.remove(entry.key)
        rest = self.strip.keys()
        if not rest:
            self.drivers_control.drop()
            self.crop_view.set_photo(None)
            self.sweep_plot.show_sweep(None)
            self.crops.show(None)
            self.box_history.reset(None)
            self.setWindowTitle("CarValue")
        else:
            self.strip.select(rest[min(row, len(rest) - 1)])
        self._update_progress()
        self._update_actions()
        if self.session.batch_total and not self.session.batch_pending():
            self.batch_finished.emit()
        return True

    # == shutdown ===============================================================================
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        store_layout(self, self.settings, self._splits, self.panel.price_inputs.year)
        try:
            save_settings(self.settings)
        except OSError as e:
            print(f"carvalue: could not save settings: {e}")
        self.sweeps.animation.stop()
        self.loader.stop()
        self.worker.stop()
        self.crop_view.shutdown()
        super().closeEvent(event)
