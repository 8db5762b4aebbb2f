"""The app's price inputs: per-photo mileage and condition reprice at once (no forward pass),
are remembered per photo, and priced into the export (issue 17)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from carvalue_gui.photo_collection import PhotoFields
from carvalue_gui.photo_session import parse_inputs
from core.pricing import PriceInputs
from tests.gui_support import load, make_photo, open_window, wait_shown
from tests.pricefactory import make_priced_model_file


@pytest.fixture(scope="module")
def priced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_priced_model_file(tmp_path_factory.mktemp("priced") / "priced.onnx")


def test_fields_parse_and_refuse_typos() -> None:
    assert parse_inputs(PhotoFields("150,000", "mi", "fair"), 2026) == PriceInputs(2026, 150_000.0, "fair")
    assert parse_inputs(PhotoFields("", "km", ""), 2026) == PriceInputs(2026)
    assert parse_inputs(PhotoFields("100000", "km"), 2026).mileage_mi == pytest.approx(62_137.1, rel=1e-4)
    with pytest.raises(ValueError, match="mileage must be a number, got '12k'"):
        parse_inputs(PhotoFields("12k"), 2026)


def test_mileage_and_condition_reprice_at_once_per_photo(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, priced_model)
    a, b = make_photo(tmp_path / "a.jpg", (400, 240), 1), make_photo(tmp_path / "b.jpg", (400, 240), 2)
    load(qtbot, window, [a, b])
    window.select_photo(next(k for k, e in window.entries.items() if e.path == str(a)))
    base = wait_shown(qtbot, window)
    panel, fields = window.panel, window.panel.price_inputs

    def shown_after(edit: object) -> float:
        edit()  # type: ignore[operator]
        assert panel.shown is not None
        return panel.shown.median_price

    low = shown_after(lambda: fields.mileage.setText("20000"))
    high = shown_after(lambda: fields.mileage.setText("150000"))
    assert high < low
    assert "150,000 mi" in panel.caption.text() and panel.price_label.text() != ""
    fields.mileage.setText("")
    excellent = shown_after(lambda: fields.condition.setCurrentIndex(fields.condition.findData("excellent")))
    fair = shown_after(lambda: fields.condition.setCurrentIndex(fields.condition.findData("fair")))
    assert fair < excellent
    assert panel.shown is not None and panel.shown.basis is base.basis  # no new forward pass
    # a typo says so on one line and keeps the last good price
    shown_after(lambda: fields.mileage.setText("12k"))
    assert fields.error.isVisible() and "mileage must be a number" in fields.error.text()
    assert panel.shown.price is not None and panel.shown.price.inputs.condition == "fair"
    fields.mileage.setText("150000")
    key_a = next(k for k, e in window.entries.items() if e.path == str(a))
    assert panel.price_label.text() in window.strip._items[key_a].text()  # the row follows the fields

    # photo b starts with empty fields; a keeps its own
    window.select_photo(next(k for k, e in window.entries.items() if e.path == str(b)))
    wait_shown(qtbot, window)
    assert fields.mileage.text() == "" and fields.condition.currentData() == ""
    window.select_photo(next(k for k, e in window.entries.items() if e.path == str(a)))
    wait_shown(qtbot, window)
    assert fields.mileage.text() == "150000" and fields.condition.currentData() == "fair"
    assert panel.shown is not None and panel.shown.price is not None
    assert panel.shown.price.inputs == PriceInputs(fields.year.value(), 150_000.0, "fair")

    # the export prices each photo with its own fields
    out = tmp_path / "out.json"
    window.exports.export_predictions(str(out))
    photos = {Path(p["source"]).name: p for p in json.loads(out.read_text())["photos"]}
    assert photos["a.jpg"]["prediction"]["price"]["inputs"]["condition"] == "fair"
    assert photos["a.jpg"]["prediction"]["price"]["inputs"]["mileage_mi"] == 150_000
    assert photos["b.jpg"]["prediction"]["price"]["inputs"]["mileage_mi"] is None
    rows = list(csv.DictReader((tmp_path / "out.csv").open()) if window.exports.export_predictions(str(tmp_path / "out.csv"))
                else [])
    by_source = {Path(r["source"]).name: r for r in rows if r["kind"] == "photo"}
    assert by_source["a.jpg"]["condition"] == "fair" and by_source["b.jpg"]["condition"] == ""
    assert float(by_source["a.jpg"]["range80_low"]) <= float(by_source["a.jpg"]["price_low"])


def test_year_of_sale_is_a_setting_that_does_not_go_stale(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    from carvalue_gui.main_window import MainWindow
    from carvalue_gui.settings import Settings, _from_dict
    from core.pricing import current_year

    window = MainWindow(model_path=str(priced_model), settings=Settings(year_of_sale=2024))
    qtbot.addWidget(window)  # type: ignore[attr-defined]
    assert window.panel.price_inputs.year.value() == 2024
    assert "value in 2024" in window.panel.price_meaning() and "2024" in window.panel.caption.text()
    window.close()  # the layout and the year of sale are stored
    assert window.settings.year_of_sale == 2024
    window.panel.price_inputs.year.setValue(current_year())
    window.close()  # the layout and the year of sale are stored
    assert window.settings.year_of_sale == 0  # "this year", whichever year it is when next opened
    assert _from_dict({"year_of_sale": 1800}).year_of_sale == 0
    assert _from_dict({"year_of_sale": True}).year_of_sale == 0


def test_sweep_plot_prices_with_the_photos_fields(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, priced_model)
    load(qtbot, window, [make_photo(tmp_path / "c.jpg", (400, 240), 3)])
    wait_shown(qtbot, window)
    with qtbot.waitSignal(window.sweep_shown, timeout=15_000):  # type: ignore[attr-defined]
        window.act_sweep.trigger()
    before = window.sweep_plot.medians.copy()
    window.panel.price_inputs.mileage.setText("250000")
    after = window.sweep_plot.medians
    assert len(after) == len(before) and (after < before).all()
