"""The app's export files: core.report's CSV rows and JSON document, written atomically with
the permissions a plain ``open`` would give (no Qt here)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.atomic import atomic_open
from core.modelfile import ModelMetadata
from core.report import (
    PhotoResults,
    csv_header,
    csv_rows,
    dumps,
    results_json,
)


def write_csv(path: str | os.PathLike[str], results: Sequence[PhotoResults], meta: ModelMetadata) -> int:
    """One row per prediction (kind = photo, crop or sweep); returns the number of rows."""
    rows = list(csv_rows(results))

    def write(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(csv_header(meta))
        w.writerows(rows)

    _atomic_write(Path(path), write, newline="")
    return len(rows)


def write_json(path: str | os.PathLike[str], results: Sequence[PhotoResults], meta: ModelMetadata,
               model_path: str) -> None:
    text = dumps(results_json(results, meta, model_path), indent=2)
    _atomic_write(Path(path), lambda f: f.write(text))


def _atomic_write(path: Path, write: Any, newline: str | None = None) -> None:
    """Write through core.atomic (a temp file renamed over ``path``, with the permissions a plain
    ``open`` would give: an export is for sharing, so the umask decides)."""
    with atomic_open(path, "w", encoding="utf-8", newline=newline) as f:
        write(f)
