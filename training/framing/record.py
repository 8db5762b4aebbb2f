"""Write figures into a finished model file's metrics: the graph and every other field stay."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def record_metrics(model: Path, key: str, value: Any) -> None:
    """``model``'s metrics with ``key`` set to ``value`` (read and checked as the app reads the
    file, then rewritten atomically in place, its mode kept)."""
    from core.modelfile import open_session, write_model_file

    _, meta = open_session(model, threads=1)
    write_model_file(model, dataclasses.replace(meta, metrics={**meta.metrics, key: value}), model)
