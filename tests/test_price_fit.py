"""training.price.model_fit: repeats joined into cars, split by car, and a fit that recovers a known
price formula with calibrated ranges (synthetic listings; the real report is training/reports)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.pricing import PriceInputs, PriceModel
from training.data.labels.build import MsrpRow, MsrpTable
from training.price.model_fit import (
    HeadListing,
    cars_from_rows,
    evaluate,
    fit_price_model,
    head_price_section,
    plausible_odometer,
    split_of,
)

TABLE = MsrpTable([MsrpRow("Mercedes-Benz", "C-Class", y, 40_000.0) for y in range(2010, 2018)]
                  + [MsrpRow("Mercedes-Benz", "E-Class", y, 55_000.0) for y in range(2010, 2018)])


def row(price: float, year: int, odo: float | str, vin: str = "", model: str = "c-class",
        condition: str = "good", title: str = "clean") -> dict[str, str]:
    return {"price_USD": str(price), "year": str(year), "odometer_mi": str(odo), "VIN": vin, "model": model,
            "condition": condition, "title_status": title}


def test_repeats_are_one_car() -> None:
    rows = [row(20_000, 2015, 60_000, "WDD1234567890"),
            row(21_000, 2015, 60_000, ""),               # same family, year, odometer: the same car
            row(19_500, 2015, 61_000, "WDD1234567890"),  # same VIN, odometer updated: the same car
            row(18_000, 2015, 80_000, "WDD0000000001"),  # another car
            row(500, 2015, 10_000), row(30_000, 1980, 10_000),  # implausible price, too old
            row(25_000, 2016, 30_000, model="sprinter")]  # family without one MSRP model
    cars, counts = cars_from_rows(rows, TABLE)
    assert len(cars) == 2 and counts["repeats joined"] == 2
    assert counts["price outside $1,000-$250,000"] == 1 and counts["age outside 0-25"] == 1
    assert counts["family not mapped to one MSRP model"] == 1


def test_salvage_title_counts_as_salvage_and_placeholder_odometers_are_dropped() -> None:
    cars, _ = cars_from_rows([row(9_000, 2012, 123, "V1" * 6, title="rebuilt")], TABLE)
    assert cars[0].condition == "salvage" and cars[0].odometer is None
    assert plausible_odometer(500, age=1) == 500 and plausible_odometer(500, age=5) is None
    assert plausible_odometer(600_000, age=5) is None


def synthetic_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Listings from a known formula: MSRP x exp(-0.1 age) x (miles / typical)^-0.3 x condition."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        year = int(rng.integers(2010, 2021))
        age = 2021 - year
        typical = 12_000 * max(age, 0.5)
        odo = typical * math.exp(rng.normal(0, 0.5))
        cond = ["excellent", "good", "fair"][int(rng.integers(0, 3))]
        msrp = 40_000.0 if i % 2 else 55_000.0
        price = msrp * math.exp(-0.1 * age - 0.3 * math.log((odo + 1_000) / (typical + 1_000))
                                + {"excellent": 0.05, "good": 0.0, "fair": -0.4}[cond] + rng.normal(0, 0.15))
        out.append(row(round(price), year, round(odo), f"VIN{i:010d}", "c-class" if i % 2 else "e-class", cond))
    return out


@pytest.fixture(scope="module")
def fitted_section() -> tuple[dict, dict[str, list]]:
    cars, _ = cars_from_rows(synthetic_rows(900), TABLE)
    return fit_price_model(cars)


@pytest.fixture(scope="module")
def fitted(fitted_section: tuple[dict, dict[str, list]]) -> tuple[PriceModel, dict[str, list]]:
    d, parts = fitted_section
    return PriceModel.from_dict(d), parts


def test_split_is_by_car_and_deterministic(fitted: tuple[PriceModel, dict[str, list]]) -> None:
    _, parts = fitted
    fit_keys, test_keys = {c.key for c in parts["fit"]}, {c.key for c in parts["test"]}
    assert not fit_keys & test_keys and 0.1 < len(test_keys) / (len(fit_keys) + len(test_keys)) < 0.3
    assert all(split_of(c) == "test" for c in parts["test"])


def test_fit_recovers_the_formula_and_its_ranges_hold(fitted: tuple[PriceModel, dict[str, list]]) -> None:
    model, parts = fitted
    assert model.variants["mileage"].mileage_coef == pytest.approx(-0.3, abs=0.1)
    offs = model.variants["mileage+condition"].condition_offsets
    assert offs["fair"] == pytest.approx(-0.4, abs=0.1) and offs["good"] == 0.0
    ev = evaluate(model, parts["test"])
    both = ev["test cars with odometer and stated condition"]["by_inputs"]
    assert both["mileage+condition"]["median_abs_pct_error"] < both["mileage"]["median_abs_pct_error"] \
        < both["none"]["median_abs_pct_error"]
    for r in both.values():
        assert 35 <= r["likely_coverage_pct"] <= 65 and 68 <= r["range80_coverage_pct"] <= 92
    car = parts["test"][0]
    low = model.estimate_one(car.log_msrp, car.year, PriceInputs(2021, 20_000.0)).median
    high = model.estimate_one(car.log_msrp, car.year, PriceInputs(2021, 150_000.0)).median
    assert high < low


def test_listings_trained_head_gets_a_calibrated_spread(fitted_section: tuple[dict, dict[str, list]]) -> None:
    """A price head that saw listing prices: it sees the car, not the odometer or the seller's
    condition; its residuals on validation listings become the spread, and mileage moves it."""
    d, _ = fitted_section
    rng = np.random.default_rng(5)
    listings = []
    for r in synthetic_rows(1200, seed=7):
        age = 2021 - int(r["year"])
        msrp = 40_000.0 if r["model"] == "c-class" else 55_000.0
        head = msrp * math.exp(-0.1 * age + rng.normal(0, 0.08))  # what a photo shows
        listings.append(HeadListing(float(r["price_USD"]), head, int(r["year"]), float(r["odometer_mi"]),
                                    {"excellent": "excellent", "good": "good", "fair": "fair"}[r["condition"]]))
    calib, test = listings[:800], listings[800:]
    model = PriceModel.from_dict(head_price_section(d, calib, 2021))
    assert not model.classes
    hits50, hits80, err_plain, err_miles = [], [], [], []
    for x in test:
        years = {x.year: 1.0}
        plain = model.estimate_head(x.head_median, years, PriceInputs(2021))
        both = model.estimate_head(x.head_median, years, PriceInputs(2021, x.odometer, x.condition))
        hits50.append(both.likely[0] <= x.price <= both.likely[1])
        hits80.append(both.range80[0] <= x.price <= both.range80[1])
        err_plain.append(abs(plain.median / x.price - 1))
        err_miles.append(abs(both.median / x.price - 1))
        assert both.likely[0] <= both.median <= both.likely[1]
    assert 0.4 <= np.mean(hits50) <= 0.6 and 0.72 <= np.mean(hits80) <= 0.88
    assert np.median(err_miles) < 0.9 * np.median(err_plain)
    young = next(x for x in test if x.year >= 2017)  # aged 4 more years, still inside the fitted ages
    later = model.estimate_head(young.head_median, {young.year: 1.0}, PriceInputs(2025))
    assert later.median < model.estimate_head(young.head_median, {young.year: 1.0}, PriceInputs(2021)).median
    assert later.source == "price_head_calibrated" and "trained on listing prices" in later.words()["what"]


def test_attaching_the_price_model_writes_no_report_unless_asked(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe attaches to split and trial models: the repository's price report stays as it is."""
    from tests.pricefactory import price_section
    from training.price import model_fit as price_fit
    from training.price.attach import read_metadata
    from training.price.model_fit import attach_price_model
    from training.testmodels import make_model_file

    model, _ = make_model_file(tmp_path / "m.onnx")
    written: list[Path] = []
    monkeypatch.setattr(price_fit, "fitted", lambda *a, **k: (price_section(), {}))
    monkeypatch.setattr(price_fit, "write_report", lambda report, out_dir: written.append(out_dir))
    attach_price_model(model, tmp_path, tmp_path)
    assert written == [] and read_metadata(model).price_model is not None
    attach_price_model(model, tmp_path, tmp_path, report_dir=tmp_path / "reports")
    assert written == [tmp_path / "reports"]
