"""The seam between the trainer and ``training.labels`` (price derivation, written separately).

``training.labels`` owns what a label *means*: the Stanford reader that joins derived used
prices, the log-price scaling of the median head and the sentence that tells a user what the
price is.  The trainer owns the vocabularies of a run (built from its training split, so they
match the split recorded in the checkpoint).  When ``training.labels`` is absent, photos carry
no price (the price losses are masked) and the meaning says so.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from core.dataset.records import ImageRecord
from training.data import ClassKey, LabelSpace, records_from_folder

NO_PRICE_MEANING = "no price labels: this model's price outputs were not trained"


def _labels_module() -> ModuleType | None:
    try:
        return importlib.import_module("training.labels")
    except ModuleNotFoundError as e:
        if e.name != "training.labels":
            raise
        return None


def stanford_records(folder: Path) -> list[ImageRecord]:
    """Stanford-layout records with derived prices when ``training.labels`` provides them."""
    mod = _labels_module()
    fn = getattr(mod, "stanford_records", None) if mod else None
    if fn is None:
        return records_from_folder(folder)
    return list(fn(folder))


def label_space(train_records: Sequence[ImageRecord], all_records: Sequence[ImageRecord],
                class_key: ClassKey, max_classes: int) -> LabelSpace:
    """Vocabularies from the training split; price scaling and meaning from training.labels."""
    base = LabelSpace.from_records(train_records, class_key, max_classes)
    mod = _labels_module()
    priced = any(r.price is not None for r in train_records)
    meaning = getattr(mod, "PRICE_MEANING", "") if mod else ""
    log_mean, log_std = base.log_mean, base.log_std
    scaling = getattr(mod, "price_scaling", None) if mod else None
    if scaling is not None and priced:
        log_mean, log_std = scaling([r.price for r in train_records if r.price is not None])
    if not priced:
        meaning = NO_PRICE_MEANING
    elif not meaning:
        meaning = "listing price in USD"
    if not (math.isfinite(log_mean) and math.isfinite(log_std) and log_std > 0):
        raise ValueError(f"bad price scaling log_mean={log_mean} log_std={log_std}")
    return LabelSpace(base.make_models, base.years, class_key, base.edges, float(log_mean),
                      float(log_std), meaning)


def log_price_scaling(prices: Sequence[float]) -> tuple[float, float]:
    logs = np.log(np.asarray(prices, dtype=np.float64))
    return float(logs.mean()), float(logs.std() or 1.0)
