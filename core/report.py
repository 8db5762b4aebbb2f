"""What a result says, written one way for the CLI, the app and their files (no Qt here).

One owner for each thing a result says:

* dollars: written by :mod:`core.money` (``format_dollars``, ``short_dollars``, ...); files keep
  the unrounded numbers;
* the result's JSON: one schema, versioned by :data:`SCHEMA_VERSION` and documented in
  docs/result-schema.md. ``carvalue predict --json`` prints one document per photo per line and
  the app's File > Export writes one document for all its photos: the same object per photo
  (the version lives in :mod:`core.output`, which ``carvalue price`` shares);
* the CSV rows of the app's export; the plain-text summary (the clipboard).

The words the price says about itself come from :mod:`core.pricing` (``PriceEstimate.words``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.modelfile import ModelMetadata
from core.money import dollar_range, format_dollars
from core.names import json_text
from core.output import SCHEMA_VERSION
from core.photo_price import describe, display_bounds
from core.predictor import Prediction, Sweep
from core.pricing import PriceBin, PriceEstimate

TOP = 5  # make/models and years a file lists per prediction


# --------------------------------------------------------------------------- plain text

def price_text_lines(est: PriceEstimate) -> list[str]:
    """The price as plain text lines, numbers then core.pricing's words."""
    w = est.words()
    return [f"Estimated price: {format_dollars(est.median)} (likely {dollar_range(*est.likely, sep=' to ')}; "
            f"80% range {dollar_range(*est.range80, sep=' to ')})",
            f"Price ranges: {w['ranges']}", f"Price inputs: {w['inputs_used']}", f"Price means: {w['what']}",
            *(f"Price note: {n}" for n in w["notes"]), w["not_seen"]]


def unknown_car_words(pred: Prediction) -> str:
    """What an unknown car is called everywhere (window, CLI, clipboard): its make, then that
    the model or year is not one the app knows, and the closest class it does."""
    make = pred.makes[0].label if pred.makes else "A car"
    return f"{make}, a model or year this app does not know (closest it knows: {pred.make_models[0].label})"


def prediction_text(pred: Prediction, meta: ModelMetadata | None = None, top: int = 3) -> str:
    """A plain-text summary (the app's clipboard)."""
    c = pred.crop
    head = [f"Photo: {pred.source}" if pred.source else "Photo: (pasted image)",
            f"Crop: x={c.x:.0f} y={c.y:.0f} w={c.w:.0f} h={c.h:.0f}"]
    if not pred.priced:
        return "\n".join([*head, "No car found" + ("" if pred.covers_photo else " in the crop") + ": no price"])
    lines = [
        *head,
        *(price_text_lines(pred.price) if pred.price is not None else
          [f"Estimated price: {format_dollars(pred.median_price)} "
           f"(likely {dollar_range(pred.price_low, pred.price_high, sep=' to ')})"]),
        *([f"Car: {unknown_car_words(pred)}", "Price: if it were "
           f"{pred.make_models[0].label}, not this car's"] if pred.unknown_car else []),
        *([f"Make: {', '.join(f'{x.label} {x.probability:.0%}' for x in pred.makes[:top])}"] if pred.makes else []),
        "Make/model: " + ", ".join(f"{x.label} {x.probability:.0%}" for x in pred.make_models[:top]),
        "Year: " + ", ".join((pred.year_words if i == 0 else x.label) + f" {x.probability:.0%}"
                             for i, x in enumerate(pred.years[:top])),
        f"Whole-car check: {pred.whole_car.value} (score {pred.confidence:.2f})",
    ]
    if meta is not None:
        if meta.price.meaning and pred.price is None:
            lines.append(f"Price meaning: {meta.price.meaning}")
        lines.append(f"Model: {meta.name}" + (f" ({meta.created})" if meta.created else ""))
    return "\n".join(lines)


# --------------------------------------------------------------------------- JSON

@dataclass(frozen=True)
class PhotoResults:
    """Everything known about one photo, for a file."""

    source: str
    size: tuple[int, int]
    prediction: Prediction | None  # the photo's estimate (the app: on the car found; the CLI: --crop)
    crop_prediction: Prediction | None  # the app: the user's crop box, when they set one
    sweep: Sweep | None


def prediction_json(pred: Prediction, top: int = TOP) -> dict[str, Any]:
    d = pred.to_dict()
    d["make_models"] = d["make_models"][:top]
    d["years"] = d["years"][:top]
    return d


def sweep_json(sweep: Sweep, top: int = TOP) -> dict[str, Any]:
    return {"image_size": list(sweep.image_size), "positions": list(sweep.positions),
            "predictions": [prediction_json(p, top) for p in sweep.predictions]}


