"""Small helpers shared by the benchmarks: timing statistics and synthetic test photos."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

# The real car photos of ../shared/data (see its README), beside this repository's clone.
STANFORD_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "stanford-cars-train" / "images"
SAMPLE_PHOTO = STANFORD_IMAGES / "00002.jpg"  # a side view the photo-based benchmarks start from


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summary_ms(times: list[float]) -> dict[str, float]:
    s = sorted(times)
    return {
        "p50_ms": round(statistics.median(s) * 1e3, 3),
        "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))] * 1e3, 3),
        "mean_ms": round(statistics.fmean(s) * 1e3, 3),
        "n": len(s),
    }


def camera_jpeg(path: Path, size: tuple[int, int] = (6000, 4000), seed: int = 0,
                source: Path | None = None, noise: int = 4) -> Path:
    """A 24-MP JPEG like a camera's: a real photo upscaled (when given) plus sensor-like noise.

    Noise sets the file's entropy and so how much of the decode is Huffman work that draft mode
    cannot skip: +-4 gives ~3 MB (a clean daylight shot), +-12 ~7 MB (high ISO).
    """
    rng = np.random.default_rng(seed)
    if source is not None and source.exists():
        base = Image.open(source).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        arr = np.asarray(base, dtype=np.int16)
    else:
        x = np.linspace(0, 255, size[0], dtype=np.float32)
        arr = np.broadcast_to(x[None, :, None], (size[1], size[0], 3)).astype(np.int16)
    arr = np.clip(arr + rng.integers(-noise, noise + 1, arr.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    Image.fromarray(arr, "RGB").save(path, quality=92)
    return path
