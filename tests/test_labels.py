"""Label derivation: MSRP join, depreciation fit, vocabularies, Stanford records."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from core.dataset.records import ImageRecord
from core.modelfile import UNKNOWN
from training.data.labels.build import (
    DEFAULT_EDGES,
    PRICE_MEANING,
    DepreciationCurve,
    Listing,
    ListingFilter,
    MsrpRow,
    MsrpTable,
    derive_class_prices,
    fit_depreciation,
    load_msrp_table,
    log_price_scaling,
    price_scaling,
    price_spec,
    stanford_records,
)


def _table() -> MsrpTable:
    rows = [
        MsrpRow("Audi", "TT", 2012, 40_000), MsrpRow("Audi", "TT", 2012, 44_000), MsrpRow("Audi", "TT", 2012, 60_000),
        MsrpRow("Audi", "TT RS", 2012, 57_000),
        MsrpRow("Audi", "A5", 2016, 40_000), MsrpRow("Audi", "A5", 2017, 41_000),
        MsrpRow("Audi", "100", 1994, 2_000),  # placeholder era
        MsrpRow("Audi", "Q7", 2015, 48_000),
        MsrpRow("Bentley", "Continental Supersports", 2012, 267_000),
        MsrpRow("Bentley", "Continental Supersports Convertible", 2012, 280_000),
        MsrpRow("Volkswagen", "Golf", 2015, 20_000), MsrpRow("Volkswagen", "Golf", 1991, 2_000),
    ]
    return MsrpTable(rows)


def test_exact_and_longest_prefix_match() -> None:
    t = _table()
    m = t.match("Audi", "TT", 2012)
    assert (m.method, m.msrp, m.trims) == ("exact", 44_000, 3)  # median over trims
    m = t.match("Audi", "TT RS Coupe", 2012)
    assert (m.method, m.matched_model, m.msrp) == ("prefix", "TT RS", 57_000)  # longest prefix wins
    m = t.match("Audi", "TTS Coupe", 2012)  # "TT" is a prefix of "TTS" but not a whole word
    assert m.msrp is None and m.method == "none"


def test_alias_match() -> None:
    t = _table()
    m = t.match("Bentley", "Continental Supersports Conv. Convertible", 2012)
    assert (m.method, m.msrp) == ("alias", 280_000)
    # without the alias, the shorter prefix (the coupe) would be taken
    m = t.match("Bentley", "Continental Supersports Conv. Convertible", 2012, aliases={})
    assert (m.method, m.msrp) == ("prefix", 267_000)


def test_nearest_year_is_trend_adjusted_and_bounded() -> None:
    t = _table()
    m = t.match("Audi", "A5 Coupe", 2012)
    assert m.method == "prefix+nearest_year" and m.matched_year == 2016
    assert m.msrp == pytest.approx(40_000 * math.exp(t.trend_per_year * (2012 - 2016)), rel=1e-6)
    assert t.match("Audi", "A5 Coupe", 2012, max_year_gap=3).msrp is None


def test_placeholder_msrps_are_never_used() -> None:
    t = _table()
    assert t.placeholders == 2
    m = t.match("Audi", "100 Sedan", 1994)
    assert m.msrp is None and m.method == "none"
    m = t.match("Volkswagen", "Golf Hatchback", 1991)  # only a real MSRP 24 years away
    assert m.msrp is None and "placeholders" in m.note
    assert t.match("Jeep", "Wrangler SUV", 2012).note == "make not in the MSRP table"


def test_msrp_trend_is_estimated_within_models() -> None:
    rows = [MsrpRow("M", f"model{i}", y, base * 1.03 ** (y - 2010))
            for i, base in enumerate((15_000, 40_000, 90_000)) for y in range(2010, 2015)]
    assert MsrpTable(rows).trend_per_year == pytest.approx(math.log(1.03), abs=1e-9)


def test_load_msrp_table_checks_columns(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("Make,Model,Year,MSRP\nAudi,TT,2012,40000\n")
    assert load_msrp_table(p) == [MsrpRow("Audi", "TT", 2012, 40000.0)]
    p.write_text("Make,Model,Price\nAudi,TT,1\n")
    with pytest.raises(ValueError, match="needs columns"):
        load_msrp_table(p)


def test_depreciation_fit_recovers_a_known_curve() -> None:
    rng = np.random.default_rng(0)
    ages = rng.integers(0, 21, 3000).astype(float)
    true = 50_000 * np.exp(-0.15 * ages + 0.05 * np.maximum(ages - 10, 0))
    prices = true * np.exp(rng.normal(0, 0.3, len(ages)))
    prices[:60] = 1.0  # "call me" prices: the median fit must shrug them off
    curve = fit_depreciation(ages, prices, knots=(10,))
    assert curve.slope == pytest.approx(-0.15, abs=0.02)
    assert curve.hinges[0] == pytest.approx(0.05, abs=0.03)
    assert curve.retention(0) == 1.0
    assert curve.retention(8) == pytest.approx(math.exp(-1.2), rel=0.08)
    assert curve.retention(40) == curve.retention(curve.max_age)  # flat beyond the data
    assert 15 < curve.fit["median_abs_pct_error"] < 30  # the noise is 30% in log space
    assert curve.fit["baseline_median_abs_pct_error"] > curve.fit["median_abs_pct_error"]


def test_depreciation_fit_refuses_too_little_data() -> None:
    with pytest.raises(ValueError, match="too few"):
        fit_depreciation(np.arange(10.0), np.full(10, 1e4))


def test_listing_filter() -> None:
    f = ListingFilter()
    ok = Listing(20_000, 2015, 50_000, "good", "clean", "c-class")
    assert f.keep(ok, 2021)
    assert not f.keep(Listing(0, 2015, None, "good", "clean", "c-class"), 2021)
    assert not f.keep(Listing(20_000, 2015, None, "salvage", "clean", "c-class"), 2021)
    assert not f.keep(Listing(20_000, 2015, None, "good", "rebuilt", "c-class"), 2021)
    assert not f.keep(Listing(20_000, 1960, None, "good", "clean", "other"), 2021)


def test_class_prices_are_msrp_times_retention_or_none() -> None:
    curve = DepreciationCurve(intercept=10.0, slope=-0.1, knots=(), hinges=(), max_age=25)
    prices = derive_class_prices([("Audi", "TT RS Coupe", 2012), ("Audi", "100 Sedan", 1994)], _table(), curve,
                                 reference_year=2021)
    tt = prices[("Audi", "TT RS Coupe", 2012)]
    assert tt.age == 9 and tt.price == pytest.approx(57_000 * math.exp(-0.9), abs=0.01)
    assert prices[("Audi", "100 Sedan", 1994)].price is None


def _records() -> list[ImageRecord]:
    def r(make: str, model: str, year: int | None, price: float | None) -> ImageRecord:
        return ImageRecord(Path("x.jpg"), "g", make, model, year, price)

    return [r("Audi", "TT", 2012, 30_000), r("Audi", "TT", 2012, 30_000), r("Audi", "A5", 2011, None),
            r("BMW", "M3", 2012, 60_000), r("Audi", "TT", 2007, 10_000), r("Geo", "Metro", None, None)]


def test_vocabularies_end_with_unknown() -> None:
    """The one vocabulary: training.data.dataset.LabelSpace's (the top classes by count, then by name)."""
    from training.data.dataset import LabelSpace

    recs = _records()
    space = LabelSpace.from_records(recs)
    assert space.make_models == ("Audi A5 2011", "Audi TT 2007", "Audi TT 2012", "BMW M3 2012", "Geo Metro", UNKNOWN)
    assert LabelSpace.from_records(recs, "make_model", max_classes=2).make_models == ("Audi A5", "Audi TT", UNKNOWN)
    assert space.years == ("2007", "2011", "2012", UNKNOWN)


