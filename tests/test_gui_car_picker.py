"""The app's "Which car is it?" field (issue 28): type a car, its price follows with no forward
pass; per photo; Undo; the export says whose car each price is of."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.gui_support import load, make_photo, open_window, wait_shown
from tests.pricefactory import make_priced_model_file


@pytest.fixture(scope="module")
def priced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_priced_model_file(tmp_path_factory.mktemp("picker") / "priced.onnx")


def test_typing_a_car_prices_it_per_photo_with_undo(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, priced_model)
    a, b = make_photo(tmp_path / "a.jpg", (400, 240), 1), make_photo(tmp_path / "b.jpg", (400, 240), 2)
    load(qtbot, window, [a, b])
    key_a = next(k for k, e in window.entries.items() if e.path == str(a))
    key_b = next(k for k, e in window.entries.items() if e.path == str(b))
    window.select_photo(key_a)
    base = wait_shown(qtbot, window)
    panel, picker = window.panel, window.panel.car_picker
    assert base.price is not None and base.price.car_source == "photo"
    # pre-filled with the photo's top answer, as a catalogue car
    from core.carprice import price_data

    top = price_data().catalogue.class_car(base.make_models[0].label, panel.price_inputs.year.value())
    assert picker.field.text() == (top.name if top is not None else "")
    assert picker.source.text() == ("the photo's answer" if top is not None else "")

    picker.field.clear()
    qtbot.keyClicks(picker.field, "toyota CAMRY 2016")  # type: ignore[attr-defined]
    qtbot.keyClick(picker.field, Qt.Key.Key_Return)  # type: ignore[attr-defined]
    shown = panel.shown
    assert shown is not None and shown.price is not None
    assert shown.price.car == "Toyota Camry 2016" and shown.price.car_source == "user"
    assert shown.basis is base.basis  # no new forward pass
    assert shown.make_models == base.make_models  # the photo's answer kept beside the price
    assert picker.field.text() == "Toyota Camry 2016" and picker.undo.isEnabled()
    assert "Toyota Camry 2016" in panel.caption.text()
    row = window.strip._items[key_a].text()  # noqa: SLF001 - the list row as the user reads it
    assert panel.price_label.text() in row and "Toyota Camry 2016 (your car)" in row

    # a car the catalogue lacks: said on one line, the price stays
    picker.field.clear()
    qtbot.keyClicks(picker.field, "jeep wrangler 2015")  # type: ignore[attr-defined]
    qtbot.keyClick(picker.field, Qt.Key.Key_Return)  # type: ignore[attr-defined]
    assert picker.error.isVisibleTo(panel) and "not in the catalogue" in picker.error.text()
    assert panel.shown is not None and panel.shown.price is not None and panel.shown.price.car == "Toyota Camry 2016"

    # photo b keeps the photo's answer; a keeps its car
    window.select_photo(key_b)
    other = wait_shown(qtbot, window)
    assert other.price is not None and other.price.car_source == "photo" and not picker.undo.isEnabled()
    window.select_photo(key_a)
    wait_shown(qtbot, window)
    assert picker.field.text() == "Toyota Camry 2016"
    assert panel.shown is not None and panel.shown.price is not None and panel.shown.price.car_source == "user"

    # the export says whose car each price is of
    out = tmp_path / "out.json"
    window.exports.export_predictions(str(out))
    photos = {Path(p["source"]).name: p for p in json.loads(out.read_text())["photos"]}
    assert photos["a.jpg"]["prediction"]["price"]["car_source"] == "user"
    assert photos["a.jpg"]["prediction"]["price"]["car"] == "Toyota Camry 2016"
    assert photos["b.jpg"]["prediction"]["price"]["car_source"] == "photo"
    assert window.exports.export_predictions(str(tmp_path / "out.csv"))
    rows = {Path(r["source"]).name: r for r in csv.DictReader((tmp_path / "out.csv").open()) if r["kind"] == "photo"}
    assert rows["a.jpg"]["car_source"] == "user" and rows["b.jpg"]["car_source"] == "photo"

    # Undo: back to the photo's own answer
    picker.undo.click()
    assert panel.shown is not None and panel.shown.price is not None
    assert panel.shown.price.car_source == "photo" and not picker.undo.isEnabled()
    assert panel.shown.median_price == pytest.approx(base.median_price)
