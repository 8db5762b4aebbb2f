"""Study (the exploration before training/framing/part_rule.py, which is what shipped): does a part of a car (half a side view, 8-40% of it, a bumper) give itself
away in what the app already computes, beside the whole-car score?  Each held-out car photo is
predicted as ``carvalue predict`` does (``CropMode.AUTO``) whole (tight, framed at 35% and 60%)
and as three parts of it (whole_car_eval.car_cases); per prediction a few numbers the predictor
has anyway (the whole-car score, the top make/model probability and its margin, the top year
probability, the crop's shape) go into a logistic regression fitted on the threshold half of the
held-out photos, its cut set there so whole cars are flagged no more often than the shipped rule
flags them there; then both rules are counted on the reported half.

  python -m training.studies.partial_signals --model resources/models/carvalue.onnx \
      --data ../shared/data/stanford-cars-train --split training/reports/bundled-model-160/split.json \
      --out training/reports/whole-car/partial_signals.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from core.framing import CropMode, WholeCar
from core.predictor import Prediction, Predictor
from core.preprocess import ImageLoadError, photo_from_image
from training.framing.heads import split_files
from training.framing.part_rule import rates
from training.framing.whole_car_data import held_out_cars
from training.framing.whole_car_eval import car_cases

FEATURES = ("whole_logit", "log_top1", "margin", "log_year_top1", "log_aspect", "car_logit")


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def signals(p: Prediction) -> list[float]:
    mm = [lp.probability for lp in p.make_models]
    return [_logit(p.confidence), math.log(max(mm[0], 1e-9)), mm[0] - (mm[1] if len(mm) > 1 else 0.0),
            math.log(max(p.years[0].probability, 1e-9)), math.log(max(p.crop.w, 1) / max(p.crop.h, 1)),
            _logit(p.car_score) if not math.isnan(p.car_score) else 0.0]


def collect(pred: Predictor, photos: list[Path], seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    kinds, x, flagged = [], [], []
    for kind, image, _ in car_cases(photos, seed):
        try:
            photo = photo_from_image(image)
        except ImageLoadError:
            continue
        p = pred.predict(photo, CropMode.AUTO, top_k=5)
        kinds.append(kind)
        x.append(signals(p))
        flagged.append(p.whole_car not in (WholeCar.YES, WholeCar.UNSURE))
    return kinds, np.asarray(x, np.float64), np.asarray(flagged)


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(prog="python -m training.studies.partial_signals")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args(argv)
    pred = Predictor.load(a.model)
    val_cars, test_cars = held_out_cars(split_files(a.split, a.data))
    if a.limit:
        val_cars, test_cars = val_cars[:a.limit], test_cars[:a.limit]
    vk, vx, vf = collect(pred, val_cars, a.seed + 1)
    tk, tx, tf = collect(pred, test_cars, a.seed)
    whole_v = np.array([k.startswith("whole") for k in vk])
    report: dict[str, Any] = {"features": FEATURES, "val_photos": len(val_cars), "test_photos": len(test_cars),
                              "shipped": {"val": rates(vk, vf), "test": rates(tk, tf)}}
    allowed = float(vf[whole_v].mean())  # the shipped rule's rate on whole cars, threshold half
    for name, cols in (("all", list(range(len(FEATURES)))), ("without shape", [0, 1, 2, 3, 5]),
                       ("score and classifier", [0, 1, 2, 3])):
        scaler = StandardScaler().fit(vx[:, cols])
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(vx[:, cols]), whole_v)
        sv = lr.decision_function(scaler.transform(vx[:, cols]))
        cut = float(np.quantile(sv[whole_v], allowed))  # flags as many val whole cars as shipped
        st = lr.decision_function(scaler.transform(tx[:, cols]))
        report[name] = {"columns": [FEATURES[c] for c in cols], "coef": lr.coef_.round(3).tolist(),
                        "val": rates(vk, sv < cut), "test": rates(tk, st < cut),
                        "test, or shipped": rates(tk, (st < cut) | tf)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out.with_suffix(".npz"), val_kinds=np.asarray(vk), val_x=vx, val_flagged=vf,
                        test_kinds=np.asarray(tk), test_x=tx, test_flagged=tf)
    a.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
