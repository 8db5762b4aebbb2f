"""What the GUI tests share: test photos, a window on the test model, real drops, waiting for
the newest result, comparing shown predictions with ``Predictor``'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from carvalue_gui.main_window import MainWindow
from core.money import format_dollars
from core.predictor import Prediction

WAIT_MS = 15_000


def make_photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    grad = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    arr = np.clip(grad * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 40, (h, w, 3)), 0, 255)
    Image.fromarray(arr.astype(np.uint8), "RGB").save(path)
    return path


def make_heic(path: Path, seed: int) -> Path:
    """A phone's HEIC photo (written with pillow-heif, a dev dependency)."""
    import pillow_heif

    jpg = make_photo(path.with_suffix(".tmp.png"), (360, 240), seed)
    with Image.open(jpg) as im:
        pillow_heif.from_pillow(im.convert("RGB")).save(path, quality=90)
    jpg.unlink()
    return path


def make_photos(tmp_path: Path) -> dict[str, list[Path]]:
    """Good photos (two loose, three in a folder tree with a non-image) and three bad files."""
    loose = [make_photo(tmp_path / "a.jpg", (320, 200), 1), make_photo(tmp_path / "b.png", (240, 240), 2)]
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    in_folder = [make_photo(folder / "c.jpg", (300, 180), 3), make_photo(folder / "d.webp", (200, 300), 4),
                 make_photo(folder / "sub" / "e.jpg", (400, 260), 5), make_heic(folder / "sub" / "f.heic", 6)]
    (folder / "readme.txt").write_text("not a photo, and not named like one: skipped quietly")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((tmp_path / "a.jpg").read_bytes()[:700])
    text = tmp_path / "notes.jpg"
    text.write_text("this is a text file with a .jpg name\n" * 20)
    return {"loose": loose, "folder": [folder], "in_folder": in_folder, "bad": [empty, truncated, text]}


def open_window(qtbot: object, model_file: Path) -> MainWindow:
    w = MainWindow(model_path=str(model_file))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    w.sweeps.animation.step_ms = 0
    w.show()
    return w


# -- helpers --------------------------------------------------------------------------------------
def drop(target: QWidget, paths: list[Path]) -> None:
    """Post a real drag-enter + drop with file URLs, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = target.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the drag was refused"
    ev = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, ev)
    assert ev.isAccepted(), "the drop was refused"


def load(qtbot: object, window: MainWindow, paths: list[Path], target: QWidget | None = None) -> None:
    with qtbot.waitSignal(window.loading_finished, timeout=WAIT_MS):  # type: ignore[attr-defined]
        drop(target or window.strip.viewport(), paths)
    qtbot.waitUntil(lambda: window.session.batch_pending() == 0, timeout=WAIT_MS)  # type: ignore[attr-defined]


def wait_shown(qtbot: object, window: MainWindow) -> Prediction:
    """Wait until the chart and text show the result of the newest request."""
    qtbot.waitUntil(lambda: window.panel.shown_request == window.session.requests.latest  # type: ignore[attr-defined]
                    and window.panel.shown is not None, timeout=WAIT_MS)
    assert window.panel.shown is not None
    return window.panel.shown


def assert_same(shown: Prediction, expected: Prediction, rel: float = 1e-6) -> None:
    assert shown.crop.as_tuple() == pytest.approx(expected.crop.as_tuple(), abs=1e-6)
    assert shown.median_price == pytest.approx(expected.median_price, rel=rel)
    assert [b.probability for b in shown.price_bins] == pytest.approx(
        [b.probability for b in expected.price_bins], abs=rel)
    assert [m.label for m in shown.make_models[:5]] == [m.label for m in expected.make_models[:5]]
    assert [y.label for y in shown.years[:5]] == [y.label for y in expected.years[:5]]


def assert_panel_shows(window: MainWindow, expected: Prediction, rel: float = 1e-6) -> None:
    """The widgets (not just the stored object) show ``expected``."""
    panel = window.panel
    assert panel.price_label.text() == format_dollars(expected.median_price)
    assert panel.chart.heights == pytest.approx([b.probability for b in expected.price_bins], abs=rel)
    assert panel.make_models.texts() == [m.label for m in expected.make_models[:5]]
    assert panel.years.texts() == [y.label for y in expected.years[:5]]
    assert panel.notice.isHidden() == expected.looks_like_car
    assert panel.chart.median_text() == f"median {format_dollars(expected.median_price)}"
