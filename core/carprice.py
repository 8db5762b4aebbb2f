"""A car's price from the catalogue, its make's depreciation and today's dollars (issue 28).

One path for every price the app and the CLI show for a catalogue car:

    price in year S = MSRP(make, model, year) x ratio(make, body, age = S - year, mileage,
                      condition) x CPI_used(S) / CPI_used(2021) x exp(sigma x residual)

- the new price and how it was found: core/catalogue.py (extrapolated years say so);
- the ratio and its spread: core/depreciation.py (fitted on 2021 listings of 39 makes);
- the dollars: core/money.py (US CPI for used cars and trucks; past its table, said so).

:func:`price_car` prices one car the user named (``carvalue price``, ``predict --car``);
:func:`price_photo` prices a photo's make/model/year posterior as a mixture over the classes
the catalogue joins, the share on classes it lacks (and ``Unknown``) priced by the network's
median head moved along the all-makes curve with the *same* mileage and condition
adjustments, so every input the caption names is applied to every share of the price.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.catalogue import Catalogue, CatalogueCar, load_catalogue
from core.depreciation import Depreciation, Spread, load_depreciation
from core.money import carry
from core.pricing import (
    DEFAULT_DISPLAY_EDGES,
    LIKELY,
    RANGE80,
    PriceBasis,
    PriceBin,
    PriceEstimate,
    PriceInputs,
    _quantiles,
    bounds_of,
)

SOURCE = "catalogue"
LEVELS = np.array([RANGE80[0], LIKELY[0], 0.5, LIKELY[1], RANGE80[1]])
NOT_SEEN = "Not seen: trim and options, accident history, title (priced as clean), region, the seller."
_MIN_WEIGHT = 1e-3
EDGES = np.log(np.asarray(DEFAULT_DISPLAY_EDGES, dtype=np.float64))


@dataclass(frozen=True)
class PriceData:
    catalogue: Catalogue
    depreciation: Depreciation


@functools.lru_cache(maxsize=1)
def price_data() -> PriceData:
    """The bundled catalogue and depreciation (raises OSError / ValueError naming the file)."""
    return PriceData(load_catalogue(), load_depreciation())


def what_text(year_of_sale: int, listings_year: int, car: str | None) -> str:
    whose = f"the new price (MSRP) of {car}" if car else "the new price (MSRP) of each likely make/model/year"
    return (f"Estimated used value in {year_of_sale}, in US dollars of {year_of_sale}: {whose} times its make's "
            f"depreciation for its body type (fitted on {listings_year} US used-car listings), carried from "
            f"{listings_year} to {year_of_sale} dollars by the US CPI for used cars and trucks"
            + ("." if car else ", mixed over the model's make/model/year probabilities."))


@dataclass(frozen=True)
class _Part:
    """Components of a mixture sharing one residual shape: weights, log-dollar centres, scales."""

    w: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    spread: Spread


def _summary(parts: Sequence[_Part]) -> tuple[dict[float, float], tuple[PriceBin, ...]]:
    """Quantiles (dollars) at :data:`LEVELS` and the histogram of a mixture."""
    if len(parts) == 1 and len(parts[0].w) == 1:  # one car: closed form
        p = parts[0]
        qs = np.exp(p.mu[0] + p.sigma[0] * p.spread.quantile(LEVELS))
        edge_cdf = p.spread.cdf((EDGES - p.mu[0]) / p.sigma[0])
    else:
        lo = min(float((p.mu + p.sigma * p.spread.knots[1][0]).min()) for p in parts) - 0.01
        hi = max(float((p.mu + p.sigma * p.spread.knots[1][-1]).max()) for p in parts) + 0.01

        def cdf(x: np.ndarray) -> np.ndarray:
            out = np.zeros(np.shape(x))
            for p in parts:
                out = out + (p.spread.cdf((x[:, None] - p.mu[None, :]) / p.sigma[None, :]) * p.w[None, :]).sum(axis=1)
            return out

        qs = np.exp(_quantiles(cdf, LEVELS, lo, hi))
        edge_cdf = cdf(EDGES)
    mass = np.diff(np.concatenate([[0.0], np.maximum.accumulate(edge_cdf), [1.0]]))
    bins = tuple(PriceBin(a, b, float(max(m, 0.0))) for (a, b), m in zip(bounds_of(DEFAULT_DISPLAY_EDGES), mass,
                                                                        strict=True))
    return dict(zip(LEVELS.tolist(), qs.tolist(), strict=True)), bins


def _car_part(data: PriceData, cars: Sequence[CatalogueCar], w: np.ndarray, inputs: PriceInputs) -> list[_Part]:
    dep = data.depreciation
    year = inputs.year
    makes = np.array([c.make for c in cars])
    bodies = np.array([c.body for c in cars])
    ages = np.array([max(year - c.year, 0) for c in cars], dtype=np.float64)
    miles = np.full(len(cars), np.nan if inputs.mileage_mi is None else inputs.mileage_mi)
    conds = np.full(len(cars), inputs.condition or "")
    mu = (np.log([c.new_price.msrp for c in cars]) + dep.centre(makes, bodies, ages, miles, conds)
          + math.log(carry(dep.listings_year, year).factor))
    sig = dep.sigma(ages, makes, bodies)
    given = (inputs.mileage_mi is not None, inputs.condition is not None)
    parts = []
    for make in sorted(set(makes.tolist())):
        rows = makes == make
        parts.append(_Part(w[rows], mu[rows], sig[rows], dep.spread(*given, own_make=make)))
    return parts


def _estimate(data: PriceData, parts: Sequence[_Part], inputs: PriceInputs, top: CatalogueCar | None,
              top_age: float, priced_share: float, notes: list[str], car_source: str | None,
              named: bool) -> PriceEstimate:
    q, bins = _summary(parts)
    return _finish(data, q, bins, inputs, top, top_age, priced_share, notes, car_source, named)


def _finish(data: PriceData, q: dict[float, float], bins: tuple[PriceBin, ...], inputs: PriceInputs,
            top: CatalogueCar | None, top_age: float, priced_share: float, notes: list[str], car_source: str | None,
            named: bool) -> PriceEstimate:
    """The estimate and its words, from a mixture's quantiles and histogram."""
    dep = data.depreciation
    c = carry(dep.listings_year, inputs.year)
    words = list(notes)
    if top is not None:
        words.insert(0, top.new_price.words() if named else f"Most likely car: {top.name}. {top.new_price.words()}")
        if not dep.known_make(top.make):
            words.append(f"No {top.make} listings were fitted: priced with every make's depreciation for a {top.body}.")
    if c.from_year != c.to_year:
        words.append(c.words())
    return PriceEstimate(
        median=q[0.5], likely=(q[LIKELY[0]], q[LIKELY[1]]), range80=(q[RANGE80[0]], q[RANGE80[1]]), bins=bins,
        inputs=inputs, year_of_sale=inputs.year, source=SOURCE, listings_year=dep.listings_year,
        priced_share=priced_share, age=top_age, age_outside=not 0 <= top_age <= dep.age_max, age_range=(0, dep.age_max),
        typical_miles=dep.typical_miles(top_age), what_text=what_text(inputs.year, dep.listings_year,
                                                                      top.name if named and top else None),
        extra_notes=tuple(words), not_seen_text=NOT_SEEN, car=top.name if top else None, car_source=car_source,
        dollars_year=c.to_year_used)


