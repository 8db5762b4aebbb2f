"""Predictions as text, CSV rows and JSON (no Qt here, so the CLI or tests can use it too)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.modelfile import ModelMetadata
from core.predictor import Prediction, PriceBin, Sweep
from core.pricing import display_bounds, text_lines


def format_dollars(value: float) -> str:
    """$18,800: to the nearest hundred (the model is not more precise than that)."""
    return f"${round(value, -2):,.0f}"


@dataclass(frozen=True)
class PhotoResults:
    """Everything known about one photo, for export."""

    source: str
    size: tuple[int, int]
    prediction: Prediction | None  # whole photo
    crop_prediction: Prediction | None  # the user's crop box, when it is not the whole photo
    sweep: Sweep | None


def prediction_text(pred: Prediction, meta: ModelMetadata | None = None, top: int = 3) -> str:
    """A plain-text summary for the clipboard."""
    c = pred.crop
    lines = [
        f"Photo: {pred.source}" if pred.source else "Photo: (pasted image)",
        f"Crop: x={c.x:.0f} y={c.y:.0f} w={c.w:.0f} h={c.h:.0f}",
        *(text_lines(pred.price) if pred.price is not None else
          [f"Estimated price: {format_dollars(pred.median_price)} "
           f"(likely {format_dollars(pred.price_low)} to {format_dollars(pred.price_high)})"]),
        "Make/model: " + ", ".join(f"{x.label} {x.probability:.0%}" for x in pred.make_models[:top]),
        "Year: " + ", ".join(f"{x.label} {x.probability:.0%}" for x in pred.years[:top]),
        f"Looks like a whole car: {'yes' if pred.looks_like_car else 'no'} "
        f"(confidence {pred.confidence:.2f})",
    ]
    if meta is not None:
        if meta.price.meaning and pred.price is None:
            lines.append(f"Price meaning: {meta.price.meaning}")
        lines.append(f"Model: {meta.name}" + (f" ({meta.created})" if meta.created else ""))
    return "\n".join(lines)


def csv_header(meta: ModelMetadata, top: int = 5) -> list[str]:
    cols = ["source", "kind", "position", "crop_x", "crop_y", "crop_w", "crop_h",
            "median_price", "price_low", "price_high", "confidence", "looks_like_car"]
    for i in range(1, top + 1):
        cols += [f"make_model_{i}", f"make_model_{i}_p"]
    for i in range(1, top + 1):
        cols += [f"year_{i}", f"year_{i}_p"]
    cols += [f"p_{PriceBin(lo, hi, 0.0).label()}" for lo, hi in display_bounds(meta)]
    cols += ["range80_low", "range80_high", "year_of_sale", "mileage_mi", "condition"]
    return cols


def csv_row(pred: Prediction, kind: str, position: float | None, top: int = 5) -> list[Any]:
    row: list[Any] = [pred.source, kind, "" if position is None else f"{position:.4f}",
                      *(f"{v:.1f}" for v in pred.crop.as_tuple()),
                      f"{pred.median_price:.2f}", f"{pred.price_low:.2f}", f"{pred.price_high:.2f}",
                      f"{pred.confidence:.6f}", int(pred.looks_like_car)]
    for items in (pred.make_models, pred.years):
        for i in range(top):
            row += [items[i].label, f"{items[i].probability:.6f}"] if i < len(items) else ["", ""]
    row += [f"{b.probability:.6f}" for b in pred.price_bins]
    e = pred.price
    row += (["", "", "", "", ""] if e is None else
            [f"{e.range80[0]:.2f}", f"{e.range80[1]:.2f}", e.year_of_sale,
             "" if e.inputs.mileage_mi is None else f"{e.inputs.mileage_mi:.0f}", e.inputs.condition or ""])
    return row


def results_rows(results: Iterable[PhotoResults]) -> Iterable[list[Any]]:
    for r in results:
        if r.prediction is not None:
            yield csv_row(r.prediction, "photo", None)
        if r.crop_prediction is not None:
            yield csv_row(r.crop_prediction, "crop", None)
        if r.sweep is not None:
            for pos, pred in zip(r.sweep.positions, r.sweep.predictions, strict=True):
                yield csv_row(pred, "sweep", pos)


def write_csv(path: str | os.PathLike[str], results: Sequence[PhotoResults], meta: ModelMetadata) -> int:
    """One row per prediction (kind = photo, crop or sweep); returns the number of rows."""
    rows = list(results_rows(results))

    def write(f: Any) -> None:
        w = csv.writer(f)
        w.writerow(csv_header(meta))
        w.writerows(rows)

    _atomic_write(Path(path), write, newline="")
    return len(rows)


def results_json(results: Sequence[PhotoResults], meta: ModelMetadata, model_path: str) -> dict[str, Any]:
    def sweep_dict(s: Sweep) -> dict[str, Any]:
        return {"image_size": list(s.image_size), "positions": list(s.positions),
                "predictions": [_trim(p.to_dict()) for p in s.predictions]}

    return {
        "model": {"name": meta.name, "file": model_path, "created": meta.created,
                  "price_meaning": meta.price.meaning, "currency": meta.price.currency},
        "photos": [{
            "source": r.source,
            "size": list(r.size),
            "prediction": r.prediction.to_dict() if r.prediction else None,
            "crop_prediction": r.crop_prediction.to_dict() if r.crop_prediction else None,
            "sweep": sweep_dict(r.sweep) if r.sweep else None,
        } for r in results],
    }


def _trim(d: dict[str, Any], top: int = 5) -> dict[str, Any]:
    """Sweeps are computed with every label (for the plot); export the top ones like elsewhere."""
    d["make_models"] = d["make_models"][:top]
    d["years"] = d["years"][:top]
    return d


def write_json(path: str | os.PathLike[str], results: Sequence[PhotoResults], meta: ModelMetadata,
               model_path: str) -> None:
    doc = results_json(results, meta, model_path)
    _atomic_write(Path(path), lambda f: json.dump(doc, f, indent=2))


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