def test_log_price_scaling_and_price_spec() -> None:
    recs = _records()
    logs = np.log([30_000, 30_000, 60_000, 10_000])
    mean, std = log_price_scaling(recs)
    assert (mean, std) == pytest.approx((logs.mean(), logs.std()))
    spec = price_spec(recs, meaning="test meaning")
    assert spec.to_dollars(0.0) == pytest.approx(math.exp(logs.mean())) and spec.meaning == "test meaning"
    assert spec.num_bins == 10
    with pytest.raises(ValueError, match="at least 2 priced"):
        log_price_scaling(recs[2:3])
    assert price_scaling([30_000, 30_000, 60_000, 10_000]) == pytest.approx((mean, std))


def test_price_meaning_says_what_the_number_is() -> None:
    for words in ("2021 used value", "MSRP", "depreciation", "8,553", "Mercedes-Benz", "not this car's listing price"):
        assert words in PRICE_MEANING


def test_stanford_records_one_group_per_photo(tmp_path: Path) -> None:
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "make", "model", "year", "class_id", "class_name", "width", "height"])
        w.writerow(["images/1.jpg", "Audi", "TT RS Coupe", 2012, 1, "Audi TT RS Coupe 2012", 300, 200])
        w.writerow(["images/2.jpg", "Audi", "TT RS Coupe", 2012, 1, "Audi TT RS Coupe 2012", 300, 200])
        w.writerow(["images/3.jpg", "Geo", "Metro Convertible", 1993, 2, "Geo Metro Convertible 1993", 100, 100])
        w.writerow(["images/4.jpg", "Geo", "Metro Convertible", 1993, 2, "Geo Metro Convertible 1993", 76, 23])
    recs = stanford_records(tmp_path, {("Audi", "TT RS Coupe", 2012): 12_345.0, ("Geo", "Metro Convertible", 1993): None})
    assert [r.price for r in recs] == [12_345.0, 12_345.0, None]  # 76x23 px photo 4 left out
    assert len({r.group for r in recs}) == 3
    assert recs[0].image_path == tmp_path / "images/1.jpg" and recs[2].year == 1993