def photo_json(r: PhotoResults, top: int = TOP) -> dict[str, Any]:
    return {
        "source": r.source,
        "size": list(r.size),
        "prediction": prediction_json(r.prediction, top) if r.prediction else None,
        "crop_prediction": prediction_json(r.crop_prediction, top) if r.crop_prediction else None,
        "sweep": sweep_json(r.sweep, top) if r.sweep else None,
    }


def model_json(meta: ModelMetadata, model_path: str, year_of_sale: int | None = None) -> dict[str, Any]:
    """``price_meaning``: core.pricing's sentence for the file (the price model's when it has
    one, not the head's own ``price.meaning`` of a fixed year) at ``year_of_sale``."""
    return {"name": meta.name, "file": model_path, "created": meta.created,
            "price_meaning": describe(meta, year_of_sale), "currency": meta.price.currency}


def results_json(results: Sequence[PhotoResults], meta: ModelMetadata, model_path: str,
                 top: int = TOP) -> dict[str, Any]:
    """The result document (docs/result-schema.md)."""
    years = [p.price.year_of_sale for r in results for p in (r.prediction, r.crop_prediction)
             if p is not None and p.price is not None]
    return {"schema_version": SCHEMA_VERSION, "model": model_json(meta, model_path, years[0] if years else None),
            "photos": [photo_json(r, top) for r in results]}


def dumps(doc: dict[str, Any], indent: int | None = None) -> str:
    """Strict JSON: a number that is not finite is a ValueError, never a ``NaN`` written; a
    byte of a file name that is not UTF-8 is written as ``\\xNN``, never a lone surrogate."""
    try:
        text = json.dumps(doc, indent=indent, allow_nan=False)
        # "\ud..." only where a string holds a surrogate (rare): walk the document only then
        return text if "\\ud" not in text else json.dumps(_utf8(doc), indent=indent, allow_nan=False)
    except ValueError:
        raise ValueError("the model gave a number that is not finite") from None


def _utf8(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8 (core.names.json_text)."""
    if isinstance(value, str):
        return json_text(value)
    if isinstance(value, dict):
        return {_utf8(k): _utf8(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_utf8(v) for v in value]
    return value


# --------------------------------------------------------------------------- CSV

def csv_header(meta: ModelMetadata, top: int = TOP) -> list[str]:
    cols = ["source", "kind", "position", "crop_x", "crop_y", "crop_w", "crop_h",
            "median_price", "price_low", "price_high", "confidence", "looks_like_car", "whole_car"]
    for i in range(1, top + 1):
        cols += [f"make_model_{i}", f"make_model_{i}_p"]
    for i in range(1, top + 1):
        cols += [f"year_{i}", f"year_{i}_p"]
    cols += [f"p_{PriceBin(lo, hi, 0.0).label()}" for lo, hi in display_bounds(meta)]
    cols += ["range80_low", "range80_high", "year_of_sale", "mileage_mi", "condition", "car", "car_source"]
    cols += ["known_car", "make_1", "make_1_p", "year_or_later"]
    return cols


def csv_row(pred: Prediction, kind: str, position: float | None, top: int = TOP) -> list[Any]:
    row: list[Any] = [json_text(pred.source), kind, "" if position is None else f"{position:.4f}",
                      *(f"{v:.1f}" for v in pred.crop.as_tuple()),
                      f"{pred.median_price:.2f}", f"{pred.price_low:.2f}", f"{pred.price_high:.2f}",
                      f"{pred.confidence:.6f}", int(pred.looks_like_car), pred.whole_car.value]
    for items in (pred.make_models, pred.years):
        for i in range(top):
            row += [items[i].label, f"{items[i].probability:.6f}"] if i < len(items) else ["", ""]
    row += [f"{b.probability:.6f}" for b in pred.price_bins]
    e = pred.price
    row += (["", "", "", "", "", "", ""] if e is None else
            [f"{e.range80[0]:.2f}", f"{e.range80[1]:.2f}", e.year_of_sale,
             "" if e.inputs.mileage_mi is None else f"{e.inputs.mileage_mi:.0f}", e.inputs.condition or "",
             e.car or "", e.car_source or "photo"])
    row += ["" if pred.known_car is None else int(pred.known_car),
            *((pred.makes[0].label, f"{pred.makes[0].probability:.6f}") if pred.makes else ("", "")),
            int(pred.year_or_later)]
    return row


def csv_rows(results: Iterable[PhotoResults]) -> Iterable[list[Any]]:
    """One row per prediction: kind = photo, crop or sweep."""
    for r in results:
        if r.prediction is not None:
            yield csv_row(r.prediction, "photo", None)
        if r.crop_prediction is not None:
            yield csv_row(r.crop_prediction, "crop", None)
        if r.sweep is not None:
            for pos, pred in zip(r.sweep.positions, r.sweep.predictions, strict=True):
                yield csv_row(pred, "sweep", pos)
