"""Atomic, resumable checkpoints with no pickled objects.

A checkpoint is a folder ``<run>/checkpoints/step-00001234/`` holding

- ``model.safetensors``: the weights (as trained: folded BatchNorm when the config says so),
- ``state.pt``: optimizer, scheduler, RNG states and loop counters, written with ``torch.save``
  from tensors, numbers, strings, lists and dicts only and read with ``weights_only=True``,
- ``meta.json``: the TrainConfig, the label space, the split summary and the counters.

It is written under a temporary name and renamed into place (atomic on one file system), then
``<run>/last.json`` (the pointer to the newest checkpoint) is replaced with ``os.replace``. A
run killed at any moment leaves either the previous or the new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from training.config import TrainConfig
from training.data import LabelSpace

LAST = "last.json"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing or inconsistent; the message names it."""


@dataclass(frozen=True)
class Progress:
    """Where the loop stands: ``epoch`` is the current epoch, ``batch`` the batches of it
    already consumed (0 = epoch start), ``step`` the optimizer steps taken in total."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    config: TrainConfig
    labels: LabelSpace
    progress: Progress
    meta: dict[str, Any]

    @property
    def weights_path(self) -> Path:
        return self.path / "model.safetensors"

    def state(self) -> dict[str, Any]:
        try:
            return torch.load(self.path / "state.pt", map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
        except (OSError, RuntimeError) as e:
            raise CheckpointError(f"{self.path}: cannot read state.pt ({e})") from e

    def load_weights(self, model: nn.Module) -> None:
        try:
            tensors = load_file(str(self.weights_path))
        except (OSError, RuntimeError) as e:
            raise CheckpointError(f"{self.weights_path}: cannot read weights ({e})") from e
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{self.weights_path}: weights do not fit the model "
                                  f"(missing {missing[:5]}, unexpected {unexpected[:5]})")


def save_checkpoint(run_dir: Path, model: nn.Module, state: dict[str, Any], config: TrainConfig,
                    labels: LabelSpace, progress: Progress, extra: dict[str, Any], keep: int = 2) -> Path:
    """Write a checkpoint atomically and point ``last.json`` at it; prune all but ``keep``."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{progress.step:08d}"
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        torch.save(state, tmp / "state.pt")
        meta = {"config": json.loads(config.to_json()), "labels": labels.to_dict(),
                "progress": progress.__dict__, **extra}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for f in tmp.iterdir():
            _fsync(f)
        if final.exists():  # same step written again (e.g. end of epoch after --max-steps)
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    _write_atomic(run_dir / LAST, json.dumps({"checkpoint": f"checkpoints/{name}"}))
    for old in sorted(p for p in root.iterdir() if p.name.startswith("step-"))[:-max(1, keep)]:
        shutil.rmtree(old)
    return final


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """A run folder (its ``last.json``) or a checkpoint folder."""
    p = Path(path)
    if (p / LAST).is_file():
        try:
            p = p / json.loads((p / LAST).read_text())["checkpoint"]
        except (json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(f"{p / LAST}: unreadable ({e})") from e
    if not (p / "meta.json").is_file() or not (p / "model.safetensors").is_file():
        raise CheckpointError(f"{p}: not a checkpoint (needs meta.json and model.safetensors)")
    meta = json.loads((p / "meta.json").read_text())
    try:
        config = TrainConfig.from_dict(meta["config"])
        labels = LabelSpace.from_dict(meta["labels"])
        progress = Progress(**meta["progress"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p / 'meta.json'}: malformed ({e})") from e
    return Checkpoint(p, config, labels, progress, meta)


def has_checkpoint(run_dir: str | os.PathLike[str]) -> bool:
    return (Path(run_dir) / LAST).is_file()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
