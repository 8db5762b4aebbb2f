"""core.pricing: the price mixture, its ranges, inputs and words; the model file's price_model."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.modelfile import ModelFileError, ModelMetadata
from core.photo_price import estimate_price
from core.pricing import (
    CONDITIONS,
    PriceBasis,
    PriceBin,
    PriceInputs,
    PriceModel,
    PriceModelError,
)
from tests.pricefactory import price_section
from training.testmodels import MAKE_MODELS, random_metadata

ACURA = MAKE_MODELS.index("Acura TL Sedan 2012")
HEAD_BINS = (PriceBin(0, 10e3, 0.2), PriceBin(10e3, 20e3, 0.5), PriceBin(20e3, None, 0.3))


@pytest.fixture(scope="module")
def model() -> PriceModel:
    return PriceModel.from_dict(price_section(), n_classes=len(MAKE_MODELS))


def one_hot(i: int) -> np.ndarray:
    p = np.full(len(MAKE_MODELS), 1e-9)
    p[i] = 1.0
    return p


def test_confident_photo_gets_the_real_spread_not_one_bin(model: PriceModel) -> None:
    est = model.estimate(one_hot(ACURA), PriceInputs(year_of_sale=2021))
    lo, hi = est.likely
    assert lo < est.median < hi
    assert hi / lo >= 1.2  # the class's spread (a factor ~1.4), not a bin's interpolation
    assert est.range80[0] < lo and hi < est.range80[1]
    # centre: MSRP x exp(intercept + cubic(0.9)) for a 9-year-old car
    a = 0.9
    centre = 35_000 * math.exp(-0.05 - 1.1 * a - 0.45 * a**2 + 0.2 * a**3)
    assert est.median == pytest.approx(centre, rel=0.01)
    assert sum(b.probability for b in est.bins) == pytest.approx(1.0)


def test_year_of_sale_ages_the_car(model: PriceModel) -> None:
    p2021 = model.estimate(one_hot(ACURA), PriceInputs(year_of_sale=2021)).median
    p2026 = model.estimate(one_hot(ACURA), PriceInputs(year_of_sale=2026)).median
    assert p2026 < p2021
    default = model.estimate(one_hot(ACURA), PriceInputs())
    assert default.year_of_sale == PriceInputs().year == __import__("datetime").date.today().year


def test_age_outside_the_fitted_range_is_said(model: PriceModel) -> None:
    geo = MAKE_MODELS.index("Geo Metro Convertible 1993")
    est = model.estimate(one_hot(geo), PriceInputs(year_of_sale=2026))
    assert est.age == 33 and est.age_outside
    assert any("outside the fitted range 0-25" in n for n in est.words()["notes"])
    assert "age outside" in est.short_inputs()


def test_mileage_and_condition_move_the_price(model: PriceModel) -> None:
    probs = one_hot(ACURA)
    low_miles = model.estimate(probs, PriceInputs(mileage_mi=20_000)).median
    high_miles = model.estimate(probs, PriceInputs(mileage_mi=150_000)).median
    assert high_miles < low_miles
    fair = model.estimate(probs, PriceInputs(condition="fair")).median
    excellent = model.estimate(probs, PriceInputs(condition="excellent")).median
    assert fair < excellent
    words = model.estimate(probs, PriceInputs(mileage_mi=150_000, condition="fair")).words()
    assert "mileage 150,000 mi" in words["inputs_used"] and "condition fair" in words["inputs_used"]


def test_unpriced_share_is_priced_by_the_head_and_said(model: PriceModel) -> None:
    ford = MAKE_MODELS.index("Unknown")  # no price, as in the bundled model
    probs = one_hot(ACURA) * 0.6 + one_hot(ford) * 0.4
    est = model.estimate(probs, PriceInputs(), 15_000.0)
    assert est.priced_share == pytest.approx(0.6, abs=1e-3)
    assert any("40% of the make/model probability" in n for n in est.words()["notes"])
    with pytest.raises(ValueError, match="no probability on a class with a known price"):
        model.estimate(one_hot(ford) * 0 + (np.arange(len(MAKE_MODELS)) == ford), PriceInputs())


@settings(max_examples=40, deadline=None)
@given(probs=st.lists(st.floats(0, 1), min_size=len(MAKE_MODELS), max_size=len(MAKE_MODELS)).filter(
           lambda p: sum(p[i] for i in (0, 1, 3, 4)) > 1e-3),
       miles=st.one_of(st.none(), st.floats(0, 2_000_000)),
       year=st.integers(1950, 2100),
       condition=st.one_of(st.none(), st.sampled_from(CONDITIONS)),
       head=st.booleans())
def test_any_posterior_gives_finite_ordered_quantiles(model: PriceModel, probs: list[float], miles: float | None,
                                                      year: int, condition: str | None, head: bool) -> None:
    est = model.estimate(np.array(probs), PriceInputs(year, miles, condition), 15_000.0 if head else None)
    qs = [est.range80[0], est.likely[0], est.median, est.likely[1], est.range80[1]]
    assert all(math.isfinite(q) and q > 0 for q in qs)
    assert qs == sorted(qs)
    assert est.likely[0] <= est.median <= est.likely[1]  # the median always lies in the likely range
    assert sum(b.probability for b in est.bins) == pytest.approx(1.0, abs=1e-6)
    json.dumps(est.to_dict())


@pytest.mark.parametrize("mileage, km, condition, message", [
    (-5, False, None, "mileage must be a number"), (float("nan"), False, None, "mileage must be a number"),
    (1e9, True, None, "mileage must be a number"), (None, False, "mint", "condition must be one of"),
])
def test_bad_inputs_get_one_line(mileage: float | None, km: bool, condition: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PriceInputs.from_user(None, mileage, km, condition)


def test_kilometres_become_miles() -> None:
    assert PriceInputs.from_user(None, 160_934.4, km=True).mileage_mi == pytest.approx(100_000)


# --------------------------------------------------------------------------- the model file


def metadata_json(**changes: object) -> str:
    d = json.loads(dataclasses.replace(random_metadata(), price_model=price_section()).to_json())
    d.update(changes)
    return json.dumps(d)


def test_price_model_round_trips_through_metadata() -> None:
    meta = ModelMetadata.from_json(metadata_json())
    assert meta.format_version == 2 and meta.price_model is not None
    basis = PriceBasis(one_hot(ACURA), HEAD_BINS, 12_000.0)
    # Stanford class names are priced through the bundled catalogue and per-make depreciation
    # (issue 28); a vocabulary the catalogue does not know keeps the file's own class table.
    assert estimate_price(meta, basis, PriceInputs()).source == "catalogue"
    other = dataclasses.replace(meta, make_models=tuple(f"Nomake Car{i} 2012" for i in range(len(meta.make_models))))
    assert estimate_price(other, basis, PriceInputs()).source == "price_model"


def test_version_1_metadata_loads_and_prices_from_the_head() -> None:
    d = json.loads(random_metadata().to_json())
    d["format_version"] = 1
    d.pop("price_model", None)
    d.pop("framing", None)
    meta = ModelMetadata.from_json(json.dumps(d))
    est = estimate_price(meta, PriceBasis(one_hot(ACURA), HEAD_BINS, 12_000.0), PriceInputs(mileage_mi=9))
    assert est.source == "price_head" and est.likely[0] <= est.median <= est.likely[1]
    assert "no price model" in est.words()["what"]


@pytest.mark.parametrize("change, fault", [
    ({"format_version": 1}, "needs format_version 2"),
    ({"price_model": {**price_section(), "version": 9}}, "newer than this app supports"),
    ({"price_model": {**price_section(), "classes": price_section()["classes"][:2]}}, "2 classes but"),
    ({"price_model": {k: v for k, v in price_section().items() if k != "variants"}}, "missing 'variants'"),
    ({"price_model": {**price_section(), "edges": [5, 1]}}, "edges must be positive"),
    ({"price_model": [1, 2]}, "price_model must be an object"),
])
def test_bad_price_model_is_refused_clearly(change: dict[str, object], fault: str, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=fault) as e:
        ModelMetadata.from_json(metadata_json(**change), tmp_path / "m.onnx")
    assert str(tmp_path / "m.onnx") in str(e.value) and "\n" not in str(e.value)


def test_decreasing_residual_quantiles_are_refused() -> None:
    d = price_section()
    d["variants"]["none"]["residual_quantiles"] = list(reversed(d["variants"]["none"]["residual_quantiles"]))
    with pytest.raises(PriceModelError, match="quantiles must not decrease"):
        PriceModel.from_dict(d)


def test_confident_photo_of_a_class_without_msrp_still_gets_the_spread(model: PriceModel) -> None:
    est = model.estimate(one_hot(MAKE_MODELS.index("Unknown")), PriceInputs(), 15_000.0)
    assert est.likely[1] / est.likely[0] >= 1.2
    assert est.median == pytest.approx(15_000.0, rel=0.01)


def test_model_without_class_table_prices_from_its_calibrated_head() -> None:
    """A listings-trained model: the head's value, aged by the year posterior, with its spread."""
    section = {**price_section(), "classes": []}
    meta = ModelMetadata.from_json(metadata_json(price_model=section))
    basis = PriceBasis(one_hot(ACURA), HEAD_BINS, 12_000.0, {2012: 0.9, 2011: 0.1})
    est = estimate_price(meta, basis, PriceInputs(2021))
    assert est.source == "price_head_calibrated" and est.likely[0] < est.median < est.likely[1]
    assert est.median == pytest.approx(12_000.0, rel=0.05)  # at the listings' own year: the head's value
    assert estimate_price(meta, basis, PriceInputs(2026)).median < est.median
    assert estimate_price(meta, basis, PriceInputs(2021, 150_000.0)).median < est.median
    assert "trained on listing prices" in est.words()["what"]
