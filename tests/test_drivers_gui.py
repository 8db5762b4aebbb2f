"""'What drives this estimate' in the app: the toggle, the worker's map jobs (newest wins, crop
requests first, a moved box cancels) and the drawing, on the random-weight test model."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402

from carvalue_gui.drivers_overlay import MAX_ALPHA, RED, RES, dollars_change, heat_rgba  # noqa: E402
from carvalue_gui.main_window import MainWindow  # noqa: E402
from carvalue_gui.worker import CropRequest, DriversRequest, InferenceWorker  # noqa: E402
from core.geometry import Box  # noqa: E402
from core.occlusion import GRID, drivers_map  # noqa: E402
from core.predictor import Predictor  # noqa: E402
from core.preprocess import photo_from_image  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, wait_shown  # noqa: E402


@pytest.fixture(scope="module")
def predictor(model_file: Path) -> Predictor:
    return Predictor.load(model_file)


class SlowPredictor:
    """A real predictor whose forward passes take ``seconds`` longer (to see the order of work)."""

    def __init__(self, inner: Predictor, seconds: float) -> None:
        self._inner = inner
        self.seconds = seconds

    def run_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        time.sleep(self.seconds)
        return self._inner.run_batch(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_toggle_on_shows_the_map_of_the_current_box_and_off_hides_it(qtbot: Any, window: MainWindow,
                                                                      tmp_path: Path, predictor: Predictor) -> None:
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (320, 200), 1)])
    wait_shown(qtbot, window)
    overlay = window.drivers
    assert not window.act_drivers.isChecked() and overlay.legend.isHidden()
    assert window.act_drivers.shortcut().toString() == "Ctrl+D"
    assert window.act_drivers in window.menuBar().actions()[-2].menu().actions()  # Tools
    window.act_drivers.trigger()
    assert window.act_drivers.isChecked() and overlay.legend.isVisible()
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    m = overlay.shown
    entry = window.current_entry()
    assert entry is not None and m is not None
    assert m.box == window.crop_view.box() and m.source == entry.path
    expected = drivers_map(predictor, entry.photo, m.box, price_inputs=window.session.inputs_for(window.session.current))
    assert m.label == expected.label == window.panel.shown.top_make_model.label
    np.testing.assert_allclose(m.prob_drop, expected.prob_drop, atol=1e-5)
    np.testing.assert_allclose(m.price_change, expected.price_change, atol=1e-3 * expected.median_price)
    assert overlay.image.isVisible()
    rect = overlay.image.mapRectToParent(overlay.image.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == pytest.approx(m.region.as_tuple(), abs=1e-6)
    assert f"How sure it is of <b>{m.label}</b>" in overlay.label.text()
    assert "covering that part makes it less sure" in overlay.label.text()
    assert all(t.isVisible() and t.textItem.toPlainText().endswith("if covered") for t in overlay.numbers)

    window.act_drivers.trigger()  # off
    assert overlay.shown is None and not overlay.image.isVisible() and overlay.legend.isHidden()
    assert not any(t.isVisible() for t in overlay.numbers)


def test_a_box_move_drops_the_map_and_only_the_newest_box_gets_one(qtbot: Any, window: MainWindow,
                                                                   tmp_path: Path) -> None:
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (320, 200), 1)])
    wait_shown(qtbot, window)
    window.crop_view.set_box(Box(20, 20, 150, 100))  # a box that can move
    wait_shown(qtbot, window)
    window.act_drivers.trigger()
    overlay = window.drivers
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    assert overlay.shown.box == Box(20, 20, 150, 100)
    shown: list[Box] = []
    original_show = overlay.show_map
    overlay.show_map = lambda m: (shown.append(m.box), original_show(m))  # type: ignore[method-assign]
    roi = window.crop_view.roi
    assert roi is not None
    roi.setPos(QPointF(30, 20))
    assert overlay.shown is None and not overlay.image.isVisible()  # cleared at once
    assert "computing" in overlay.label.text()
    for i in range(20):  # a drag, with the event loop turning in between
        roi.setPos(QPointF(10 + 3 * i, 5 + i))
        qtbot.wait(5)
    final = window.crop_view.box()
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    qtbot.wait(300)  # any stale map would arrive by now: it must be dropped
    assert shown == [final] and overlay.shown.box == final

    # A quiet move (a sweep position, the found car) drops the map too.
    window.crop_view.set_box(Box(0, 0, 100, 100), notify=False)
    assert overlay.shown is None


def test_another_photo_and_another_mode(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (320, 200), 1), make_photo(tmp_path / "b.jpg", (240, 240), 2)])
    wait_shown(qtbot, window)
    window.act_drivers.trigger()
    overlay = window.drivers
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    m = overlay.shown
    heat = overlay.heat()
    assert heat is not None and heat.shape == (RES, RES)
    np.testing.assert_allclose(heat, m.spread(m.prob_drop, RES))
    overlay.mode_box.setCurrentIndex(1)  # the user picks "Colours: price"
    assert overlay.mode == "price"
    np.testing.assert_allclose(overlay.heat(), m.spread(-m.price_change, RES))
    assert "covering that part lowers it" in overlay.label.text()
    with pytest.raises(ValueError, match="mode must be one of"):
        overlay.set_mode("year")
    first = window.current_entry()
    other = [k for k in window.entries if first is None or k != first.key][0]
    window.strip.select(other)
    assert overlay.shown is None
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    assert overlay.shown.source == window.entries[other].path and overlay.mode == "price"


def test_a_map_that_fails_says_so_and_the_next_estimate_asks_again(qtbot: Any, window: MainWindow, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from carvalue_gui import worker as worker_module

    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise MemoryError("no room for the occluded copies")

    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (320, 200), 1)])
    wait_shown(qtbot, window)
    real_job = worker_module.DriversJob
    monkeypatch.setattr(worker_module, "DriversJob", Broken)
    window.act_drivers.trigger()
    overlay = window.drivers
    qtbot.waitUntil(lambda: "not available" in overlay.label.text(), timeout=WAIT_MS)
    assert "no room for the occluded copies" in overlay.label.text() and overlay.shown is None
    assert any("drivers" in n for n in window.notices.messages)
    monkeypatch.setattr(worker_module, "DriversJob", real_job)
    window.crop_view.set_box(Box(10, 10, 200, 150))
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    assert overlay.shown.box == Box(10, 10, 200, 150)


def test_worker_serves_crop_requests_between_map_batches_and_newest_map_wins(predictor: Predictor) -> None:
    slow = SlowPredictor(predictor, 0.25)
    photo = photo_from_image(Image.new("RGB", (160, 120), (90, 140, 200)), "p.jpg")
    events: list[tuple[str, int]] = []
    lock = threading.Lock()

    def note(kind: str) -> Any:
        def record(ident: int, _result: object) -> None:
            with lock:
                events.append((kind, ident))
        return record

    w = InferenceWorker()
    direct = Qt.ConnectionType.DirectConnection
    w.crop_done.connect(note("crop"), direct)
    w.drivers_done.connect(note("drivers"), direct)
    w.failed.connect(lambda kind, ident, msg: events.append((f"failed {kind}: {msg}", ident)), direct)
    try:
        w.set_predictor(slow, warm_up=False)  # type: ignore[arg-type]
        w.submit_drivers(DriversRequest(1, photo, Box(0, 0, 160, 120)))
        deadline = time.monotonic() + 10
        while w.runs["drivers"] < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        w.submit_crop(CropRequest(2, photo, Box(10, 10, 80, 80)))  # during the map's first batch
        w.submit_drivers(DriversRequest(3, photo, Box(20, 0, 100, 120)))  # replaces map 1
        while len(events) < 2 and time.monotonic() < deadline + 20:
            time.sleep(0.01)
        time.sleep(0.3)
        assert events == [("crop", 2), ("drivers", 3)]
        assert w.runs["drivers"] == 1 + 2  # map 1's first batch, then map 3's two

        w.submit_drivers(DriversRequest(4, photo, Box(0, 0, 100, 100)))
        while w.runs["drivers"] < 4:
            time.sleep(0.005)
        w.cancel_drivers()  # the box moved
        time.sleep(0.6)
        assert events[-1] == ("drivers", 3) and w.runs["drivers"] == 4  # map 4 never finished
    finally:
        w.stop()


def test_heat_colours_and_price_numbers() -> None:
    heat = np.array([[1.0, -0.5], [0.0, np.nan]])
    rgba = heat_rgba(heat)
    assert rgba.shape == (2, 2, 4) and rgba.dtype == np.uint8
    assert tuple(rgba[0, 0]) == (*RED, MAX_ALPHA)
    assert rgba[0, 1, 2] > rgba[0, 1, 0] and rgba[0, 1, 3] == round(MAX_ALPHA / 2)
    assert rgba[1, 0, 3] == 0 and rgba[1, 1, 3] == 0
    assert not heat_rgba(np.zeros((3, 3))).any()
    assert dollars_change(1234.0) == "+$1.2k" and dollars_change(-850.0) == "\u2212$850"
    assert GRID == 7
