"""``--arch clip-vit-b16 --init-weights FILE``: open_clip's ViT image tower as the trunk.

The tower comes from a local open_clip checkpoint (core/dataset/clip_model.py, the loader the junk
filter's CLIP features use too; never the hub), built from open_clip's ``ViT-B-16`` configuration
or another one given with ``--clip-config`` (a name, or a JSON file: the tests use a tiny one).
Its input size is set to the run's ``--size`` (the position embedding interpolated, as open_clip
does). The text tower is dropped. The same four heads as the MobileNetV2's read the tower's pooled,
projected output.

Layer-wise learning-rate decay (``--layer-decay d``): the heads and the tower's last norm and
projection train at the run's lr, transformer block ``i`` of ``L`` at ``lr * d ** (L - i)``, the
patch and position embeddings at ``lr * d ** (L + 1)``: blocks near the input, whose features are
the most general, move least. ``--freeze-blocks n`` freezes the embeddings and the first n blocks.
bf16 autocast on CUDA is the trainer's (``--amp``, training/loop/metrics.autocast_context).

Such a run trains, resumes and is evaluated like any other; the app's model file holds the
MobileNetV2 only (its graph check refuses a transformer's ops), so ``carvalue-train export``
refuses a CLIP run; its run folder can be the MobileNetV2's ``--teacher`` (training/loop/distill.py).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.model import CarValueNet, ModelConfig

ARCH = "clip-vit-b16"
_BLOCK = re.compile(r"^features\.transformer\.resblocks\.(\d+)\.")
_EMBEDDINGS = ("features.class_embedding", "features.positional_embedding", "features.conv1.",
               "features.ln_pre.", "features.patch_dropout.")


class ClipCarNet(CarValueNet):
    """open_clip's ViT image tower (``features``) under CarValueNet's dropout and four heads (the
    same outputs, in the same order)."""

    def __init__(self, visual: nn.Module, config: ModelConfig) -> None:
        nn.Module.__init__(self)  # not CarValueNet's: no MobileNetV2 trunk
        self.config = config
        self.features = visual
        self._add_heads(int(visual.output_dim))  # type: ignore[arg-type]

    @property
    def num_blocks(self) -> int:
        return len(self.features.transformer.resblocks)  # type: ignore[union-attr, arg-type]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The tower's pooled, projected features (N, output_dim)."""
        return self.features(x.contiguous())  # type: ignore[no-any-return]


def clip_dict(clip_config: str, size: int) -> dict[str, Any]:
    """The open_clip configuration with its image size set to the run's input size."""
    from core.dataset.clip_model import clip_config as read_config

    cfg = read_config(clip_config)
    cfg["vision_cfg"] = {**cfg["vision_cfg"], "image_size": size}
    return cfg


def build(clip_config: str, size: int, mcfg: ModelConfig, weights: str | None, freeze_blocks: int) -> ClipCarNet:
    """The network: the tower's weights from ``weights`` (None: left random, e.g. to load a
    checkpoint next), the first ``freeze_blocks`` blocks frozen."""
    from core.dataset.clip_model import build_clip, load_clip

    cfg = clip_dict(clip_config, size)
    clip = load_clip(weights, cfg) if weights is not None else build_clip(cfg)
    model = ClipCarNet(clip.visual, mcfg)
    freeze(model, freeze_blocks)
    return model


def freeze(model: ClipCarNet, n: int) -> None:
    """Freeze the embeddings and the first ``n`` transformer blocks (nothing when n is 0)."""
    if n <= 0:
        return
    for name, p in model.named_parameters():
        block = _BLOCK.match(name)
        if name.startswith(_EMBEDDINGS) or (block is not None and int(block.group(1)) < n):
            p.requires_grad_(False)


def layer_of(name: str, num_blocks: int) -> int:
    """0 for the embeddings, i + 1 for block i, num_blocks + 1 for the rest (last norm,
    projection, heads)."""
    if name.startswith(_EMBEDDINGS):
        return 0
    block = _BLOCK.match(name)
    return int(block.group(1)) + 1 if block else num_blocks + 1


def param_groups(model: ClipCarNet, lr: float, weight_decay: float, layer_decay: float,
                 head_lr_mult: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups: one per (layer, decayed or not), lr ``lr * layer_decay ** (L + 1 - layer)``
    (heads also times ``head_lr_mult``); no weight decay on biases, norms and embeddings."""
    top = model.num_blocks + 1
    groups: dict[tuple[int, bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = not name.startswith("features.")
        decay = p.ndim > 1 and not name.startswith(("features.class_embedding", "features.positional_embedding"))
        groups.setdefault((layer_of(name, model.num_blocks), head, decay), []).append(p)
    return [{"params": ps, "weight_decay": weight_decay if decay else 0.0,
             "lr": lr * layer_decay ** (top - layer) * (head_lr_mult if head else 1.0)}
            for (layer, head, decay), ps in sorted(groups.items())]


def input_norm(clip_config: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) of the tower's inputs: open_clip's (OpenAI's CLIP statistics by default)."""
    from core.dataset.clip_model import import_open_clip

    oc = import_open_clip()
    pre = clip_dict(clip_config, 224).get("preprocess_cfg", {})
    return tuple(pre.get("mean", oc.OPENAI_DATASET_MEAN)), tuple(pre.get("std", oc.OPENAI_DATASET_STD))  # type: ignore[return-value]


def provenance(weights: str, clip_config: str) -> dict[str, str]:
    """What the run records about its start (ClipWeightsMissing when the file is not there)."""
    from core.dataset.clip_model import weights_file

    with weights_file(weights).open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"init": ARCH, "weights_file": Path(weights).name, "weights_sha256": digest,
            "clip_config": clip_config}
