"""A car it doesn't know, in the window (issue 29): the make and the "not in the catalogue"
words, no bold price (the closest class's, greyed, "if it were"), "Which car is it?" pre-filled
with the make; picking a car by typing it prices that car."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui_support import load, make_photo, open_window, wait_shown
from tests.test_unknown_car import _grafted


@pytest.fixture(scope="module")
def unknown_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _grafted(tmp_path_factory.mktemp("gui-unknown"), 1.0, "unknown")


def test_an_unknown_car_shows_its_make_and_no_bold_price_and_picking_a_car_prices_it(
        qtbot: object, unknown_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, unknown_model)
    load(qtbot, window, [make_photo(tmp_path / "kia.jpg", (400, 240), 4)])
    shown = wait_shown(qtbot, window)
    panel, picker = window.panel, window.panel.car_picker
    assert shown.unknown_car and shown.makes
    make, closest = shown.makes[0].label, shown.make_models[0].label
    assert panel.price_greyed  # the closest class's price is not this car's
    assert panel.caption.text() == f"If it were {closest}"
    status = panel.status.currentWidget().text()  # type: ignore[attr-defined]
    assert f"{make}, a model or year this app does not know (closest it knows: {closest})" in status
    assert "Looks like a whole car" not in status
    row = window.strip.item(0).text()
    assert f"{make}: not in the catalogue" in row and f"if it were {closest}" in row
    assert picker.field.text() == make and picker.source.text().startswith("the photo's make")
    assert panel.years.texts()[0] == shown.year_words

    # The user says which car it is: that is the answer, priced at once, in bold.
    picker.field.clear()
    qtbot.keyClicks(picker.field, "toyota camry 2016")  # type: ignore[attr-defined]
    qtbot.keyClick(picker.field, Qt.Key.Key_Return)  # type: ignore[attr-defined]
    named = panel.shown
    assert named is not None and named.price is not None
    assert named.price.car == "Toyota Camry 2016" and named.price.car_source == "user"
    assert not named.unknown_car and not panel.price_greyed
    assert "Toyota Camry 2016" in panel.caption.text() and "If it were" not in panel.caption.text()
    assert "does not know" not in panel.status.currentWidget().text()  # type: ignore[attr-defined]
