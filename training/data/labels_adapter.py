"""The seam between the trainer and the label modules (what a price label means).

``training.data.stanford`` owns the Stanford reader that joins derived used prices and the sentence
that tells a user what the price is; ``training.data.price_scale`` owns the median head's log-price
scaling.  The trainer owns the vocabularies of a run (built from its training split, so they
match the split recorded in the checkpoint).  Photos with no price anywhere leave the price
outputs untrained (their losses are masked) and the meaning says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from core.dataset.records import ImageRecord
from training.data.dataset import ClassKey, LabelSpace
from training.data.price_scale import price_scaling
from training.data.stanford import PRICE_MEANING
from training.data.stanford import stanford_records as _stanford_records

NO_PRICE_MEANING = "no price labels: this model's price outputs were not trained"


def stanford_records(folder: Path) -> list[ImageRecord]:
    """Stanford-layout records with derived used prices (training.data.stanford)."""
    return list(_stanford_records(folder))


def label_space(train_records: Sequence[ImageRecord], all_records: Sequence[ImageRecord],
                class_key: ClassKey, max_classes: int) -> LabelSpace:
    """Vocabularies from the training split; price scaling and meaning from the label modules."""
    base = LabelSpace.from_records(train_records, class_key, max_classes)
    priced = any(r.price is not None for r in train_records)
    meaning = PRICE_MEANING if priced else NO_PRICE_MEANING
    log_mean, log_std = base.log_mean, base.log_std
    if priced:
        log_mean, log_std = price_scaling([r.price for r in train_records if r.price is not None])
    if not (math.isfinite(log_mean) and math.isfinite(log_std) and log_std > 0):
        raise ValueError(f"bad price scaling log_mean={log_mean} log_std={log_std}")
    return LabelSpace(base.make_models, base.years, class_key, base.edges, float(log_mean),
                      float(log_std), meaning)
