"""How a used car's price relates to its new price, per make and body (issue 28).

Reads ``resources/price/depreciation.json`` (fitted by ``python -m training.price.build``;
the model and why it is shaped so: ``training/price/fit.py``).  For a car of make m, body b,
age a at the listings' time::

    log(price / MSRP) = G(a) + M_m(a) + B_b(a) + l_mb + s_mb a/10 + c_m x + cond + title

where ``x`` is how far (log-units, clipped to +-3) the odometer lies above the typical reading
for the age.  What the user did not give is replaced by what the listings average: mileage
not given -> x = 0 (typical); condition not given -> the mean condition offset over every
fitted listing (stated or not).  The spread around the centre is the fitted ``sigma(a)`` times
quantiles of standardized held-out residuals, one set per combination of given inputs (cars
whose mileage is known vary less).  A make with no listings uses the all-makes curve (``G``,
the pooled mileage coefficient) and the price says so.

Vectorised over rows: the app prices a mixture of classes, the evaluation 36,000 listings and
``carvalue price --csv`` thousands of rows, all through :meth:`Depreciation.centre`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.paths import load_json_resource

DEPRECIATION_VERSION = 1
DEPRECIATION_PATH = Path(__file__).resolve().parent.parent / "resources" / "price" / "depreciation.json"
VARIANT_KEYS: tuple[str, ...] = ("none", "mileage", "condition", "mileage+condition")
ORDERED_CONDITIONS: tuple[str, ...] = ("like-new", "excellent", "good", "fair", "salvage")


def make_key(make: str) -> str:
    """One spelling per make for catalogue and listings alike ("Mercedes-Benz" == "mercedes-benz")."""
    return re.sub(r"[^0-9a-z]", "", make.lower())


@dataclass(frozen=True)
class Spread:
    """Quantiles of standardized residuals (held-out), interpolated linearly; the tails beyond
    the outermost levels run to 0 and 1 over three times the last step."""

    levels: np.ndarray
    quantiles: np.ndarray

    @functools.cached_property
    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        lv, qs = self.levels, self.quantiles
        lo_w, hi_w = max(3 * (qs[1] - qs[0]), 0.05), max(3 * (qs[-1] - qs[-2]), 0.05)
        return np.concatenate([[0.0], lv, [1.0]]), np.concatenate([[qs[0] - lo_w], qs, [qs[-1] + hi_w]])

    def cdf(self, z: np.ndarray) -> np.ndarray:
        lv, qs = self.knots
        return np.interp(z, qs, lv)

    def quantile(self, p: np.ndarray | float) -> np.ndarray:
        lv, qs = self.knots
        return np.interp(p, lv, qs)


class Depreciation:
    """The parsed file; raises ValueError naming what is wrong."""

    def __init__(self, d: Mapping[str, Any]) -> None:
        if d.get("version") != DEPRECIATION_VERSION:
            raise ValueError(f"depreciation version {d.get('version')!r}, this app reads {DEPRECIATION_VERSION}")
        self.listings_year = int(d["listings_year"])
        self.age_max = int(d["age_max"])
        grid = self.age_max + 1
        self.global_curve = _vec(d["global_curve"], grid)
        self.makes: dict[str, dict[str, Any]] = {
            make_key(k): {"name": str(k), "curve": _vec(v["curve"], grid), "mileage_coef": float(v["mileage_coef"]),
                          "listings": int(v["listings"]), "sigma": float(v["sigma_offset"])}
            for k, v in d["makes"].items()}
        self.bodies = {str(k): _vec(v["curve"], grid) for k, v in d["bodies"].items()}
        self.body_sigma = {str(k): float(v["sigma_offset"]) for k, v in d["bodies"].items()}
        self.own_model = {make_key(k): (_vec(v["curve"], grid), float(v["mileage_coef"]))
                          for k, v in d.get("own_model", {}).items()}
        self.make_body = {f"{make_key(k.split('|')[0])}|{k.split('|')[1]}": (float(v[0]), float(v[1]))
                          for k, v in d["make_body"].items()}
        self.pooled_mileage_coef = float(d["pooled_mileage_coef"])
        self.typical = _vec(d["typical_log_miles"], grid)
        self.sigma_coefs = tuple(float(x) for x in d["sigma_coefs"])
        self.conditions = {str(k): float(v) for k, v in d["condition_offsets"].items()}
        self.condition_not_given = float(d["condition_not_given"])
        self.titles = {str(k): float(v) for k, v in d["title_offsets"].items()}
        variants = dict(d.get("variants", {}))
        own = variants.pop("own_model", {})
        self.variants = {str(k): _spread(v) for k, v in variants.items()}
        self.own_variants = {make_key(mk): {str(k): _spread(v) for k, v in vs.items()} for mk, vs in own.items()}
        self.provenance: dict[str, Any] = dict(d.get("provenance", {}))
        self.metrics: dict[str, Any] = dict(d.get("metrics", {}))
        if set(ORDERED_CONDITIONS) - set(self.conditions):
            raise ValueError("depreciation: condition offsets must name " + ", ".join(ORDERED_CONDITIONS))
        own_sums = [self.makes.get(k, {}).get("mileage_coef", self.pooled_mileage_coef) + c
                    for k, (_, c) in self.own_model.items()]
        if any(c["mileage_coef"] > 0 for c in self.makes.values()) or self.pooled_mileage_coef > 0 or any(
                c > 0 for c in own_sums):
            raise ValueError("depreciation: a mileage coefficient is positive (more miles, dearer)")
        offs = [self.conditions[c] for c in ORDERED_CONDITIONS]
        if any(b > a for a, b in zip(offs, offs[1:], strict=False)):
            raise ValueError("depreciation: condition offsets are out of order")

    # -- per row -------------------------------------------------------------------------------
    def known_make(self, make: str) -> bool:
        return make_key(make) in self.makes

    def sigma(self, age: np.ndarray, makes: np.ndarray, bodies: np.ndarray) -> np.ndarray:
        """Spread scale (log units) per row: a quadratic in age plus the make's and body's
        pooled departures (pickups and old cars vary more)."""
        a10 = np.clip(np.asarray(age, dtype=np.float64), 0, self.age_max) / 10.0
        s = self.sigma_coefs
        off = np.array([self.makes.get(make_key(str(m)), {}).get("sigma", 0.0) + self.body_sigma.get(str(b), 0.0)
                        for m, b in zip(makes, bodies, strict=True)])
        return np.exp(s[0] + s[1] * a10 + s[2] * a10**2 + off)

    def mileage_excess(self, miles: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Log-units above typical for the age (clipped to +-3); nan miles -> 0 (typical)."""
        m = np.asarray(miles, dtype=np.float64)
        t = np.interp(np.clip(np.asarray(age, dtype=np.float64), 0, self.age_max), np.arange(len(self.typical)),
                      self.typical)
        x = np.log(np.where(np.isfinite(m), m, 0.0) + 1_000.0) - t
        return np.where(np.isfinite(m), np.clip(x, -3.0, 3.0), 0.0)

    def typical_miles(self, age: float) -> float:
        t = float(np.interp(min(max(age, 0), self.age_max), np.arange(len(self.typical)), self.typical))
        return max(0.0, math.exp(t) - 1_000.0)

    def centre(self, makes: np.ndarray, bodies: np.ndarray, ages: np.ndarray, miles: np.ndarray,
               conditions: np.ndarray, titles: np.ndarray | None = None,
               own_model: np.ndarray | None = None) -> np.ndarray:
        """Median-level ``log(price / MSRP)`` in the listings' year's dollars, per row.
        ``miles`` nan: not given; ``conditions`` "": not given (or "unknown": the listings'
        not-stated offset, for evaluation); ``titles`` None: clean.  ``own_model`` (default:
        every row): the MSRP is the car's own model's, not its make's and body's average; the
        makes whose listings name models (Mercedes-Benz) have a fitted level for that."""
        ages = np.clip(np.asarray(ages, dtype=np.float64), 0, self.age_max)
        grid = np.arange(self.age_max + 1, dtype=np.float64)
        out = np.interp(ages, grid, self.global_curve)
        keys = np.array([make_key(str(m)) for m in makes])
        coef = np.full(len(ages), self.pooled_mileage_coef)
        for k in set(keys.tolist()):
            rows = keys == k
            hit = self.makes.get(k)
            if hit is not None:
                out[rows] += np.interp(ages[rows], grid, hit["curve"])
                coef[rows] = hit["mileage_coef"]
        bodies = np.asarray(bodies)
        for b in set(bodies.tolist()):
            rows = bodies == b
            if b in self.bodies:
                out[rows] += np.interp(ages[rows], grid, self.bodies[b])
        mb = np.array([self.make_body.get(f"{k}|{b}", (0.0, 0.0)) for k, b in zip(keys, bodies, strict=True)],
                      dtype=np.float64).reshape(-1, 2)
        out += mb[:, 0] + mb[:, 1] * ages / 10.0
        own = np.ones(len(ages), dtype=bool) if own_model is None else np.asarray(own_model, dtype=bool)
        for k, (curve, own_coef) in self.own_model.items():
            rows = own & (keys == k)
            out[rows] += np.interp(ages[rows], grid, curve)
            coef[rows] += own_coef
        out += coef * self.mileage_excess(miles, ages)
        cond = np.array([self.conditions.get(str(c), self.condition_not_given) if c else self.condition_not_given
                         for c in conditions])
        out += cond
        if titles is not None:
            out += np.array([self.titles.get(str(t), 0.0) for t in titles])
        return out

    def has_own_spread(self, make: str) -> bool:
        return make_key(make) in self.own_variants

    def spread(self, mileage_given: bool, condition_given: bool, own_make: str | None = None) -> Spread:
        """The residual shape for these inputs; ``own_make``: of a car priced against its own
        model's MSRP, for a make whose listings name models (else the all-listings shape)."""
        key = "+".join(n for n, g in (("mileage", mileage_given), ("condition", condition_given)) if g) or "none"
        own = self.own_variants.get(make_key(own_make)) if own_make else None
        return (own or self.variants)[key] if own is None or key in own else self.variants[key]


def _spread(v: Any) -> Spread:
    lv, qs = np.asarray(v["levels"], dtype=np.float64), np.asarray(v["quantiles"], dtype=np.float64)
    if len(lv) < 3 or lv.shape != qs.shape or np.any(np.diff(lv) <= 0) or np.any(np.diff(qs) < 0):
        raise ValueError("depreciation: a spread needs 3+ increasing levels and non-decreasing quantiles")
    return Spread(lv, qs)


def _vec(v: Any, n: int) -> np.ndarray:
    a = np.asarray([float(x) for x in v], dtype=np.float64)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"depreciation: expected {n} finite numbers, got {len(a)}")
    return a


@functools.lru_cache(maxsize=4)
def load_depreciation(path: str | None = None) -> Depreciation:
    """The bundled depreciation (or ``path``); raises OSError / ValueError naming the file."""
    return load_json_resource(path, DEPRECIATION_PATH, Depreciation, "CarValue depreciation file")
