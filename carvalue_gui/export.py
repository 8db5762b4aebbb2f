"""The app's export files: core.report's CSV rows and JSON document, written atomically with
the permissions a plain ``open`` would give (no Qt here)."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.modelfile import ModelMetadata
from core.money import format_dollars
from core.report import (
    PhotoResults,
    csv_header,
    csv_rows,
    dumps,
    prediction_text,
    results_json,
)

__all__ = ["PhotoResults", "format_dollars", "prediction_text", "results_json", "write_csv", "write_json"]


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
    """Write through a temp file renamed over ``path``, with the permissions a plain ``open``
    would give (mkstemp's are 0600: an export is for sharing, so the umask decides)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def current_umask() -> int:
    """The process's umask (read from /proc where there is one: setting it to read it back is
    not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass  # not Linux: read it the portable way below
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
