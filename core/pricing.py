"""The price a buyer can use: a mixture over the model's make/model/year posterior of each
class's real price spread, at the year of sale, adjusted for mileage and condition (issue 17).

Qt-free and torch-free: the app and the CLI both price here, and every sentence the price says
about itself (what it is, its year, which inputs it used, what it does not see) comes from
:meth:`PriceEstimate.words`, so the CLI's JSON and text, the app's text and the export agree.

The ``price_model`` section of a model file (written by ``training/price/model_fit.py``) holds:

- ``classes``: per make/model class (index-aligned with the model's vocabulary) the log MSRP
  of the make/model/year and its model year (``null`` when the class has no MSRP);
- ``variants``: one fit per set of inputs the user gave (``none``, ``mileage``, ``condition``,
  ``mileage+condition``): ``log(price / MSRP) = intercept + cubic(age / age_scale)
  + mileage_coef * mileage_excess + condition_offsets[condition] + residual``, and the residual's
  quantiles on held-out listings (the spread: its shape is fitted, not assumed);
- ``typical_miles``: the median ``log(odometer + 1000)`` as a cubic in age (mileage counts
  relative to what is typical for the car's age);
- ``age_range`` of the fit (outside it the nearest fitted age is used, and the price says so),
  ``listings_year``, display ``edges`` (dollar cutoffs of the histogram), provenance, metrics.

Class shares that have no MSRP (and ``Unknown``) are priced by the network's own price head, and
the price says how large that share is.
"""
# Over 400 lines: PriceModel and PriceEstimate: how a price is made and said, in one home

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.depreciation import ORDERED_CONDITIONS, VARIANT_KEYS
from core.money import PRICE_CEILING, short_dollars

PRICE_MODEL_VERSION = 1
# The conditions a user can name (best first) and the spread variants by inputs given: the
# depreciation fit's (core/depreciation.py), the one list of each.
CONDITIONS: tuple[str, ...] = ORDERED_CONDITIONS
KM_PER_MILE = 1.609344
MAX_MILES = 2_000_000.0
DEFAULT_DISPLAY_EDGES: tuple[float, ...] = (2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000,
                                            50_000, 60_000, 80_000, 100_000, 150_000, 250_000)
LIKELY = (0.25, 0.75)  # the middle half
RANGE80 = (0.10, 0.90)
RANGES_MEAN = ("likely: the middle half of the prices of cars like this one (1 in 2 sells inside it); "
               "80% range: 8 in 10 sell inside it")
NOT_SEEN = "Not seen: trim and options, accident history, region, the seller."
_MIN_WEIGHT = 1e-3  # classes under this share of the top class's probability are left out


class PriceModelError(ValueError):
    """A ``price_model`` section that cannot be used (one line: what is wrong)."""


def current_year() -> int:
    return datetime.date.today().year


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PriceInputs:
    """What the user told us.  ``year_of_sale`` None: this year.  Mileage is stored in miles."""

    year_of_sale: int | None = None
    mileage_mi: float | None = None
    condition: str | None = None
    # A catalogue car the user named ("Toyota Camry 2016"): priced instead of the photo's answer.
    car: str | None = None

    def __post_init__(self) -> None:
        if self.mileage_mi is not None and not (math.isfinite(self.mileage_mi) and 0 <= self.mileage_mi <= MAX_MILES):
            raise ValueError(f"mileage must be a number from 0 to {MAX_MILES:,.0f} miles, got {self.mileage_mi!r}")
        if self.condition is not None and self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {self.condition!r}")
        if self.year_of_sale is not None and not 1950 <= self.year_of_sale <= 2100:
            raise ValueError(f"year of sale must be between 1950 and 2100, got {self.year_of_sale!r}")

    @classmethod
    def from_user(cls, year_of_sale: int | None = None, mileage: float | None = None, km: bool = False,
                  condition: str | None = None, car: str | None = None) -> PriceInputs:
        """``mileage`` in kilometres when ``km``; raises ValueError with a one-line message."""
        miles = None if mileage is None else float(mileage) / (KM_PER_MILE if km else 1.0)
        return cls(year_of_sale, miles, condition or None, car or None)

    @property
    def year(self) -> int:
        return self.year_of_sale if self.year_of_sale is not None else current_year()

    def to_dict(self) -> dict[str, Any]:
        return {"year_of_sale": self.year, "mileage_mi": self.mileage_mi, "condition": self.condition, "car": self.car}


