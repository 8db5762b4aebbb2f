"""The app starts each photo with the crop box on the car the model finds (format-2 models)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("torch")

from carvalue_gui.main_window import MainWindow  # noqa: E402
from core.framing import CropMode  # noqa: E402
from core.geometry import Box  # noqa: E402
from core.predictor import Predictor  # noqa: E402
from core.preprocess import load_photo  # noqa: E402
from tests.gui_support import WAIT_MS, assert_same, load, make_photo, open_window, wait_shown  # noqa: E402

FOUND = (0.25, 0.5, 0.75, 1.0)  # where the test model always "finds" the car


@pytest.fixture(scope="module")
def framed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.testmodels import make_framed_model_file, make_model_file

    d = tmp_path_factory.mktemp("framed")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    return make_framed_model_file(base, d / "framed.onnx", FOUND, 3.0)


def test_a_new_photo_starts_with_the_box_on_the_found_car(qtbot: object, framed_model: Path,
                                                          tmp_path: Path) -> None:
    photos = [make_photo(tmp_path / "a.jpg", (400, 300), 1), make_photo(tmp_path / "b.jpg", (320, 320), 2)]
    window: MainWindow = open_window(qtbot, framed_model)
    load(qtbot, window, photos)
    shown = wait_shown(qtbot, window)
    expected_box = Box(100, 150, 200, 150)
    qtbot.waitUntil(lambda: window.crop_view.box() == expected_box, timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert window.crop_view.found_box == expected_box
    predictor = Predictor.load(framed_model)
    auto = predictor.predict(load_photo(photos[0]), CropMode.AUTO)
    assert shown.crop == expected_box
    assert_same(shown, auto)
    # The list's estimate is the same automatic one (not the whole photo's).
    assert window.entries[1].prediction is not None and window.entries[1].prediction.crop == expected_box

    # Whole photo, then back to the found car.
    window.act_whole.trigger()
    qtbot.waitUntil(lambda: window.crop_view.box() == Box(0, 0, 400, 300), timeout=WAIT_MS)  # type: ignore[attr-defined]
    whole = wait_shown(qtbot, window)
    assert whole.crop == Box(0, 0, 400, 300)
    assert window.entries[1].box == Box(0, 0, 400, 300)  # a box of the user's choosing now
    window.act_reset.trigger()
    qtbot.waitUntil(lambda: window.crop_view.box() == expected_box, timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert window.entries[1].box is None  # back to the automatic box
    assert wait_shown(qtbot, window).crop == expected_box

    # Another photo: its own found box.
    window.select_photo(2)
    qtbot.waitUntil(lambda: window.crop_view.box() == Box(80, 160, 160, 160), timeout=WAIT_MS)  # type: ignore[attr-defined]


def test_no_car_found_keeps_the_whole_photo_and_never_asks_to_widen(qtbot: object, tmp_path: Path,
                                                                    framed_model: Path) -> None:
    from training.testmodels import make_framed_model_file

    no_car = make_framed_model_file(_base_of(framed_model),
                                    tmp_path / "nocar.onnx", FOUND, -5.0)
    window: MainWindow = open_window(qtbot, no_car)
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 300), 1)])
    shown = wait_shown(qtbot, window)
    assert shown.crop == Box(0, 0, 400, 300) and not shown.looks_like_car
    assert window.crop_view.found_box is None
    text = window.panel.notice.text()
    assert "not look like a whole car" in text and "widen" not in text.lower()
    # A box on part of the photo: now widening is the advice.
    window.crop_view.set_box(Box(0, 0, 100, 100))
    qtbot.waitUntil(lambda: wait_shown(qtbot, window).crop == Box(0, 0, 100, 100), timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert "Widen the box" in window.panel.notice.text()


def _base_of(framed: Path) -> Path:
    return framed.parent / "base.onnx"
