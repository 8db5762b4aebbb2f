"""Build ``resources/price/catalogue.json``: every car the price model can price (issue 28).

Why a generated file: the app must price a car it has never seen a photo of, offline, without
reading ``../shared`` at run time.  What goes in:

- every make/model of ``car_features_msrp.csv`` (48 makes, ~900 models) with its body type
  (the most frequent ``Vehicle Style`` over its trims, in the app's body words) and, per model
  year, the median MSRP over its trims.  Rows of model years before 2001 or under $5,000 are the
  table's placeholders (:mod:`training.data.labels.msrp`); their years are kept as years the model was made,
  with no MSRP of their own (core/catalogue.py carries the nearest real one to them and says so);
- the within-model yearly MSRP trend of the table (the rule that carries a model's MSRP to a
  year the table lacks, measured here, written into the file);
- the 196 Stanford classes, each joined to its model with :class:`training.data.labels.msrp.MsrpTable`'s
  match (the labels' join), so the photo path prices a class through the same catalogue;
- the source and licence of the MSRP table.

``python -m training.price.catalogue_build`` rewrites the file (deterministic output).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.catalogue import CATALOGUE_PATH, CATALOGUE_VERSION
from training.data.labels.msrp import (
    FIRST_REAL_MSRP_YEAR,
    MIN_PLAUSIBLE_MSRP,
    MsrpTable,
    load_msrp_table,
)
from training.data.stanford import read_stanford_labels

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_MSRP = SHARED / "car-features-msrp" / "car_features_msrp.csv"
DEFAULT_STANFORD = SHARED / "stanford-cars-train"
MSRP_SOURCE = ("car_features_msrp.csv: train.csv and test.csv of the PyPI package car-price-regression-model "
               "3.0.1, joined (11,914 rows, 48 makes, model years 1990-2017)")
MSRP_LICENCE = ("BSD-3-Clause / MIT, as the package's metadata states (see ../shared/data/README.md); "
                "only make, model, year, body and the median MSRP per model year are kept here")

# car_features_msrp "Vehicle Style" -> the app's body words.
STYLE_TO_BODY: dict[str, str] = {
    "Sedan": "sedan", "4dr SUV": "suv", "2dr SUV": "suv", "Convertible SUV": "suv", "Coupe": "coupe",
    "Convertible": "convertible", "Crew Cab Pickup": "pickup", "Extended Cab Pickup": "pickup",
    "Regular Cab Pickup": "pickup", "4dr Hatchback": "hatchback", "2dr Hatchback": "hatchback",
    "Wagon": "wagon", "Passenger Minivan": "minivan", "Cargo Minivan": "minivan", "Passenger Van": "van",
    "Cargo Van": "van",
}
# The last word(s) of a Stanford model name -> body (for the classes, whose body is in the name).
STANFORD_BODY: dict[str, str] = {
    "Sedan": "sedan", "SUV": "suv", "Coupe": "coupe", "Convertible": "convertible", "Hatchback": "hatchback",
    "Wagon": "wagon", "Minivan": "minivan", "Van": "van", "Cab": "pickup", "Pickup": "pickup", "Cargo Van": "van",
}


def _body_of(styles: Counter[str]) -> str:
    bodies: Counter[str] = Counter()
    for s, n in styles.items():
        bodies[STYLE_TO_BODY.get(s, "other")] += n
    return sorted(bodies.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def stanford_body(model: str) -> str | None:
    words = model.split()
    for k in (" ".join(words[-2:]), words[-1] if words else ""):
        if k in STANFORD_BODY:
            return STANFORD_BODY[k]
    return None


def build(msrp_csv: Path = DEFAULT_MSRP, stanford_dir: Path = DEFAULT_STANFORD) -> dict[str, Any]:
    rows = load_msrp_table(msrp_csv)
    styles: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    with open(msrp_csv, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            styles[(r["Make"].strip(), r["Model"].strip())][r["Vehicle Style"].strip()] += 1
    years_listed: dict[tuple[str, str], set[int]] = defaultdict(set)
    real: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        years_listed[(r.make, r.model)].add(r.year)
        if r.year >= FIRST_REAL_MSRP_YEAR and r.msrp >= MIN_PLAUSIBLE_MSRP:
            real[(r.make, r.model)][r.year].append(r.msrp)
    table = MsrpTable(rows)
    makes = sorted({m for m, _ in years_listed})
    models: list[list[Any]] = []
    index: dict[tuple[str, str], int] = {}
    for make, model in sorted(years_listed, key=lambda k: (k[0].lower(), k[1].lower())):
        ys = sorted(years_listed[(make, model)])
        msrps = {str(y): round(float(np.median(v)), 0) for y, v in sorted(real[(make, model)].items())}
        index[(make, model)] = len(models)
        models.append([makes.index(make), model, _body_of(styles[(make, model)]), ys[0], ys[-1], msrps])
    classes: dict[str, Any] = {}
    for p in {f"{p.make} {p.model} {p.year}": p for p in read_stanford_labels(stanford_dir)}.values():
        name = f"{p.make} {p.model} {p.year}"
        m = table.match(p.make, p.model, p.year)
        target = None
        if m.msrp is not None:
            target = next((k for k in index if k[0].lower() == p.make.lower() and k[1] == m.matched_model), None)
        classes[name] = None if target is None else [index[target], p.year, stanford_body(p.model) or models[index[target]][2]]
    return {
        "version": CATALOGUE_VERSION,
        "source": MSRP_SOURCE,
        "licence": MSRP_LICENCE,
        "msrp_trend_per_year": round(table.trend_per_year, 6),
        "first_real_msrp_year": FIRST_REAL_MSRP_YEAR,
        "table_last_year": max(r.year for r in rows),
        "makes": makes,
        "models_columns": ["make", "model", "body", "first_year", "last_year", "msrp_by_year"],
        "models": models,
        "classes": dict(sorted(classes.items())),
    }


def write(d: dict[str, Any], path: Path = CATALOGUE_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(d, separators=(",", ":"), sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.price.catalogue_build", description=__doc__.split("\n")[0])
    ap.add_argument("--msrp", type=Path, default=DEFAULT_MSRP)
    ap.add_argument("--stanford", type=Path, default=DEFAULT_STANFORD)
    ap.add_argument("--out", type=Path, default=CATALOGUE_PATH)
    args = ap.parse_args(argv)
    d = build(args.msrp, args.stanford)
    out = write(d, args.out)
    joined = sum(v is not None for v in d["classes"].values())
    print(f"wrote {out}: {len(d['models'])} models of {len(d['makes'])} makes; "
          f"{joined} of {len(d['classes'])} Stanford classes joined; trend {d['msrp_trend_per_year']:+.4f}/yr")
    return 0


if __name__ == "__main__":
    sys.exit(main())