def variant_key(inputs: PriceInputs) -> str:
    parts = [name for name, given in (("mileage", inputs.mileage_mi is not None),
                                      ("condition", inputs.condition is not None)) if given]
    return "+".join(parts) or "none"


# --------------------------------------------------------------------------- histogram ranges


@dataclass(frozen=True)
class PriceBin:
    low: float
    high: float | None  # None: open-ended top range
    probability: float

    def label(self) -> str:
        if self.high is None:
            return f"{short_dollars(self.low)}+"
        if self.low <= 0:
            return f"<{short_dollars(self.high)}"
        return f"{short_dollars(self.low)}-{short_dollars(self.high).lstrip('$')}"


def bounds_of(edges: Sequence[float]) -> list[tuple[float, float | None]]:
    lows = [0.0, *edges]
    highs: list[float | None] = [*edges, None]
    return list(zip(lows, highs, strict=True))


def bin_quantile(bins: Sequence[PriceBin], q: float) -> float:
    """Price at cumulative probability ``q`` of a histogram, linear within a range (the open top
    range is treated as spanning its low edge to 1.5x it)."""
    acc = 0.0
    for b in bins:
        high = b.high if b.high is not None else b.low * 1.5
        if acc + b.probability >= q and b.probability > 0:
            return b.low + (high - b.low) * (q - acc) / b.probability
        acc += b.probability
    last = bins[-1]
    return last.high if last.high is not None else last.low * 1.5


def shown_median(head: float, low: float, high: float) -> float:
    """A head-priced model's median shown: the median head's estimate moved into the
    histogram's likely range when it falls outside it (the two heads are not tied)."""
    return min(max(head, low), high)


# --------------------------------------------------------------------------- the fitted model


@dataclass(frozen=True)
class Variant:
    """One fit of ``log(price / MSRP)`` for a set of inputs, and its held-out residual shape."""

    intercept: float
    age_coefs: tuple[float, float, float]
    mileage_coef: float
    condition_offsets: Mapping[str, float]
    residual_levels: tuple[float, ...]
    residual_quantiles: tuple[float, ...]

    def cdf(self, r: np.ndarray) -> np.ndarray:
        """P(residual <= r): piecewise linear through the fitted quantiles; the tails beyond the
        outermost ones run linearly to 0 and 1 over the width of the last fitted step x 3."""
        lv, qs = self._knots
        return np.interp(r, qs, lv)

    def quantile(self, p: float) -> float:
        lv, qs = self._knots
        return float(np.interp(p, lv, qs))

    @functools.cached_property
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        lv = np.asarray(self.residual_levels, dtype=np.float64)
        qs = np.asarray(self.residual_quantiles, dtype=np.float64)
        lo_w = max(3 * (qs[1] - qs[0]), 0.05)
        hi_w = max(3 * (qs[-1] - qs[-2]), 0.05)
        return (np.concatenate([[0.0], lv, [1.0]]), np.concatenate([[qs[0] - lo_w], qs, [qs[-1] + hi_w]]))


@dataclass(frozen=True)
class ClassPrice:
    log_msrp: float | None
    model_year: int | None

    @property
    def priced(self) -> bool:
        return self.log_msrp is not None and self.model_year is not None


