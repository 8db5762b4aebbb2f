"""Start a run from a trained CarValue model file (``--init model --pretrained-path FILE``).

A model file's ONNX initialisers carry the folded network's own parameter names
(``features.3.conv.1.0.weight``, ``make_model_head.bias``; ``torch.onnx.export`` keeps them), so
a trained model can be fine-tuned further, for example with framed photos added to its
augmentation, without its training run folder.  Nothing is guessed: every parameter of the
network must be in the file with the same shape, the file's vocabularies must be the run's, and
its split (recorded in its provenance) must be the run's, or the fine-tuned model's held-out
figures would include photos the start model trained on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.modelfile import ModelMetadata
from training.price.attach import read_metadata

__all__ = ["ModelInitError", "check_compatible", "load_weights", "provenance", "read_metadata", "start_padding"]


class ModelInitError(ValueError):
    """The model file cannot start this run; the message says why."""


def check_compatible(meta: ModelMetadata, path: str | Path, make_models: tuple[str, ...],
                     years: tuple[str, ...], split_sha256: str) -> None:
    """Refuse a start model whose classes, years or split differ from the run's."""
    if tuple(meta.make_models) != tuple(make_models):
        raise ModelInitError(f"{path}: its make/model classes differ from this run's data")
    if tuple(meta.years) != tuple(years):
        raise ModelInitError(f"{path}: its years differ from this run's data")
    recorded = meta.provenance.get("split", {}).get("sha256") if isinstance(meta.provenance, dict) else None
    if recorded != split_sha256:
        raise ModelInitError(f"{path}: it was trained on another split ({recorded!r}, this run's is "
                             f"{split_sha256!r}); its test photos would not be held out")


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Copy every parameter of ``model`` (a folded CarValueNet) from the model file's
    initialisers; any missing or differently shaped one is an error."""
    import onnx  # training-side dependency
    from onnx import numpy_helper

    arrays = {t.name: t for t in onnx.load(str(path)).graph.initializer}
    state = model.state_dict()
    missing = [k for k in state if k not in arrays]
    if missing:
        raise ModelInitError(f"{path}: lacks {len(missing)} of the network's weights (first: {missing[0]}); "
                             "was it exported from a run with --fold-bn?")
    loaded: dict[str, torch.Tensor] = {}
    for name, current in state.items():
        value = np.array(numpy_helper.to_array(arrays[name]), dtype=np.float32)
        if tuple(value.shape) != tuple(current.shape):
            raise ModelInitError(f"{path}: {name} has shape {tuple(value.shape)}, the network wants "
                                 f"{tuple(current.shape)}")
        loaded[name] = torch.from_numpy(value)
    model.load_state_dict(loaded, strict=True)


def start_padding(meta: ModelMetadata) -> str:
    """The trunk layout the model file was trained with: recorded by a fine-tuned model, else
    implied by its ImageNet start (torchvision: symmetric padding; Keras and random: "same")."""
    trunk = meta.provenance.get("trunk", {}) if isinstance(meta.provenance, dict) else {}
    if trunk.get("padding") in ("torch", "same"):
        return str(trunk["padding"])
    return "torch" if trunk.get("init") == "torchvision" else "same"


def provenance(path: str | Path, meta: ModelMetadata) -> dict[str, Any]:
    """What the fine-tuned model records about where it started."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    prov = meta.provenance if isinstance(meta.provenance, dict) else {}
    return {"init": "model", "padding": start_padding(meta), "start_model": Path(path).name,
            "start_model_sha256": digest,
            "start_model_created": meta.created, "start_model_trunk": prov.get("trunk", {}),
            "start_model_training": prov.get("training", {})}
