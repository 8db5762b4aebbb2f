"""Per-user locations (platformdirs), shared by the app, the data pipeline and training."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from platformdirs import PlatformDirs

_DIRS = PlatformDirs("carvalue", appauthor=False)
T = TypeVar("T")


def cache_dir() -> Path:
    """Derived, re-creatable files (e.g. the converted ImageNet trunk). $CARVALUE_CACHE_DIR wins."""
    return Path(os.environ.get("CARVALUE_CACHE_DIR") or _DIRS.user_cache_dir)


def config_dir() -> Path:
    """Settings remembered between runs. $CARVALUE_CONFIG_DIR wins (tests point it at a temp dir)."""
    return Path(os.environ.get("CARVALUE_CONFIG_DIR") or _DIRS.user_config_dir)


def pretrained_trunk_path() -> Path:
    """Where training/loop/pretrained.py caches the converted ImageNet MobileNetV2 trunk."""
    return cache_dir() / "mobilenet_v2_imagenet_keras160.safetensors"


def bundled(path: Path) -> Path:
    """``path`` under resources/, inside a PyInstaller bundle when run from one."""
    base = getattr(sys, "_MEIPASS", None)
    if base:
        inside = Path(base) / "resources" / path.parent.name / path.name
        if inside.exists():
            return inside
    return path


def load_json_resource(path: str | None, default: Path, parse: Callable[[Any], T], what: str) -> T:
    """``parse`` of the JSON file ``path`` (the bundled ``default`` when None).  OSError as it
    comes; a file that is not JSON or not the shape ``parse`` reads: ValueError naming the file
    and ``what`` it is not (``parse``'s own ValueError passes as it is)."""
    p = Path(path) if path else bundled(default)
    try:
        return parse(json.loads(p.read_text(encoding="utf-8")))
    except (KeyError, TypeError, IndexError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not a {what} ({e})") from e