@dataclass(frozen=True)
class PriceModel:
    listings_year: int
    age_range: tuple[int, int]
    age_scale: float
    typical_miles: tuple[float, float, float, float]
    variants: Mapping[str, Variant]
    edges: tuple[float, ...]
    classes: tuple[ClassPrice, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    version: int = PRICE_MODEL_VERSION

    # -- the contract ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Any, n_classes: int | None = None, check_variants: bool = True) -> PriceModel:
        """Parse and check a ``price_model`` section; raises :class:`PriceModelError`."""
        if not isinstance(d, dict):
            raise PriceModelError("price_model is not a JSON object")
        version = d.get("version")
        if not isinstance(version, int) or version < 1:
            raise PriceModelError("price_model has no version")
        if version > PRICE_MODEL_VERSION:
            raise PriceModelError(f"price_model version {version} is newer than this app supports "
                                  f"({PRICE_MODEL_VERSION}); update CarValue")
        try:
            ages = tuple(int(a) for a in d["age_range"])
            typical = tuple(float(x) for x in d["typical_miles"])
            edges = tuple(float(e) for e in d.get("edges", DEFAULT_DISPLAY_EDGES))
            variants = {str(k): _variant(v) for k, v in d["variants"].items()}
            classes = tuple(ClassPrice(None if c.get("log_msrp") is None else float(c["log_msrp"]),
                                       None if c.get("model_year") is None else int(c["model_year"]))
                            for c in d.get("classes", []))
            model = cls(int(d["listings_year"]), (ages[0], ages[1]), float(d.get("age_scale", 10.0)),
                        (typical[0], typical[1], typical[2], typical[3]), variants, edges, classes,
                        dict(d.get("provenance", {})), dict(d.get("metrics", {})), version)
        except KeyError as e:
            raise PriceModelError(f"price_model is missing {e.args[0]!r}") from e
        except (TypeError, ValueError, IndexError, AttributeError) as e:
            raise PriceModelError(f"price_model has a malformed field ({e})") from e
        model._check(n_classes, check_variants)
        return model

    def _check(self, n_classes: int | None, check_variants: bool) -> None:
        def fail(msg: str) -> None:
            raise PriceModelError(f"price_model: {msg}")

        if not self.age_range[0] <= self.age_range[1] or self.age_scale <= 0:
            fail("age_range must be ordered and age_scale positive")
        if not self.edges or self.edges[0] <= 0 or any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            fail("edges must be positive and strictly increasing")
        if not all(map(math.isfinite, self.typical_miles)):
            fail("typical_miles must be finite")
        if check_variants and set(self.variants) != set(VARIANT_KEYS):
            fail(f"variants must be exactly {', '.join(VARIANT_KEYS)}")
        for k, v in self.variants.items():
            lv, qs = v.residual_levels, v.residual_quantiles
            if len(lv) < 3 or len(lv) != len(qs) or not 0 < lv[0] < lv[-1] < 1:
                fail(f"variant {k}: needs 3+ residual levels inside (0, 1) and as many quantiles")
            if any(b <= a for a, b in zip(lv, lv[1:], strict=False)) or any(b < a for a, b in zip(qs, qs[1:], strict=False)):
                fail(f"variant {k}: residual levels must increase and quantiles must not decrease")
            numbers = [v.intercept, *v.age_coefs, v.mileage_coef, *v.condition_offsets.values(), *qs]
            if not all(map(math.isfinite, numbers)):
                fail(f"variant {k}: every coefficient must be finite")
            if "condition" in k and set(v.condition_offsets) != set(CONDITIONS):
                fail(f"variant {k}: condition offsets must name exactly {', '.join(CONDITIONS)}")
        if n_classes is not None and self.classes and len(self.classes) != n_classes:
            fail(f"{len(self.classes)} classes but the make/model vocabulary has {n_classes}")
        self._check_magnitudes(fail)

    def _check_magnitudes(self, fail: Callable[[str], None]) -> None:
        """Finite is not enough (a coefficient of 1e308 overflows every estimate): the formula's
        largest possible value over the fitted ages must keep prices within a factor of
        PRICE_CEILING of the MSRP, and every MSRP between $1 and PRICE_CEILING."""
        limit = math.log(PRICE_CEILING)
        lo, hi = self.age_range
        if not 0 <= lo <= hi <= 200 or not 0.1 <= self.age_scale <= 1000:
            fail("age_range must lie in 0-200 years and age_scale in 0.1-1000")
        span = max(abs(lo), abs(hi)) / self.age_scale

        def cubic_bound(coefs: Sequence[float]) -> float:
            return sum(abs(c) * span ** (i + 1) for i, c in enumerate(coefs))

        t = self.typical_miles
        if abs(t[0]) + cubic_bound(t[1:]) > 100:  # exp() of it must stay finite
            fail("typical_miles gives log-miles past +-100 over the fitted ages")
        for k, v in self.variants.items():
            bound = (abs(v.intercept) + cubic_bound(v.age_coefs) + 3 * abs(v.mileage_coef)
                     + max(map(abs, v.condition_offsets.values()), default=0.0)
                     + max(map(abs, v.residual_quantiles), default=0.0))
            if not bound <= limit:
                fail(f"variant {k}: its coefficients can move a price {bound:.3g} log-units from the MSRP; "
                     f"the limit is {limit:.1f} (a factor of {PRICE_CEILING:,.0f})")
        if any(c.log_msrp is not None and not 0 <= c.log_msrp <= limit for c in self.classes):
            fail(f"every class's log_msrp must lie in [0, {limit:.1f}] ($1 to {PRICE_CEILING:,.0f})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "listings_year": self.listings_year, "age_range": list(self.age_range),
            "age_scale": self.age_scale, "typical_miles": list(self.typical_miles), "edges": list(self.edges),
            "variants": {k: {"intercept": v.intercept, "age_coefs": list(v.age_coefs), "mileage_coef": v.mileage_coef,
                             "condition_offsets": dict(v.condition_offsets),
                             "residual_levels": list(v.residual_levels),
                             "residual_quantiles": list(v.residual_quantiles)} for k, v in self.variants.items()},
            "classes": [{"log_msrp": c.log_msrp, "model_year": c.model_year} for c in self.classes],
            "provenance": dict(self.provenance), "metrics": dict(self.metrics),
        }

    # -- the formula -----------------------------------------------------------------------
    def clamp_age(self, age: float) -> float:
        return float(min(max(age, self.age_range[0]), self.age_range[1]))

    def _cubic(self, coefs: Sequence[float], age: np.ndarray | float) -> np.ndarray:
        a = np.asarray(age, dtype=np.float64) / self.age_scale
        return coefs[0] * a + coefs[1] * a**2 + coefs[2] * a**3

    def typical_log_miles(self, age: float) -> float:
        t = self.typical_miles
        return float(t[0] + self._cubic(t[1:], self.clamp_age(age)))

    def typical_miles_at(self, age: float) -> float:
        return max(0.0, math.exp(self.typical_log_miles(age)) - 1_000.0)

    def mileage_excess(self, miles: float, age: float) -> float:
        """Log-units the odometer lies above what is typical for the age (clipped to +-3)."""
        return float(self.mileage_excesses(miles, np.array([age]))[0])

    def mileage_excesses(self, miles: float, ages: np.ndarray) -> np.ndarray:
        t = self.typical_miles
        a = np.clip(np.asarray(ages, dtype=np.float64), *self.age_range)
        return np.clip(math.log(miles + 1_000.0) - (t[0] + self._cubic(t[1:], a)), -3.0, 3.0)

    @functools.cached_property
    def _class_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(priced mask, log MSRP, model year) per class, for the vectorised mixture."""
        priced = np.array([c.priced for c in self.classes], dtype=bool)
        log_msrp = np.array([c.log_msrp if c.priced else 0.0 for c in self.classes], dtype=np.float64)
        years = np.array([c.model_year if c.priced else 0 for c in self.classes], dtype=np.float64)
        return priced, log_msrp, years

    def log_ratio(self, age: np.ndarray, inputs: PriceInputs) -> np.ndarray:
        """Median ``log(price / MSRP)`` at each (clamped) age for these inputs."""
        v = self.variants[variant_key(inputs)]
        a = np.clip(np.asarray(age, dtype=np.float64), *self.age_range)
        out = v.intercept + self._cubic(v.age_coefs, a)
        if inputs.mileage_mi is not None:
            out = out + v.mileage_coef * self.mileage_excesses(inputs.mileage_mi, a)
        if inputs.condition is not None:
            out = out + v.condition_offsets[inputs.condition]
        return out

    # -- the estimate ----------------------------------------------------------------------
    def estimate_one(self, log_msrp: float, model_year: int, inputs: PriceInputs) -> PriceEstimate:
        """One known make/model/year (a confident photo, or a listing in evaluation)."""
        m = PriceModel(self.listings_year, self.age_range, self.age_scale, self.typical_miles, self.variants,
                       self.edges, (ClassPrice(log_msrp, model_year),), self.provenance, self.metrics, self.version)
        return m.estimate(np.array([1.0]), inputs)

    def estimate(self, probs: np.ndarray, inputs: PriceInputs, head_median: float | None = None) -> PriceEstimate:
        """The mixture over the class posterior ``probs`` (index-aligned with ``classes``).

        The share on classes without an MSRP is priced by ``head_median`` (the network's median
        head) with the listings' plain spread when given, else left out (the priced classes
        renormalised)."""
        probs = np.asarray(probs, dtype=np.float64)
        if len(probs) != len(self.classes):
            raise ValueError(f"{len(probs)} class probabilities for {len(self.classes)} priced classes")
        probs = np.where(np.isfinite(probs) & (probs > 0), probs, 0.0)
        total = probs.sum()
        if total <= 0:
            raise ValueError("class probabilities sum to zero")
        probs = probs / total
        priced, log_msrp, model_years = self._class_arrays
        priced_share = float(probs[priced].sum())
        use_head = (head_median is not None and math.isfinite(head_median) and head_median > 0
                    and priced_share < 1.0 - 1e-9)
        if priced_share <= 0 and not use_head:
            raise ValueError("no probability on a class with a known price, and no price head to fall back on")
        year = inputs.year
        keep = priced & (probs >= _MIN_WEIGHT * probs[priced].max()) if priced_share > 0 else np.zeros_like(priced)
        idx = np.flatnonzero(keep)
        w = probs[idx]
        ages = year - model_years[idx]
        variant = self.variants[variant_key(inputs)]
        mu = log_msrp[idx] + self.log_ratio(ages, inputs)
        head_w = (1.0 - priced_share) if use_head else 0.0
        if not use_head and len(idx):
            w = w / w.sum()
        elif len(idx):
            w = w / w.sum() * priced_share
        plain = self.variants["none"]  # the head's share: no inputs applied, so the plain spread
        groups = [(w, mu, variant)] if len(idx) else []
        if use_head:
            groups.append((np.array([head_w]), np.array([math.log(head_median)]), plain))  # type: ignore[arg-type]
        top_age = float(ages[int(np.argmax(w))]) if len(idx) else None
        return self._summarise(groups, inputs, "price_model", priced_share if use_head else 1.0, top_age)

    def log_shape(self, age: np.ndarray, inputs: PriceInputs) -> np.ndarray:
        """``log_ratio`` without the variant's intercept: how age, mileage and condition move a
        price (a price head's own value supplies the level)."""
        return self.log_ratio(age, inputs) - self.variants[variant_key(inputs)].intercept

    def estimate_head(self, head_median: float, year_probs: Mapping[int, float], inputs: PriceInputs) -> PriceEstimate:
        """A model whose price head saw real listing prices (no class table): its median at the
        listings' time, moved along the age curve to the year of sale for each model year the
        year head finds likely, adjusted for mileage and condition, with the spread of the head's
        own residuals on held-out listings (``variants[...].residual_quantiles``)."""
        if not (math.isfinite(head_median) and head_median > 0):
            raise ValueError(f"price head gave {head_median!r}, not a price")
        years = np.array([int(y) for y, p in year_probs.items() if p > 0 and math.isfinite(p)], dtype=np.float64)
        probs = np.array([p for p in year_probs.values() if p > 0 and math.isfinite(p)], dtype=np.float64)
        if not len(years):
            years, probs = np.array([float(self.listings_year - self.age_range[0])]), np.array([1.0])
        keep = probs >= _MIN_WEIGHT * probs.max()
        years, w = years[keep], probs[keep] / probs[keep].sum()
        sale_ages = inputs.year - years
        listed_ages = self.listings_year - years
        mu = (math.log(head_median) + self.log_shape(sale_ages, inputs)
              - self.log_shape(listed_ages, PriceInputs(self.listings_year)))
        top_age = float(sale_ages[int(np.argmax(w))])
        return self._summarise([(w, mu, self.variants[variant_key(inputs)])], inputs, "price_head_calibrated",
                               1.0, top_age)

    def _summarise(self, groups: Sequence[tuple[np.ndarray, np.ndarray, Variant]], inputs: PriceInputs, source: str,
                   priced_share: float, top_age: float | None) -> PriceEstimate:
        """Median, ranges and histogram of a mixture: each group is (weights, log-dollar centres,
        the variant whose residual shape spreads them); the weights over all groups sum to 1."""
        lo = min(float(mu.min()) + v.quantile(0.0) for _, mu, v in groups) - 0.01
        hi = max(float(mu.max()) + v.quantile(1.0) for _, mu, v in groups) + 0.01

        def cdf(x: np.ndarray) -> np.ndarray:
            out = np.zeros(np.shape(x))
            for w, mu, v in groups:
                out = out + (v.cdf(x[:, None] - mu[None, :]) * w[None, :]).sum(axis=1)
            return out

        levels = np.array([RANGE80[0], LIKELY[0], 0.5, LIKELY[1], RANGE80[1]])
        qs = _quantiles(cdf, levels, lo, hi)
        q = dict(zip(levels.tolist(), np.exp(qs).tolist(), strict=True))
        edge_cdf = cdf(np.log(np.asarray(self.edges, dtype=np.float64)))
        mass = np.diff(np.concatenate([[0.0], np.maximum.accumulate(edge_cdf), [1.0]]))
        bins = tuple(PriceBin(a, b, float(max(m, 0.0))) for (a, b), m in zip(bounds_of(self.edges), mass, strict=True))
        outside = top_age is not None and not self.age_range[0] <= top_age <= self.age_range[1]
        return PriceEstimate(
            median=q[0.5], likely=(q[LIKELY[0]], q[LIKELY[1]]), range80=(q[RANGE80[0]], q[RANGE80[1]]),
            bins=bins, inputs=inputs, year_of_sale=inputs.year, source=source, listings_year=self.listings_year,
            priced_share=priced_share, age=top_age, age_outside=outside, age_range=self.age_range,
            typical_miles=None if top_age is None else self.typical_miles_at(top_age))


def _variant(v: Any) -> Variant:
    coefs = tuple(float(c) for c in v["age_coefs"])
    if len(coefs) != 3:
        raise ValueError("age_coefs needs 3 numbers (a cubic)")
    return Variant(float(v["intercept"]), (coefs[0], coefs[1], coefs[2]), float(v.get("mileage_coef", 0.0)),
                   {str(k): float(x) for k, x in v.get("condition_offsets", {}).items()},
                   tuple(float(x) for x in v["residual_levels"]), tuple(float(x) for x in v["residual_quantiles"]))


def _quantiles(cdf: Any, levels: np.ndarray, lo: float, hi: float, coarse: int = 256, fine: int = 32) -> np.ndarray:
    """Where a monotone ``cdf`` reaches each of ``levels``: a coarse grid brackets each level,
    a fine grid inside each bracket, then linear interpolation (two vectorised evaluations: the
    app prices every crop-box move, so this stays well under a millisecond)."""
    g = np.linspace(lo, hi, coarse + 1)
    c = np.maximum.accumulate(cdf(g))
    i = np.clip(np.searchsorted(c, levels), 1, coarse)
    a, b = g[i - 1], g[i]
    t = np.linspace(0.0, 1.0, fine + 1)
    pts = a[:, None] + (b - a)[:, None] * t[None, :]
    cf = np.maximum.accumulate(cdf(pts.ravel()).reshape(pts.shape), axis=1)
    rows = np.arange(len(levels))
    j = np.clip((cf < levels[:, None]).sum(axis=1), 1, fine)
    c0, c1 = cf[rows, j - 1], cf[rows, j]
    frac = np.clip((levels - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0, 1.0) * (c1 > c0)
    out = pts[rows, j - 1] + frac * (pts[rows, j] - pts[rows, j - 1])
    return np.maximum.accumulate(out)


# --------------------------------------------------------------------------- the answer


@dataclass(frozen=True)
class PriceEstimate:
    """What the price says, numbers and words.  ``source``: "price_model" (the mixture) or
    "price_head" (a model file without a price model: the head's histogram, a fixed-year value)."""

    median: float
    likely: tuple[float, float]
    range80: tuple[float, float]
    bins: tuple[PriceBin, ...]
    inputs: PriceInputs
    year_of_sale: int
    source: str
    listings_year: int
    priced_share: float = 1.0  # share of the class posterior priced by the price model
    age: float | None = None  # the most probable class's age at the year of sale
    age_outside: bool = False
    age_range: tuple[int, int] | None = None
    typical_miles: float | None = None
    head_meaning: str = ""
    # The catalogue path (core/carprice.py, issue 28) states its own sentences: what the price is,
    # extra notes (new price extrapolated, index past its table, ...) and what it does not see;
    # ``car``: the catalogue car priced ("Toyota Camry 2016"), ``car_source``: "user" when the
    # user named it, "photo" when it came from the photo's answer.
    what_text: str = ""
    extra_notes: tuple[str, ...] = ()
    not_seen_text: str = ""
    car: str | None = None
    car_source: str | None = None
    dollars_year: int | None = None  # the index year the dollars are of, when not the year of sale

    def words(self) -> dict[str, Any]:
        """Every sentence the price says about itself (one place for CLI, app and export)."""
        notes: list[str] = []
        what = self.what_text or what_sentence(self.source, self.year_of_sale, self.listings_year, self.head_meaning)
        if self.source == "price_head":
            used = "none (this model file has no price model)"
        else:
            parts = [f"year of sale {self.year_of_sale}"]
            m, c = self.inputs.mileage_mi, self.inputs.condition
            parts.append(f"mileage {m:,.0f} mi" if m is not None else "mileage not given")
            parts.append(f"condition {c}" if c is not None else "condition not given")
            used = ", ".join(parts)
            if m is None or c is None:
                notes.append("Without " + " and ".join(x for x, given in (("mileage", m is not None),
                                                                           ("condition", c is not None)) if not given)
                             + " the ranges cover cars of any" + (" mileage" if m is None else "")
                             + (" and" if m is None and c is None else "")
                             + (" condition" if c is None else "") + ".")
            if m is not None and self.typical_miles is not None:
                notes.append(f"Typical for its age: about {round(self.typical_miles, -3):,.0f} mi.")
            if self.age_outside and self.age is not None and self.age_range is not None:
                lo, hi = self.age_range
                shown = min(max(self.age, lo), hi)
                notes.append(f"Age {self.age:.0f} years is outside the fitted range {lo}-{hi}: "
                             f"priced as a {shown:.0f}-year-old car.")
            if self.priced_share < 0.999 and self.source != "catalogue":
                notes.append(f"{1 - self.priced_share:.0%} of the make/model probability is on classes without "
                             "a known new price; that share is priced by the model's median head (a value of "
                             f"{self.listings_year}, mileage and condition not applied) with the listings' spread.")
        notes += self.extra_notes
        return {"what": what, "ranges": RANGES_MEAN, "inputs_used": used, "not_seen": self.not_seen_text or NOT_SEEN,
                "notes": notes}

    def short_inputs(self) -> str:
        """One line for a narrow place: "2026 value · 150,000 mi · fair"."""
        if self.source == "price_head":
            return "price head value (no price model)"
        bits = [f"{self.year_of_sale} value"]
        if self.car_source == "user" and self.car:
            bits.append(self.car)
        if self.dollars_year is not None and self.dollars_year != self.year_of_sale:
            bits.append(f"{self.dollars_year} dollars")
        if self.inputs.mileage_mi is not None:
            bits.append(f"{self.inputs.mileage_mi:,.0f} mi")
        if self.inputs.condition is not None:
            bits.append(self.inputs.condition)
        given = [x for x, v in (("mileage", self.inputs.mileage_mi), ("condition", self.inputs.condition))
                 if v is not None]
        if given and self.source == "price_model" and self.priced_share < 0.999:
            # every input the caption names is applied, or it says where it is not (issue 28)
            bits.append(f"{' and '.join(given)} not applied to {1 - self.priced_share:.0%} of it")
        if self.age_outside:
            bits.append("age outside the fitted range")
        return " · ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "median": self.median, "likely_low": self.likely[0], "likely_high": self.likely[1],
            "range80_low": self.range80[0], "range80_high": self.range80[1],
            "year_of_sale": self.year_of_sale, "source": self.source, "inputs": self.inputs.to_dict(),
            "priced_share": self.priced_share, "age": self.age, "age_outside_fitted_range": self.age_outside,
            "car": self.car, "car_source": self.car_source or "photo",
            "histogram": [{"low": b.low, "high": b.high, "label": b.label(), "probability": b.probability}
                       for b in self.bins],
            **self.words(),
        }


def what_sentence(source: str, year_of_sale: int, listings_year: int, head_meaning: str = "") -> str:
    """What the price is (the first thing the CLI, the app and the export say about it)."""
    if source == "price_head_calibrated":
        return (f"Estimated used value in {year_of_sale}, in US dollars of the {listings_year} used-car market "
                f"(no inflation adjustment): the model's price head, trained on listing prices of {listings_year}, "
                "moved along a depreciation curve to the year of sale for each likely model year, with the "
                "spread of held-out listings around it.")
    if source == "price_head":
        return ((head_meaning or "an estimate from the model's price head") +
                " This model file has no price model, so the year of sale, mileage and condition "
                "are not used and the ranges are the price head's own histogram.")
    return (f"Estimated used value in {year_of_sale}, in US dollars of the {listings_year} used-car market "
            "(no inflation adjustment): the new price (MSRP) of each likely make/model/year times a "
            "depreciation curve fitted on used-car listings, mixed over the model's make/model/year "
            "probabilities.")


def head_estimate(bins: Sequence[PriceBin], head_median: float, inputs: PriceInputs, meaning: str,
                  listings_year: int) -> PriceEstimate:
    """A model file without a price model: the head's histogram and median, as before issue 17."""
    low, high = bin_quantile(bins, LIKELY[0]), bin_quantile(bins, LIKELY[1])
    return PriceEstimate(shown_median(head_median, low, high), (low, high),
                         (bin_quantile(bins, RANGE80[0]), bin_quantile(bins, RANGE80[1])), tuple(bins), inputs,
                         inputs.year, "price_head", listings_year, head_meaning=meaning)


# --------------------------------------------------------------------------- what a price is computed from


class PriceBasis:
    """What a price is computed from, kept with a prediction so the price can follow new
    inputs (mileage, condition, year of sale) without another forward pass."""

    __slots__ = ("head_bins", "head_median", "probs", "year_probs")

    def __init__(self, probs: np.ndarray, head_bins: Sequence[PriceBin], head_median: float,
                 year_probs: Mapping[int, float] | None = None) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        self.head_bins = tuple(head_bins)
        self.head_median = float(head_median)
        self.year_probs = dict(year_probs or {})
