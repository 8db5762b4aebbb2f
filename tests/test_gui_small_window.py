"""At 900x600, the smallest size the window is laid out for (issue 30, item 5): the heat map's
legend leaves most of the photo in sight, make/model names are shortened in the middle and keep
their year, and the photo list's not-a-whole-car marker is never cut off. Geometry of what is
painted, in the style of tests/test_gui_layout.py; the map is turned on with its key (Ctrl+D)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPoint, QRect, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from carvalue_gui.main_window import MainWindow  # noqa: E402
from core.modelfile import PriceSpec  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402
from tests.pricefactory import price_section  # noqa: E402
from training.testmodels import make_framed_model_file, make_model_file, random_metadata  # noqa: E402

SMALL = (900, 600)
LEGEND_SHARE = 0.2  # of the photo view the heat map's legend may cover (it was about a third)
# Long names, as in the bundled model's 196 classes, each ending in its model year.
LONG_NAMES = ("Acura RL Sedan 2012", "Chevrolet Silverado 2500HD Regular Cab 2012",
              "Ford F-450 Super Duty Crew Cab 2012", "Mercedes-Benz Sprinter Van 2012",
              "Hyundai Sonata Hybrid Sedan 2012", "Unknown")
YEAR = re.compile(r"\s((?:19|20)\d\d)$")


def model(d: Path, logit: float) -> Path:
    meta = dataclasses.replace(random_metadata(make_models=LONG_NAMES), price=PriceSpec(meaning="test"),
                               price_model=price_section(LONG_NAMES), format_version=2)
    base, _ = make_model_file(d / "base.onnx", metadata=meta)
    return make_framed_model_file(base, d / f"framed{logit}.onnx", (0.15, 0.2, 0.85, 0.8), logit=logit)


@pytest.fixture(scope="module")
def whole_car_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model(tmp_path_factory.mktemp("whole"), 4.0)


@pytest.fixture(scope="module")
def part_of_a_car_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every crop is judged not a whole car (the list marks each row)."""
    return model(tmp_path_factory.mktemp("part"), -4.0)


def small_window(qtbot: Any, model_file: Path, tmp_path: Path) -> MainWindow:
    window = open_window(qtbot, model_file)
    window.resize(*SMALL)
    load(qtbot, window, [make_photo(tmp_path / "a_rather_long_photo_name_IMG_20240612_101112.jpg", (640, 400), 1),
                         make_photo(tmp_path / "b.jpg", (500, 400), 2)])
    wait_shown(qtbot, window)
    for _ in range(5):
        QApplication.processEvents()
    assert (window.width(), window.height()) == SMALL
    return window


def test_the_heat_maps_legend_covers_little_of_the_photo(qtbot: Any, whole_car_model: Path, tmp_path: Path) -> None:
    window = small_window(qtbot, whole_car_model, tmp_path)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)  # Tools > What drives this estimate
    assert window.act_drivers.isChecked()
    qtbot.waitUntil(lambda: window.drivers.shown is not None, timeout=WAIT_MS)
    QApplication.processEvents()
    legend, view = window.drivers.legend, window.crop_view
    assert legend.isVisible()
    on_view = QRect(legend.mapTo(view, legend.rect().topLeft()), legend.size()).intersected(view.rect())
    share = on_view.width() * on_view.height() / (view.width() * view.height())
    assert share <= LEGEND_SHARE, f"the legend covers {share:.0%} of the photo view ({legend.size()} on {view.size()})"
    assert view.rect().contains(QRect(legend.mapTo(view, legend.rect().topLeft()), legend.size()))
    box = window.drivers.mode_box  # the colour choice is not cut short either
    assert box.width() >= box.sizeHint().width(), f"{box.currentText()!r} is cut: {box.width()} < {box.sizeHint()}"
    label = window.drivers.label  # its text is not cut: the label is tall enough for its wrapped lines
    assert label.heightForWidth(label.width()) <= label.height() + 1


def test_make_model_names_keep_their_year(qtbot: Any, whole_car_model: Path, tmp_path: Path) -> None:
    window = small_window(qtbot, whole_car_model, tmp_path)
    names = [n for n in window.panel.make_models._names if n.text()]
    assert names
    cut = 0
    for n in names:
        shown, year = n.shown_text(), YEAR.search(n.text())
        assert n.fontMetrics().horizontalAdvance(shown) <= n.contentsRect().width()
        if year:
            assert shown.endswith(year.group(1)), f"{n.text()!r} is shown as {shown!r}"
        cut += shown != n.text()
    assert cut, "no name was long enough to need shortening at 900x600: the test proves nothing"
    window.strip.viewport().grab()  # paint the rows
    for key in window.strip.keys():
        lines, _, _ = window.strip.row_delegate.painted[key]
        model_line = lines[-1]
        assert YEAR.search(model_line) or model_line == "Unknown", lines


def test_the_lists_marker_is_in_sight(qtbot: Any, part_of_a_car_model: Path, tmp_path: Path) -> None:
    window = small_window(qtbot, part_of_a_car_model, tmp_path)
    strip = window.strip
    strip.viewport().grab()
    for key in strip.keys():
        entry = window.entries[key]
        pred = entry.shown_prediction()
        assert pred is not None and not pred.looks_like_car
        lines, badge, text_rect = strip.row_delegate.painted[key]
        row = strip.visualItemRect(strip._items[key])
        assert badge is not None, f"row {lines} has no marker"
        assert row.contains(badge) and strip.viewport().rect().contains(badge)
        assert not badge.intersects(text_rect)  # on the thumbnail, not under the text
        name = Path(entry.path).name
        assert lines[0] == name or (lines[0].endswith(".jpg") and "…" in lines[0]), lines


def test_numbers_on_a_small_box_are_not_written_over_each_other(qtbot: Any, whole_car_model: Path,
                                                                tmp_path: Path) -> None:
    window = small_window(qtbot, whole_car_model, tmp_path)
    window.act_drivers.trigger()
    view = window.crop_view
    port = view.viewport()
    centre = port.rect().center()
    start, end = centre - QPoint(45, 45), centre + QPoint(45, 45)  # a 90-px box, drawn with Shift+drag
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, start)
    for step in (0.3, 0.7, 1.0):
        qtbot.mouseMove(port, start + (end - start) * step)
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, end)
    box = view.box()
    assert box is not None and box.w < 0.5 * window.current_entry().size[0]  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: window.drivers.shown is not None and window.drivers.shown.box == view.box(),
                    timeout=WAIT_MS)
    QApplication.processEvents()
    shown = [t for t in window.drivers.numbers if t.isVisible()]
    assert shown and all(t.textItem.toPlainText().endswith("if covered") for t in shown)
    rects = [view.mapFromScene(t.sceneBoundingRect()).boundingRect() for t in shown]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b), f"numbers written over each other: {a} and {b}"


def test_a_caption_too_long_for_the_panel_ends_with_an_ellipsis_and_keeps_its_words_in_the_tooltip(qtbot: Any) -> None:
    from carvalue_gui.result_panel import ElidedLabel

    label = ElidedLabel()
    qtbot.addWidget(label)
    label.setFixedWidth(160)
    label.show()
    text = "Estimated price, 2026 · 2025 dollars · age outside the fitted range"
    label.setText(text)
    assert label.text() == text and label.toolTip() == text
    assert label.shown_text().endswith("…") and len(label.shown_text()) < len(text)
    label.setText("Estimated price")
    assert label.shown_text() == "Estimated price" and label.toolTip() == "Estimated price"
