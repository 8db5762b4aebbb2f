"""How the price heads see dollars: the bin edges (from the model-file contract) and the
median head's log-dollar scaling, taken from the training split's prices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from core.dataset.records import ImageRecord
from core.modelfile import PriceSpec

# The price-range cutoffs are core.modelfile.PriceSpec's default, the one definition.
DEFAULT_EDGES: tuple[float, ...] = PriceSpec().edges


def log_price_scaling(records: Iterable[ImageRecord]) -> tuple[float, float]:
    """(mean, std) of log dollars over the records that have a price (photo-weighted)."""
    return price_scaling([r.price for r in records if r.price is not None])


def price_scaling(prices: Iterable[float]) -> tuple[float, float]:
    """(mean, std) of log dollars: the median head predicts ``(log price - mean) / std``."""
    logs = np.log([p for p in prices if p > 0])
    if len(logs) < 2:
        raise ValueError(f"need at least 2 priced records to scale the median head, got {len(logs)}")
    return float(logs.mean()), float(max(logs.std(), 1e-6))


def price_spec(train_records: Sequence[ImageRecord], meaning: str, edges: tuple[float, ...] = DEFAULT_EDGES) -> PriceSpec:
    """A :class:`PriceSpec` whose median-head scaling comes from the *training* split's prices."""
    mean, std = log_price_scaling(train_records)
    return PriceSpec(edges=edges, log_mean=mean, log_std=std, meaning=meaning)
