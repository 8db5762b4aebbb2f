"""Tiny synthetic training folders (labels.csv + images/) for the training tests.

Each class has its own colour and stripe pattern so a network can learn something in a few
steps; photos of one "car" (group) share a class, year and price, as listings do.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = (("Acura", "TL Sedan", 2012, 33000.0), ("Audi", "TTS Coupe", 2012, None),
           ("Geo", "Metro Convertible", 1993, 2500.0), ("Ford", "F-150 Regular Cab", 2007, 12000.0))


def make_folder(root: Path, cars_per_class: int = 4, photos_per_car: int = 2, size: tuple[int, int] = (56, 40),
                seed: int = 0, with_groups: bool = True) -> Path:
    """Write ``root/images/*.jpg`` and ``root/labels.csv``; returns ``root``.

    The second class has no price (its price loss must be masked); with ``with_groups`` the
    CSV has a ``group`` column, else each photo is its own group (the Stanford layout)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for c, (make, model, year, price) in enumerate(CLASSES):
        colour = np.array([(60 * c + 40) % 256, (90 * c + 120) % 256, (150 - 30 * c) % 256], dtype=np.float64)
        for car in range(cars_per_class):
            group = f"listing-{c}-{car}"
            for k in range(photos_per_car if with_groups else 1):
                h, w = size[1], size[0]
                img = np.empty((h, w, 3))
                img[:] = colour
                img[:, (c * 7) % w::(c + 3)] = 255 - colour  # class-specific stripes
                img += rng.normal(0, 12, img.shape)
                name = f"images/{c}_{car}_{k}.jpg"
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / name, quality=90)
                row = {"file": name, "make": make, "model": model, "year": year,
                       "price": "" if price is None else price * (1 + 0.1 * car)}
                if with_groups:
                    row["group"] = group
                rows.append(row)
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def tiny_train_args(data: Path, out: Path, *extra: str) -> list[str]:
    """Flags for a seconds-long CPU run on a synthetic folder."""
    return ["train", "--data", str(data), "--out", str(out), "--init", "random", "--size", "32",
            "--epochs", "2", "--batch-size", "4", "--micro-batch", "2", "--warmup-steps", "2",
            "--lr", "3e-3", "--val-fraction", "0.25", "--test-fraction", "0.25", "--no-fold-bn",
            "--freeze-blocks", "0", "--no-probe-init", "--workers", "0", "--no-progress",
            "--checkpoint-every", "1", "--eval-batch", "8", "--threads", "1", *extra]


def run_train_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m training.cli ARGS`` in a subprocess (one thread, no HF_HUB_OFFLINE from the
    caller: code that needs it must set it itself)."""
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "training.cli", *args], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
