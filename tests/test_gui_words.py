"""What the window says about an estimate (issue 18, items 2, 9 and 10): a caption over the
price names the year it is for, the ranges are said in plain words with the long meaning one
click away, the histogram's labels hold still between estimates, and the sweep plot follows
every make/model ranked first along the sweep and says that a click moves the box."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from carvalue_gui.sweep_plot import CLICK_TITLE, TITLES, followed_labels  # noqa: E402
from core.framing import WholeCar  # noqa: E402
from core.geometry import Box  # noqa: E402
from core.predictor import LabelProb  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402
from tests.pricefactory import make_priced_model_file  # noqa: E402


@pytest.fixture(scope="module")
def priced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_priced_model_file(tmp_path_factory.mktemp("priced") / "priced.onnx")


def fake_sweep(tops: list[tuple[str, float]]) -> SimpleNamespace:
    return SimpleNamespace(predictions=[SimpleNamespace(make_models=(LabelProb(label, p),), whole_car=WholeCar.YES)
                                        for label, p in tops])


def test_followed_labels_are_the_tops_along_the_sweep() -> None:
    sweep = fake_sweep([("A", 0.5), ("B", 0.9), ("A", 0.4), ("C", 0.3), ("B", 0.6), ("D", 0.2), ("A", 0.5)])
    assert followed_labels(sweep) == ["A", "B", "C"]  # most positions first, at most three
    assert followed_labels(fake_sweep([("X", 0.2), ("Y", 0.8)])) == ["Y", "X"]  # a tie: the higher peak
    assert followed_labels(fake_sweep([("X", 0.2)] * 4)) == ["X"]


def test_caption_ranges_and_meaning(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, priced_model)
    panel = window.panel
    year = panel.price_inputs.year.value()
    assert panel.caption.text() == f"Estimated price, {year}"  # before any photo
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 240), 1)])
    pred = wait_shown(qtbot, window)
    assert pred.price is not None
    from core.money import LAST_YEAR

    # past the used-car index's last year the dollars are that year's, and the caption says so (issue 28)
    dollars = "" if year <= LAST_YEAR else f" · {LAST_YEAR} dollars"
    assert panel.caption.text() == f"Estimated price, {year}{dollars}"
    panel.price_inputs.mileage.setText("150000")
    assert panel.caption.text() == f"Estimated price, {year}{dollars} · 150,000 mi"
    lines = panel.range_label.text().splitlines()
    assert lines[0].startswith("likely $") and lines[1].startswith("80%: $")
    assert "1 in 2" in panel.hint.text() and "8 in 10" in panel.hint.text()
    assert "What is this price?" in panel.hint.text()
    assert "MSRP" not in panel.model_line.text()  # the long meaning is behind the link now
    assert "MSRP" in panel.hint.toolTip() and "half of them" in panel.range_label.toolTip()
    dialog = panel.show_price_help()
    text = dialog.text.toPlainText()
    assert f"Estimated used value in {year}" in text and "mileage 150,000 mi" in text and "Not seen" in text
    dialog.close()


def test_histogram_labels_hold_still_between_estimates(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    """Item 9: the "$0" label came and went between estimates; the ticks now depend on the
    ranges and the chart's width only."""
    window = open_window(qtbot, priced_model)
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 240), 1)])
    wait_shown(qtbot, window)
    chart = window.panel.chart
    first = list(chart.shown_ticks)
    assert first and not any(label == "$0" for _, label in first)
    heights = []
    for box in (Box(0, 0, 120, 100), Box(200, 60, 190, 170), Box(30, 20, 300, 200)):
        window.crop_view.set_box(box)
        wait_shown(qtbot, window)
        heights.append(chart.heights.copy())
        assert chart.shown_ticks == first
    assert any((h != heights[0]).any() for h in heights[1:])  # the estimates did differ


def test_sweep_plot_follows_the_tops_and_says_click(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    window = open_window(qtbot, priced_model)
    plot = window.sweep_plot
    assert plot.shown_title in TITLES[plot._title]
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (640, 240), 3)])
    wait_shown(qtbot, window)
    with qtbot.waitSignal(window.sweep_animation_finished, timeout=WAIT_MS):  # type: ignore[attr-defined]
        window.act_sweep.trigger()
    sweep = window.current_entry().sweep  # type: ignore[union-attr]
    tops = {p.make_models[0].label for p in sweep.predictions}
    assert set(plot.followed_all) <= tops and len(plot.followed_all) == min(3, len(tops))
    assert plot.followed == plot.followed_all[0]
    legend = [label.text for _, label in plot.legend.items]
    assert len(legend) == len(plot.followed_all)
    assert all(text.startswith("how sure: ") for text in legend)  # buyer words, not P(...)
    assert plot.shown_title in TITLES[CLICK_TITLE] and "lick" in plot.shown_title
    assert "Click a point to move the box there" in plot.toolTip()
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: plot.shown_title == CLICK_TITLE, timeout=WAIT_MS)  # type: ignore[attr-defined]


def test_the_photo_says_how_to_change_the_crop(qtbot: object, priced_model: Path, tmp_path: Path) -> None:
    from carvalue_gui.crop_view import CROP_HINTS, HINT_MARGIN

    window = open_window(qtbot, priced_model)
    view = window.crop_view
    assert view.hint_text() == ""  # no photo: the drop-photos placeholder says what to do
    load(qtbot, window, [make_photo(tmp_path / "a.jpg", (400, 240), 1)])
    wait_shown(qtbot, window)
    for size in ((900, 600), (1920, 1080)):
        window.resize(*size)
        qtbot.waitUntil(lambda s=size: window.width() == s[0])  # type: ignore[attr-defined]
        text = view.hint_text()
        assert text in CROP_HINTS[:3] and "Drag the box" in text and "Ctrl+R" in text
        assert view.fontMetrics().horizontalAdvance(text) + 4 * HINT_MARGIN <= view.viewport().width()
    assert view.hint_text() == CROP_HINTS[0]
