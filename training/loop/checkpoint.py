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
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from core.atomic import atomic_write
from training.config import TrainConfig
from training.data.dataset import LabelSpace

LAST = "last.json"
STEP_NAME = re.compile(r"step-\d{8,}")
MAX_META_BYTES = 16 << 20


class CheckpointError(RuntimeError):
    """A checkpoint that is missing or inconsistent; the message names it."""


class RunMismatch(CheckpointError, ValueError):
    """An intact checkpoint of another run (other flags, other data): not resumed, not skipped."""


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
        """state.pt (the trainer turns a missing or misfitting part into CheckpointError)."""
        path = self.path / "state.pt"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
            raise CheckpointError(f"{path}: cannot read it ({_first_line(e)})") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: not a dictionary of states")
        return state

    def load_weights(self, model: nn.Module) -> None:
        try:
            tensors = load_file(str(self.weights_path))
        except (OSError, RuntimeError, SafetensorError) as e:
            raise CheckpointError(f"{self.weights_path}: cannot read weights ({_first_line(e)})") from None
        own = model.state_dict()
        missing = [k for k in own if k not in tensors]
        unexpected = [k for k in tensors if k not in own]
        wrong = [k for k in own if k in tensors and tensors[k].shape != own[k].shape]
        if missing or unexpected or wrong:
            raise CheckpointError(f"{self.weights_path}: weights do not fit the model (missing {missing[:3]}, "
                                  f"unexpected {unexpected[:3]}, other shapes {wrong[:3]})")
        model.load_state_dict(tensors, strict=True)


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
    atomic_write(run_dir / LAST, json.dumps({"checkpoint": f"checkpoints/{name}"}))
    for old in sorted(p for p in root.iterdir() if p.name.startswith("step-"))[:-max(1, keep)]:
        shutil.rmtree(old)
    return final


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """A run folder (its ``last.json``) or a checkpoint folder; the newest readable one of a run
    folder whose ``last.json`` is damaged or names a damaged checkpoint."""
    p = Path(path)
    if not (p / LAST).is_file() and not (p / "checkpoints").is_dir():
        return read_checkpoint(p)
    first: CheckpointError | None = None
    for candidate in checkpoint_candidates(p):
        try:
            return read_checkpoint(candidate)
        except CheckpointError as e:
            first = first or e
    raise first or CheckpointError(f"{p}: no checkpoint in it")


def checkpoint_candidates(run_dir: str | os.PathLike[str]) -> list[Path]:
    """A run's checkpoint folders, newest first: the one ``last.json`` names (when it names a
    ``checkpoints/step-*`` folder of this run), then every other by step, descending."""
    run = Path(run_dir)
    root = run / "checkpoints"
    found = sorted((c for c in root.iterdir() if STEP_NAME.fullmatch(c.name) and c.is_dir()),
                   reverse=True) if root.is_dir() else []
    named = _last_named(run)
    if named is not None and named in found:
        found.remove(named)
        found.insert(0, named)
    return found


def _last_named(run: Path) -> Path | None:
    if not (run / LAST).is_file():
        return None
    try:
        target = json.loads(_read_small(run / LAST)).get("checkpoint")
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
    if not isinstance(target, str):
        return None
    parts = Path(target).parts
    if len(parts) != 2 or parts[0] != "checkpoints" or not STEP_NAME.fullmatch(parts[1]):
        return None  # outside the run's checkpoints: never followed
    return run / target


def read_checkpoint(p: Path) -> Checkpoint:
    """One checkpoint folder, its meta.json checked; the weights and state are read later."""
    if not (p / "meta.json").is_file() or not (p / "model.safetensors").is_file():
        raise CheckpointError(f"{p}: not a checkpoint (needs meta.json and model.safetensors)")
    try:
        meta = json.loads(_read_small(p / "meta.json"))
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{p / 'meta.json'}: unreadable ({_first_line(e)})") from None
    try:
        config = TrainConfig.from_dict(meta["config"])
        labels = LabelSpace.from_dict(meta["labels"])
        progress = Progress(**meta["progress"])
        if not all(isinstance(v, int) and v >= 0 for v in progress.__dict__.values()):
            raise ValueError(f"progress {progress}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{p / 'meta.json'}: malformed ({_first_line(e)})") from None
    return Checkpoint(p, config, labels, progress, meta)


def has_checkpoint(run_dir: str | os.PathLike[str]) -> bool:
    """Whether the run folder holds (or held) a checkpoint to resume."""
    run = Path(run_dir)
    return (run / LAST).is_file() or bool(checkpoint_candidates(run))


def _read_small(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(MAX_META_BYTES + 1)
    if len(data) > MAX_META_BYTES:
        raise ValueError(f"larger than {MAX_META_BYTES} bytes")
    return data.decode("utf-8")


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text if len(text) <= 200 else text[:197] + "..."


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