@functools.lru_cache(maxsize=8)
def uses_catalogue(make_models: tuple[str, ...]) -> bool:
    """Whether a model file's classes are priced through the catalogue (it joins one of them)."""
    cat = price_data().catalogue
    return any(cat.classes.get(name) is not None for name in make_models)


def price_car(car: CatalogueCar, inputs: PriceInputs, car_source: str = "user",
              data: PriceData | None = None) -> PriceEstimate:
    """One named car's price (``carvalue price``; ``predict --car``; the app's "Which car is it?")."""
    return price_many([(car, inputs)], car_source, data)[0]


def price_many(items: Sequence[tuple[CatalogueCar, PriceInputs]], car_source: str = "user",
               data: PriceData | None = None) -> list[PriceEstimate]:
    """Named cars, each with its own inputs, priced together (``carvalue price --csv``: 10,000
    rows in well under 10 s): one car per estimate, so its quantiles are the centre plus the
    scaled residual quantiles, computed for all rows at once."""
    data = data or price_data()
    dep = data.depreciation
    if not items:
        return []
    cars = [c for c, _ in items]
    ins = [i for _, i in items]
    years = np.array([i.year for i in ins], dtype=np.float64)
    ages = np.maximum(years - np.array([c.year for c in cars], dtype=np.float64), 0.0)
    makes = np.array([c.make for c in cars])
    bodies = np.array([c.body for c in cars])
    miles = np.array([np.nan if i.mileage_mi is None else i.mileage_mi for i in ins], dtype=np.float64)
    conds = np.array([i.condition or "" for i in ins])
    dollars = {y: math.log(carry(dep.listings_year, y).factor) for y in {i.year for i in ins}}
    mu = (np.log([c.new_price.msrp for c in cars]) + dep.centre(makes, bodies, ages, miles, conds)
          + np.array([dollars[i.year] for i in ins]))
    sig = dep.sigma(ages, makes, bodies)
    q = np.empty((len(items), len(LEVELS)))
    edge = np.empty((len(items), len(EDGES)))
    keys = [(i.mileage_mi is not None, i.condition is not None, c.make) for c, i in items]
    for key in set(keys):
        rows = np.array([k == key for k in keys])
        spread = dep.spread(key[0], key[1], own_make=key[2])
        q[rows] = np.exp(mu[rows, None] + sig[rows, None] * spread.quantile(LEVELS)[None, :])
        edge[rows] = spread.cdf((EDGES[None, :] - mu[rows, None]) / sig[rows, None])
    n = len(items)
    mass = np.diff(np.concatenate([np.zeros((n, 1)), np.maximum.accumulate(edge, axis=1), np.ones((n, 1))], axis=1),
                   axis=1)
    bounds = bounds_of(DEFAULT_DISPLAY_EDGES)
    levels = LEVELS.tolist()
    return [_finish(data, dict(zip(levels, q[r].tolist(), strict=True)),
                    tuple(PriceBin(a, b, float(max(m, 0.0))) for (a, b), m in zip(bounds, mass[r], strict=True)),
                    ins[r], cars[r], float(ins[r].year - cars[r].year), 1.0, [], car_source, True)
            for r in range(n)]


