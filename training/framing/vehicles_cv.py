"""Other vehicles (motorbikes, aeroplanes, trucks, trains), measured by leave-category-out.

The natural-photo split by category leaves only 6 vehicle photos in the test categories: too few
to say whether the whole-car head flags a vehicle it never saw the kind of. Here every vehicle
category of the training part with at least ``BIG_CATEGORY`` photos is one fold and the rest of
the training part's vehicle categories one more: for each fold the head is trained again without
that fold's categories (whole photos and regions alike), its thresholds chosen on validation as
for the shipped head, and the fold's whole photos are scored. The validation and test parts'
vehicle categories were never trained on: the shipped recipe's head scores them. Figures are on
the pooled features (the first pass's whole-car verdict), not through ``Predictor``.

  carvalue-train whole-car-vehicles --features runs/whole-car --out training/reports/whole-car/vehicles_cv.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from training.framing import whole_car_data as wd
from training.framing.whole_car_head import (
    LAYOUTS,
    PART_WEIGHT,
    Head,
    choose_thresholds,
    load_part,
    train_head,
)

VEHICLE = "natural-vehicle_not_car"
BIG_CATEGORY = 10  # photos: a category this large is a fold of its own


def folds(train: dict[str, np.ndarray]) -> dict[str, set[str]]:
    """Fold name -> the vehicle categories (groups) it holds out."""
    whole = train["kind"] == VEHICLE
    names, counts = np.unique(train["group"][whole], return_counts=True)
    out = {str(n): {str(n)} for n, c in zip(names, counts, strict=True) if c >= BIG_CATEGORY}
    small = {str(n) for n, c in zip(names, counts, strict=True) if c < BIG_CATEGORY}
    if small:
        out[f"{len(small)} smaller categories"] = small
    return out


def without(data: dict[str, np.ndarray], groups: set[str]) -> dict[str, np.ndarray]:
    keep = ~np.isin(data["group"], sorted(groups))
    return {k: v[keep] for k, v in data.items()}


def fold_heads(train: dict[str, np.ndarray], val: dict[str, np.ndarray], epochs: int = 20, seed: int = 0,
               layout: str = "pooled", part_weight: float = PART_WEIGHT,
               ) -> Iterator[tuple[str, Head, dict[str, float], np.ndarray]]:
    """Per fold: its name, the head trained without its categories, that head's thresholds
    (chosen on validation as for the shipped head), and which rows of ``train`` are the fold's
    vehicle photos."""
    for name, groups in folds(train).items():
        head = train_head(without(train, groups), epochs=epochs, seed=seed, layout=layout, part_weight=part_weight)
        th = choose_thresholds(head, val)
        yield name, head, th, (train["kind"] == VEHICLE) & np.isin(train["group"], sorted(groups))


def measure(parts: dict[str, dict[str, np.ndarray]], epochs: int = 20, seed: int = 0, layout: str = "pooled",
            part_weight: float = PART_WEIGHT) -> dict[str, dict[str, float]]:
    """Per fold (and for the validation and test categories): vehicle photos and the share flagged."""
    train, val, test = parts["train"], parts["val"], parts["test"]
    out: dict[str, dict[str, float]] = {}
    for name, head, th, held in fold_heads(train, val, epochs, seed, layout, part_weight):
        f = head.flagged(head.x(train, held), th)
        out[f"held out of training: {name}"] = {"n": int(held.sum()), "flagged": float(f.mean())}
    head = train_head(train, epochs=epochs, seed=seed, layout=layout, part_weight=part_weight)
    th = choose_thresholds(head, val)
    for part, data in (("validation", val), ("test", test)):
        m = data["kind"] == VEHICLE
        if m.any():
            out[f"{part} categories (never trained on)"] = {"n": int(m.sum()),
                                                            "flagged": float(head.flagged(head.x(data, m), th).mean())}
    n = sum(int(v["n"]) for v in out.values())
    out["all"] = {"n": n, "flagged": sum(v["n"] * v["flagged"] for v in out.values()) / max(n, 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.vehicles_cv", description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", type=Path, required=True, help="the folder `carvalue-train whole-car` wrote")
    ap.add_argument("--out", type=Path, required=True, help="report (.json)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--layout", choices=LAYOUTS, default="pooled", help="what the head reads (whole_car_head.LAYOUTS)")
    ap.add_argument("--part-weight", type=float, default=PART_WEIGHT)
    a = ap.parse_args(argv)
    r = measure({p: load_part(a.features, p) for p in wd.PARTS}, epochs=a.epochs, layout=a.layout,
                part_weight=a.part_weight)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=1))
    for k, v in r.items():
        print(f"{k}: {v['flagged']:.1%} of {v['n']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
