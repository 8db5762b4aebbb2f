"""The window's state stays consistent (issue 18): what the headline, the status bar, the photo
list, the actions and the exported files say agrees with what is on screen."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtGui import QImage  # noqa: E402

from carvalue_gui.main_window import MainWindow  # noqa: E402
from core.geometry import Box  # noqa: E402
from core.money import format_dollars  # noqa: E402
from tests.gui_support import WAIT_MS, load, open_window, wait_shown  # noqa: E402


def move_box(qtbot: object, window: MainWindow, box: Box) -> None:
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):  # type: ignore[attr-defined]
        window.crop_view.set_box(box)
    wait_shown(qtbot, window)


def reset_box(qtbot: object, window: MainWindow) -> None:
    with qtbot.waitSignal(window.result_shown, timeout=WAIT_MS):  # type: ignore[attr-defined]
        window.crop_view.reset_box()
    wait_shown(qtbot, window)


def test_empty_start_headline_agrees_with_the_status_bar(window: MainWindow) -> None:
    assert window.predictor is not None
    assert window.model_label.text() == f"Model: {window.predictor.metadata.name}"
    assert window.panel.price_label.text() == "—"  # not "No model"
    assert "No model" not in window.panel.model_line.text()


def test_the_list_shows_the_current_crops_result(qtbot: object, window: MainWindow,
                                                 photos: dict[str, list[Path]]) -> None:
    load(qtbot, window, photos["loose"][:1])
    whole = wait_shown(qtbot, window)
    move_box(qtbot, window, Box(20, 10, 120, 90))
    crop = window.panel.shown
    assert crop is not None and crop is not whole
    row = window.strip.item(0).text()
    assert f"{format_dollars(crop.median_price)} (crop)" in row, row
    reset_box(qtbot, window)
    row = window.strip.item(0).text()
    assert "(crop)" not in row and format_dollars(whole.median_price) in row, row


def test_export_after_a_reset_writes_no_old_crop_and_respects_the_umask(
        qtbot: object, window: MainWindow, photos: dict[str, list[Path]], tmp_path: Path) -> None:
    load(qtbot, window, photos["loose"][:1])
    wait_shown(qtbot, window)
    move_box(qtbot, window, Box(20, 10, 120, 90))
    reset_box(qtbot, window)  # a double-click does this
    entry = window.current_entry()
    assert entry is not None and entry.box is None and entry.crop_prediction is None
    old = os.umask(0o022)
    try:
        window.exports.export_predictions(str(tmp_path / "out.csv"))
        window.exports.export_predictions(str(tmp_path / "out.json"))
    finally:
        os.umask(old)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        kinds = [r["kind"] for r in csv.DictReader(f)]
    assert kinds == ["photo"]
    for name in ("out.csv", "out.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_saved_charts_are_one_titled_png(qtbot: object, window: MainWindow,
                                         photos: dict[str, list[Path]], tmp_path: Path) -> None:
    load(qtbot, window, photos["loose"][:1])
    shown = wait_shown(qtbot, window)
    title = window.exports.chart_title()
    assert Path(photos["loose"][0]).name in title and format_dollars(shown.median_price) in title
    written = window.exports.save_charts(str(tmp_path / "chart.png"))
    assert written == [str(tmp_path / "chart.png")]
    alone = QImage(written[0])
    assert alone.height() > window.panel.chart.height()  # the title band above the chart
    with qtbot.waitSignal(window.sweep_shown, timeout=WAIT_MS):  # type: ignore[attr-defined]
        window.act_sweep.trigger()
    qtbot.waitUntil(lambda: not window.sweeps.animation.running(), timeout=WAIT_MS)  # type: ignore[attr-defined]
    written = window.exports.save_charts(str(tmp_path / "both.png"))
    assert written == [str(tmp_path / "both.png")]  # one file: no second "-sweep.png" beside it
    assert not (tmp_path / "both-sweep.png").exists()
    both = QImage(written[0])
    assert both.height() > window.panel.chart.height() + window.sweep_plot.height()


def test_opening_more_photos_selects_the_first_new_one(qtbot: object, window: MainWindow,
                                                       photos: dict[str, list[Path]]) -> None:
    load(qtbot, window, photos["loose"])
    wait_shown(qtbot, window)
    assert window.current_entry().path == str(photos["loose"][0])  # type: ignore[union-attr]
    load(qtbot, window, photos["folder"])
    first_new = str(photos["in_folder"][0])
    entry = window.current_entry()
    assert entry is not None and entry.path == first_new
    assert window.crop_view.image_size() == entry.size
    shown = wait_shown(qtbot, window)
    assert shown.source == first_new


def test_actions_with_nothing_to_act_on_are_disabled(qtbot: object, window: MainWindow,
                                                     photos: dict[str, list[Path]]) -> None:
    idle = (window.act_sweep, window.act_export, window.act_charts, window.act_copy, window.act_reset)
    assert not any(a.isEnabled() for a in idle), [a.text() for a in idle if a.isEnabled()]
    assert window.sweeps.start() == 0
    said = [m for m in window.notices.messages if "Pan across" in m]
    assert said == ["Pan across needs a photo: open or drop one first"], said
    load(qtbot, window, photos["loose"][:1])
    wait_shown(qtbot, window)
    assert all(a.isEnabled() for a in idle)


def test_without_a_model_pan_across_says_only_that(qtbot: object, tmp_path: Path,
                                                   photos: dict[str, list[Path]]) -> None:
    w = MainWindow(model_path=str(tmp_path / "missing.onnx"))
    qtbot.addWidget(w)  # type: ignore[attr-defined]
    load(qtbot, w, photos["loose"][:1])
    assert not w.act_sweep.isEnabled() and not w.act_export.isEnabled()
    assert w.sweeps.start() == 0
    assert [m for m in w.notices.messages if "Pan across" in m] == [
        "Pan across needs a model: File > Open model…"]



def test_model_details_are_a_readable_summary_with_the_licences(window: MainWindow) -> None:
    import dataclasses
    import re

    from carvalue_gui.model_dialog import ModelDialog

    assert window.predictor is not None
    meta = dataclasses.replace(
        window.predictor.metadata,
        provenance={
            "non_commercial": True,
            "counts": {"train": 6050, "val": 380, "test": 733},
            "datasets": [
                {"name": "Stanford Cars (training split)",
                 "licence": "Stanford Cars: for non-commercial research purposes only."},
                {"name": "car-features-msrp", "licence": "BSD-3/MIT"},
            ],
            "trunk": {"licence_note": "Keras Applications MobileNetV2 weights (Apache-2.0)"},
            "training": {"config": {"lr": 0.0003, "rrc_ratio_max": 1.3333333333333333}},
        },
        metrics={"test": {"make_model_top1": 0.800818553888131, "median_mae_usd": 10618.400047969448,
                          "year_within1": 0.9017735334242838},
                 "calibration": {"price": {"after": 0.021334320006939363}}})
    text = ModelDialog(meta, "/models/x.onnx", window).text.toPlainText()
    assert "Non-commercial use only" in text
    assert "Stanford Cars (training split): Stanford Cars: for non-commercial research purposes only." in text
    assert "car-features-msrp: BSD-3/MIT" in text and "Apache-2.0" in text
    assert "not stated" not in text
    assert "80.1%" in text and "$10,618" in text and "90.2%" in text and "6,050" in text
    assert re.search(r"\d\.\d{6,}", text) is None, "unrounded numbers"
    assert "{" not in text and '"' not in text  # no JSON


def test_undo_and_redo_move_the_box_back_and_the_estimate_follows(qtbot: object, window: MainWindow,
                                                                  photos: dict[str, list[Path]]) -> None:
    from PySide6.QtGui import QKeySequence

    assert QKeySequence("Ctrl+Z") in window.act_undo.shortcuts()
    assert QKeySequence("Ctrl+Shift+Z") in window.act_redo.shortcuts()
    load(qtbot, window, photos["loose"][:1])
    wait_shown(qtbot, window)
    assert not window.act_undo.isEnabled()
    first, second = Box(20, 10, 120, 90), Box(100, 50, 150, 120)
    move_box(qtbot, window, first)
    qtbot.waitUntil(lambda: window.box_history.stack.count() == 1, timeout=WAIT_MS)  # type: ignore[attr-defined]
    for x in (100, 110, 120):  # a drag: many moves, one step
        window.crop_view.set_box(Box(x, 50, 150, 120))
    move_box(qtbot, window, second)
    qtbot.waitUntil(lambda: window.box_history.stack.count() == 2, timeout=WAIT_MS)  # type: ignore[attr-defined]
    window.act_undo.trigger()
    assert window.crop_view.box() == first
    assert wait_shown(qtbot, window).crop == first
    window.act_undo.trigger()  # back to the whole photo
    entry = window.current_entry()
    assert entry is not None and window.crop_view.box() == Box.full(entry.size) and entry.box is None
    assert not window.act_undo.isEnabled() and window.act_redo.isEnabled()
    window.act_redo.trigger()
    window.act_redo.trigger()
    assert window.crop_view.box() == second
    assert wait_shown(qtbot, window).crop == second
    assert window.box_history.stack.count() == 2  # undo/redo pushed no steps of their own


def test_undo_right_after_a_move_undoes_that_move(qtbot: object, window: MainWindow,
                                                  photos: dict[str, list[Path]]) -> None:
    load(qtbot, window, photos["loose"][:1])
    wait_shown(qtbot, window)
    move_box(qtbot, window, Box(20, 10, 120, 90))
    window.act_undo.trigger()  # before the move has settled into a step
    entry = window.current_entry()
    assert entry is not None and entry.box is None


def test_remove_photo_shows_the_next_one_and_the_last_leaves_an_empty_window(
        qtbot: object, window: MainWindow, photos: dict[str, list[Path]]) -> None:
    from PySide6.QtGui import QKeySequence

    assert window.act_remove.shortcut() == QKeySequence(QKeySequence.StandardKey.Delete)
    load(qtbot, window, photos["loose"])
    wait_shown(qtbot, window)
    first, second = window.entries.values()
    window.act_remove.trigger()
    assert list(window.entries) == [second.key] and window.strip.count() == 1
    assert window.current_entry() is second and window.crop_view.image_size() == second.size
    assert wait_shown(qtbot, window).source == second.path
    load(qtbot, window, photos["loose"][:1])  # removed photos can be opened again
    assert len(window.entries) == 2
    window.act_remove.trigger()
    window.act_remove.trigger()
    assert not window.entries and window.crop_view.image_size() is None
    assert window.panel.shown is None and window.panel.price_label.text() == "—"
    assert not window.act_remove.isEnabled() and not window.act_export.isEnabled()
    assert window.loader.waiting() == 0 and window.session.batch_pending() == 0


def test_clear_recent_files(qtbot: object, window: MainWindow, photos: dict[str, list[Path]]) -> None:
    load(qtbot, window, photos["loose"][:1])
    assert window.settings.recent_files
    window.recent_menu.aboutToShow.emit()
    clear = next(a for a in window.recent_menu.actions() if a.text() == "&Clear recent files")
    clear.trigger()
    assert window.settings.recent_files == []
    window.recent_menu.aboutToShow.emit()
    assert [a.text() for a in window.recent_menu.actions()] == ["(none)"]


def test_help_about_and_shortcuts(window: MainWindow) -> None:
    from carvalue_gui.version import app_version

    assert window.predictor is not None
    about = window.show_about().text.toPlainText()
    assert f"CarValue {app_version()}" in about and window.predictor.metadata.name in about
    assert "MIT" in about and "LGPL" in about
    keys = window.show_shortcuts().text.toPlainText()
    for expected in ("Ctrl+Z", "Ctrl+Shift+Z", "Del", "Ctrl+P", "Ctrl+O", "Arrow keys", "Double-click"):
        assert expected in keys, expected


def test_carvalue_version(capsys: pytest.CaptureFixture[str]) -> None:
    from carvalue_gui.launcher import main
    from carvalue_gui.version import app_version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"carvalue {app_version()}\n"
    assert app_version()[0].isdigit()
    # It answers without loading Qt (as fast as `carvalue predict`).
    import subprocess
    import sys

    code = ("import sys; from carvalue_gui.launcher import main; main(['--version']); "
            "assert 'PySide6' not in sys.modules, 'Qt was imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0, run.stderr[-1000:]
    assert run.stdout == f"carvalue {app_version()}\n"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_the_list_keeps_each_thumbnail_as_a_small_jpeg_and_shows_it(qtbot: object) -> None:
    """A row costs a few KB, not a 27 KB pixmap: 3,000 rows of pixmaps would add ~83 MB."""
    from PIL import Image
    from PySide6.QtCore import Qt

    from carvalue_gui.loader import make_thumbnail
    from carvalue_gui.photo_strip import THUMB_CACHE, PhotoStrip
    from core.preprocess import photo_from_image

    strip = PhotoStrip()
    qtbot.addWidget(strip)  # type: ignore[attr-defined]
    strip.resize(240, 400)
    strip.show()
    red = make_thumbnail(photo_from_image(Image.new("RGB", (320, 200), (200, 30, 30)), "red.jpg"))
    assert len(red) < 4_000
    before = rss_mb()
    for key in range(3000):
        strip.add_photo(key, f"/photos/{key:04d}.jpg", red)
    strip.scrollToBottom()
    qtbot.wait(50)  # type: ignore[attr-defined]
    assert rss_mb() - before < 40
    assert len(strip._thumbs) <= THUMB_CACHE
    pixmap = strip.item(0).data(Qt.ItemDataRole.DecorationRole)
    assert pixmap.width() == 96 and pixmap.height() == 72
    colour = pixmap.toImage().pixelColor(48, 36)
    assert colour.red() > 150 and colour.green() < 80 and colour.blue() < 80
    shot = strip.grab().toImage()  # the view paints the decoded thumbnails
    reds = sum(1 for x in range(0, shot.width(), 4) for y in range(0, shot.height(), 4)
               if (c := shot.pixelColor(x, y)).red() > 150 and c.green() < 80 and c.blue() < 80)
    assert reds > 50


def test_undo_returns_to_the_car_found_when_the_box_was_automatic(qtbot: object, tmp_path: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    pytest.importorskip("torch")
    from tests.gui_support import make_photo
    from training.testmodels import make_framed_model_file, make_model_file

    d = tmp_path_factory.mktemp("framed")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    model = make_framed_model_file(base, d / "framed.onnx", (0.25, 0.5, 0.75, 1.0), 3.0)
    window = open_window(qtbot, model)
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 300), 1)])
    found = Box(100, 150, 200, 150)
    qtbot.waitUntil(lambda: window.crop_view.box() == found, timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert window.box_history.stack.count() == 0  # the app placed it: not a step of the user's
    move_box(qtbot, window, Box(10, 10, 200, 150))
    window.act_undo.trigger()
    assert window.crop_view.box() == found
    entry = window.current_entry()
    assert entry is not None and entry.box is None
    assert wait_shown(qtbot, window).crop == found
    assert "the car found" in window.exports.chart_title()


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Nd",)), max_size=30),  # digits: numbers only
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provenance=st.dictionaries(st.text(max_size=12), _json, max_size=6),
       metrics=st.dictionaries(st.text(max_size=12), _json, max_size=6))
def test_model_details_render_any_metadata_readably(window: MainWindow, provenance: dict[str, object],
                                                    metrics: dict[str, object]) -> None:
    """Whatever JSON a model file carries (outside input), the summary renders, with rounded
    numbers and escaped text."""
    import dataclasses
    import re

    from PySide6.QtGui import QTextDocument

    from carvalue_gui.model_dialog import metadata_html

    assert window.predictor is not None
    meta = dataclasses.replace(window.predictor.metadata, provenance=provenance, metrics=metrics)
    html = metadata_html(meta, "<model & file>.onnx")
    doc = QTextDocument()
    doc.setHtml(html)
    text = doc.toPlainText()
    assert "<model & file>.onnx" in text  # escaped, not taken as markup
    assert re.search(r"\d\.\d{6,}", text) is None, "unrounded numbers"