def price_photo(make_models: Sequence[str], basis: PriceBasis, inputs: PriceInputs,
                data: PriceData | None = None) -> PriceEstimate | None:
    """A photo's price: the mixture over the classes the catalogue joins; None when it joins
    none of this model file's classes (another vocabulary: the caller's older path prices it)."""
    data = data or price_data()
    cat = data.catalogue
    probs = np.asarray(basis.probs, dtype=np.float64)
    if len(probs) != len(make_models):
        raise ValueError(f"{len(probs)} class probabilities for {len(make_models)} classes")
    probs = np.where(np.isfinite(probs) & (probs > 0), probs, 0.0)
    if probs.sum() <= 0:
        raise ValueError("class probabilities sum to zero")
    probs = probs / probs.sum()
    if not uses_catalogue(tuple(make_models)):
        return None
    year = inputs.year
    joined = [(i, cat.class_car(name, year)) for i, name in enumerate(make_models) if name in cat.classes]
    joined = [(i, c) for i, c in joined if c is not None]
    idx = np.array([i for i, _ in joined])
    share = float(probs[idx].sum())
    keep = probs[idx] >= _MIN_WEIGHT * probs.max()
    cars = [c for (_, c), k in zip(joined, keep, strict=True) if k]
    w = probs[idx][keep]
    head = math.isfinite(basis.head_median) and basis.head_median > 0 and share < 0.999
    notes: list[str] = []
    parts: list[_Part] = []
    if cars:
        w = w / w.sum() * (share if head else 1.0)
        parts += _car_part(data, cars, w, inputs)
    if head:
        parts.append(_head_part(data, basis, inputs, 1.0 - share if cars else 1.0))
        notes.append(f"{1 - share:.0%} of the make/model probability is on classes the catalogue lacks; that share "
                     f"is priced by the model's median head (a {data.depreciation.listings_year} value), moved along "
                     "every make's depreciation curve to the year of sale with the same mileage and condition "
                     "adjustments and dollars.")
    elif not cars:
        return None
    top = cars[int(np.argmax(w))] if cars else None
    top_age = float(year - top.year) if top else float(parts[-1].mu.size and 0.0)
    return _estimate(data, parts, inputs, top, top_age, share if head else 1.0, notes, "photo", False)


def _head_part(data: PriceData, basis: PriceBasis, inputs: PriceInputs, weight: float) -> _Part:
    """The network's median head (a value of the listings' year, typical mileage, any
    condition) moved to the year of sale along the all-makes curve, per likely model year."""
    dep = data.depreciation
    ly = dep.listings_year
    years = np.array([int(y) for y, p in basis.year_probs.items() if p > 0 and math.isfinite(p)], dtype=np.float64)
    probs = np.array([p for p in basis.year_probs.values() if p > 0 and math.isfinite(p)], dtype=np.float64)
    if not len(years):
        years, probs = np.array([float(ly)]), np.array([1.0])
    keep = probs >= _MIN_WEIGHT * probs.max()
    years, w = years[keep], probs[keep] / probs[keep].sum() * weight
    n = len(years)
    blank = np.full(n, "")
    miles = np.full(n, np.nan if inputs.mileage_mi is None else inputs.mileage_mi)
    at_sale = dep.centre(blank, blank, inputs.year - years, miles, np.full(n, inputs.condition or ""),
                         own_model=np.zeros(n, dtype=bool))
    at_listing = dep.centre(blank, blank, ly - years, np.full(n, np.nan), blank, own_model=np.zeros(n, dtype=bool))
    mu = math.log(basis.head_median) + at_sale - at_listing + math.log(carry(ly, inputs.year).factor)
    given = (inputs.mileage_mi is not None, inputs.condition is not None)
    return _Part(w, mu, dep.sigma(inputs.year - years, blank, blank), dep.spread(*given))


def named_car(text: str, year_of_sale: int, data: PriceData | None = None) -> CatalogueCar:
    """The catalogue car a user named ("Toyota Camry 2016"); NotInCatalogue says why not."""
    return (data or price_data()).catalogue.lookup(text, year_of_sale)


def with_user_car(pred: Any, car: CatalogueCar, inputs: PriceInputs) -> Any:
    """A prediction priced as the car the user named (``car_source`` "user"); the photo's own
    make/model/year answer stays in it, beside the price."""
    est = price_car(car, inputs, "user")
    return dataclasses.replace(pred, median_price=est.median, price_low=est.likely[0], price_high=est.likely[1],
                               price_bins=est.bins, price=est)
