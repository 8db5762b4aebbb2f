"""Where a run's photos come from, read the same way by the trainer and the evaluation: a
listings database (the data pipeline's SQLite + image store), carvalue-data shards, or a folder
with labels.csv (a Stanford-Cars folder gets derived prices from ``training.data.labels.build``); and which
class key such data is classified by."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from core.dataset.records import ImageRecord
from training.config import TrainConfig, shard_source
from training.data.dataset import (
    ClassKey,
    parse_families,
    records_from_folder,
    split_by_group,
    without_families,
)
from training.data.labels_csv import has_labels_csv, is_stanford_layout


def load_records(cfg: TrainConfig) -> list[ImageRecord]:
    """Records from the configured source (see the module's docstring), without the held-out
    families and at most ``cfg.limit`` of them."""
    src = Path(cfg.data)
    if shard_source(cfg.data):
        from training.data.shard_stream import records_from_shards

        return records_from_shards(cfg.data, Path(cfg.out), lambda rs: split_by_group(
            rs, cfg.val_fraction, cfg.test_fraction, cfg.seed, class_key=class_key_of(rs)))
    if src.suffix in (".sqlite", ".sqlite3", ".db"):
        from core.dataset.export import records_from_db

        records = list(records_from_db(src, Path(cfg.images_root) if cfg.images_root else None))
    elif has_labels_csv(src):
        records = stanford_records(src) or records_from_folder(src)
    else:
        raise FileNotFoundError(f"{src}: neither a listings database (.sqlite) nor a folder with labels.csv")
    if cfg.hold_out_families:
        records = without_families(records, parse_families(cfg.hold_out_families))
    if cfg.limit:
        rng = random.Random(cfg.seed)
        records = list(records)
        rng.shuffle(records)
        records = sorted(records[:cfg.limit], key=lambda r: str(r.image_path))
    return records


def stanford_records(folder: Path) -> list[ImageRecord] | None:
    """Stanford-layout folders (labels.csv with class_id) through training.data.labels.build, which joins
    derived used prices; None when that module or layout is not there."""
    if not is_stanford_layout(folder):
        return None
    from training.data import labels_adapter

    return labels_adapter.stanford_records(folder)


def class_key_of(records: Sequence[ImageRecord]) -> ClassKey:
    """Stanford-style data (every photo its own group, model years fixed per class) classifies
    make+model+year (its 196 classes); listings classify make+model and leave years to the
    year head."""
    one_photo_groups = len({r.group for r in records}) == len(records)
    return "make_model_year" if one_photo_groups else "make_model"
