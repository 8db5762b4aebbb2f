"""No car, no price (issue 27): the window, the list, the clipboard and both export files say
"no car" for a photo with no car in it, with no bold price, no histogram and no make/model bars;
a box on part of a car shows its price greyed.  Driven as a user does: a real drop, the menu's
actions, a key."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("torch")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from carvalue_gui.main_window import MainWindow  # noqa: E402
from core.framing import WholeCar  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402

FOUND = (0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files whose whole-car check always says: no car / part of a car / a whole car."""
    from training.testmodels import make_framed_model_file, make_model_file

    d = tmp_path_factory.mktemp("nocar")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    return {"no car": make_framed_model_file(base, d / "nocar.onnx", FOUND, -5.0, car_logit=-5.0),
            "part": make_framed_model_file(base, d / "part.onnx", FOUND, -5.0, car_logit=5.0),
            "whole": make_framed_model_file(base, d / "whole.onnx", FOUND, 5.0, car_logit=5.0)}


def export_through_menu(qtbot: object, window: MainWindow, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    window.act_export.trigger()
    qtbot.waitUntil(path.exists, timeout=WAIT_MS)  # type: ignore[attr-defined]


def test_a_photo_with_no_car_gets_no_price_anywhere(qtbot: object, models: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    window = open_window(qtbot, models["no car"])
    load(qtbot, window, [make_photo(tmp_path / "panda.jpg", (400, 300), 1)])
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.NO_CAR and not shown.looks_like_car
    panel = window.panel
    # The window: "No car" where the price was, nothing drawn as if it were an answer.
    assert panel.price_label.text() == "No car" and "$" not in panel.price_label.text()
    assert panel.caption.text() == "No car found in this photo"
    assert "No car found in this photo" in panel.notice.text() and "widen" not in panel.notice.text().lower()
    assert panel.range_label.text() == ""
    assert not panel.chart.heights.any() and panel.chart.median_x is None
    assert panel.make_models.texts() == [] and panel.years.texts() == []
    assert window.crop_view.found_box is None
    # The list row.
    row = window.strip.item(0).text()
    assert "no car" in row and "$" not in row
    # The clipboard (Edit > Copy result).
    window.act_copy.trigger()
    text = QApplication.clipboard().text()
    assert "No car found: no price" in text and "Estimated price" not in text
    # Both files say the same verdict, and keep the flag.
    export_through_menu(qtbot, window, tmp_path / "out.csv", monkeypatch)
    with (tmp_path / "out.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["whole_car"] for r in rows] == ["no car"] and rows[0]["looks_like_car"] == "0"
    export_through_menu(qtbot, window, tmp_path / "out.json", monkeypatch)
    pred = json.loads((tmp_path / "out.json").read_text())["photos"][0]["prediction"]
    assert pred["whole_car"] == "no car" and pred["no_car"] is True and pred["looks_like_car"] is False


def test_a_box_on_part_of_a_car_keeps_the_warning_and_greys_the_price(qtbot: object, models: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    window = open_window(qtbot, models["part"])
    load(qtbot, window, [make_photo(tmp_path / "bumper.jpg", (400, 300), 2)])
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.NO
    panel = window.panel
    assert panel.price_label.text().startswith("$") and panel.price_greyed
    assert "part of a car" in panel.notice.text() or "whole car" in panel.notice.text()
    assert "no car" not in window.strip.item(0).text()
    assert "part of a car" in window.strip.item(0).text()


def test_a_whole_car_price_is_bold_again_after_a_no_car_photo(qtbot: object, models: dict[str, Path],
                                                              tmp_path: Path) -> None:
    window = open_window(qtbot, models["whole"])
    load(qtbot, window, [make_photo(tmp_path / "car.jpg", (400, 300), 3)])
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.YES
    assert not window.panel.price_greyed and window.panel.price_label.text().startswith("$")
    assert window.panel.chart.heights.any()


def test_the_whole_photo_key_keeps_no_car(qtbot: object, models: dict[str, Path], tmp_path: Path) -> None:
    """Ctrl+Shift+R (the whole photo) on a no-car photo: still no price."""
    window = open_window(qtbot, models["no car"])
    load(qtbot, window, [make_photo(tmp_path / "room.jpg", (400, 300), 4)])
    wait_shown(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)  # type: ignore[attr-defined]
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.NO_CAR and window.panel.price_label.text() == "No car"


@pytest.mark.needs_data
def test_pan_across_a_side_view_never_ticks_a_partial_position(qtbot: object, car_photo: Path,
                                                                tmp_path: Path) -> None:
    """The bundled model, a real side view framed in a wider picture, *Pan across* by its key:
    the window is the car's size, no position that leaves part of the car out carries a tick
    (window, plot), and the sweep ends on a position that shows the whole car."""
    from PIL import Image, ImageFilter

    from core.predictor import SWEEP_WHOLE_SHARE, car_share, default_model_path

    with Image.open(car_photo) as im:
        car = im.convert("RGB")
    w, h = car.size
    frame = car.resize((int(w * 2.2), int(h * 1.4))).filter(ImageFilter.GaussianBlur(25))
    frame.paste(car, ((frame.width - w) // 2, (frame.height - h) // 2))
    path = tmp_path / "side.jpg"
    frame.save(path, quality=92)
    window = open_window(qtbot, default_model_path())
    load(qtbot, window, [path])
    first = wait_shown(qtbot, window)
    assert first.whole_car is WholeCar.YES and window.crop_view.found_box is not None
    found = window.crop_view.found_box
    with qtbot.waitSignal(window.sweep_animation_finished, timeout=WAIT_MS * 4):  # type: ignore[attr-defined]
        qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)  # type: ignore[attr-defined]
    sweep = window.entries[window.strip.current_key()].sweep
    assert sweep is not None
    shares = [car_share(b, found) for b in sweep.boxes]
    assert min(shares) < 0.6 and max(shares) > 0.95  # the car slides through a window of its size
    for i, (share, pred) in enumerate(zip(shares, sweep.predictions, strict=True)):
        if share < SWEEP_WHOLE_SHARE:
            assert pred.whole_car is not WholeCar.YES, f"position {i} holds {share:.0%} of the car"
            assert not window.sweep_plot.whole[i]  # drawn greyed
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.YES and car_share(window.crop_view.box(), found) >= SWEEP_WHOLE_SHARE
    assert "✓" in window.panel.confidence_label.text() and window.panel.status.currentWidget() is not window.panel.notice


def test_naming_the_car_prices_a_photo_with_no_car(qtbot: object, models: dict[str, Path], tmp_path: Path) -> None:
    """The user says which car it is (typed into "Which car is it?"): that car's price, bold,
    with the photo's verdict beside it; Undo goes back to no price."""
    window = open_window(qtbot, models["no car"])
    load(qtbot, window, [make_photo(tmp_path / "dark.jpg", (400, 300), 5)])
    wait_shown(qtbot, window)
    panel, picker = window.panel, window.panel.car_picker
    assert panel.price_label.text() == "No car"
    picker.field.clear()
    qtbot.keyClicks(picker.field, "toyota CAMRY 2016")  # type: ignore[attr-defined]
    qtbot.keyClick(picker.field, Qt.Key.Key_Return)  # type: ignore[attr-defined]
    shown = panel.shown
    assert shown is not None and shown.price is not None and shown.price.car_source == "user"
    assert shown.whole_car is WholeCar.NO_CAR and shown.priced
    assert panel.price_label.text().startswith("$") and not panel.price_greyed
    assert "car you named" in panel.notice.text() and panel.chart.heights.any()
    assert "$" in window.strip.item(0).text()
    picker.undo.click()
    assert panel.price_label.text() == "No car"
