"""What the window says about the model and its keys is what the app does now (issue 30, items 2,
3 and 6): the model details, the exported JSON and the empty histogram take their words and price
ranges from core.pricing and the file's price model, not from the price head's sentence of a fixed
year; the keyboard-shortcuts list is made from the window's actions (each key once) and says what
a double-click really does; the heat map says in a buyer's words what covering a part does.
Everything goes through the real action, key press or mouse click."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QTextDocument  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog  # noqa: E402

from carvalue_gui.help_dialogs import HtmlDialog  # noqa: E402
from carvalue_gui.main_window import MainWindow  # noqa: E402
from carvalue_gui.model_dialog import ModelDialog  # noqa: E402
from core.geometry import Box  # noqa: E402
from core.modelfile import ConfidenceSpec, ModelMetadata, PriceSpec, open_session, write_model_file  # noqa: E402
from core.photo_price import describe, display_bounds  # noqa: E402
from core.pricing import PriceBin  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402
from tests.pricefactory import price_section  # noqa: E402
from training.testmodels import make_framed_model_file, make_model_file, random_metadata  # noqa: E402

# The bundled model's own stale sentences (its price head's meaning, a cut-off confidence note).
STALE_MEANING = ("estimated 2021 used value in US dollars (nominal, no inflation adjustment): the median MSRP; "
                 "age = 2021 minus the model year.")
CUT_NOTE = "flagged (not a whole car) when the energy is below the threshold: 5% of validation car photos are"
FRAMING_NOTE = "box and whole-car heads trained on the frozen trunk"


@pytest.fixture(scope="module")
def framed_priced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A priced (format 2) model file like the bundled one: a price model whose ranges run from
    <$2.5k, a price head of <$10k ... $60k+ with a stale sentence, and framing heads."""
    d = tmp_path_factory.mktemp("framed_priced")
    meta = dataclasses.replace(random_metadata(), price=PriceSpec(meaning=STALE_MEANING), price_model=price_section(),
                               format_version=2, confidence=ConfidenceSpec(method="max_prob", threshold=0.3,
                                                                           note=CUT_NOTE))
    base, _ = make_model_file(d / "base.onnx", metadata=meta)
    out = make_framed_model_file(base, d / "framed.onnx", (0.2, 0.25, 0.8, 0.75), logit=4.0)
    _, framed = open_session(out, threads=1)
    assert framed.framing is not None
    write_model_file(out, dataclasses.replace(framed, framing=dataclasses.replace(framed.framing, note=FRAMING_NOTE)),
                     out)
    return out


def range_labels(meta: ModelMetadata) -> tuple[list[str], list[str]]:
    """(the ranges the estimates carry, the price head's own), as labels: "<$2.5k", ..."""
    shown = [PriceBin(lo, hi, 0.0).label() for lo, hi in display_bounds(meta)]
    head = [PriceBin(lo, hi, 0.0).label() for lo, hi in meta.price.bounds()]
    assert shown[0] != head[0] == "<$10k"
    return shown, head


def row(text: str, name: str) -> str:
    """A row of the dialog's table, as plain text: the cell after the row's name."""
    lines = [line.strip() for line in text.splitlines()]
    return lines[lines.index(name) + 1]


def visible_dialogs(window: MainWindow) -> list[QDialog]:
    return [w for w in window.findChildren(QDialog) if w.isVisible()]


# -- item 2: model details, the JSON, the empty histogram -------------------------------------------
def test_model_details_say_what_the_prices_are_now(qtbot: Any, framed_priced_model: Path) -> None:
    window = open_window(qtbot, framed_priced_model)
    window.panel.price_inputs.year.setValue(2025)
    window.act_model_info.trigger()  # File > Model details…
    dialog = next(d for d in visible_dialogs(window) if isinstance(d, ModelDialog))
    text = dialog.text.toPlainText()
    assert window.predictor is not None
    meta = window.predictor.metadata
    assert describe(meta, 2025) in text and "used value in 2025" in text
    assert "2021 minus" not in text and "estimated 2021 used value" not in text
    ranges = row(text, "Price ranges")
    shown, head = range_labels(meta)
    assert ranges == f"{', '.join(shown)} (USD)" and head[0] not in ranges
    check = row(text, "'Whole car' check")
    assert "whole-car head" in check and "Box and whole-car heads trained on the frozen trunk." in check
    assert "photos are" not in check  # the cut-off note of the confidence score that is not used
    assert check.rstrip().endswith(".")


