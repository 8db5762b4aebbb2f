"""Which whole-car head: what it reads (pooled features, or also where in the crop) and how much
parts of cars weigh, compared on validation samples only.

Each variant is trained on the train part of ``carvalue-train whole-car features --grid``, its
thresholds chosen on validation as the shipped head's are (whole_car_head.choose_thresholds), and
measured on the same validation samples: half side views as the pan sweep cuts them (the issue-27
bar still missed), every part of a car, natural non-car photos, and the whole cars of each kind.
The test part is not read: the chosen variant is measured there once, through Predictor
(training/framing/whole_car_eval.py).

  python -m training.studies.whole_car_layouts --features runs/whole-car-grid --out runs/whole-car-grid/layouts.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from training.framing import whole_car_data as wd
from training.framing.whole_car_head import (
    LAYOUTS,
    PART_WEIGHT,
    WHOLE_KINDS,
    choose_thresholds,
    load_part,
    train_head,
)


def variant_figures(train: dict[str, np.ndarray], val: dict[str, np.ndarray], layout: str, part_weight: float,
                    hidden: int = 128, seed: int = 0) -> dict[str, float]:
    """Validation shares flagged (not shown as a whole car) by kind, for one variant."""
    head = train_head(train, hidden, seed=seed, part_weight=part_weight, layout=layout)
    th = choose_thresholds(head, val)
    flagged = head.flagged(head.x(val), th)
    kind, label = val["kind"], val["label"]
    out = {"half side views": float(flagged[kind == "sweep-half"].mean()),
           "all parts of cars": float(flagged[label == wd.PART].mean()),
           "natural non-car": float(flagged[np.isin(kind, ["natural-not_car", "natural-vehicle_not_car"])].mean())}
    for k in WHOLE_KINDS:  # natural car photos: a handful in validation, shown anyway
        if (kind == k).any():
            out[f"whole: {k}"] = float(flagged[kind == k].mean())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.studies.whole_car_layouts",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=Path, required=True, help="a folder written by whole-car features --grid")
    ap.add_argument("--out", type=Path, required=True, help="report (.json)")
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--part-weights", default=f"{PART_WEIGHT:g}")
    ap.add_argument("--hidden", type=int, default=128)
    a = ap.parse_args(argv)
    train, val = load_part(a.features, "train"), load_part(a.features, "val")
    report: dict[str, dict[str, float]] = {}
    for layout in a.layouts.split(","):
        for pw in (float(w) for w in a.part_weights.split(",")):
            t0 = time.perf_counter()
            name = f"{layout}, parts x{pw:g}, hidden {a.hidden}"
            report[name] = {**variant_figures(train, val, layout, pw, a.hidden),
                            "seconds": round(time.perf_counter() - t0)}
            print(name, json.dumps({k: round(v, 3) for k, v in report[name].items()}), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
