"""The part-of-a-car rule in the window (issue 27): a box the user draws, taller than wide, on a
photo whose whole-car head always says "whole car" shows the part-of-a-car warning and greys
the price; the photo's own found box (wide) keeps the bold price.  Driven as a user does: a real
drop, then Shift+drag on the photo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("torch")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.framing import WholeCar  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402


@pytest.fixture(scope="module")
def ruled_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The car is always the whole crop, the head always says "whole car", and the rule calls a
    car found taller than wide part of a car."""
    from core.modelfile import open_session, write_model_file
    from training.testmodels import make_framed_model_file, make_model_file

    d = tmp_path_factory.mktemp("gui-part-rule")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    path = make_framed_model_file(base, d / "whole.onnx", (0.0, 0.0, 1.0, 1.0), 5.0, car_logit=5.0)
    _, meta = open_session(path, threads=1)
    assert meta.framing is not None
    rule = dataclasses.replace(meta.framing, part_weights=(0.0, 0.0, 1.0), part_bias=0.0)
    write_model_file(path, dataclasses.replace(meta, framing=rule), d / "ruled.onnx")
    return d / "ruled.onnx"


def test_a_tall_box_drawn_on_the_photo_is_part_of_a_car(qtbot: Any, ruled_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, ruled_model)
    window.resize(1400, 900)
    load(qtbot, window, [make_photo(tmp_path / "side-view.jpg", (800, 400), 4)])
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.YES and not window.panel.price_greyed
    for _ in range(5):  # the photo laid out in the view before the mouse goes down on it
        QApplication.processEvents()

    port = window.crop_view.viewport()
    centre = port.rect().center()
    start, end = centre - QPoint(20, 60), centre + QPoint(20, 60)  # half a side view: tall and narrow
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, start)
    for step in (0.3, 0.7, 1.0):
        qtbot.mouseMove(port, start + (end - start) * step)
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, end)
    box = window.crop_view.box()
    assert box is not None and box.h > box.w, f"no tall box drawn: {box}, view {port.size()}"
    qtbot.waitUntil(lambda: window.panel.shown is not None and window.panel.shown.crop.h > window.panel.shown.crop.w,
                    timeout=WAIT_MS)
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.NO and not shown.looks_like_car
    panel = window.panel
    assert panel.price_label.text().startswith("$") and panel.price_greyed
    assert "part of a car" in panel.notice.text()
    assert "part of a car" in window.strip.item(0).text()
