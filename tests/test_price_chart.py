"""The price histogram reads as prices: log-dollar widths, open ends marked, labels never overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carvalue_gui.price_chart import CHAR_PX, TICK_GAP_PX, slots, thin_ticks, tick_labels
from core.pricing import DEFAULT_DISPLAY_EDGES, PriceBasis, PriceInputs, PriceModel, bounds_of
from tests.pricefactory import price_section
from training.testmodels import MAKE_MODELS

BOUNDS = bounds_of(DEFAULT_DISPLAY_EDGES)


def test_ranges_are_as_wide_as_their_dollars_on_a_log_axis() -> None:
    sl = dict(zip(BOUNDS, slots(BOUNDS), strict=True))
    w = {k: b - a for k, (a, b) in sl.items()}
    assert w[(10_000, 15_000)] == pytest.approx(w[(100_000, 150_000)])
    assert w[(50_000, 60_000)] < w[(40_000, 50_000)] < w[(5_000, 7_500)] < w[(2_500, 5_000)]
    lefts = [a for a, _ in sl.values()]
    assert lefts == sorted(lefts)
    assert all(b1 == pytest.approx(a2) for (_, b1), (a2, _) in zip(list(sl.values()), list(sl.values())[1:], strict=False))


def test_open_ends_are_marked_open() -> None:
    labels = [t for _, t in tick_labels(BOUNDS)]
    assert labels[0] == "<$2.5k" and labels[-1] == "$250k+"
    assert "$10k" in labels and "$7.5k" in labels


@settings(max_examples=40, deadline=None)
@given(width_px=st.integers(120, 2000))
def test_labels_never_overlap(width_px: int) -> None:
    ticks = tick_labels(BOUNDS)
    sl = slots(BOUNDS)
    px = width_px / (sl[-1][1] - sl[0][0])
    kept = thin_ticks(ticks, px)
    assert kept and kept[-1][1] == "$250k+"  # the open top end is always labelled
    for a, b in zip(kept, kept[1:], strict=False):
        assert (b[0] - a[0]) * px >= (len(a[1]) + len(b[1])) * CHAR_PX / 2 + TICK_GAP_PX - 1e-9
    if width_px >= 1500:
        assert len(kept) == len(ticks)


def test_chart_draws_an_estimate(qtbot: object) -> None:
    from carvalue_gui.price_chart import PriceChart
    from core.geometry import Box
    from core.predictor import Prediction

    model = PriceModel.from_dict(price_section())
    probs = np.full(len(MAKE_MODELS), 0.01)
    probs[0] = 1.0
    est = model.estimate(probs, PriceInputs(year_of_sale=2021))
    pred = Prediction(est.median, est.likely[0], est.likely[1], est.bins, (), (), 0.9, True, Box(0, 0, 10, 10),
                      price=est, basis=PriceBasis(probs, (), math.nan))
    chart = PriceChart()
    chart.resize(600, 240)
    chart.show_prediction(pred)
    assert chart.heights == pytest.approx([b.probability for b in est.bins])
    assert chart.median_text().startswith("median $")
    lo, hi = chart._likely.getRegion()
    assert lo < chart.median_x < hi
    assert chart.median_x == pytest.approx(math.log10(est.median))
    chart.show_prediction(None)
    assert chart.median_text() == "" and chart.heights.size == 0
