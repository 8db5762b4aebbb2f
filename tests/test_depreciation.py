"""core/depreciation.py, core/money.py and core/carprice.py: prices in order, for every make (issue 28)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.carprice import price_car, price_data, price_photo
from core.catalogue import CatalogueCar, NewPrice
from core.depreciation import DEPRECIATION_PATH, ORDERED_CONDITIONS, Depreciation, load_depreciation
from core.money import LAST_YEAR, USED_CARS_CPI, carry
from core.pricing import PriceBasis, PriceInputs

DEP = load_depreciation()
MAKES = sorted(v["name"] for v in DEP.makes.values()) + ["Bentley"]  # + a make with no listings
BODIES = sorted(DEP.bodies)


def car(make: str, body: str, year: int, msrp: float = 30_000.0) -> CatalogueCar:
    return CatalogueCar(make, "Test", year, body, NewPrice(msrp, "table", year, year, 0.0))


@settings(max_examples=300, deadline=None)
@given(make=st.sampled_from(MAKES), body=st.sampled_from(BODIES), age=st.integers(0, 30),
       miles=st.lists(st.floats(0, 600_000), min_size=2, max_size=2),
       condition=st.sampled_from([None, *ORDERED_CONDITIONS]))
def test_price_falls_with_mileage_for_every_make_and_age(make: str, body: str, age: int, miles: list[float],
                                                         condition: str | None) -> None:
    low, high = sorted(miles)
    data = price_data()
    a = price_car(car(make, body, 2026 - age), PriceInputs(2026, low, condition), data=data)
    b = price_car(car(make, body, 2026 - age), PriceInputs(2026, high, condition), data=data)
    assert b.median <= a.median * (1 + 1e-9)
    assert b.likely[0] <= a.likely[0] * (1 + 1e-9) and b.likely[1] <= a.likely[1] * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(make=st.sampled_from(MAKES), body=st.sampled_from(BODIES), age=st.integers(0, 30),
       miles=st.none() | st.floats(0, 600_000))
def test_price_falls_with_worse_condition_for_every_make_and_age(make: str, body: str, age: int,
                                                                 miles: float | None) -> None:
    data = price_data()
    medians = [price_car(car(make, body, 2026 - age), PriceInputs(2026, miles, c), data=data).median
               for c in ORDERED_CONDITIONS]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(medians, medians[1:], strict=False))


@pytest.mark.parametrize("make", MAKES)
def test_not_given_sits_between_salvage_and_like_new(make: str) -> None:
    data = price_data()
    for body in BODIES:
        for age in (0, 3, 8, 15, 25):
            c = car(make, body, 2026 - age)
            none = price_car(c, PriceInputs(2026), data=data).median
            assert price_car(c, PriceInputs(2026, None, "salvage"), data=data).median <= none
            assert none <= price_car(c, PriceInputs(2026, None, "like-new"), data=data).median


def test_the_file_is_checked() -> None:
    d = json.loads(DEPRECIATION_PATH.read_text())
    bad = json.loads(json.dumps(d))
    bad["condition_offsets"]["fair"] = 1.0
    with pytest.raises(ValueError, match="out of order"):
        Depreciation(bad)
    bad = json.loads(json.dumps(d))
    next(iter(bad["makes"].values()))["mileage_coef"] = 0.3
    with pytest.raises(ValueError, match="mileage coefficient is positive"):
        Depreciation(bad)
    with pytest.raises(ValueError, match="version"):
        Depreciation({**d, "version": 99})


def test_dollars_carry_by_the_used_car_index() -> None:
    c = carry(2021, 2023)
    assert c.factor == pytest.approx(USED_CARS_CPI[2023] / USED_CARS_CPI[2021]) and not c.beyond_table
    assert "CUUR0000SETA02" in c.words()
    past = carry(2021, LAST_YEAR + 3)
    assert past.beyond_table and past.factor == pytest.approx(USED_CARS_CPI[LAST_YEAR] / USED_CARS_CPI[2021])
    assert f"ends in {LAST_YEAR}" in past.words()
    assert carry(2021, 2021).factor == 1.0


def test_the_price_is_in_the_year_of_sales_dollars() -> None:
    data = price_data()
    c = data.catalogue.lookup("Toyota Camry 2016", 2026)
    a = price_car(c, PriceInputs(2022), data=data)
    words = a.words()
    assert "US dollars of 2022" in words["what"] and any("x1.13" in n for n in words["notes"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(miles=st.none() | st.floats(0, 400_000), condition=st.sampled_from([None, *ORDERED_CONDITIONS]),
       unknown_share=st.floats(0.0, 0.9))
def test_every_input_applies_to_every_share_of_a_photo_price(miles: float | None, condition: str | None,
                                                             unknown_share: float) -> None:
    """The share on classes the catalogue lacks is priced by the head *with* the inputs too."""
    names = ("Toyota Camry Sedan 2012", "AM General Hummer SUV 2000", "Unknown")
    data = price_data()
    if data.catalogue.classes.get(names[0]) is None:
        pytest.skip("class name not in the catalogue")
    probs = np.array([1 - unknown_share, unknown_share / 2, unknown_share / 2])
    basis = PriceBasis(probs, (), 9_000.0, {2005: 0.5, 2012: 0.5})
    plain = price_photo(names, basis, PriceInputs(2026), data)
    given_ = price_photo(names, basis, PriceInputs(2026, miles, condition), data)
    assert plain is not None and given_ is not None and given_.source == "catalogue"
    worst = price_photo(names, basis, PriceInputs(2026, 500_000, "salvage"), data)
    assert worst is not None and worst.median <= given_.median * (1 + 1e-9)
    if unknown_share > 0.01:
        assert any("same mileage and condition" in n for n in given_.words()["notes"])


def test_the_caption_names_what_it_applies_and_where_it_does_not() -> None:
    from core.pricing import PriceModel
    from tests.pricefactory import price_section
    from training.testmodels import MAKE_MODELS

    data = price_data()
    c = data.catalogue.lookup("Toyota Camry 2016", 2026)
    short = price_car(c, PriceInputs(2026, 150_000, "fair"), data=data).short_inputs()
    assert short.startswith("2026 value · Toyota Camry 2016") and "150,000 mi · fair" in short
    # the older class-table path: the share on classes without a price ignores mileage, and says so
    model = PriceModel.from_dict(price_section(), n_classes=len(MAKE_MODELS))
    probs = np.full(len(MAKE_MODELS), 1e-9)
    probs[MAKE_MODELS.index("Acura TL Sedan 2012")] = 0.6
    probs[MAKE_MODELS.index("Unknown")] = 0.4
    est = model.estimate(probs, PriceInputs(2026, 150_000), head_median=9_000.0)
    assert "mileage not applied to 40% of it" in est.short_inputs()


def test_a_head_priced_photo_applies_mileage_and_condition_too() -> None:
    """The issue's case: a class without a catalogue price showed "250,000 mi" and ignored it."""
    names = ("Toyota Camry Sedan 2012", "AM General Hummer SUV 2000", "Unknown")
    basis = PriceBasis(np.array([1e-9, 0.7, 0.3]), (), 9_000.0, {2000: 0.9, 2001: 0.1})
    data = price_data()
    plain = price_photo(names, basis, PriceInputs(2026), data)
    worn = price_photo(names, basis, PriceInputs(2026, 250_000, "fair"), data)
    assert plain is not None and worn is not None and worn.median < plain.median
    assert worn.priced_share < 0.01 and "250,000 mi" in worn.short_inputs()


@pytest.mark.parametrize("head", [9_000.0, 68_900.0, 900_000.0])
def test_a_class_without_a_real_msrp_is_priced_as_its_make_and_body_not_by_the_head(head: float) -> None:
    """A photo whose probability is all on the Volvo 240 (no real MSRP in the table) gets the
    price `carvalue price` gives a 1993 Volvo 240, whatever the median head says (it never
    trained on a price for that class: $68,900 was shown for one)."""
    names = ("Volvo 240 Sedan 1993", "Toyota Camry Sedan 2012", "Unknown")
    data = price_data()
    basis = PriceBasis(np.array([1.0, 0.0, 0.0]), (), head, {1993: 1.0})
    got = price_photo(names, basis, PriceInputs(2026, 180_000, "good"), data)
    named = price_car(data.catalogue.lookup("Volvo 240 1993", 2026), PriceInputs(2026, 180_000, "good"), data=data)
    assert got is not None and got.priced_share == 1.0
    assert got.median == pytest.approx(named.median, rel=1e-6) and got.median < 10_000
    notes = " ".join(got.words()["notes"])
    assert "typical car like it" in notes and "median head" not in notes
