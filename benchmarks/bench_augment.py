"""Cost of one training sample in the DataLoader worker: a framed sample (the car composited
into a larger picture, training/compositing.py) against a plain random resized crop of the same
photo, both through ``Augment`` to the 224-px normalised tensor, in this process.

Prints one JSON object: milliseconds per sample (median of the repeats) and their ratio.  The
framed share of the CPU recipe's stage 2 (50%) is paid for in the one worker beside the two
training threads, so this ratio is what slows a framed epoch.

    .venv/bin/python -m benchmarks.bench_augment [--photos 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from PIL import Image

from benchmarks.common import STANFORD_IMAGES as PHOTOS
from core.modelfile import InputSpec
from training.data import Augment
from training.negatives import background_files


def ms_per_sample(aug: Augment, cars: list[Image.Image], repeat: int) -> float:
    spec = InputSpec()
    runs = []
    for r in range(repeat):
        rng = np.random.default_rng(r)
        t0 = time.perf_counter()
        for car in cars:
            aug(car, spec, rng)
        runs.append(1000 * (time.perf_counter() - t0) / len(cars))
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    cars = [Image.open(p).convert("RGB") for p in sorted(PHOTOS.glob("*.jpg"))[:a.photos]]
    if not cars:
        raise SystemExit(f"no photos in {PHOTOS} (../shared beside the repository)")
    backgrounds = tuple(str(p) for p in background_files("train"))
    framed = Augment(framed=1.0, backgrounds=backgrounds)
    ms_per_sample(framed, cars[:5], 1)  # decode the background photos once (cached per process)
    plain_ms = ms_per_sample(Augment(), cars, a.repeat)
    framed_ms = ms_per_sample(framed, cars, a.repeat)
    print(json.dumps({"photos": len(cars), "random_crop_ms": round(plain_ms, 2), "framed_ms": round(framed_ms, 2),
                      "framed_over_random_crop": round(framed_ms / plain_ms, 2)}))


if __name__ == "__main__":
    main()
