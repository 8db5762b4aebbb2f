"""core/scores.py: the one sigmoid, softmax and confidence the app and training share (issue 31)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from core.modelfile import ConfidenceSpec
from core.scores import confidence, energy, log_softmax, max_prob, sigmoid, softmax

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(finite)
def test_sigmoid_of_a_number_and_of_an_array_agree_and_never_overflow(z: float) -> None:
    s = sigmoid(z)
    assert 0.0 <= s <= 1.0 and s == float(sigmoid(np.array([z]))[0])
    assert math.isclose(s + sigmoid(-z), 1.0, abs_tol=1e-12)


def test_sigmoid_keeps_nan() -> None:
    assert math.isnan(sigmoid(math.nan)) and np.isnan(sigmoid(np.array([math.nan])))[0]


@given(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=8), st.floats(0.01, 100))
def test_the_softmax_family_agrees(logits: list[float], t: float) -> None:
    x = np.array([logits, logits[::-1]])
    p = softmax(x, t)
    assert np.allclose(p.sum(axis=-1), 1.0) and np.allclose(np.exp(log_softmax(x, t)), p)
    assert np.allclose(max_prob(x, t), p.max(axis=-1))
    assert np.all(np.isfinite(energy(x, t)))


def test_the_energy_confidence_is_one_half_at_its_threshold() -> None:
    logits = np.array([2.0, 1.0, -3.0])
    e = float(energy(logits, 1.0))
    assert confidence(logits, ConfidenceSpec(method="energy", threshold=e, scale=2.0)) == 0.5
    assert confidence(logits, ConfidenceSpec(method="max_prob")) == float(softmax(logits).max())
