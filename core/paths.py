"""Per-user locations (platformdirs), shared by the app, the data pipeline and training."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformdirs import PlatformDirs

_DIRS = PlatformDirs("carvalue", appauthor=False)


def cache_dir() -> Path:
    """Derived, re-creatable files (e.g. the converted ImageNet trunk). $CARVALUE_CACHE_DIR wins."""
    return Path(os.environ.get("CARVALUE_CACHE_DIR") or _DIRS.user_cache_dir)


def config_dir() -> Path:
    """Settings remembered between runs. $CARVALUE_CONFIG_DIR wins (tests point it at a temp dir)."""
    return Path(os.environ.get("CARVALUE_CONFIG_DIR") or _DIRS.user_config_dir)


def pretrained_trunk_path() -> Path:
    """Where training/pretrained.py caches the converted ImageNet MobileNetV2 trunk."""
    return cache_dir() / "mobilenet_v2_imagenet_keras160.safetensors"


def bundled(path: Path) -> Path:
    """``path`` under resources/, inside a PyInstaller bundle when run from one."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        inside = Path(base) / "resources" / path.parent.name / path.name
        if inside.exists():
            return inside
    return path
