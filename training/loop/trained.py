"""A finished training run, loaded: its last checkpoint's network with the data and split it was
trained on rebuilt (and checked against the split's recorded hash). What evaluation, export, a
teacher run and the studies start from."""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.dataset.records import ImageRecord
from core.model import CarValueNet, ModelConfig
from core.modelfile import InputSpec
from training.data.dataset import LabelSpace, Split, split_by_group
from training.data.records import class_key_of, load_records
from training.loop.checkpoint import Checkpoint, load_checkpoint
from training.loop.modeling import build_model


@dataclass
class Trained:
    ckpt: Checkpoint
    model: CarValueNet
    model_cfg: ModelConfig
    records: list[ImageRecord]
    split: Split
    labels: LabelSpace
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def spec(self, resize: str = "stretch", crop_fraction: float = 1.0, size: int | None = None) -> InputSpec:
        return InputSpec(size or self.ckpt.config.size, self.mean, self.std, resize, crop_fraction)

    def part(self, name: str) -> list[ImageRecord]:
        return [self.records[i] for i in getattr(self.split, name)]


def load_trained(run: str | os.PathLike[str]) -> Trained:
    """A run's last checkpoint with its data and split rebuilt (and checked against the hash)."""
    ckpt = load_checkpoint(run)
    cfg = ckpt.config
    records = load_records(cfg)
    split = split_by_group(records, cfg.val_fraction, cfg.test_fraction, cfg.seed, class_key_of(records))
    if split.digest() != ckpt.meta.get("split", {}).get("sha256"):
        raise ValueError(f"{run}: the data under {cfg.data} no longer gives the run's split "
                         f"(hash mismatch); evaluate where the run was trained")
    mcfg = ModelConfig.from_dict(ckpt.meta["model_config"])
    model = build_model(cfg, mcfg, trunk=None)
    ckpt.load_weights(model)
    model.eval()
    norm = ckpt.meta["input"]
    return Trained(ckpt, model, mcfg, records, split, ckpt.labels, tuple(norm["mean"]), tuple(norm["std"]))
