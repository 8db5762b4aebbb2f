"""What a training run is made of: its processes/device (:class:`Dist`) and its state (:class:`Run`).

Its own module so that the trainer (``training.loop.train``) and the helpers it calls with a run
(``training.loop.probe_init``) both import it, and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from core.dataset.records import ImageRecord
from core.model import CarValueNet, ModelConfig
from core.modelfile import InputSpec
from training.config import TrainConfig
from training.data.dataset import LabelSpace, Split
from training.loop.checkpoint import Progress


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class Run:
    """Everything a training run is made of (built fresh or from a checkpoint)."""

    cfg: TrainConfig
    dist: Dist
    records: list[ImageRecord]
    split: Split
    labels: LabelSpace
    eval_spec: InputSpec
    model: CarValueNet
    model_cfg: ModelConfig
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    progress: Progress
    epoch_sums: dict[str, float]
    provenance: dict[str, Any]
