"""Which whole cars does the app call "not a whole car", and on which backgrounds? (issue 27's
"whole cars <= 3% flagged")

The held-out framed composites paste each held-out car photo into one of the test backgrounds
(training/data/negatives.py: a handful of installed photos).  This prints, per background, how
many framed composites it held and how many of them ``Predictor`` (crop auto, the app's default)
flagged, and lists every flagged whole car (kind, photo, what the first pass did), so a flag
rate that rests on one odd background shows as such.  The same cases as whole_car_eval (same
seed), through the same code.

  python -m training.studies.flags_by_background --data ../shared/data/stanford-cars-train \\
      --split runs/bundled/stage3/split.json --out training/reports/whole-car/flags_by_background.json
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from core.framing import CropMode
from core.predictor import Predictor, default_model_path
from core.preprocess import photo_from_image
from training.data.negatives import background_files
from training.framing import whole_car_data as wd
from training.framing.heads import BackgroundPool, split_files
from training.framing.whole_car_eval import car_cases
from training.studies.common import write_json_report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.studies.flags_by_background", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="default: the bundled model")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True, help="the model's split.json (see imagenet_teacher for the bundled one)")
    ap.add_argument("--seed", type=int, default=11, help="whole_car_eval's seed (its default: the reported figures)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    pred = Predictor.load(a.model or default_model_path())
    photos = wd.held_out_cars(split_files(a.split, a.data))[1]
    pool = BackgroundPool(background_files("test"))
    framed: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    cases = []
    for kind, image, name in car_cases(photos, a.seed, pool):
        if not kind.startswith("whole"):
            continue
        p = pred.predict(photo_from_image(image), CropMode.AUTO)
        background = pool.last.name if "framed" in kind and pool.last is not None else ""
        if background:
            framed[background] += 1
            flagged[background] += not p.looks_like_car
        if not p.looks_like_car:
            cases.append({"kind": kind, "photo": name, "background": background, "class": p.make_models[0].label,
                          "whole_car_probability": round(p.confidence, 4), "no_car": p.no_car,
                          "judged_the_whole_photo": p.covers_photo})
    report = {"model": str(a.model) if a.model else "the bundled model", "seed": a.seed,
              "framed_by_background": {b: {"composites": n, "flagged": flagged[b]} for b, n in framed.most_common()},
              "flagged_whole_cars": cases}
    return write_json_report(a.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
