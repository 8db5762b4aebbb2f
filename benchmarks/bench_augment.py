"""Cost of one training sample in the DataLoader worker: a framed sample (the car composited
into a larger picture, training/data/compositing.py) against a plain random resized crop of the same
photo, both through ``Augment`` to the 224- and 160-px normalised tensors, in this process; and
the framed sample composed at the frame size fitted to the input (``--framed-long-side 0``)
against the fixed 640-px frame.

Prints one JSON object: milliseconds per sample (median of the repeats) and their ratios.  The
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
from training.data.dataset import Augment, _background_photo
from training.data.negatives import background_files


def ms_per_sample(aug: Augment, cars: list[Image.Image], repeat: int, size: int = 224) -> float:
    spec = InputSpec(size=size)
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
    fitted = Augment(framed=1.0, backgrounds=backgrounds, framed_long_side=0)
    for path in backgrounds:  # decode the background photos once (cached per process)
        _background_photo(path)
    result: dict[str, object] = {"photos": len(cars)}
    for size in (224, 160):
        plain_ms = ms_per_sample(Augment(), cars, a.repeat, size)
        framed_ms = ms_per_sample(framed, cars, a.repeat, size)
        fitted_ms = ms_per_sample(fitted, cars, a.repeat, size)
        result[f"{size}px"] = {"random_crop_ms": round(plain_ms, 2), "framed_ms": round(framed_ms, 2),
                               "framed_over_random_crop": round(framed_ms / plain_ms, 2),
                               "fitted_framed_ms": round(fitted_ms, 2),
                               "fitted_over_framed": round(fitted_ms / framed_ms, 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
