"""The main window: wires the widgets, the loader thread and the inference thread together.

It owns the request ids and passes photos between the parts: the photo collection
(``photo_collection``: entries and the memory limits), the loader, the inference worker, the
widgets, the box history (undo/redo), the sweep animation and the export dialogs. Every rule
about prices lives in ``core`` and every piece of drawing in the widgets. Newest request wins:
each crop/sweep request gets a new id, and a result whose id is not the newest is dropped on
arrival.
"""
# Over 400 lines: MainWindow wires every widget; issue 31 moves its state out

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QByteArray, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from carvalue_gui.box_history import BoxHistory
from carvalue_gui.crop_view import NUDGE_FRACTION, CropView
from carvalue_gui.drivers_overlay import DriversOverlay
from carvalue_gui.export import write_csv, write_json
from carvalue_gui.export_dialogs import ExportDialogs, titled_image
from carvalue_gui.help_dialogs import HtmlDialog, about_html, crop_view_rows, shortcuts_html
from carvalue_gui.loader import LoadedPhoto, PhotoLoader, make_thumbnail
from carvalue_gui.model_dialog import ModelDialog
from carvalue_gui.notices import NoticeArea
from carvalue_gui.photo_collection import PhotoCollection, PhotoEntry
from carvalue_gui.photo_strip import FileDropFilter, PhotoStrip
from carvalue_gui.result_panel import ResultPanel
from carvalue_gui.settings import Settings, load_settings, save_settings
from carvalue_gui.sweep_animation import SweepAnimation
from carvalue_gui.sweep_plot import SweepPlot
from carvalue_gui.worker import (
    SWEEP_POSITIONS,
    BatchItem,
    CropRequest,
    DriversRequest,
    InferenceWorker,
    SweepRequest,
)
from core.framing import WholeCar
from core.geometry import Box
from core.modelfile import ModelFileError
from core.money import format_dollars
from core.predictor import Prediction, Predictor, Sweep, default_model_path, reprice
from core.preprocess import IMAGE_SUFFIXES, ImageLoadError, Photo, photo_from_image
from core.pricing import PriceInputs, current_year
from core.report import PhotoResults, prediction_text

SWEEP_WIDTH = 0.5  # the sweep box is half the photo wide, full height (the seed's study)
# The map is asked for once the box has stood still this long after its estimate was shown, so
# a dragged box's estimates never wait behind a map that the next move would throw away.
DRIVERS_DELAY_MS = 200
DEFAULT_SIZE = (1360, 860)  # a first start's window, less where the screen's free area is smaller
# Room kept around the window for the window manager's frame and title bar: they are not part of
# the size asked for and are not known before the window is first shown.
FRAME_ROOM = (16, 48)


def fitted_geometry(size: QSize, free: QRect) -> QRect:
    """``size``, shrunk to fit ``free`` (a screen's available geometry) with its frame, centred
    in it: a 1360x860 window on a 1280x800 screen would hide the price panel off the edge."""
    w = min(size.width(), free.width() - FRAME_ROOM[0])
    h = min(size.height(), free.height() - FRAME_ROOM[1])
    rect = QRect(0, 0, w, h)
    rect.moveCenter(free.center())
    return rect


