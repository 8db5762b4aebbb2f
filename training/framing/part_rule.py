"""Fit the part-of-a-car rule: a logistic regression on what the first forward pass already gives
(core.framing.part_signals: the whole-car score, the top make/model probability, the shape of the
car the box head finds), written into the model file's framing section.

Why: the whole-car head reads pooled features, which hold what is in the crop but little of its
shape, so half a side view (taller than wide, the classifier less sure) passed it on about one in
five held-out photos.  The rule costs a few multiplications per crop, no forward pass.

Fitted on the threshold half of the held-out car photos (whole_car_data.held_out_cars): each photo
whole (tight, framed at 35% and 60%) and as three parts (half a side view, 8-40% of it, a bumper
or wheel), as ``carvalue predict`` runs them (``CropMode.AUTO``).  The cut: the most parts flagged
while no kind of whole car is flagged more than ``--allow`` (1 point) more often than by the head
alone, on those photos.  Measured afterwards on the reported half by whole_car_eval.

  python -m training.framing.part_rule --model resources/models/carvalue.onnx \
      --data ../shared/data/stanford-cars-train --split training/reports/bundled-model-160/split.json \
      --out runs/part-rule/carvalue.onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from core.framing import CropMode, WholeCar
from core.modelfile import PART_SIGNAL_COUNT, open_session, write_model_file
from core.predictor import Predictor
from core.preprocess import ImageLoadError, photo_from_image
from training.framing.heads import split_files
from training.framing.whole_car_data import held_out_cars
from training.framing.whole_car_eval import car_cases

SIGNALS = ("whole-car score (logit)", "top make/model probability (log)", "found car's width/height (log)")


def collect(model: Path, photos: list[Path], seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(kind of case, part signals, flagged by the head) for each case of ``photos``."""
    pred = Predictor.load(model)
    fr = pred.metadata.framing
    if fr is None:
        raise SystemExit(f"{model} has no framing heads: nothing to fit a rule on")
    if fr.part_weights:
        raise SystemExit(f"{model} already has a part rule: fit on the file without it")
    kinds, x, flagged = [], [], []
    for kind, image, _ in car_cases(photos, seed):
        try:
            p = pred.predict(photo_from_image(image), CropMode.AUTO)
        except ImageLoadError:  # a part cut from a small photo can be under the app's 32 px
            continue
        if len(p.part_signals) != PART_SIGNAL_COUNT:
            raise SystemExit(f"{model}: its predictions carry no part signals")
        kinds.append(kind)
        x.append(p.part_signals)
        flagged.append(p.whole_car not in (WholeCar.YES, WholeCar.UNSURE))
    return kinds, np.asarray(x, np.float64), np.asarray(flagged, bool)


def rates(kinds: list[str], flags: np.ndarray) -> dict[str, float]:
    by: dict[str, list[bool]] = defaultdict(list)
    for k, f in zip(kinds, flags, strict=True):
        by[k].append(bool(f))
    return {k: round(float(np.mean(v)), 4) for k, v in sorted(by.items())}


def fit(kinds: list[str], x: np.ndarray, flagged: np.ndarray, allow: float) -> tuple[np.ndarray, float]:
    """Raw weights and bias (``w . x + b < 0``: part) from a standardised, class-balanced logistic
    regression; the bias moved to the most flagging cut that keeps every whole kind within
    ``allow`` of the head's own rate."""
    from sklearn.linear_model import LogisticRegression

    whole = np.array([k.startswith("whole") for k in kinds])
    if whole.all() or not whole.any():
        raise ValueError("the fit needs both whole cars and parts")
    mean, scale = x.mean(0), x.std(0) + 1e-9
    lr = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit((x - mean) / scale, whole)
    w = lr.coef_[0] / scale
    b0 = float(lr.intercept_[0] - (lr.coef_[0] * mean / scale).sum())
    score = x @ w + b0
    limits = {k: r + allow for k, r in rates(kinds, flagged).items() if k.startswith("whole")}
    best = -np.inf  # cut c: part when score < c; the largest c that keeps every whole kind in bounds
    for c in np.sort(score[whole]):
        flags = flagged | (score < c)
        r = rates(kinds, flags)
        if all(r[k] <= limits[k] for k in limits):
            best = float(c)
        else:
            break
    if not np.isfinite(best):
        raise ValueError("no cut keeps the whole cars within the allowance")
    return w, b0 - best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.part_rule", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a model file with framing heads and no rule")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True, help="the model's split.json")
    ap.add_argument("--out", type=Path, required=True, help="the model file with the rule")
    ap.add_argument("--allow", type=float, default=0.01, help="whole cars flagged beyond the head's rate, at most")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--limit", type=int, default=0, help="photos, at most (smoke runs)")
    a = ap.parse_args(argv)
    photos = held_out_cars(split_files(a.split, a.data))[0]
    photos = photos[:a.limit] if a.limit else photos
    kinds, x, flagged = collect(a.model, photos, a.seed)
    w, b = fit(kinds, x, flagged, a.allow)
    with_rule = flagged | (x @ w + b < 0)
    report: dict[str, Any] = {
        "signals": list(SIGNALS), "weights": [round(float(v), 6) for v in w], "bias": round(b, 6),
        "photos": len(photos), "allow": a.allow,
        "validation, flagged by the head": rates(kinds, flagged),
        "validation, flagged with the rule": rates(kinds, with_rule)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if a.out.resolve() != a.model.resolve():
        shutil.copyfile(a.model, a.out)
    _, meta = open_session(a.out, threads=1)
    assert meta.framing is not None
    framing = dataclasses.replace(meta.framing, part_weights=tuple(report["weights"]), part_bias=report["bias"])
    write_model_file(a.out, dataclasses.replace(meta, framing=framing,
                                                metrics={**meta.metrics, "part_rule": report}), a.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
