"""Image features for the junk filter.

Default: the ImageNet MobileNetV2 trunk (global-average-pooled 1280-d), read from the
safetensors file that ``python -m training.loop.pretrained convert`` writes (keys of
``mobilenet_v2_features(padding="same", bn_eps=1e-3)``, inputs scaled to [-1, 1]).
Optional: CLIP ViT-B/16 through open_clip, loaded only from a local weights file, with the
Hugging Face hub forced offline.  Nothing here downloads anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from core.paths import pretrained_trunk_path

MOBILENET = "mobilenet_v2_imagenet"
CLIP = "clip_vit_b16"


class FeatureExtractor(Protocol):
    name: str
    dim: int

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, dim) float32 features of RGB images."""
        ...


def center_square(img: Image.Image, size: int) -> Image.Image:
    """Resize the short side to ``size`` and take the central square."""
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return img.crop((left, top, left + size, top + size))


class MobileNetFeatures:
    dim = 1280

    def __init__(self, trunk_path: Path | None = None, size: int = 224, threads: int = 0) -> None:
        if not 32 <= size <= 1024:
            raise ValueError(f"feature image size must be 32..1024, got {size}")
        self.name = f"{MOBILENET}@{size}"  # the input size is part of what the features mean
        import torch
        from safetensors.torch import load_file

        from core.model import mobilenet_v2_features

        path = Path(trunk_path) if trunk_path is not None else pretrained_trunk_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: the ImageNet MobileNetV2 trunk is not there. Make it with "
                "`python -m training.loop.pretrained convert`, or pass --trunk FILE (or use --features clip "
                "with --clip-weights FILE)")
        self.size = size
        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        self.model = mobilenet_v2_features(padding="same", bn_eps=1e-3)
        state = load_file(str(path))
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path}: not a MobileNetV2 trunk state_dict ({str(e).splitlines()[0]})") from None
        self.model.eval()

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        if not images:
            return np.zeros((0, self.dim), np.float32)
        batch = np.stack([np.asarray(center_square(im.convert("RGB"), self.size), np.float32) for im in images])
        x = torch.from_numpy(batch / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
        with torch.inference_mode():
            f = self.model(x).mean(dim=(2, 3))
        return f.numpy().astype(np.float32)


class ClipFeatures:
    name = CLIP
    dim = 512

    def __init__(self, weights: Path, model_name: str = "ViT-B-16", threads: int = 0) -> None:
        import torch

        from core.dataset.clip_model import eval_transform, load_clip

        self._torch = torch
        if threads > 0:
            torch.set_num_threads(threads)
        # The trainer's --arch clip-vit-b16 loads its trunk with the same function (never the hub).
        self.model = load_clip(weights, model_name)
        self.dim = int(self.model.visual.output_dim)
        self.preprocess = eval_transform(self.model)
        self.model.eval()

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = self._torch
        if not images:
            return np.zeros((0, self.dim), np.float32)
        x = torch.stack([self.preprocess(im.convert("RGB")) for im in images])
        with torch.inference_mode():
            f = self.model.encode_image(x)
            f = f / f.norm(dim=-1, keepdim=True)
        return f.float().numpy()


def make_extractor(name: str, trunk: Path | None = None, clip_weights: Path | None = None,
                   size: int = 224, threads: int = 0) -> FeatureExtractor:
    """By CLI name ("mobilenet", "clip") or by a saved filter's name ("mobilenet_v2_imagenet@224").
    ``threads`` > 0 sets torch's intra-op threads (on a busy machine 1 can be several times faster)."""
    if name in ("clip", CLIP):
        if clip_weights is None:
            raise ValueError("CLIP features need --clip-weights FILE (a local open_clip ViT-B/16 checkpoint)")
        return ClipFeatures(clip_weights, threads=threads)
    if name == "mobilenet":
        return MobileNetFeatures(trunk, size, threads)
    base, _, saved_size = name.partition("@")
    if base == MOBILENET and saved_size.isdigit():
        return MobileNetFeatures(trunk, int(saved_size), threads)
    raise ValueError(f"unknown feature extractor {name!r}")