class MainWindow(QMainWindow):
    result_shown = Signal(int, object)  # request id, Prediction: chart and text now show it
    sweep_shown = Signal(object)  # Sweep: the plot shows it (the animation starts)
    sweep_animation_finished = Signal()
    loading_finished = Signal(int)  # loader job id
    batch_finished = Signal()  # every photo has its whole-photo estimate

    def __init__(self, model_path: str | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("CarValue")
        if settings is None:
            settings, problem = load_settings()
        else:
            problem = ""
        self.settings = settings
        self.predictor: Predictor | None = None
        self.photos = PhotoCollection()
        self._request_id = 0  # newest crop/sweep-display request
        self._sweep_request = 0
        self._sweep_box_moved = False
        self._drivers_request = 0  # newest "what drives this estimate" map request
        self._drivers_key: tuple[str, Box, dict[str, object]] | None = None  # what it is of
        self._drivers_timer = QTimer(self, singleShot=True, interval=DRIVERS_DELAY_MS)
        self._drivers_timer.timeout.connect(self._request_drivers)
        self._generation = 0  # bumps when the model changes: older batch results are dropped
        self._batch_total = 0
        self._batch_done = 0
        self._loading: dict[int, tuple[int, int]] = {}  # job id -> (done, total)
        self._select_first: set[int] = set()  # load jobs whose first new photo is still to be shown
        self.dropped_results = 0  # stale results thrown away (tests, benchmark)
        self.sweep_animation = SweepAnimation(self)
        self.sweep_animation.step.connect(self._on_sweep_step)
        self.sweep_animation.finished.connect(self._on_sweep_animation_finished)
        self.exports = ExportDialogs(self)

        self.worker = InferenceWorker(self)
        self.worker.crop_done.connect(self._on_crop_done)
        self.worker.sweep_done.connect(self._on_sweep_done)
        self.worker.batch_done.connect(self._on_batch_done)
        self.worker.drivers_done.connect(self._on_drivers_done)
        self.worker.failed.connect(self._on_worker_failed)
        self.loader = PhotoLoader(self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.reloaded.connect(self._on_reloaded)
        self.loader.failed.connect(lambda _job, msgs: self.notices.add(msgs))
        self.loader.progress.connect(self._on_load_progress)
        self.loader.finished.connect(self._on_load_finished)

        self._build_widgets()
        self.box_history = BoxHistory(self._apply_box, self)
        self._build_actions()
        self._restore_layout()
        if problem:
            self.notices.add([problem])
        self._load_initial_model(model_path)

    @property
    def entries(self) -> dict[int, PhotoEntry]:
        """The photos by key, in the order they came."""
        return self.photos.entries

    @property
    def sweep_step_ms(self) -> int:
        """The pan-across animation's time per position (0: no animation)."""
        return self.sweep_animation.step_ms

    @sweep_step_ms.setter
    def sweep_step_ms(self, ms: int) -> None:
        self.sweep_animation.step_ms = ms

    @property
    def max_resident(self) -> int:
        return self.photos.max_resident

    @max_resident.setter
    def max_resident(self, n: int) -> None:
        self.photos.max_resident = n

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
        self.main_split.addWidget(self.strip)
        self.main_split.addWidget(self.left_split)
        self.main_split.addWidget(self.panel)
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

        self.drops = FileDropFilter(self)
        for w in (self, self.strip, self.crop_view, self.panel, self.sweep_plot):
            self.drops.watch(w)
        self.drops.paths_dropped.connect(self.open_paths)
        self.strip.photo_selected.connect(self.select_photo)
        self.crop_view.box_changed.connect(self._on_box_changed)
        self.crop_view.box_moved.connect(self._on_box_moved)
        self.sweep_plot.position_clicked.connect(self.move_to_sweep_position)
        self.panel.result_shown.connect(self._on_panel_shown)
        self.panel.model_details_requested.connect(self.show_model_dialog)
        self.panel.price_inputs.changed.connect(self._on_price_inputs_changed)
        self._rows_year = self.panel.price_inputs.inputs().year

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.progress_label = QLabel("")
        self.model_label = QLabel("")
        self.statusBar().addWidget(self.progress_label)
        self.statusBar().addWidget(self.progress)
        self.statusBar().addPermanentWidget(self.model_label)

    def _build_actions(self) -> None:
        def act(text: str, slot: Callable[[], object], shortcut: QKeySequence | str | None = None) -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            # ``triggered`` passes its ``checked`` flag: the slot is called with no argument, so a
            # slot with a defaulted first parameter (``remove_photo(key=None)``) never gets ``False``.
            a.triggered.connect(lambda _checked=False: slot())
            return a

        self.act_open = act("&Open photos…", self._ask_open_photos, QKeySequence.StandardKey.Open)
        self.act_open_folder = act("Open &folder…", self._ask_open_folder, "Ctrl+Shift+O")
        self.act_paste = act("&Paste image", self.paste_image, QKeySequence.StandardKey.Paste)
        self.act_model = act("Open &model…", self._ask_open_model, "Ctrl+M")
        self.act_model_info = act("Model &details…", self.show_model_dialog)
        self.act_export = act("&Export predictions…", self.exports.ask_export, "Ctrl+E")
        self.act_charts = act("Save &charts as PNG…", self.exports.ask_save_charts)
        self.act_quit = act("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_copy = act("&Copy result as text", self.copy_result, QKeySequence.StandardKey.Copy)
        self.act_reset = act("&Reset crop box to the car", self.crop_view.reset_box, "Ctrl+R")
        self.act_whole = act("Crop box on the &whole photo", self.crop_view.whole_photo_box, "Ctrl+Shift+R")
        self.act_sweep = act("Pan &across", self.start_sweep, "Ctrl+P")
        self.act_sweep.setToolTip("Sweep the crop box along the photo and plot the estimate")
        self.act_drivers = QAction("What &drives this estimate", self, checkable=True)
        self.act_drivers.setShortcut(QKeySequence("Ctrl+D"))
        self.act_drivers.setToolTip("Colour the box by what covering each part does to how sure the model is "
                                    "of the make/model, or to the price")
        self.act_drivers.toggled.connect(self.set_drivers_shown)
        self.act_undo, self.act_redo = self.box_history.actions(self)
        self.act_remove = act("Re&move photo", self.remove_photo, QKeySequence.StandardKey.Delete)
        self.act_remove.setToolTip("Remove the selected photo from the list (the file stays)")
        self.act_about = act("&About CarValue", self.show_about)
        self.act_shortcuts = act("&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)

        file_menu = self.menuBar().addMenu("&File")
        for a in (self.act_open, self.act_open_folder, self.act_paste):
            file_menu.addAction(a)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.act_model)
        file_menu.addAction(self.act_model_info)
        file_menu.addSeparator()
        file_menu.addAction(self.act_export)
        file_menu.addAction(self.act_charts)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addAction(self.act_undo)
        edit_menu.addAction(self.act_redo)
        edit_menu.addSeparator()
        edit_menu.addAction(self.act_copy)
        edit_menu.addAction(self.act_paste)
        edit_menu.addAction(self.act_reset)
        edit_menu.addAction(self.act_whole)
        edit_menu.addAction(self.act_remove)
        tools_menu = self.menuBar().addMenu("&Tools")
        tools_menu.addAction(self.act_sweep)
        tools_menu.addAction(self.act_drivers)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)
        help_menu.addAction(self.act_about)

        bar = self.addToolBar("Main")
        bar.setObjectName("main_toolbar")
        for a in (self.act_open, self.act_open_folder, self.act_reset, self.act_sweep, self.act_drivers,
                  self.act_copy, self.act_export):
            bar.addAction(a)

    def _restore_layout(self) -> None:
        s = self.settings
        restored = bool(s.geometry) and self.restoreGeometry(QByteArray.fromBase64(s.geometry.encode()))
        screen = QGuiApplication.screenAt(self.geometry().center()) or self.screen()
        free = screen.availableGeometry()
        if not restored:  # a first start: the default size, or less on a small screen
            self.setGeometry(fitted_geometry(QSize(*DEFAULT_SIZE), free))
        elif not (self.isMaximized() or self.isFullScreen()) and fitted_geometry(self.size(), free).size() != self.size():
            self.setGeometry(fitted_geometry(self.size(), free))  # saved on a larger screen
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))
        if s.year_of_sale:
            self.panel.price_inputs.year.setValue(s.year_of_sale)
        for name, split in (("main", self.main_split), ("left", self.left_split)):
            sizes = s.splitters.get(name)
            if sizes and len(sizes) == split.count():
                split.setSizes(sizes)

    def _store_layout(self) -> None:
        s = self.settings
        s.geometry = bytes(self.saveGeometry().toBase64().data()).decode()
        s.window_state = bytes(self.saveState().toBase64().data()).decode()
        s.splitters = {"main": self.main_split.sizes(), "left": self.left_split.sizes()}
        year = self.panel.price_inputs.year.value()
        s.year_of_sale = 0 if year == current_year() else year

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
            keep = (f"; still using {self.predictor.metadata.name}" if self.predictor
                    else "; no model is loaded")
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
        self._generation += 1
        self.worker.set_predictor(predictor)  # empties its queue: the photos waiting there ...
        self._drop_drivers()  # (the worker dropped its map too)
        self.loader.release(self.photos.drop_all_awaiting())  # ... free their loader slots
        self.panel.set_model(predictor.metadata if predictor else None, problem)
        self.act_model_info.setEnabled(predictor is not None)
        self._update_actions()
        if predictor is None:
            self.model_label.setText("No model loaded — File > Open model…")
            self.notices.add([problem or "No model loaded"])
            return
        self.model_label.setText(f"Model: {predictor.metadata.name}")
        for e in self.entries.values():  # old estimates came from another model
            e.prediction = e.crop_prediction = e.sweep = None
            e.error = ""
            self._show_row(e)
        self._batch_total = self._batch_done = 0
        self._queue_batch([e for e in self.entries.values() if e.photo is not None])
        evicted = [(e.key, e.path) for e in self.entries.values() if e.photo is None]
        if evicted:  # estimated when they come back (see _on_reloaded), a few at a time
            self.loader.reload(evicted, urgent=False)
        self.sweep_plot.show_sweep(None)
        self._request_current_crop()

    def _update_actions(self) -> None:
        """Enable what has something to act on now."""
        entry = self.current_entry()
        shown = self.panel.shown is not None
        self.act_sweep.setEnabled(self.predictor is not None and entry is not None)
        self.act_export.setEnabled(self.predictor is not None and bool(self.entries))
        self.act_charts.setEnabled(shown)
        self.act_copy.setEnabled(shown)
        self.act_reset.setEnabled(entry is not None)
        self.act_whole.setEnabled(entry is not None)
        self.act_remove.setEnabled(entry is not None)

    def show_about(self) -> HtmlDialog:
        meta = self.predictor.metadata if self.predictor else None
        dialog = HtmlDialog("About CarValue", about_html(meta, str(self.predictor.path) if self.predictor else ""),
                            self)
        dialog.show()
        return dialog

    def show_shortcuts(self) -> HtmlDialog:
        dialog = HtmlDialog("Keyboard shortcuts", shortcuts_html(
            self._all_actions(), crop_view_rows(self.act_reset, NUDGE_FRACTION)), self)
        dialog.show()
        return dialog

    def _all_actions(self) -> list[QAction]:
        return [a for menu in (self.menuBar().actions()) if menu.menu() is not None
                for a in menu.menu().actions() if not a.isSeparator()]  # type: ignore[union-attr]

    def show_model_dialog(self) -> None:
        if self.predictor is not None:
            ModelDialog(self.predictor.metadata, str(self.predictor.path), self,
                        self.panel.price_inputs.inputs().year).show()

    # == photos in ==============================================================================
    def open_paths(self, paths: list[str]) -> int:
        """Queue files and folders for loading (off the GUI thread); returns the loader job id."""
        paths = [p for p in paths if p]
        if not paths:
            return 0
        first = Path(paths[0])
        self.settings.last_folder = str(first if first.is_dir() else first.parent)
        self.settings.add_recent(paths)  # files and folders alike
        job = self.loader.load(paths)
        self._loading[job] = (0, 0)
        self._select_first.add(job)
        self._update_progress()
        return job

    def _on_loaded(self, job: int, loaded: list[LoadedPhoto]) -> None:
        fresh: list[PhotoEntry] = []
        for lp in loaded:
            if self.photos.has_path(lp.path):
                self.loader.release()
            else:
                fresh.append(self._add_entry(lp.path, lp.photo, lp.thumbnail))
        if self.predictor is None:
            self.loader.release(len(fresh))
        for e in fresh:
            if self.predictor is not None:
                self.photos.await_estimate(e.key)
            self._show_row(e)
        if fresh and (job in self._select_first or self.strip.current_key() is None):
            self._select_first.discard(job)  # the first photo of each opening is shown
            self.strip.select(fresh[0].key)  # its crop request first: the worker is idle now
        self._queue_batch(fresh)
        self.photos.evict(self.strip.current_key())
        self._update_actions()

    def _add_entry(self, path: str, photo: Photo, thumbnail: bytes) -> PhotoEntry:
        entry = self.photos.add(path, photo)
        self.strip.add_photo(entry.key, path, thumbnail)
        return entry

    def _on_reloaded(self, _job: int, items: list[tuple[int, LoadedPhoto]]) -> None:
        for key, lp in items:
            entry = self.entries.get(key)
            if entry is None or entry.photo is not None:
                self.loader.release()
                continue
            self.photos.set_photo(entry, lp.photo)
            if entry.prediction is None and self.predictor is not None and self.photos.await_estimate(key):
                self._queue_batch([entry])
            else:  # estimated already, or its estimate is on its way
                self.loader.release()
            if key == self.strip.current_key():
                self.select_photo(key)
        self.photos.evict(self.strip.current_key())

    def _on_load_progress(self, job: int, done: int, total: int) -> None:
        self._loading[job] = (done, total)
        self._update_progress()

    def _on_load_finished(self, job: int) -> None:
        self._loading.pop(job, None)
        self._select_first.discard(job)
        self._update_progress()
        self.loading_finished.emit(job)

    def paste_image(self) -> bool:
        """Add the clipboard's image as a photo."""
        qimg = QGuiApplication.clipboard().image()
        if qimg.isNull():
            self.notices.add(["The clipboard holds no image to paste"])
            return False
        rgb = qimg.convertToFormat(QImage.Format.Format_RGB888)
        data = bytes(rgb.constBits())[: rgb.sizeInBytes()]
        pil = Image.frombuffer("RGB", (rgb.width(), rgb.height()), data, "raw", "RGB",
                               rgb.bytesPerLine(), 1)
        name = self.photos.next_paste_name()
        try:
            photo = photo_from_image(pil, name)
        except ImageLoadError as e:
            self.notices.add([str(e)])
            return False
        entry = self._add_entry(name, photo, make_thumbnail(photo))
        self._queue_batch([entry])
        self.strip.select(entry.key)
        return True

    # == whole-photo estimates (batch) ==========================================================
    def _queue_batch(self, entries: list[PhotoEntry]) -> None:
        if not entries or self.predictor is None:
            self._update_progress()
            return
        self._batch_total += len(entries)
        self.worker.submit_batch(self._generation, [BatchItem(e.key, e.photo) for e in entries])
        self._update_progress()

    def _on_batch_done(self, generation: int, results: list[tuple[int, Prediction | str]]) -> None:
        if generation != self._generation:
            return
        problems: list[str] = []
        for key, outcome in results:
            entry = self.entries.get(key)
            if entry is None:
                continue
            if isinstance(outcome, str):  # this photo failed; the others in its batch did not
                entry.prediction, entry.error = None, outcome
                problems.append(f"{entry.path}: estimate failed: {outcome}")
            else:
                entry.prediction, entry.error = outcome, ""
                self._show_found_car(entry)
            self._show_row(entry)
        if problems:
            self.notices.add(problems)
        self.loader.release(self.photos.estimated(key for key, _ in results))
        self._batch_done += len(results)
        self._update_progress()
        if self._batch_done >= self._batch_total:
            self.batch_finished.emit()

    def _show_row(self, entry: PhotoEntry) -> None:
        """The photo's row: the current crop's estimate while a crop is set, else the whole
        photo's, or why there is none."""
        pred = entry.shown_prediction()
        if pred is not None:
            priced = pred if self.predictor is None else reprice(
                pred, self.predictor.metadata, self.panel.price_inputs.inputs_for(entry.path))
            self.strip.set_estimate(entry.key, entry.path, priced, crop=pred is not entry.prediction)
        elif self.predictor is None:
            self.strip.set_estimate(entry.key, entry.path, None, "no model loaded")
        else:
            self.strip.set_estimate(entry.key, entry.path, None,
                                    f"estimate failed: {entry.error}" if entry.error else "")

    def _on_price_inputs_changed(self, inputs: PriceInputs) -> None:
        """The rows follow the fields: the current photo's row, or every row when the year of
        sale (one setting for all photos) changed."""
        every = inputs.year != self._rows_year
        self._rows_year = inputs.year
        current = self.current_entry()
        for entry in list(self.entries.values()) if every else [current] if current else []:
            self._show_row(entry)
        if current is not None and current.sweep is not None:
            self.sweep_plot.show_sweep(self._priced_sweep(current))

    def _priced_sweep(self, entry: PhotoEntry) -> Sweep | None:
        """The photo's sweep priced with its own fields (the plot's medians and likely band)."""
        if entry.sweep is None or self.predictor is None:
            return entry.sweep
        return self.panel.price_inputs.priced_sweep(entry.sweep, self.predictor.metadata, entry.path)

    def batch_pending(self) -> int:
        return max(0, self._batch_total - self._batch_done)

    def _update_progress(self) -> None:
        loading = [(d, t) for d, t in self._loading.values()]
        if loading:
            done, total = sum(d for d, _ in loading), sum(t for _, t in loading)
            self.progress_label.setText(f"Loading photos {done}/{total}" if total else "Finding photos…")
            self.progress.setRange(0, max(total, 1) if total else 0)
            self.progress.setValue(done)
            self.progress.show()
        elif self.batch_pending() and self.predictor is not None:
            self.progress_label.setText(f"Estimating {self._batch_done}/{self._batch_total} photos")
            self.progress.setRange(0, self._batch_total)
            self.progress.setValue(self._batch_done)
            self.progress.show()
        else:
            self.progress.hide()
            n = len(self.entries)
            self.progress_label.setText(f"{n} photo{'s' if n != 1 else ''}" if n else "")

    # == the selected photo and its crop ========================================================
    def current_entry(self) -> PhotoEntry | None:
        key = self.strip.current_key()
        return None if key is None else self.entries.get(key)

    def select_photo(self, key: int) -> None:
        entry = self.entries.get(key)
        if entry is None:
            return
        self.sweep_animation.stop()
        self._drop_drivers()
        self.sweep_plot.show_sweep(self._priced_sweep(entry))
        self.panel.price_inputs.show_photo(entry.path)  # this photo's mileage and condition
        self.setWindowTitle(f"CarValue — {Path(entry.path).name}")
        self.box_history.reset(entry.box)
        if entry.photo is None:  # let go earlier: decode it again off the GUI thread
            self.crop_view.set_photo(None, message=f"Loading {Path(entry.path).name}…")
            self.panel.show_prediction(self._new_request_id(), None)
            self.loader.reload([(entry.key, entry.path)])
            return
        self.photos.touch(key)
        self.crop_view.set_photo(entry.photo, entry.box, found=entry.found_box())
        self._update_actions()
        self._request_current_crop()

    def _new_request_id(self) -> int:
        self._request_id += 1
        return self._request_id

    @property
    def latest_request_id(self) -> int:
        """The id whose result the window is waiting to show (benchmark/test hook)."""
        return self._request_id

    def _request_current_crop(self) -> int:
        entry, box = self.current_entry(), self.crop_view.box()
        if entry is None or box is None or entry.photo is None:
            return 0
        # A photo not yet estimated: find the car and predict on it (at most two passes).
        return self._submit_crop(entry, box, auto=entry.box is None and entry.prediction is None)

    def _submit_crop(self, entry: PhotoEntry, box: Box, auto: bool = False) -> int:
        rid = self._new_request_id()
        if self.predictor is None or entry.photo is None:
            self.panel.show_prediction(rid, None)
            return rid
        self.worker.submit_crop(CropRequest(rid, entry.photo, box, auto=auto))
        return rid

    def _on_box_changed(self, box: Box) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        self.sweep_animation.stop()
        self._sweep_box_moved = True  # a sweep still being computed will not move the box
        # None: the automatic box (the found car, else the whole photo), which batch estimates use.
        entry.box = None if box == (entry.found_box() or Box.full(entry.size)) else box
        self.box_history.moved(entry.box)
        if entry.box is None and entry.crop_prediction is not None:  # reset: no crop to keep
            entry.crop_prediction = None
            self._show_row(entry)
        self._submit_crop(entry, box)

    def _apply_box(self, box: Box | None) -> None:
        """Undo/redo: put the box back (the estimate follows as for any move)."""
        entry = self.current_entry()
        if entry is not None:  # None: the automatic box (the car found, else the whole photo)
            self.crop_view.set_box(box or entry.found_box() or Box.full(entry.size))

    def _on_crop_done(self, rid: int, pred: Prediction) -> None:
        if rid != self._request_id:
            self.dropped_results += 1
            return
        entry = self.current_entry()
        if entry is not None and pred.found_box is not None and entry.box is None and entry.prediction is None:
            # The automatic estimate of a photo not yet estimated: it is the photo's estimate.
            entry.prediction, entry.error = pred, ""
            self._show_found_car(entry)
            self._show_row(entry)
        if entry is not None and entry.box is not None:
            entry.crop_prediction = pred
            self._show_row(entry)
        self.panel.show_prediction(rid, pred)

    def _show_found_car(self, entry: PhotoEntry) -> None:
        """Outline where the car was found; while the user has not set a box of their own, the
        crop box moves onto it (quietly: the estimate on it is the one just made)."""
        if entry is not self.current_entry() or entry.photo is None:
            return
        found = entry.found_box()
        self.crop_view.set_found_box(found)
        if entry.box is None and found is not None and self.crop_view.box() != found:
            self.crop_view.set_box(found, notify=False)

    def _on_panel_shown(self, rid: int, pred: Prediction | None) -> None:
        self._update_actions()
        if pred is not None:  # a cleared panel is not a result
            if self.act_drivers.isChecked():
                self._drivers_timer.start()  # the map of this box (see DRIVERS_DELAY_MS)
            self.result_shown.emit(rid, pred)

    def _on_worker_failed(self, kind: str, ident: int, message: str) -> None:
        self.notices.add([f"Prediction failed ({kind}): {message}"])
        if kind == "drivers" and ident == self._drivers_request:
            self._drivers_key = None  # the next estimate shown asks again
            self.drivers.show_failure(message)

    def remove_photo(self, key: int | None = None) -> bool:
        """Take a photo (the selected one by default) off the list; the next one is shown."""
        key = self.strip.current_key() if key is None else key
        entry = self.photos.get(key)
        if entry is None:
            return False
        keys = self.strip.keys()
        row = keys.index(entry.key)
        if entry.key == self.strip.current_key():
            self.sweep_animation.stop()
        self._batch_total -= self.worker.cancel_batch({entry.key})
        if self.photos.remove(entry.key):
            self.loader.release()
        self.strip.remove(entry.key)
        rest = self.strip.keys()
        if not rest:
            self._show_nothing()
        elif self.strip.current_key() is None or entry.key == keys[row]:
            self.strip.select(rest[min(row, len(rest) - 1)])
        self._update_progress()
        self._update_actions()
        if self._batch_total and self._batch_done >= self._batch_total:
            self.batch_finished.emit()
        return True

    def _show_nothing(self) -> None:
        self._drop_drivers()
        self.crop_view.set_photo(None)
        self.sweep_plot.show_sweep(None)
        self.panel.show_prediction(self._new_request_id(), None)
        self.box_history.reset(None)
        self.setWindowTitle("CarValue")

    # == what drives this estimate =============================================================
    def set_drivers_shown(self, on: bool) -> None:
        """The "What drives this estimate" toggle: while on, each estimate shown is followed by
        the occlusion map of the current box (computed on the worker, after any crop request)."""
        if self.act_drivers.isChecked() != on:
            self.act_drivers.setChecked(on)  # emits toggled, which comes back here
            return
        self.drivers.set_active(on)
        if on:
            self._request_drivers()
        else:
            self._drop_drivers()

    def _request_drivers(self) -> int:
        """Ask for the map of the current photo's current box, priced with the photo's inputs,
        unless that map is already shown or on its way; returns the request id (0: none)."""
        entry, box = self.current_entry(), self.crop_view.box()
        if (not self.act_drivers.isChecked() or self.predictor is None or entry is None or box is None
                or entry.photo is None):
            return 0
        inputs = self.panel.price_inputs.inputs()
        key = (entry.path, box, inputs.to_dict())
        if key == self._drivers_key:
            return self._drivers_request
        self._drivers_key = key
        self._drivers_request += 1
        self.drivers.clear(waiting=True)
        self.worker.submit_drivers(DriversRequest(self._drivers_request, entry.photo, box, inputs))
        return self._drivers_request

    def _drop_drivers(self) -> None:
        """Forget the map shown and any on its way (another photo, another model, toggle off)."""
        self._drivers_key = None
        self._drivers_request += 1
        self._drivers_timer.stop()
        self.worker.cancel_drivers()
        self.drivers.clear(waiting=self.act_drivers.isChecked())

    def _on_box_moved(self) -> None:
        """The box moved (dragged, nudged, reset, a sweep position): the map no longer fits it;
        a new one is asked for once the new box's estimate is shown."""
        self._drivers_timer.stop()
        if self._drivers_key is not None and self._drivers_key[1] != self.crop_view.box():
            self._drop_drivers()

    def _on_drivers_done(self, rid: int, drivers: object) -> None:
        if rid != self._drivers_request or not self.act_drivers.isChecked():
            self.dropped_results += 1
            return
        self.drivers.show_map(drivers)  # type: ignore[arg-type]

    # == pan across ============================================================================
    def start_sweep(self) -> int:
        """Predict the sweep positions as one batch; the box animates once results are in."""
        entry = self.current_entry()
        if entry is None:
            self.notices.add(["Pan across needs a photo: open or drop one first"])
            return 0
        if self.predictor is None:
            self.notices.add(["Pan across needs a model: File > Open model…"])
            return 0
        if entry.photo is None:
            self.notices.add([f"Pan across: {Path(entry.path).name} is still loading; try again in a moment"])
            return 0
        self.sweep_animation.stop()
        self._sweep_box_moved = False
        self._sweep_request = self._new_request_id()
        self.worker.submit_sweep(SweepRequest(self._sweep_request, entry.photo, SWEEP_POSITIONS,
                                              SWEEP_WIDTH, around=sweep_car(entry)))
        self.progress_label.setText("Panning across…")
        return self._sweep_request

    def _on_sweep_done(self, rid: int, sweep: Sweep) -> None:
        entry = self.current_entry()
        if rid != self._sweep_request or entry is None or sweep.predictions[0].source != entry.path:
            self.dropped_results += 1
            return
        entry.sweep = sweep
        self.sweep_plot.show_sweep(self._priced_sweep(entry))
        self._update_progress()
        self.sweep_shown.emit(sweep)
        if self._sweep_box_moved:  # the user moved the box meanwhile: plot only, keep their box
            self.sweep_animation_finished.emit()
        else:
            self.sweep_animation.start(len(sweep.boxes))

    def _on_sweep_animation_finished(self) -> None:
        """The animation ends on the position that shows the car best (never on a part of a
        car with a whole-car tick); with no whole car anywhere, back on the car found."""
        entry = self.current_entry()
        if entry is not None and entry.sweep is not None:
            best = best_sweep_position(entry.sweep)
            if best is not None:
                self._show_sweep_position(entry, best)
            elif entry.sweep.boxes:
                self.crop_view.reset_box()
        self.sweep_animation_finished.emit()

    def _on_sweep_step(self, index: int) -> None:
        entry = self.current_entry()
        if entry is None or entry.sweep is None or index >= len(entry.sweep.boxes):
            self.sweep_animation.stop()
            return
        self._show_sweep_position(entry, index)

    def move_to_sweep_position(self, index: int) -> None:
        """Put the box on sweep position ``index`` and show the sweep's prediction for it (the
        prediction for exactly that box, so nothing needs computing)."""
        self.sweep_animation.stop()
        entry = self.current_entry()
        if entry is not None and entry.sweep is not None and 0 <= index < len(entry.sweep.boxes):
            self._show_sweep_position(entry, index)

    def _show_sweep_position(self, entry: PhotoEntry, index: int) -> None:
        assert entry.sweep is not None
        box, pred = entry.sweep.boxes[index], entry.sweep.predictions[index]
        self.crop_view.set_box(box, notify=False)
        entry.box = box
        entry.crop_prediction = pred
        self.box_history.placed(box)
        self._show_row(entry)
        self.sweep_plot.mark_position(index)
        self.panel.show_prediction(self._new_request_id(), pred)

    # == keeping results ========================================================================
    def all_results(self) -> list[PhotoResults]:
        return [e.results() for e in self.entries.values()]

    def export_predictions(self, path: str) -> int:
        """Write every photo's predictions (and sweeps) as CSV or JSON by suffix; returns the
        number of photos written. Photos still being estimated are counted in the notice."""
        if self.predictor is None:
            raise ValueError("no model is loaded, so there are no predictions to export")
        results = self.panel.price_inputs.priced(self.all_results(), self.predictor.metadata)
        if path.lower().endswith(".json"):
            write_json(path, results, self.predictor.metadata, str(self.predictor.path))
        else:
            write_csv(path, results, self.predictor.metadata)
        return len(results)

    def chart_title(self) -> str:
        """What a saved chart says it shows: the photo, the crop, the estimate and the model."""
        pred, entry = self.panel.shown, self.current_entry()
        if pred is None or entry is None:
            return ""
        if entry.box is None:
            where = "the car found" if entry.found_box() is not None else "whole photo"
        else:
            where = "crop x={:.0f} y={:.0f} w={:.0f} h={:.0f}".format(*pred.crop.as_tuple())
        model = f" · model {self.predictor.metadata.name}" if self.predictor else ""
        return (f"{Path(entry.path).name} ({where}): {format_dollars(pred.median_price)}, likely "
                f"{format_dollars(pred.price_low)} – {format_dollars(pred.price_high)} · "
                f"{pred.make_models[0].label}{model}")

    def save_charts(self, path: str) -> list[str]:
        """One PNG: a title line (photo, crop, estimate, model), the price histogram and, when
        the photo has a sweep, the sweep plot below it. Returns the files written."""
        title = self.chart_title()
        if not title:
            raise ValueError("there is no estimate on screen to save")
        charts = [self.panel.chart.grab()]
        if self.current_entry() is not None and self.sweep_plot.sweep is not None:
            charts.append(self.sweep_plot.grab())
        image = titled_image(title, charts)
        if not image.save(path, "PNG"):
            raise OSError(f"could not write {path}")
        return [path]

    def copy_result(self) -> str:
        pred = self.panel.shown
        if pred is None:
            self.notices.add(["There is no result to copy yet"])
            return ""
        text = prediction_text(pred, self.predictor.metadata if self.predictor else None)
        QGuiApplication.clipboard().setText(text)
        self.statusBar().showMessage("Result copied", 3000)
        return text

    # == dialogs ================================================================================
    def start_dir(self) -> str:
        """Where file dialogs open: the last folder photos came from."""
        return self.settings.last_folder or str(Path.home())

    def _ask_open_photos(self) -> None:
        exts = " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(self, "Open photos", self.start_dir(),
                                                f"Images ({exts});;All files (*)")
        self.open_paths(paths)

    def _ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", self.start_dir())
        if folder:
            self.open_paths([folder])

    def _ask_open_model(self) -> None:
        start = str(self.predictor.path.parent) if self.predictor else str(default_model_path().parent)
        path, _ = QFileDialog.getOpenFileName(self, "Open a CarValue model", start,
                                              "CarValue models (*.onnx);;All files (*)")
        if path:
            self.open_model(path)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_files:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, path=p: self.open_paths([path]))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)
            return
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("&Clear recent files").triggered.connect(self.clear_recent)

    def clear_recent(self) -> None:
        self.settings.recent_files = []

    # == shutdown ===============================================================================
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._store_layout()
        try:
            save_settings(self.settings)
        except OSError as e:
            print(f"carvalue: could not save settings: {e}")
        self.sweep_animation.stop()
        self.loader.stop()
        self.worker.stop()
        self.crop_view.shutdown()
        super().closeEvent(event)


def sweep_car(entry: PhotoEntry) -> Box | None:
    """The car the sweep's window is sized to: the one found, the whole photo when the photo is
    the car; None (half-width strips) when no car was seen."""
    found = entry.found_box()
    if found is not None:
        return found
    pred = entry.prediction
    return Box.full(entry.size) if pred is not None and pred.looks_like_car else None


def best_sweep_position(sweep: Sweep) -> int | None:
    """The sweep position judged a whole car with the highest whole-car score, if any."""
    whole = [i for i, p in enumerate(sweep.predictions) if p.whole_car is WholeCar.YES]
    return max(whole, key=lambda i: sweep.predictions[i].confidence) if whole else None
