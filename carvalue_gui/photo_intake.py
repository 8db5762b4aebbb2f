"""Photos in: File > Open photos / Open folder / Open recent, a drop, Edit > Paste image, and the
reload of a photo whose working copy was let go.

Files are decoded off the GUI thread (``PhotoLoader``); each photo delivered joins the photo
session and its list row, and is queued for its whole-photo estimate. The first photo of each
opening is shown. A delivered copy holds one of the loader's slots until it is estimated (see
``PhotoCollection``), so a folder of thousands never fills the memory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from carvalue_gui.actions import action
from carvalue_gui.loader import LoadedPhoto, PhotoLoader, make_thumbnail
from carvalue_gui.notices import NoticeArea
from carvalue_gui.photo_collection import PhotoEntry
from carvalue_gui.photo_session import PhotoSession
from carvalue_gui.photo_strip import PhotoStrip
from carvalue_gui.settings import Settings
from core.preprocess import IMAGE_SUFFIXES, ImageLoadError, Photo, photo_from_image


class PhotoIntake(QObject):
    changed = Signal()  # photos came, or loading progressed: the status line and actions follow
    finished = Signal(int)  # a loader job is done (its id)

    def __init__(self, parent: QWidget, session: PhotoSession, loader: PhotoLoader, strip: PhotoStrip,
                 notices: NoticeArea, settings: Settings, estimate: Callable[[list[PhotoEntry]], None],
                 select: Callable[[int], None]) -> None:
        super().__init__(parent)
        self.parent_widget, self.session, self.loader, self.strip = parent, session, loader, strip
        self.notices, self.settings, self.estimate, self.select = notices, settings, estimate, select
        self._loading: dict[int, tuple[int, int]] = {}  # job id -> (done, total)
        self._select_first: set[int] = set()  # load jobs whose first new photo is still to be shown
        loader.loaded.connect(self._on_loaded)
        loader.reloaded.connect(self._on_reloaded)
        loader.failed.connect(lambda _job, msgs: notices.add(msgs))
        loader.progress.connect(self._on_progress)
        loader.finished.connect(self._on_finished)

        self.act_open = action(parent, "&Open photos…", self.ask_open_photos, QKeySequence.StandardKey.Open)
        self.act_open_folder = action(parent, "Open &folder…", self.ask_open_folder, "Ctrl+Shift+O")
        self.act_paste = action(parent, "&Paste image", self.paste_image, QKeySequence.StandardKey.Paste)
        self.recent_menu = QMenu("Open &recent", parent)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

    def loading(self) -> tuple[int, int] | None:
        """(photos decoded, photos found) over the jobs running; None when none is."""
        if not self._loading:
            return None
        return sum(d for d, _ in self._loading.values()), sum(t for _, t in self._loading.values())

    def start_dir(self) -> str:
        """Where file dialogs open: the last folder photos came from."""
        return self.settings.last_folder or str(Path.home())

    # == in =====================================================================================
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
        self.changed.emit()
        return job

    def paste_image(self) -> bool:
        """Add the clipboard's image as a photo."""
        qimg = QGuiApplication.clipboard().image()
        if qimg.isNull():
            self.notices.add(["The clipboard holds no image to paste"])
            return False
        rgb = qimg.convertToFormat(QImage.Format.Format_RGB888)
        data = bytes(rgb.constBits())[: rgb.sizeInBytes()]
        pil = Image.frombuffer("RGB", (rgb.width(), rgb.height()), data, "raw", "RGB", rgb.bytesPerLine(), 1)
        name = self.session.photos.next_paste_name()
        try:
            photo = photo_from_image(pil, name)
        except ImageLoadError as e:
            self.notices.add([str(e)])
            return False
        entry = self._add(name, photo, make_thumbnail(photo))
        self.estimate([entry])
        self.strip.select(entry.key)
        return True

    def _add(self, path: str, photo: Photo, thumbnail: bytes) -> PhotoEntry:
        entry = self.session.add(path, photo)
        self.strip.add_photo(entry.key, path, thumbnail)
        return entry

    def _on_loaded(self, job: int, loaded: list[LoadedPhoto]) -> None:
        photos = self.session.photos
        fresh: list[PhotoEntry] = []
        for lp in loaded:
            if photos.has_path(lp.path):
                self.loader.release()
            else:
                fresh.append(self._add(lp.path, lp.photo, lp.thumbnail))
        if self.session.meta is None:
            self.loader.release(len(fresh))
        for e in fresh:
            if self.session.meta is not None:
                photos.await_estimate(e.key)
            self.session.row_changed.emit(e)
        if fresh and (job in self._select_first or self.strip.current_key() is None):
            self._select_first.discard(job)  # the first photo of each opening is shown
            self.strip.select(fresh[0].key)  # its crop request first: the worker is idle now
        self.estimate(fresh)
        photos.evict(self.strip.current_key())
        self.changed.emit()

    def _on_reloaded(self, _job: int, items: list[tuple[int, LoadedPhoto]]) -> None:
        photos = self.session.photos
        for key, lp in items:
            entry = photos.get(key)
            if entry is None or entry.photo is not None:
                self.loader.release()
                continue
            photos.set_photo(entry, lp.photo)
            if entry.prediction is None and self.session.meta is not None and photos.await_estimate(key):
                self.estimate([entry])
            else:  # estimated already, or its estimate is on its way
                self.loader.release()
            if key == self.strip.current_key():
                self.select(key)
        photos.evict(self.strip.current_key())

    def _on_progress(self, job: int, done: int, total: int) -> None:
        self._loading[job] = (done, total)
        self.changed.emit()

    def _on_finished(self, job: int) -> None:
        self._loading.pop(job, None)
        self._select_first.discard(job)
        self.changed.emit()
        self.finished.emit(job)

    # == dialogs ================================================================================
    def ask_open_photos(self) -> None:
        exts = " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES))
        paths, _ = QFileDialog.getOpenFileNames(self.parent_widget, "Open photos", self.start_dir(),
                                                f"Images ({exts});;All files (*)")
        self.open_paths(paths)

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent_widget, "Open a folder of photos", self.start_dir())
        if folder:
            self.open_paths([folder])

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
