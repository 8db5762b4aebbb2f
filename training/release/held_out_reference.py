"""Held-out figures for a model trained on every photo: those of the same recipe's split run.

The shipped model trains on all of the data but a small validation part (which calibrates its
temperatures and thresholds), so nothing is left to measure its accuracy on.  What stands for it
is the model file of the run that used the same recipe on the split that holds the test photos
out.  :func:`reference_metrics` copies that file's held-out figures into the shipped model's
metrics (``held_out_reference``), with the file's SHA-256, its split, and every training setting
in which the two runs differ, so a reader can see how far the stand-in stands.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from core.modelfile import open_session
from training.config import TrainConfig
from training.wheels import file_sha256

# Settings that say where a run reads and writes, how it uses the machine, or how it reports:
# not the recipe.  The test part is what the two runs differ in by design.
NOT_RECIPE = frozenset({"out", "data", "images_root", "pretrained_path", "val_fraction", "test_fraction",
                        "device", "workers", "threads", "checkpoint_every", "keep_checkpoints", "eval_batch",
                        "progress", "notes"})


class HeldOutReferenceError(ValueError):
    """The reference model file cannot stand for this run."""


def recipe_differences(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, list[Any]]:
    """Training settings (``TrainConfig`` fields) that differ: ``{name: [ours, theirs]}``.  A
    setting one config lacks (recorded before it existed) counts as its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    keys = (set(ours) | set(theirs)) - NOT_RECIPE
    a = {k: ours.get(k, defaults.get(k)) for k in keys}
    b = {k: theirs.get(k, defaults.get(k)) for k in keys}
    return {k: [a[k], b[k]] for k in sorted(keys) if a[k] != b[k]}


def trunk_chain(trunk: Any) -> list[dict[str, Any]]:
    """A run's ``provenance["trunk"]`` and, for a fine-tuned run, the trunk records of the model
    files it started from (``start_model_trunk``), nearest first, down to the ImageNet start."""
    chain: list[dict[str, Any]] = []
    while isinstance(trunk, dict) and len(chain) < 16:
        chain.append(trunk)
        trunk = trunk.get("start_model_trunk")
    return chain


def start_model_trainings(provenance: Any) -> list[dict[str, Any]]:
    """The training records (config, steps, seconds) of the chain of model files a fine-tuned
    run started from, nearest first (a stage-3 model records its stage-2 start, which records
    its stage-1 start); the walk stops at the first start without a recorded config."""
    trainings: list[dict[str, Any]] = []
    for trunk in trunk_chain(provenance.get("trunk") if isinstance(provenance, dict) else None):
        start = trunk.get("start_model_training")
        if not isinstance(start, dict) or not isinstance(start.get("config"), dict):
            break
        trainings.append(start)
    return trainings


def start_model_configs(provenance: Any) -> list[dict[str, Any]]:
    """The training configs of the chain of model files a fine-tuned run started from, nearest
    first."""
    return [t["config"] for t in start_model_trainings(provenance)]


def reference_metrics(path: str | os.PathLike[str], config: dict[str, Any],
                      start_configs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The held-out figures of the model file at ``path``, for a run trained with ``config``
    (and, when it was fine-tuned from a model file, whose chain of start models was trained with
    ``start_configs``, nearest first: every stage is compared).

    Refused when that file has no held-out test figures (it was not a split run itself)."""
    path = Path(path)
    _, meta = open_session(path, threads=1)
    test = meta.metrics.get("test") if isinstance(meta.metrics, dict) else None
    if not isinstance(test, dict) or not test:
        raise HeldOutReferenceError(f"{path}: records no held-out test figures, so it cannot stand for another run")
    training = meta.provenance.get("training", {}) if isinstance(meta.provenance, dict) else {}
    theirs = training.get("config", {}) if isinstance(training, dict) else {}
    estimators = meta.metrics.get("median_estimators", {})
    ours_chain, theirs_chain = start_configs or [], start_model_configs(meta.provenance)
    starts: dict[str, Any] = {}
    if ours_chain or theirs_chain:
        starts = {"start_recipe_differences": recipe_differences(ours_chain[0], theirs_chain[0])
                  if ours_chain and theirs_chain else "only one of the two runs had a start model"}
    if len(ours_chain) > 1 or len(theirs_chain) > 1:
        starts["earlier_recipe_differences"] = (
            [recipe_differences(a, b) for a, b in zip(ours_chain[1:], theirs_chain[1:], strict=True)]
            if len(ours_chain) == len(theirs_chain) else
            f"the two runs have {len(ours_chain) + 1} and {len(theirs_chain) + 1} training stages")
    return {
        "model": path.name,
        "sha256": file_sha256(path),
        "created": meta.created,
        "split": meta.provenance.get("split"),
        "counts": meta.provenance.get("counts"),
        "recipe_differences": recipe_differences(config, theirs if isinstance(theirs, dict) else {}),
        **starts,
        "test": test,
        "baselines": meta.metrics.get("baselines", {}),
        "median_estimators_test": estimators.get("test", {}) if isinstance(estimators, dict) else {},
        "framing": meta.metrics.get("framing"),
    }
