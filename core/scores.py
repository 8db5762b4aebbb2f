"""Scores from a network's logits, one definition for the app and for training (a leaf module).

The logistic :func:`sigmoid` (the whole-car and car scores, the energy confidence), the softmax
family over the last axis (class probabilities, the max-probability confidence), and
:func:`confidence`, the "looks like a whole car" score a model file's ``confidence`` section
describes.  numpy only; imports nothing of the project.
"""

from __future__ import annotations

import math
from typing import Protocol, overload

import numpy as np


@overload
def sigmoid(z: float) -> float: ...
@overload
def sigmoid(z: np.ndarray) -> np.ndarray: ...
def sigmoid(z: float | np.ndarray) -> float | np.ndarray:
    """The logistic function of a number or of each element of an array, written so that no
    finite ``z`` overflows (NaN stays NaN)."""
    if isinstance(z, np.ndarray):
        z = z.astype(np.float64, copy=False)
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    z = float(z)
    if math.isnan(z):
        return math.nan
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities over the last axis (one distribution per row of a batch)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis (one distribution per row of a batch)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def max_prob(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """The top class's probability (per row): the "max_prob" confidence."""
    return softmax(logits, temperature).max(axis=-1)


def energy(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """logsumexp of the tempered logits (per row): the "energy" confidence before its logistic."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(axis=-1)
    return m + np.log(np.exp(z - np.expand_dims(m, -1)).sum(axis=-1))


class ConfidenceRule(Protocol):
    """What :func:`confidence` reads of a model file's ``ConfidenceSpec`` (core.modelfile)."""

    method: str
    temperature: float
    threshold: float
    scale: float


def confidence(mm_logits: np.ndarray, spec: ConfidenceRule) -> float:
    """0..1: how much one crop's make/model logits look like a whole car.  "energy": the logistic
    of (energy - threshold) / scale (0.5 at the threshold); "max_prob": the top probability."""
    if spec.method == "energy":
        return float(sigmoid((float(energy(mm_logits, spec.temperature)) - spec.threshold) / spec.scale))
    return float(max_prob(mm_logits, spec.temperature))
