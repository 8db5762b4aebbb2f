"""Study 4: out-of-distribution photos: is confidence lower than on whole cars?

Groups of inputs, each predicted whole:
- ``car``: car photos (cropped to the car, as in training);
- ``car part: 20% crop``: from each car photo, a random crop of 20% of its area (same aspect);
- ``car part: wheel region``: from each wide car photo (aspect >= WIDE_ASPECT: side and
  three-quarter views), the lower-left or lower-right region where a wheel usually sits in a
  side view (WHEEL_BOX, mirrored; a position guess: of 12 such crops looked at, 9 showed a
  wheel or most of one, 3 a bumper/headlight corner);
- ``background photo``: whole real non-car photos (training/studies/backgrounds.py);
- ``background crop``: CROPS_PER_BACKGROUND random crops of each of those;
- ``synthetic``: plain grey and uniform noise.
Reported: confidence distributions, the fraction flagged as not looking like a car
(``looks_like_car`` False) and AUROC of confidence, car against each other group (1.0 = every
car scores above every photo of the group; 0.5 = no separation).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from core.geometry import Box
from core.predictor import Predictor
from core.preprocess import Photo
from training.formatting import pct
from training.studies.backgrounds import (
    Background,
    licence_lines,
    photo_backgrounds,
    random_boxes,
    synthetic,
)
from training.studies.common import (
    StudyArgs,
    as_photo,
    load_predictor,
    mean_or_nan,
    median_or_nan,
    model_line,
    open_photo,
    pick_cars,
    study_main,
)
from training.studies.report import Report

NAME = "ood"
DEFAULT_LIMIT = 750  # car photos (the held-out split has ~730, ~200 of them wide)
CAR = "car"
PART_GROUPS = ("car part: 20% crop", "car part: wheel region")
NONCAR_GROUPS = ("background photo", "background crop", "synthetic")
WIDE_ASPECT = 2.2
WHEEL_BOX = (0.04, 0.45, 0.36, 1.0)  # x0, y0, x1, y1 fractions; mirrored for the right wheel
PART_AREA = 0.2
CROPS_PER_BACKGROUND = 10


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U / (n m))."""
    pos = np.asarray(positive, dtype=np.float64)[:, None]
    neg = np.asarray(negative, dtype=np.float64)[None, :]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def area_box(size: tuple[int, int], frac: float, rng: np.random.Generator) -> Box:
    """A random crop box with ``frac`` of the area and the image's aspect ratio."""
    w, h = size
    side = float(np.sqrt(frac))
    cw, ch = w * side, h * side
    return Box(float(rng.uniform(0, w - cw)), float(rng.uniform(0, h - ch)), cw, ch)


def wheel_box(size: tuple[int, int], right: bool) -> Box:
    x0, y0, x1, y1 = WHEEL_BOX
    if right:
        x0, x1 = 1 - x1, 1 - x0
    w, h = size
    return Box(x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h)


# An input: (name, photo, crop box or None for the whole photo).  Crops go through the
# predictor's crop box, exactly as the app's crop tool does (no minimum photo size applies).
Item = tuple[str, Photo, Box | None]


def collect_inputs(args: StudyArgs, predictor: Predictor) -> tuple[dict[str, list[Item]], str, list[Background]]:
    rng = np.random.default_rng(args.seed)
    sel = pick_cars(args, predictor, what="car photos")
    groups: dict[str, list[Item]] = {g: [] for g in (CAR, *PART_GROUPS, *NONCAR_GROUPS)}
    for i, car in enumerate(sel.cars):
        photo = open_photo(car, args.data)
        size = photo.original_size
        groups[CAR].append((car.file, photo, None))
        groups[PART_GROUPS[0]].append((f"{car.file}#20%", photo, area_box(size, PART_AREA, rng)))
        if car.aspect >= WIDE_ASPECT:
            groups[PART_GROUPS[1]].append((f"{car.file}#wheel", photo, wheel_box(size, right=i % 2 == 1)))
    bgs = photo_backgrounds()
    for bg in bgs:
        photo = as_photo(bg.image, bg.name)
        groups["background photo"].append((bg.name, photo, None))
        for j, box in enumerate(random_boxes(bg.image.size, CROPS_PER_BACKGROUND, rng)):
            groups["background crop"].append((f"{bg.name}#crop{j}", photo, box))
    synth = synthetic(seed=args.seed)
    for s in synth:
        groups["synthetic"].append((s.name, as_photo(s.image, s.name), None))
    return groups, sel.note, bgs + synth


def run(args: StudyArgs) -> dict[str, Any]:
    predictor = load_predictor(args.model)
    groups, note, sources = collect_inputs(args, predictor)
    results: dict[str, list[dict[str, Any]]] = {}
    for gname, items in groups.items():
        preds = predictor.predict_many([photo for _, photo, _ in items], [box for _, _, box in items])
        results[gname] = [{"name": name, "box": box.as_tuple() if box else None,
                           "confidence": p.confidence, "looks_like_car": p.looks_like_car,
                           "top1": p.top_make_model.label, "price": p.median_price}
                          for (name, _, box), p in zip(items, preds, strict=True)]
    meta = predictor.metadata.confidence
    data = {"study": NAME, "model": str(args.model),
            "confidence_method": meta.method, "confidence_threshold": meta.threshold,
            "summary": summarise(results), "results": results}
    write_report(args, model_line(predictor), note, data, sources)
    return data


def summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    car = [r["confidence"] for r in results[CAR]]
    per_group = {}
    for gname, rows in results.items():
        conf = [r["confidence"] for r in rows]
        per_group[gname] = {
            "n": len(rows),
            "mean_confidence": mean_or_nan(conf),
            "median_confidence": median_or_nan(conf),
            "flagged": mean_or_nan(not r["looks_like_car"] for r in rows),
            "auroc_car_vs_this": auroc(car, conf) if gname != CAR else float("nan"),
        }
    noncar = [r["confidence"] for g in NONCAR_GROUPS for r in results[g]]
    parts = [r["confidence"] for g in PART_GROUPS for r in results[g]]
    return {
        "per_group": per_group,
        "auroc_car_vs_noncar": auroc(car, noncar),
        "auroc_car_vs_parts": auroc(car, parts),
        "n_noncar": len(noncar),
        "n_parts": len(parts),
        "flagged_noncar": mean_or_nan(not r["looks_like_car"] for g in NONCAR_GROUPS for r in results[g]),
        "flagged_parts": mean_or_nan(not r["looks_like_car"] for g in PART_GROUPS for r in results[g]),
    }


def write_report(args: StudyArgs, predictor_line: str, note: str, data: dict[str, Any],
                 sources: list[Background]) -> None:
    s = data["summary"]
    rep = Report(NAME, "Study: out-of-distribution photos", args.out)
    rep.data = data
    rep.para(predictor_line)
    rep.para(f"Car photos: {note}")
    rep.para(f"Confidence: method `{data['confidence_method']}`, flag threshold "
             f"{data['confidence_threshold']:g} as recorded in the model file; 'flagged' = the "
             f"predictor's `looks_like_car` is False. Car parts: a random crop of {PART_AREA:.0%} of "
             f"each car photo's area, and the lower-left/right region ({WHEEL_BOX}) of wide photos "
             f"(aspect >= {WIDE_ASPECT}) where a wheel usually is (9 of 12 such crops looked at showed a "
             f"wheel, 3 a bumper/headlight corner). Non-car inputs: whole background "
             f"photos, {CROPS_PER_BACKGROUND} random crops of each, and plain grey / uniform noise.")
    rep.para("Non-car sources:")
    rep.bullets(licence_lines(sources))
    rep.heading("Summary")
    rep.bullets([
        f"AUROC of confidence, car photos vs all non-car inputs (n={s['n_noncar']}): "
        f"{s['auroc_car_vs_noncar']:.3f}; vs car parts (n={s['n_parts']}): {s['auroc_car_vs_parts']:.3f}.",
        f"Flagged as not a whole car: car photos {pct(s['per_group'][CAR]['flagged'])}, non-car inputs "
        f"{pct(s['flagged_noncar'])}, car parts {pct(s['flagged_parts'])}.",
    ])
    rep.heading("Per group")
    rows = [[g, str(v["n"]), f"{v['mean_confidence']:.3f}", f"{v['median_confidence']:.3f}", pct(v["flagged"]),
             "-" if g == CAR else f"{v['auroc_car_vs_this']:.3f}"]
            for g, v in s["per_group"].items() if v["n"] > 0]
    rep.table(["group", "n", "mean confidence", "median confidence", "flagged", "AUROC car vs group"], rows)
    rep.figure(distribution_figure(data), "confidence",
               "Confidence by group (left; dashed: the flag threshold) and ROC of confidence, car vs "
               "non-car inputs and car vs car parts (right).")
    rep.write()


def roc_points(positive: Sequence[float], negative: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    thresholds = np.unique(np.concatenate([positive, negative, [np.inf, -np.inf]]))[::-1]
    pos, neg = np.asarray(positive), np.asarray(negative)
    tpr = np.array([(pos >= t).mean() for t in thresholds])
    fpr = np.array([(neg >= t).mean() for t in thresholds])
    return fpr, tpr


def distribution_figure(data: dict[str, Any]) -> plt.Figure:
    res = data["results"]
    names = [g for g in res if res[g]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.6, 1]},
                             constrained_layout=True)
    ax = axes[0]
    ax.boxplot([[r["confidence"] for r in res[g]] for g in names], orientation="horizontal", showfliers=True)
    ax.set_yticks(range(1, len(names) + 1))
    ax.set_yticklabels([f"{g} ({len(res[g])})" for g in names], fontsize=8)
    ax.invert_yaxis()
    thr = data["confidence_threshold"] if data["confidence_method"] == "max_prob" else 0.5
    ax.axvline(thr, color="C3", ls="--", lw=1)
    ax.set(xlabel="confidence", xlim=(0, 1))
    ax = axes[1]
    car = [r["confidence"] for r in res[CAR]]
    for label, groups in (("non-car", NONCAR_GROUPS), ("car parts", PART_GROUPS)):
        neg = [r["confidence"] for g in groups for r in res[g]]
        if neg:
            fpr, tpr = roc_points(car, neg)
            ax.plot(fpr, tpr, label=f"car vs {label} (AUROC {auroc(car, neg):.2f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate (cars)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    return study_main(NAME, __doc__, run, DEFAULT_LIMIT, argv)


if __name__ == "__main__":
    sys.exit(main())