def test_exported_json_says_what_the_prices_are_now(qtbot: Any, framed_priced_model: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    window = open_window(qtbot, framed_priced_model)
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 260), 1)])
    pred = wait_shown(qtbot, window)
    assert pred.price is not None
    out = tmp_path / "out.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    window.act_export.trigger()  # File > Export predictions…
    meaning = json.loads(out.read_text())["model"]["price_meaning"]
    assert window.predictor is not None
    assert meaning == describe(window.predictor.metadata, pred.price.year_of_sale)
    assert "2021 minus" not in meaning and f"used value in {pred.price.year_of_sale}" in meaning


def test_the_empty_windows_histogram_has_the_price_models_ranges(qtbot: Any, framed_priced_model: Path) -> None:
    window = open_window(qtbot, framed_priced_model)  # no photo yet
    assert window.predictor is not None
    shown, head = range_labels(window.predictor.metadata)
    labels = [label for _, label in window.panel.chart._ticks]
    assert labels[0] == shown[0] == "<$2.5k" and labels[-1] == shown[-1] and head[0] not in labels
    assert window.panel.chart.shown_ticks and all(t in window.panel.chart._ticks for t in window.panel.chart.shown_ticks)


# -- item 3: the keyboard-shortcuts list ---------------------------------------------------------------
def open_shortcuts(qtbot: Any, window: MainWindow) -> str:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_F1)  # Help > Keyboard shortcuts
    dialog = next(d for d in visible_dialogs(window) if isinstance(d, HtmlDialog)
                  and d.windowTitle() == "Keyboard shortcuts")
    return dialog.text.toPlainText()


def test_shortcuts_list_each_key_once_and_say_what_double_click_does(qtbot: Any, framed_priced_model: Path,
                                                                     tmp_path: Path) -> None:
    window = open_window(qtbot, framed_priced_model)
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 260), 1)])
    wait_shown(qtbot, window)
    text = open_shortcuts(qtbot, window)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for key in ("Ctrl+V", "Ctrl+O", "Ctrl+Z", "Ctrl+R", "Ctrl+Shift+R", "Ctrl+D", "Ctrl+P", "Del", "F1"):
        assert sum(line == key or line.startswith(f"{key} or") or f" or {key}" in line for line in lines) == 1, key
    double = next(i for i, line in enumerate(lines) if line.startswith("Double-click"))
    assert "whole photo" not in lines[double + 1] and "car" in lines[double + 1]

    # ... and that is what a double-click does: the box goes back on the car found.
    entry = window.current_entry()
    assert entry is not None and entry.found_box() is not None
    window.crop_view.set_box(Box(0, 0, entry.size[0] / 4, entry.size[1] / 4))
    view = window.crop_view
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(view.viewport().width() // 2,
                                                                            view.viewport().height() // 2))
    assert view.box() == entry.found_box() != Box.full(entry.size)


# -- item 6: the heat map in a buyer's words -----------------------------------------------------------
def plain(rich: str) -> str:
    doc = QTextDocument()
    doc.setHtml(rich)
    return doc.toPlainText()


def test_the_heat_map_says_what_covering_a_part_does(qtbot: Any, framed_priced_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, framed_priced_model)
    window.resize(1600, 1000)
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (640, 400), 1)])
    wait_shown(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)  # Tools > What drives this estimate
    overlay = window.drivers
    qtbot.waitUntil(lambda: overlay.shown is not None, timeout=WAIT_MS)
    m = overlay.shown
    assert m is not None
    text = plain(overlay.label.text())
    assert "P(" not in text and "largest change" not in text and "influence" not in overlay.mode_box.currentText()
    assert f"How sure it is of {m.label}: {m.probability:.0%}" in text
    assert "covering that part makes it less sure" in text and "Covering the part that matters most" in text
    numbers = [t.textItem.toPlainText() for t in overlay.numbers if t.isVisible()]
    assert numbers and all(re.fullmatch(r"[+\u2212]\$[\d.]+k?\nif covered", n) for n in numbers), numbers
    squares = [m.cells[i] for i in overlay.number_cells]  # numbered squares do not overlap: nor do their labels
    for a, sq in enumerate(squares):
        for b in squares[a + 1:]:
            assert abs(sq[0] - b[0]) >= sq[2] - sq[0] - 1e-9 or abs(sq[1] - b[1]) >= sq[3] - sq[1] - 1e-9

    overlay.mode_box.setFocus()  # the legend's box: colour by the price instead
    qtbot.waitUntil(overlay.mode_box.hasFocus, timeout=WAIT_MS)
    qtbot.keyClick(overlay.mode_box, Qt.Key.Key_Down)
    assert overlay.mode == "price"
    text = plain(overlay.label.text())
    assert "The price:" in text and "covering that part lowers it" in text
    assert re.search(r"Covering the part that matters most (lowers|raises) it by \$[\d.]+k?", text), text
