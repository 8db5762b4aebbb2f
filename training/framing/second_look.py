"""Decide a model file's second look (``framing.second_look``) on validation photos, and write it.

Where the first pass on a whole photo sees no whole car, the predictor can predict on the box the
box head found anyway and let that crop's verdict stand when it is a whole car (core/predictor.py).
It is for a car small in a busy scene, whose whole photo's pooled features read as the scene.
Whether a file gets it is decided here, on photos that set nothing else and are not reported:
the threshold half of the held-out cars (whole_car_data.held_out_cars), framed at 35% and 60% on
the installed *training* backgrounds and on natural photos of the *validation* categories, with
their parts, and the validation categories' natural photos.  The rule (RESULTS.md, 2026-12-08):
on, when it flags fewer of the worst kind of whole car while natural non-car photos stay at or
above ``--min-no-car`` flagged and every part-of-a-car kind at or above ``--min-part``.  Then
``second_look_min_top``: the crop's top make/model probability the second look also asks for, the
highest cut at which no kind of whole car is flagged more than 1 point more often than with none.

  python -m training.framing.second_look --model runs/x/part-rule/carvalue.onnx \\
      --data ../shared/data/stanford-cars-train --split runs/x/stage3/split.json \\
      --natural ../shared/data/natural-photos --out runs/x/second-look/carvalue.onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


@dataclass(frozen=True)
class Case:
    """One validation photo: flagged by the first pass alone, and where the second look would
    pass it, the top make/model probability of its crop (None: it would not)."""

    kind: str
    flagged: bool
    rescued_top: float | None


def cases_of(model: Path, cases: Iterator[tuple[str, Any]]) -> list[Case]:
    """Each case through Predictor without and with the second look (no probability cut): a
    cut ``t`` then flags exactly the cases flagged without it and not rescued at ``top >= t``."""
    off, on = Predictor.load(model), Predictor.load(model)
    off.second_look, on.second_look = False, True
    on.second_look_min_top = 0.0
    out = []
    for kind, image in cases:
        try:
            photo = photo_from_image(image)
        except ImageLoadError:  # a part cut from a small photo can be under the app's 32 px
            continue
        a = off.predict(photo, CropMode.AUTO).whole_car not in (WholeCar.YES, WholeCar.UNSURE)
        p = on.predict(photo, CropMode.AUTO)
        b = p.whole_car not in (WholeCar.YES, WholeCar.UNSURE)
        out.append(Case(kind, a, p.make_models[0].probability if a and not b else None))
    return out


def rates(cases: list[Case], look: bool, min_top: float = 0.0) -> dict[str, float]:
    """Per kind, the share flagged without the second look, or with it at the cut ``min_top``."""
    counts: dict[str, list[int]] = {}
    for c in cases:
        n = counts.setdefault(c.kind, [0, 0])
        rescued = look and c.rescued_top is not None and c.rescued_top >= min_top
        n[0] += 1
        n[1] += c.flagged and not rescued
    return {k: f / n for k, (n, f) in sorted(counts.items())}


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


def choose_min_top(cases: list[Case], allow: float = 0.01) -> float:
    """The highest cut of 0, 0.05, ..., 0.95 at which no kind of whole car is flagged more than
    ``allow`` more often than with no cut."""
    base = rates(cases, True)
    whole = [k for k in base if k.startswith("whole") and "natural car photo" not in k]
    best = 0.0
    for t in np.arange(0.05, 1.0, 0.05).round(2):
        r = rates(cases, True, float(t))
        if all(r[k] <= base[k] + allow + 1e-12 for k in whole):
            best = float(t)
        else:
            break
    return best


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
    cases = cases_of(a.model, validation_cases(a.data, a.split, a.natural, limit=a.limit))
    without, with_ = rates(cases, False), rates(cases, True)
    on = decide(without, with_, a.min_no_car, a.min_part)
    min_top = choose_min_top(cases) if on else 0.0
    at_cut = rates(cases, True, min_top)
    photos = Counter(c.kind for c in cases)
    report = {"second_look": on, "min_top": min_top, "min_no_car": a.min_no_car, "min_part": a.min_part,
              "validation": {k: {"photos": photos[k], "without": v, "with": with_[k], "with, at the cut": at_cut[k]}
                             for k, v in without.items()}}
    _, meta = open_session(a.model, threads=1)
    if meta.framing is None:
        raise SystemExit(f"{a.model}: no framing section (not a framed model file)")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_model_file(a.model, dataclasses.replace(meta, framing=dataclasses.replace(meta.framing, second_look=on,
                                                                                    second_look_min_top=min_top),
                                                  metrics={**meta.metrics, "second_look": report}), a.out)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