@pytest.mark.needs_data
def test_real_msrp_join_coverage(stanford_dir: Path) -> None:
    """Most Stanford classes find a real (2001+) MSRP; the pre-2001 placeholders never leak in."""
    from training.data.labels.build import read_stanford_labels

    msrp = stanford_dir.parent / "car-features-msrp" / "car_features_msrp.csv"
    if not msrp.exists():
        pytest.skip(f"{msrp} not found")
    table = MsrpTable(load_msrp_table(msrp))
    classes = {(p.make, p.model, p.year) for p in read_stanford_labels(stanford_dir)}
    matches = [table.match(*c) for c in classes]
    assert len(classes) == 196
    assert sum(m.msrp is not None for m in matches) >= 160
    assert all(m.matched_year >= 2001 and m.msrp >= 5_000 for m in matches if m.msrp is not None)
    assert 0.0 < table.trend_per_year < 0.06


def test_label_space_takes_meaning_and_scaling_from_the_label_modules() -> None:
    from training.data.labels_adapter import NO_PRICE_MEANING, label_space

    recs = [ImageRecord(Path(f"{i}.jpg"), str(i), "Audi", "TT", 2012, p) for i, p in enumerate((10_000.0, 40_000.0))]
    space = label_space(recs, recs, "make_model_year", 0)
    assert space.meaning == PRICE_MEANING
    assert (space.log_mean, space.log_std) == pytest.approx(price_scaling([10_000.0, 40_000.0]))
    unpriced = [ImageRecord(Path("a.jpg"), "a", "Audi", "TT", 2012, None)]
    bare = label_space(unpriced, unpriced, "make_model_year", 0)
    assert bare.meaning == NO_PRICE_MEANING and (bare.log_mean, bare.log_std) == (math.log(20e3), 1.0)
    assert space.edges == bare.edges == DEFAULT_EDGES
