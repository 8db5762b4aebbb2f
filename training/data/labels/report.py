"""The labels report: ``training/reports/labels.{json,md}`` from :class:`DerivedLabels`.

It says what the price label is, how every Stanford class matched the MSRP table, the
depreciation fit and its held-out error, and the assumptions that bias the label.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from core.money import whole_dollars
from core.preprocess import MIN_SIDE
from training.data.labels.depreciation import LISTINGS_YEAR, Listing, ListingFilter, median_by_age
from training.data.labels.msrp import FIRST_REAL_MSRP_YEAR, MIN_PLAUSIBLE_MSRP
from training.data.price_scale import DEFAULT_EDGES, log_price_scaling
from training.data.stanford import DerivedLabels, read_stanford_labels


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


def write_report(report: dict[str, object], listings: Sequence[Listing], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "labels.json"
    js.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    dep = report["depreciation"]
    fit = dep["fit"]  # type: ignore[index]
    rows = report["class_prices"]
    observed = median_by_age(listings, LISTINGS_YEAR)
    fitted = dep["fitted_median_price_by_age"]  # type: ignore[index]
    ret = dep["retention_by_age"]  # type: ignore[index]
    lines = [
        "# Labels for the Stanford Cars photos",
        "",
        "Written by `python -m training.data.labels.build report --data ../shared/data/stanford-cars-train` "
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
        f"Photos per price range (${DEFAULT_EDGES[0] / 1000:.0f}k..{DEFAULT_EDGES[-1] / 1000:.0f}k cutoffs): "
        f"{report['price_bins_all_photos']}.",
        "",
        "## MSRP join: how each class matched",
        "",
        "| method | classes |",
        "|---|---|",
        *[f"| {m} | {n} |" for m, n in report["match_methods"].items()],  # type: ignore[union-attr]
        "",
        "`exact`: same model name; `prefix`: the longest MSRP model name that is a whole-word prefix of "
        "Stanford's (\"TTS\" for \"TTS Coupe\"); `alias`: the alias table in `training/data/labels/msrp.py`; "
        "`+nearest_year`: the nearest model year within 8 years of the class's year, its MSRP carried to the "
        f"class's year along the table's within-model MSRP trend ({report['msrp_trend_per_year']:+.4f} log-dollars a year). MSRP rows before "
        f"{FIRST_REAL_MSRP_YEAR} (placeholders, mostly exactly $2,000) and under {whole_dollars(MIN_PLAUSIBLE_MSRP)} are never used. "
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
