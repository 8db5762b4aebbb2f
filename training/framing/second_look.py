"""Decide a model file's second look (``framing.second_look``) on validation photos, and write it.

Where the first pass on a whole photo sees no whole car, the predictor can predict on the box the
box head found anyway and let that crop's verdict stand when it is a whole car (core/predictor.py).
It is for a car small in a busy scene, whose whole photo's pooled features read as the scene.
Whether a file gets it is decided here, on photos that set nothing else and are not reported:
the threshold half of the held-out cars (whole_car_data.held_out_cars), framed at 35% and 60% on
the installed *training* backgrounds and on natural photos of the *validation* categories, with
their parts, and the validation categories' natural photos.  The rule (RESULTS.md, 2026-12-08):
on, when it flags fewer of the worst kind of whole car while natural non-car photos stay at or
above ``--min-no-car`` flagged and every part-of-a-car kind at or above ``--min-part``.

  python -m training.framing.second_look --model runs/x/part-rule/carvalue.onnx \\
      --data ../shared/data/stanford-cars-train --split runs/x/stage3/split.json \\
      --natural ../shared/data/natural-photos --out runs/x/second-look/carvalue.onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.framing import CropMode, WholeCar
from core.modelfile import open_session, write_model_file
from core.predictor import Predictor
from core.preprocess import ImageLoadError, photo_from_image
from training.framing import whole_car_data as wd
from training.framing.heads import BackgroundPool, split_files, training_backgrounds
from training.framing.whole_car_eval import NATURAL_KIND_NAMES, car_cases, framed_cases

Rates = Mapping[str, float]  # kind of case -> share flagged (not shown as a whole car)


def validation_cases(data: Path, split: Path, natural: Path, seed: int = 5,
                     limit: int = 0) -> Iterator[tuple[str, Any]]:
    """(kind, image) of the validation photos described above."""
    cars = wd.held_out_cars(split_files(split, data))[0]
    cars = cars[:limit] if limit else cars
    nat = wd.split_by_category(wd.read_natural(natural))["val"]
    for kind, image, _ in car_cases(cars, seed, BackgroundPool(training_backgrounds())):
        yield kind, image
    pool = BackgroundPool([p.path for p in nat if p.kind == "not_car"])
    for kind, image, _ in framed_cases(cars, seed + 1, pool, "on a natural photo"):
        yield kind, image
    for p in nat[: limit * 4] if limit else nat:
        yield NATURAL_KIND_NAMES[p.kind], wd._open_rgb(p.path)


def flag_rates(model: Path, cases: Iterator[tuple[str, Any]]) -> dict[str, dict[str, float]]:
    """Per kind: the share flagged without and with the second look (the same photos)."""
    off, on = Predictor.load(model), Predictor.load(model)
    off.second_look, on.second_look = False, True
    counts: dict[str, list[int]] = {}
    for kind, image in cases:
        try:
            photo = photo_from_image(image)
        except ImageLoadError:  # a part cut from a small photo can be under the app's 32 px
            continue
        c = counts.setdefault(kind, [0, 0, 0])
        c[0] += 1
        for j, pred in ((1, off), (2, on)):
            c[j] += pred.predict(photo, CropMode.AUTO).whole_car not in (WholeCar.YES, WholeCar.UNSURE)
    return {k: {"photos": n, "without": a / n, "with": b / n} for k, (n, a, b) in sorted(counts.items())}


def decide(without: Rates, with_: Rates, min_no_car: float = 0.97, min_part: float = 0.92) -> bool:
    """The rule: fewer flags on the worst kind of whole car, natural non-car photos and every
    kind of part of a car still flagged at least as the bars say."""
    whole = [k for k in without if k.startswith("whole") and "natural car photo" not in k]
    if not whole:
        return False
    worse = max(without[k] for k in whole) <= max(with_[k] for k in whole)
    no_car = [with_[k] for k in with_ if k == NATURAL_KIND_NAMES["not_car"]]
    parts = [with_[k] for k in with_ if k.startswith("part") and "natural" not in k]
    return not worse and all(v >= min_no_car for v in no_car) and all(v >= min_part for v in parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.second_look", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True, help="the model's split.json")
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="the model file with its second look decided")
    ap.add_argument("--min-no-car", type=float, default=0.97)
    ap.add_argument("--min-part", type=float, default=0.92)
    ap.add_argument("--limit", type=int, default=0, help="car photos, at most (smoke runs)")
    a = ap.parse_args(argv)
    rates = flag_rates(a.model, validation_cases(a.data, a.split, a.natural, limit=a.limit))
    on = decide({k: v["without"] for k, v in rates.items()}, {k: v["with"] for k, v in rates.items()},
                a.min_no_car, a.min_part)
    report = {"second_look": on, "min_no_car": a.min_no_car, "min_part": a.min_part, "validation": rates}
    _, meta = open_session(a.model, threads=1)
    if meta.framing is None:
        raise SystemExit(f"{a.model}: no framing section (not a framed model file)")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_model_file(a.model, dataclasses.replace(meta, framing=dataclasses.replace(meta.framing, second_look=on),
                                                  metrics={**meta.metrics, "second_look": report}), a.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
