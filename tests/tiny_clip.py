"""A tiny random open_clip CLIP (2 blocks of width 32 at 32 px) written as a local weights file,
the stand-in for a ViT-B/16 checkpoint in the tests (no real CLIP weights can be had here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_CLIP: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


def write_tiny_clip(folder: Path, seed: int = 0, config: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """(weights file, config JSON file) of a randomly initialised CLIP of ``config`` (TINY_CLIP)."""
    import torch

    from core.dataset.clip_model import build_clip

    cfg = config or TINY_CLIP
    torch.manual_seed(seed)
    model = build_clip(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    weights, cfg_file = folder / f"clip-{seed}.pt", folder / "tiny-clip.json"
    torch.save(model.state_dict(), weights)
    cfg_file.write_text(json.dumps(cfg))
    return weights, cfg_file
