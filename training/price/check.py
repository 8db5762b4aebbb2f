"""The price a model file shows on held-out Stanford photos, against the MSRP table.

``python -m training.price.check [--model FILE]`` predicts every photo of the split run's test
split (``training/reports/split-model/split.json``: held out for the split model, the one to
measure; the shipped model trained on every photo, so on it the figures are not held out) and compares the shown median with MSRP x
depreciation of the photo's true make/model/year (the same price model at the same year of
sale): the Spearman correlation of the two (does the ranking of photos by price hold up?), the
median absolute difference, and how wide the likely range is for confident photos.  Writes
``training/reports/price_stanford.json``; ``training/reports/price.md`` quotes it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.predictor import Predictor
from core.pricing import PriceInputs
from training.data.labels.build import read_stanford_labels
from training.price.model_fit import DEFAULT_STANFORD, REPORT_DIR

SPLIT = REPORT_DIR / "split-model" / "split.json"
CONFIDENT = 0.9


def stanford_check(model: Path | None, stanford_dir: Path = DEFAULT_STANFORD, split: Path = SPLIT,
                   year_of_sale: int = 2026) -> dict[str, Any]:
    from scipy.stats import spearmanr

    predictor = Predictor.load(model)
    pm = predictor.metadata.parsed_price_model
    if pm is None or not pm.classes:
        raise SystemExit(f"{predictor.path}: no price model with a class table")
    predictor.price_inputs = PriceInputs(year_of_sale=year_of_sale)
    files = json.loads(split.read_text())["parts"]["test"]["files"]
    labels = {p.file: p for p in read_stanford_labels(stanford_dir)}
    vocab = predictor.metadata.make_models
    rows: list[dict[str, Any]] = []
    for i in range(0, len(files), 32):
        chunk = files[i:i + 32]
        preds = predictor.predict_many([stanford_dir / f for f in chunk])
        for f, p in zip(chunk, preds, strict=True):
            lab = labels[f]
            name = f"{lab.make} {lab.model} {lab.year}"
            k = vocab.index(name) if name in vocab else -1
            cls = pm.classes[k] if k >= 0 else None
            truth = None
            if cls is not None and cls.priced:
                age = year_of_sale - lab.year
                truth = math.exp(cls.log_msrp + float(pm.log_ratio(np.array([age]), PriceInputs(year_of_sale))[0]))  # type: ignore[operator]
            assert p.price is not None
            top = vocab.index(p.make_models[0].label)
            rows.append({"file": f, "truth": truth, "top_priced": pm.classes[top].priced, "median": p.price.median, "likely": p.price.likely,
                         "top": p.make_models[0].probability, "right": p.make_models[0].label == name})
    priced = [r for r in rows if r["truth"] is not None]
    t = np.array([r["truth"] for r in priced])
    m = np.array([r["median"] for r in priced])
    conf = [r for r in rows if r["top"] >= CONFIDENT]
    conf_priced = np.array([r["likely"][1] / r["likely"][0] for r in conf if r["top_priced"]])
    ratios = np.array([r["likely"][1] / r["likely"][0] for r in conf])
    all_ratios = np.array([r["likely"][1] / r["likely"][0] for r in rows])
    return {
        "model": str(predictor.path.name), "year_of_sale": year_of_sale, "photos": len(rows),
        "photos_with_priced_true_class": len(priced),
        "spearman_shown_median_vs_msrp_x_depreciation": float(spearmanr(m, t).statistic),
        "median_abs_pct_difference": float(np.median(np.abs(m / t - 1)) * 100),
        "median_inside_likely_range": float(np.mean([r["likely"][0] <= r["median"] <= r["likely"][1]
                                                     for r in rows]) * 100),
        "confident_photos": len(conf), "confident_threshold": CONFIDENT,
        "confident_likely_high_over_low_median": float(np.median(ratios)) if len(ratios) else None,
        "confident_likely_high_over_low_min": float(ratios.min()) if len(ratios) else None,
        "confident_top_class_priced": len(conf_priced),
        "confident_top_class_priced_likely_high_over_low_min": float(conf_priced.min()) if len(conf_priced) else None,
        "all_likely_high_over_low_median": float(np.median(all_ratios)),
        "all_likely_high_over_low_min": float(all_ratios.min()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.price.check", description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    ap.add_argument("--stanford", type=Path, default=DEFAULT_STANFORD)
    ap.add_argument("--year-of-sale", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=REPORT_DIR / "price_stanford.json",
                    help="where the JSON goes (default: the report price.md quotes, made on the bundled model's split run)")
    args = ap.parse_args(argv)
    out = stanford_check(args.model, args.stanford, year_of_sale=args.year_of_sale)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
