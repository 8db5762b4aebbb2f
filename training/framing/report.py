"""Held-out report of a model file on photos framed the way people take them.

Everything here runs the model file through ``core.predictor`` exactly as the CLI does
(``--crop auto`` unless a row says otherwise), on the split's *test* photos, with backgrounds
and non-car images from the held-out side of training/data/negatives.py only:

- tight crops (the Stanford photo as it is): make/model top-1/top-5, year within one, flagged;
  with and without horizontal-flip test-time augmentation (softmax of photo and mirror averaged);
- the same cars composited whole into held-out background photos at 35% and 60% of the frame:
  top-1, flagged, and the found box's IoU with the true box;
- held-out non-car images (photos and graphics) and partial views (8-40% of a car): flagged.

  python -m training.framing.report --model runs/framing/carvalue.onnx \
      --data ../shared/data/stanford-cars-train --split training/reports/split-model/split.json \
      --out training/reports/framing
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.framing import CropMode
from core.geometry import box_iou
from core.predictor import Prediction, Predictor
from core.preprocess import photo_from_image
from training.data import compositing as comp
from training.framing.heads import BackgroundPool, split_files, stanford_classes


def _score(preds: Sequence[Prediction], truth: Sequence[tuple[str, int]]) -> dict[str, float]:
    top1 = [p.make_models[0].label == t[0] for p, t in zip(preds, truth, strict=True)]
    top5 = [t[0] in [lp.label for lp in p.make_models[:5]] for p, t in zip(preds, truth, strict=True)]
    year1 = [_year_ok(p, t[1]) for p, t in zip(preds, truth, strict=True)]
    return {"photos": len(preds), "make_model_top1": float(np.mean(top1)), "make_model_top5": float(np.mean(top5)),
            "year_within1": float(np.mean(year1)), "flagged": float(np.mean([not p.looks_like_car for p in preds])),
            "unsure": float(np.mean([p.unsure for p in preds]))}


def _year_ok(p: Prediction, year: int) -> bool:
    try:
        return abs(int(p.years[0].label) - year) <= 1
    except ValueError:
        return False


def _at_least(im: Image.Image, side: int) -> Image.Image:
    """``im`` scaled up so its short side is at least ``side`` (a user's crop is never tiny)."""
    short = min(im.size)
    if short >= side:
        return im
    return im.resize((round(im.width * side / short), round(im.height * side / short)), Image.Resampling.BILINEAR)


def report(model: Path, data: Path, split_json: Path, seed: int = 0, limit: int = 0) -> dict[str, Any]:
    # "full"/"auto" rows without flip test-time augmentation, "*_flip" rows with it (each crop and
    # its mirror, softmaxes averaged), whatever the file says; the whole-car rows with the file's
    # own setting, as the app runs it.
    predictor = Predictor.load(model, flip_tta=False)
    flipped = Predictor.load(model, flip_tta=True)
    as_shipped = flipped if predictor.metadata.input.flip_tta else predictor
    test = split_files(split_json, data).get("test") or []
    if limit:
        test = test[:limit]
    out: dict[str, Any] = {"model": str(model), "test_photos": len(test),
                           "flip_tta_in_model_file": predictor.metadata.input.flip_tta}
    rng = np.random.default_rng(seed)
    if test:  # a model trained on every photo has none: its car rows are its split run's
        out.update(_car_rows(predictor, flipped, as_shipped, test, data, rng))
    out["non_car_flagged"] = _non_car_rows(as_shipped, seed)
    return out


def _car_rows(predictor: Predictor, flipped: Predictor, as_shipped: Predictor, test: Sequence[Path], data: Path,
              rng: np.random.Generator) -> dict[str, Any]:
    """Tight crops, framed composites (held-out backgrounds) and partial views of test photos."""
    from training.data.negatives import background_files

    labels = stanford_classes(data)
    truth = [labels[str(p.relative_to(data))] for p in test]
    cars = []
    for p in test:
        with Image.open(p) as im:
            cars.append(im.convert("RGB"))
    photos = [photo_from_image(c, name=str(p)) for c, p in zip(cars, test, strict=True)]
    out: dict[str, Any] = {}
    tight_full = [predictor.predict(ph, None) for ph in photos]
    tight_auto = [predictor.predict(ph, CropMode.AUTO) for ph in photos]
    print(f"tight crops: {len(photos)}", flush=True)
    out["tight"] = {"full": _score(tight_full, truth), "auto": _score(tight_auto, truth),
                    "full_flip": _score([flipped.predict(ph, None) for ph in photos], truth),
                    "auto_flip": _score([flipped.predict(ph, CropMode.AUTO) for ph in photos], truth)}
    bgs = BackgroundPool(background_files("test"))
    framed: dict[str, Any] = {}
    for coverage in (0.35, 0.6):
        preds, ious, full_preds, flip_preds = [], [], [], []
        for i, car in enumerate(cars):
            recipe = comp.FrameRecipe(coverage=coverage, aspect=float(rng.choice(comp.FRAME_ASPECTS)), fill="photo",
                                      cx=float(rng.uniform()), cy=float(rng.uniform(0.2, 0.9)), long_side=1024,
                                      colour_match=float(rng.uniform(0.4, 1.0)), feather=0.04)
            c = comp.compose(car, recipe, rng, bgs.pick(rng))
            ph = photo_from_image(c.image, name=f"{test[i].name}@{coverage}")
            p = predictor.predict(ph, CropMode.AUTO)
            preds.append(p)
            full_preds.append(predictor.predict(ph, None))
            flip_preds.append(flipped.predict(ph, CropMode.AUTO))
            ious.append(box_iou(p.found_box, c.box) if p.found_box is not None else 0.0)
        framed[f"{coverage:.0%}"] = {"auto": _score(preds, truth), "full": _score(full_preds, truth),
                                     "auto_flip": _score(flip_preds, truth),
                                     "found_iou_median": float(np.median(ious)),
                                     "found_iou_ge_0.8": float(np.mean(np.asarray(ious) >= 0.8))}
    out["framed"] = framed
    print("framed done", flush=True)
    partial = [as_shipped.predict(photo_from_image(_at_least(comp.partial_view(c, rng), 64)), None) for c in cars]
    out["partial_views_flagged"] = float(np.mean([not p.looks_like_car for p in partial]))
    return out


def _non_car_rows(as_shipped: Predictor, seed: int) -> dict[str, dict[str, float]]:
    """Held-out non-car images (photos and graphics) and drawn ones, flagged as the app runs."""
    from training.data.negatives import load_negative, negative_files, synthetic_negatives

    non_car: dict[str, list[bool]] = {}
    for path, source in negative_files("test"):
        try:
            im = load_negative(path)
        except (OSError, ValueError):
            continue
        kind = getattr(source, "kind", "photo")
        non_car.setdefault(kind, []).append(not as_shipped.predict(photo_from_image(im), CropMode.AUTO).looks_like_car)
    for im in synthetic_negatives(200, seed + 99, "test"):
        non_car.setdefault("synthetic", []).append(
            not as_shipped.predict(photo_from_image(im.convert("RGB")), CropMode.AUTO).looks_like_car)
    rows: dict[str, dict[str, float]] = {k: {"images": len(v), "flagged": float(np.mean(v))} for k, v in non_car.items()}
    every = [x for v in non_car.values() for x in v]
    rows["all"] = {"images": len(every), "flagged": float(np.mean(every)) if every else float("nan")}
    return rows


def record(model: Path, report_: dict[str, Any]) -> None:
    """Write the held-out framing figures into the model file's metrics (``framing``); the
    weights are unchanged, so the file is rewritten with new metadata only."""
    from training.framing.record import record_metrics

    record_metrics(model, "framing", {k: v for k, v in report_.items() if k != "model"})
    model.chmod(0o644)


def _flip_note(r: dict[str, Any]) -> list[str]:
    if "flip_tta_in_model_file" not in r:
        return []
    if r["flip_tta_in_model_file"]:
        return ["This model file turns flip test-time augmentation on (it paid on validation photos), so the "
                "app and `carvalue predict` give the flip rows; the whole-car figures below are measured so too.", ""]
    return ["This model file leaves flip test-time augmentation off (it did not pay on validation photos), so "
            "the app and `carvalue predict` give the rows without it.", ""]


def card_section(r: dict[str, Any], sources: Sequence[dict[str, str]], reference: dict[str, Any] | None = None) -> str:
    """The model card's section on photos framed the way people take them.  A model with no test
    photos (trained on all of them) shows the car rows of ``reference``, its split run's report."""
    def pct(v: float) -> str:
        return f"{100 * v:.1f}%"

    cars = r if "tight" in r else reference
    if cars is None or "tight" not in cars:
        raise ValueError("the report has no test photos and no split run's report stands for it")
    t, f = cars["tight"], cars["framed"]
    rows = [
        "| photos (held-out test split) | make/model top-1 | top-5 | year ±1 | flagged not a whole car | found box IoU median |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| tight crops, whole photo | {pct(t['full']['make_model_top1'])} | {pct(t['full']['make_model_top5'])} | "
        f"{pct(t['full']['year_within1'])} | {pct(t['full']['flagged'])} | |",
        f"| tight crops, `--crop auto` | {pct(t['auto']['make_model_top1'])} | {pct(t['auto']['make_model_top5'])} | "
        f"{pct(t['auto']['year_within1'])} | {pct(t['auto']['flagged'])} | |",
    ]
    for mode, name in (("full_flip", "whole photo"), ("auto_flip", "`--crop auto`")):
        if mode in t:  # reports before flip test-time augmentation was measured with the crop found
            rows.append(f"| tight crops, {name}, flip test-time augmentation | {pct(t[mode]['make_model_top1'])} | "
                        f"{pct(t[mode]['make_model_top5'])} | {pct(t[mode]['year_within1'])} | {pct(t[mode]['flagged'])} | |")
    for cov, d in f.items():
        for mode in ("full", "auto", "auto_flip"):
            if mode not in d:
                continue
            m = d[mode]
            iou = f"{d['found_iou_median']:.2f}" if mode == "auto" else ""
            label = "crop auto, flip test-time augmentation" if mode == "auto_flip" else f"crop {mode}"
            rows.append(f"| car at {cov} of the frame, held-out backgrounds, {label} | {pct(m['make_model_top1'])} | "
                        f"{pct(m['make_model_top5'])} | {pct(m['year_within1'])} | {pct(m['flagged'])} | {iou} |")
    non = r["non_car_flagged"]
    lines = ["## Photos framed the way people take them (found car, whole-car check)", "",
             "The framing outputs (the car's box and a whole-car score) are heads on the frozen trunk, trained on "
             "the split's training photos composited into larger frames (car at 15-100% of the picture; "
             "backgrounds: training-side wallpapers and photos, plain, white, blurred and reflected fills, other "
             "cars at the edges; seams feathered and colour-matched), tight crops, partial views (8-40% of a car) "
             "and non-car images and graphics (training/framing/heads.py). `carvalue predict` and the app predict on "
             "the found box by default (at most two forward passes). Held-out figures (training/framing/report.py; "
             "test photos, held-out backgrounds and non-car images only)"
             + (":" if cars is r else ". This model trained on every photo, so the car rows are those of the same "
                "recipe's split run; the non-car figures are this model's own:"), "", *rows, "", *_flip_note(r),
             f"Non-car images held out from training, flagged: {pct(non['all']['flagged'])} of {non['all']['images']} "
             "(" + "; ".join(f"{k} {pct(v['flagged'])} of {v['images']}" for k, v in non.items() if k != "all") + "). "
             f"Partial views (8-40% of a car), flagged: {pct(cars['partial_views_flagged'])}"
             + ("" if cars is r else " (split run)") + ".", "",
             "Sources of backgrounds and negatives, with their licences:", ""]
    lines += [f"- {d.get('name', '?')}: {d.get('licence', '?')}" for d in sources]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.report")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--record", action="store_true", help="write the figures into the model file's metrics")
    a = ap.parse_args(argv)
    r = report(a.model, a.data, a.split, limit=a.limit)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "report.json").write_text(json.dumps(r, indent=1))
    meta = Predictor.load(a.model).metadata
    reference = meta.metrics.get("held_out_reference") if isinstance(meta.metrics, dict) else None
    section = card_section(r, meta.framing.sources if meta.framing else (),
                           reference.get("framing") if isinstance(reference, dict) else None)
    (a.out / "report.md").write_text(section)
    if a.record:
        record(a.model, r)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
