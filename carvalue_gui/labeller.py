"""The junk-filter labeller: one photo at a time, one key per verdict, saved on every key press.

Run by ``carvalue-data label`` (as ``python -m carvalue_gui.labeller``; core never imports Qt).
Keys: G or Right = good (a whole vehicle), B or Left = bad (wheel, dashboard, interior, keys,
...), U, Backspace or Ctrl+Z = undo, S or Space = skip, Q or Esc = quit.  The rules (which
photos, the file format) live in ``core.dataset.labels``; this module only shows and asks.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QKeyEvent, QKeySequence, QPixmap, QResizeEvent
from PySide6.QtWidgets import QApplication, QLabel, QSizePolicy, QVBoxLayout, QWidget

from core.dataset import database
from core.dataset.image_store import ImageStore
from core.dataset.labels import BAD, GOOD, LabelFile, LabelFileError, labelling_queue
from core.preprocess import ImageLoadError, load_photo

HELP = "G / \u2192 good    B / \u2190 bad    U / Backspace undo    S / Space skip    Q / Esc quit"
GOOD_KEYS = {Qt.Key.Key_G, Qt.Key.Key_Right}
BAD_KEYS = {Qt.Key.Key_B, Qt.Key.Key_Left}
UNDO_KEYS = {Qt.Key.Key_U, Qt.Key.Key_Backspace}
SKIP_KEYS = {Qt.Key.Key_S, Qt.Key.Key_Space}
QUIT_KEYS = {Qt.Key.Key_Q, Qt.Key.Key_Escape}


@dataclass(frozen=True)
class _Step:
    sha256: str
    labelled: bool  # False = skipped


class LabellerWindow(QWidget):
    def __init__(self, queue: list[str], store: ImageStore, labels: LabelFile,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.labels = labels
        self.queue = [s for s in queue if labels.get(s) is None]
        self.pos = 0
        self.history: list[_Step] = []
        self.setWindowTitle("CarValue \u2014 label photos for the junk filter")
        self.photo = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.photo.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.photo.setMinimumSize(320, 240)
        self.status = QLabel()
        self.keys = QLabel(HELP)
        layout = QVBoxLayout(self)
        layout.addWidget(self.photo, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.keys)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.resize(900, 700)
        self._pixmap: QPixmap | None = None
        self._show_current()

    def current(self) -> str | None:
        return self.queue[self.pos] if self.pos < len(self.queue) else None

    # ---- actions ----------------------------------------------------------------------------

    def label_current(self, label: str) -> None:
        sha = self.current()
        if sha is None:
            return
        self.labels.set(sha, label)
        self.history.append(_Step(sha, True))
        self.pos += 1
        self._show_current()

    def skip(self) -> None:
        sha = self.current()
        if sha is None:
            return
        self.history.append(_Step(sha, False))
        self.pos += 1
        self._show_current()

    def undo(self) -> None:
        if self.history:
            step = self.history.pop()
            if step.labelled:
                self.labels.undo()
            self.pos -= 1
        else:  # labels from an earlier session: take back the newest and show it again
            sha = self.labels.undo()
            if sha is None:
                return
            self.queue.insert(self.pos, sha)
        self._show_current()

    # ---- display ----------------------------------------------------------------------------

    def _show_current(self) -> None:
        counts = self.labels.counts()
        sha = self.current()
        done = f"{counts[GOOD]} good, {counts[BAD]} bad labelled"
        if sha is None:
            self._pixmap = None
            self.photo.setPixmap(QPixmap())
            self.photo.setText("All photos are labelled. Q to quit, U to undo.")
            self.status.setText(done)
            return
        self.status.setText(f"{done} \u2014 photo {self.pos + 1} of {len(self.queue)} ({sha[:12]})")
        try:
            img = load_photo(self.store.path_for(sha), max_side=1024).image
        except ImageLoadError as e:
            self._pixmap = None
            self.photo.setPixmap(QPixmap())
            self.photo.setText(f"Cannot show this photo: {e.reason}\n(S to skip, B to label it bad)")
            return
        data = img.tobytes()
        qimg = QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888).copy()
        self._pixmap = QPixmap.fromImage(qimg)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is not None:
            self.photo.setPixmap(self._pixmap.scaled(self.photo.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                     Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key in GOOD_KEYS:
            self.label_current(GOOD)
        elif key in BAD_KEYS:
            self.label_current(BAD)
        elif key in UNDO_KEYS or event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
        elif key in SKIP_KEYS:
            self.skip()
        elif key in QUIT_KEYS:
            self.close()
        else:
            super().keyPressEvent(event)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="carvalue-data label", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        conn = database.connect(a.db, create=False)
        queue = labelling_queue(conn, a.seed)
        conn.close()
        labels = LabelFile(a.labels)
    except (database.DatabaseError, LabelFileError) as e:
        print(f"carvalue-data label: error: {e}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = LabellerWindow(queue, ImageStore(a.images), labels)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
