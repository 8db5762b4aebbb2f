"""The junk filter: a linear SVM on image features, and a threshold that keeps good photos.

Score = w . standardise(features) + b; higher means "more like a whole-vehicle photo".  A photo
is junk when its score is below the threshold.  The threshold is chosen on held-out labelled
photos as the highest one that drops fewer than ``max_good_loss`` (1%) of the good ones: losing
a few good photos costs little, but we must not throw away a large share of the data.

Saved as ``filter.safetensors`` (arrays) + ``filter.json`` (everything else): loading reads
numbers and text only, never executes code (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import reprlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from core import smallfile
from core.atomic import atomic_path, atomic_write

VERSION = 1
ARRAYS = "filter.safetensors"
META = "filter.json"
MAX_META_BYTES = 1 << 20  # the stage writes about 1 KB
MIN_PER_CLASS = 4


class FilterFileError(ValueError):
    pass


@dataclass(frozen=True)
class FilterMetrics:
    """On held-out labels; junk (bad) is the positive class."""

    threshold: float
    n_good: int
    n_bad: int
    good_dropped: int
    bad_dropped: int
    precision: float  # of the photos dropped, the share that were junk
    recall: float  # of the junk photos, the share dropped
    fraction_removed: float  # of all held-out photos
    good_loss: float  # of the good photos, the share dropped

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def choose_threshold(good_scores: np.ndarray, max_good_loss: float = 0.01) -> float:
    """The highest threshold (drop when score < threshold) dropping fewer than
    ``max_good_loss`` of ``good_scores``: with n good photos, at most ceil(max_good_loss * n) - 1
    of them fall below it."""
    s = np.sort(np.asarray(good_scores, dtype=np.float64))
    if len(s) == 0:
        raise ValueError("need at least one held-out good photo to choose a threshold")
    if not 0 < max_good_loss < 1:
        raise ValueError(f"max_good_loss must be in (0, 1), got {max_good_loss}")
    allowed = max(0, math.ceil(max_good_loss * len(s) - 1e-9) - 1)
    return float(s[allowed])


def evaluate(good_scores: np.ndarray, bad_scores: np.ndarray, threshold: float) -> FilterMetrics:
    good_dropped = int(np.sum(np.asarray(good_scores) < threshold))
    bad_dropped = int(np.sum(np.asarray(bad_scores) < threshold))
    n_good, n_bad = len(good_scores), len(bad_scores)
    dropped = good_dropped + bad_dropped
    return FilterMetrics(
        threshold=float(threshold), n_good=n_good, n_bad=n_bad, good_dropped=good_dropped, bad_dropped=bad_dropped,
        precision=bad_dropped / dropped if dropped else 1.0,
        recall=bad_dropped / n_bad if n_bad else 0.0,
        fraction_removed=dropped / (n_good + n_bad) if n_good + n_bad else 0.0,
        good_loss=good_dropped / n_good if n_good else 0.0)


@dataclass(frozen=True, eq=False)
class JunkFilter:
    mean: np.ndarray  # (D,) feature standardisation
    scale: np.ndarray  # (D,)
    weights: np.ndarray  # (D,)
    bias: float
    threshold: float
    features: str  # the feature extractor's name
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def scores(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got {x.shape}")
        return ((x - self.mean) / self.scale) @ self.weights + self.bias

    def is_junk(self, x: np.ndarray) -> np.ndarray:
        return self.scores(x) < self.threshold

    def save(self, directory: str | os.PathLike[str]) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean.astype(np.float64), "scale": self.scale.astype(np.float64),
                  "weights": self.weights.astype(np.float64), "bias": np.array([self.bias], np.float64)}
        meta = {"version": VERSION, "kind": "linear_svm", "features": self.features, "dim": self.dim,
                "threshold": self.threshold, "score": "w . ((x - mean) / scale) + bias; junk if score < threshold",
                "metrics": self.metrics}
        with atomic_path(d / ARRAYS) as tmp_arrays:
            save_file(arrays, str(tmp_arrays))
        atomic_write(d / META, json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> JunkFilter:
        d = Path(directory)
        try:  # never blocks on a FIFO, never a RecursionError on deep nesting
            meta = smallfile.read_json(d / META, MAX_META_BYTES)
            if (d / ARRAYS).exists() and not (d / ARRAYS).is_file():
                raise FilterFileError(f"{d}/{ARRAYS}: not a regular file")
            arrays = load_file(str(d / ARRAYS))
        except FileNotFoundError as e:
            raise FilterFileError(f"{d}: not a trained filter ({Path(e.filename or META).name} missing)") from None
        except (json.JSONDecodeError, OSError, ValueError, SafetensorError) as e:
            raise FilterFileError(f"{d}: unreadable filter ({e})") from None
        if not isinstance(meta, dict) or meta.get("version") != VERSION:
            found = meta.get("version") if isinstance(meta, dict) else meta
            raise FilterFileError(f"{d}/{META}: unknown filter version {reprlib.repr(found)}")
        for key in ("features", "dim", "threshold"):
            if key not in meta:
                raise FilterFileError(f"{d}/{META}: missing {key!r}")
        dim, threshold, features = meta["dim"], meta["threshold"], meta["features"]
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise FilterFileError(f"{d}/{META}: 'dim' must be a positive integer, got {reprlib.repr(dim)}")
        if not isinstance(threshold, int | float) or isinstance(threshold, bool):
            raise FilterFileError(f"{d}/{META}: 'threshold' must be a number, got {reprlib.repr(threshold)}")
        if not isinstance(features, str):
            raise FilterFileError(f"{d}/{META}: 'features' must be a string, got {reprlib.repr(features)}")
        if not isinstance(meta.get("metrics") or {}, dict):
            raise FilterFileError(f"{d}/{META}: 'metrics' must be an object")
        shapes = {"mean": (dim,), "scale": (dim,), "weights": (dim,), "bias": (1,)}
        for key, shape in shapes.items():
            if key not in arrays:
                raise FilterFileError(f"{d}/{ARRAYS}: missing array {key!r}")
            if arrays[key].shape != shape or not np.all(np.isfinite(arrays[key])):
                raise FilterFileError(f"{d}/{ARRAYS}: {key!r} has shape {arrays[key].shape} (expected {shape}) "
                                      "or non-finite values")
        if np.any(arrays["scale"] <= 0):
            raise FilterFileError(f"{d}/{ARRAYS}: 'scale' must be positive")
        try:
            threshold = float(threshold)
        except OverflowError:
            threshold = math.inf
        if not math.isfinite(threshold):
            raise FilterFileError(f"{d}/{META}: threshold is not finite")
        return cls(arrays["mean"], arrays["scale"], arrays["weights"], float(arrays["bias"][0]), threshold,
                   features, dict(meta.get("metrics") or {}))

    def fingerprint(self) -> str:
        """Identifies this filter in the database's junk_scores rows."""
        h = hashlib.sha256()
        for a in (self.mean, self.scale, self.weights):
            h.update(np.ascontiguousarray(a, np.float64).tobytes())
        h.update(f"{self.bias!r}|{self.threshold!r}|{self.features}".encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class TrainResult:
    filter: JunkFilter
    held_out: FilterMetrics
    n_train: int
    warning: str | None


def train_junk_filter(x: np.ndarray, good: np.ndarray, features: str, held_out: float = 0.3,
                      max_good_loss: float = 0.01, seed: int = 0, c: float = 1.0) -> TrainResult:
    """Fit on a stratified share of the labels, pick the threshold on the rest."""
    from sklearn.model_selection import train_test_split
    from sklearn.svm import LinearSVC

    x = np.asarray(x, dtype=np.float64)
    good = np.asarray(good, dtype=bool)
    n_good, n_bad = int(good.sum()), int((~good).sum())
    if n_good < 2 * MIN_PER_CLASS or n_bad < 2 * MIN_PER_CLASS:
        raise ValueError(f"need at least {2 * MIN_PER_CLASS} good and {2 * MIN_PER_CLASS} bad labels "
                         f"(have {n_good} good, {n_bad} bad); label more photos with `carvalue-data label`")
    idx = np.arange(len(x))
    train_idx, test_idx = train_test_split(idx, test_size=held_out, random_state=seed, stratify=good)
    mean = x[train_idx].mean(axis=0)
    scale = x[train_idx].std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    svm = LinearSVC(C=c, class_weight="balanced", max_iter=20000, random_state=seed)
    svm.fit((x[train_idx] - mean) / scale, good[train_idx].astype(int))
    weights, bias = svm.coef_[0].astype(np.float64), float(svm.intercept_[0])
    scores = ((x[test_idx] - mean) / scale) @ weights + bias
    g, b = scores[good[test_idx]], scores[~good[test_idx]]
    threshold = choose_threshold(g, max_good_loss)
    metrics = evaluate(g, b, threshold)
    warning = None
    if len(g) < math.ceil(1 / max_good_loss):
        warning = (f"only {len(g)} held-out good photos: a loss under {max_good_loss:.0%} cannot be measured "
                   f"with fewer than {math.ceil(1 / max_good_loss)}, so the threshold keeps every one of them; "
                   "label more photos for a sharper filter")
    jf = JunkFilter(mean, scale, weights, bias, threshold, features,
                    {**metrics.as_dict(), "n_train": len(train_idx), "max_good_loss": max_good_loss})
    return TrainResult(jf, metrics, len(train_idx), warning)
