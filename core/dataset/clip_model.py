"""open_clip models from a local weights file: the one loader of the junk filter's CLIP features
(core/dataset/features.py) and of the trainer's ``--arch clip-vit-b16`` (training/loop/clip_arch.py).

Never the hub: ``HF_HUB_OFFLINE=1`` is set before open_clip is imported, the network is built
from open_clip's bundled configuration (a name such as ``ViT-B-16``) or a JSON file holding such a
configuration, and its weights come only from the file given; a missing file, a file that is no
checkpoint and a checkpoint of another shape are each a clear error naming the file.

torchvision: open_clip imports it (its transforms; ``torchvision.ops.misc``). The torchvision
wheels on PyPI are built against the CUDA torch; beside the CPU torch this project pins, their
``_C`` extension cannot load (it links ``libtorch_cuda.so``), and torchvision 0.28's import then
stops at registering fake kernels for two of those missing ops, ``torchvision::nms`` and
``torchvision::qnms`` (its other registrations are skipped when the extension is missing). Only
then, :func:`import_open_clip` declares those two operator schemas (no kernels: calling them
still fails) and imports torchvision again; its Python transforms, all open_clip uses, work. A
torchvision whose extension loads is imported untouched.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

# torch.library.Library objects must outlive the import (the schemas live as long as they do).
_SCHEMAS: list[Any] = []
_MISSING_TORCHVISION_OPS = ("nms", "qnms")


class ClipWeightsError(ValueError):
    """A CLIP weights file (or configuration) that cannot be used; the message names it."""


class ClipWeightsMissing(ClipWeightsError, FileNotFoundError):
    """No file at the weights path."""


def weights_file(weights: str | os.PathLike[str]) -> Path:
    """``weights`` as a path, or ClipWeightsMissing when no file is there."""
    path = Path(weights)
    if not path.is_file():
        raise ClipWeightsMissing(f"{path}: CLIP weights file not found (it is never downloaded: give a local "
                                 "open_clip checkpoint of the model)")
    return path


def import_open_clip() -> ModuleType:
    """``open_clip``, imported with the hub offline (see the module docstring for torchvision)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import torchvision  # noqa: F401
    except ModuleNotFoundError:
        raise ImportError("CLIP needs open_clip and torchvision: pip install 'carvalue[train]'") from None
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
        _declare_missing_torchvision_ops()
    try:
        import open_clip
    except ModuleNotFoundError:
        raise ImportError("CLIP needs open_clip: pip install 'carvalue[train]'") from None
    return open_clip


def _declare_missing_torchvision_ops() -> None:
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package, to be imported again
    if not _SCHEMAS:
        lib = torch.library.Library("torchvision", "DEF")
        for op in _MISSING_TORCHVISION_OPS:
            if not torch._C._dispatch_has_kernel(f"torchvision::{op}"):
                lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _SCHEMAS.append(lib)
    import torchvision  # noqa: F401


def clip_config(config: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """The open_clip model configuration: a dict as given, a ``.json`` file's, or the bundled one
    of that name (``ViT-B-16``)."""
    if isinstance(config, dict):
        return dict(config)
    text = str(config)
    if text.endswith(".json"):
        try:
            cfg = json.loads(Path(text).read_text())
        except (OSError, ValueError) as e:
            raise ClipWeightsError(f"{text}: cannot read the CLIP configuration ({e})") from None
        if not isinstance(cfg, dict) or "vision_cfg" not in cfg:
            raise ClipWeightsError(f"{text}: not an open_clip model configuration (no vision_cfg)")
        return cfg
    found = import_open_clip().get_model_config(text)
    if found is None:
        raise ClipWeightsError(f"{text!r}: no such open_clip model configuration (e.g. ViT-B-16)")
    return dict(found)


def build_clip(config: str | os.PathLike[str] | dict[str, Any]) -> Any:
    """An open_clip ``CLIP`` of ``config`` with its own random initialisation (no weights read)."""
    open_clip = import_open_clip()
    cfg = clip_config(config)
    try:
        return open_clip.CLIP(**cfg)
    except TypeError as e:
        raise ClipWeightsError(f"not an open_clip CLIP configuration ({e})") from None


def load_clip(weights: str | os.PathLike[str], config: str | os.PathLike[str] | dict[str, Any] = "ViT-B-16") -> Any:
    """An open_clip ``CLIP`` of ``config`` with every weight read from the local file ``weights``
    (an open_clip state dict: .safetensors, or .pt/.bin read with ``weights_only``; a checkpoint made
    at another input size has its position embedding interpolated, as open_clip does)."""
    path = weights_file(weights)
    open_clip = import_open_clip()
    from safetensors import SafetensorError

    model = build_clip(config)
    try:
        state = open_clip.factory.load_state_dict(str(path))
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, StopIteration, SafetensorError,
            IndexError, KeyError, TypeError, AttributeError, struct.error, zipfile.BadZipFile) as e:
        # what torch's weights-only unpickler and safetensors raise on bytes that are not a checkpoint
        raise ClipWeightsError(f"{path}: not a readable CLIP checkpoint ({type(e).__name__}: "
                               f"{' '.join(str(e).split())[:200]})") from None
    if not isinstance(state, dict):
        raise ClipWeightsError(f"{path}: holds a {type(state).__name__}, not a CLIP state dict")
    try:
        open_clip.model.resize_pos_embed(state, model)  # a checkpoint made at another input size
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # missing, unexpected or differently shaped weights
        raise ClipWeightsError(f"{path}: not weights of this CLIP model "
                               f"({' '.join(str(e).split())[:300]})") from None
    return model


def eval_transform(model: Any) -> Any:
    """open_clip's evaluation preprocessing for ``model`` (resize, centre crop, normalise)."""
    open_clip = import_open_clip()
    cfg = open_clip.get_model_preprocess_cfg(model)
    return open_clip.image_transform(cfg.get("size", model.visual.image_size), is_train=False,
                                     mean=cfg.get("mean"), std=cfg.get("std"))
