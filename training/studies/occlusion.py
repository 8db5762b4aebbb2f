"""Study 3: badge/logo occlusion: does the make/model survive grey boxes where badges sit?

Stanford Cars photos are cropped to the car, so badge positions can be guessed from the frame:
in front and rear views the badge is at the centre of the grille or tailgate; in side and
three-quarter views the makers' badges sit near the car's two ends.  Each photo gets, one at a
time, a neutral grey (128) box of the same area (15% of the photo) over:
- ``centre``: the middle 30% x 50% (front/rear badge);
- ``ends``: the outer 15% at each side x the middle 50% of the height (side-view badges);
- ``random``: a 30% x 50% box at a random place (control: is it the badge, or any 15%?).
Reported: top-1 agreement with the unoccluded prediction, the change in the probability of the
unoccluded top-1, accuracy before/after, split by aspect ratio (wide = side/three-quarter).
A sliding GRID x GRID occluder (a quarter of each side) gives heat maps for a few photos.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw

from core.predictor import Predictor
from core.preprocess import load_photo
from training.formatting import pct, usd
from training.studies.common import (
    StudyArgs,
    as_photo,
    load_predictor,
    mean_or_nan,
    model_line,
    open_photo,
    pick_cars,
    pil_of,
    prob_of,
    study_main,
    truth_label,
)
from training.studies.report import Report

NAME = "occlusion"
DEFAULT_LIMIT = 750  # car photos (the held-out split has ~730, ~200 of them wide)
GREY = (128, 128, 128)
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the photo
FIXED_OCCLUDERS: dict[str, tuple[Rect, ...]] = {
    "centre": ((0.35, 0.25, 0.65, 0.75),),
    "ends": ((0.0, 0.25, 0.15, 0.75), (0.85, 0.25, 1.0, 0.75)),
}
RANDOM_SIZE = (0.3, 0.5)
VARIANTS = ("centre", "ends", "random")
WIDE_ASPECT = 2.2  # as in the crop-pan study
GRID = 7
GRID_SIZE = 0.25  # sliding occluder: this fraction of the width and of the height
HEATMAPS = 4


def occluders(variant: str, rng: np.random.Generator) -> tuple[Rect, ...]:
    if variant in FIXED_OCCLUDERS:
        return FIXED_OCCLUDERS[variant]
    if variant == "random":
        w, h = RANDOM_SIZE
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        return ((x, y, x + w, y + h),)
    raise ValueError(f"unknown occluder {variant!r}")


def occlude(img: Image.Image, rects: Sequence[Rect]) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out)
    w, h = img.size
    for x0, y0, x1, y1 in rects:
        draw.rectangle((round(x0 * w), round(y0 * h), round(x1 * w) - 1, round(y1 * h) - 1), fill=GREY)
    return out


def grid_rects(grid: int | None = None, size: float | None = None) -> list[Rect]:
    """Row-major sliding-window boxes whose top-left corners span 0..1-size evenly
    (GRID x GRID boxes of GRID_SIZE by default)."""
    grid = grid or GRID
    size = size or GRID_SIZE
    starts = np.linspace(0.0, 1.0 - size, grid)
    return [(float(x), float(y), float(x) + size, float(y) + size) for y in starts for x in starts]


def sensitivity_map(drops: Sequence[float], rects: Sequence[Rect], res: int = 56) -> np.ndarray:
    """A res x res map: each cell the mean drop over the occluders that covered it."""
    total = np.zeros((res, res))
    count = np.zeros((res, res))
    for d, (x0, y0, x1, y1) in zip(drops, rects, strict=True):
        ys = slice(round(y0 * res), round(y1 * res))
        xs = slice(round(x0 * res), round(x1 * res))
        total[ys, xs] += d
        count[ys, xs] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def run(args: StudyArgs) -> dict[str, Any]:
    predictor = load_predictor(args.model)
    vocab = predictor.metadata.make_models
    k = len(vocab)
    rng = np.random.default_rng(args.seed)
    sel = pick_cars(args, predictor, what="car photos")
    photos: list[dict[str, Any]] = []
    for car in sel.cars:
        photo = open_photo(car, args.data)
        img = pil_of(photo)
        clean = predictor.predict(photo, top_k=k)
        top = clean.top_make_model.label
        rects = {v: occluders(v, rng) for v in VARIANTS}
        preds = predictor.predict_many([as_photo(occlude(img, rects[v]), f"{car.file}#{v}") for v in VARIANTS],
                                       top_k=k)
        photos.append({
            "file": car.file, "aspect": car.aspect, "truth": truth_label(car, vocab),
            "clean": {"top1": top, "top1_prob": clean.top_make_model.probability,
                      "price": clean.median_price},
            "variants": {v: {"rects": rects[v], "top1": p.top_make_model.label,
                             "clean_top1_prob": prob_of(p, top), "price": p.median_price}
                         for v, p in zip(VARIANTS, preds, strict=True)},
        })
    heatmaps = [heatmap(predictor, args, ph) for ph in heatmap_photos(photos)]
    data = {"study": NAME, "model": str(args.model), "held_out": sel.held_out, "pool_size": sel.pool_size,
            "variants": list(VARIANTS), "grid": GRID, "grid_size": GRID_SIZE,
            "summary": summarise(photos), "photos": photos, "heatmaps": heatmaps}
    write_report(args, model_line(predictor), sel.note, data)
    return data


def heatmap_photos(photos: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """HEATMAPS photos, those the model gets right first (their maps show what it relies on)."""
    right = [p for p in photos if p["clean"]["top1"] == p["truth"]]
    return (right + [p for p in photos if p["clean"]["top1"] != p["truth"]])[:HEATMAPS]


def heatmap(predictor: Predictor, args: StudyArgs, ph: dict[str, Any]) -> dict[str, Any]:
    """Drop in the clean top-1's probability for each sliding-grid occluder position."""
    img = pil_of(load_photo(args.data / ph["file"]))
    k = len(predictor.metadata.make_models)
    top = ph["clean"]["top1"]
    gp = predictor.predict_many([as_photo(occlude(img, [r]), f"{ph['file']}#grid") for r in grid_rects()],
                                top_k=k)
    drop = [ph["clean"]["top1_prob"] - prob_of(p, top) for p in gp]
    return {"file": ph["file"], "top1": top, "top1_prob": ph["clean"]["top1_prob"], "truth": ph["truth"],
            "drop": np.asarray(drop).reshape(GRID, GRID).tolist()}


def summarise(photos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    groups = {"all": list(photos),
              f"wide (aspect >= {WIDE_ASPECT})": [p for p in photos if p["aspect"] >= WIDE_ASPECT],
              f"narrower (aspect < {WIDE_ASPECT})": [p for p in photos if p["aspect"] < WIDE_ASPECT]}
    out: dict[str, Any] = {}
    for gname, group in groups.items():
        labelled = [p for p in group if p["truth"] is not None]
        g: dict[str, Any] = {"n": len(group), "n_labelled": len(labelled),
                             "clean_accuracy": mean_or_nan(p["clean"]["top1"] == p["truth"] for p in labelled)}
        for v in VARIANTS:
            g[v] = {
                "top1_agreement": mean_or_nan(p["variants"][v]["top1"] == p["clean"]["top1"] for p in group),
                "mean_prob_change": mean_or_nan(p["variants"][v]["clean_top1_prob"] - p["clean"]["top1_prob"]
                                                for p in group),
                "accuracy": mean_or_nan(p["variants"][v]["top1"] == p["truth"] for p in labelled),
                "mean_abs_price_change": mean_or_nan(abs(p["variants"][v]["price"] - p["clean"]["price"])
                                                     for p in group),
            }
        out[gname] = g
    return out


def write_report(args: StudyArgs, predictor_line: str, note: str, data: dict[str, Any]) -> None:
    s = data["summary"]
    rep = Report(NAME, "Study: badge/logo occlusion", args.out)
    rep.data = data
    rep.para(predictor_line)
    rep.para(f"Photos: {note}")
    rep.para("Badge positions are guessed from the frame (Stanford photos are cropped to the car; "
             "there are no view or badge labels). Each photo gets one grey box set at a time, all "
             "covering 15% of the photo: `centre` (middle 30% x 50%: the grille/tailgate badge of "
             "front and rear views), `ends` (outer 15% each side x middle 50% of the height: badges "
             "near the ends of side and three-quarter views) and `random` (a 30% x 50% box at a "
             "random place: the control). 'Agreement' compares with the unoccluded photo's top-1; "
             "'p change' is the mean change in that label's probability.")
    rep.heading("Results")
    rows = []
    for gname, g in s.items():
        for v in VARIANTS:
            gv = g[v]
            rows.append([gname, str(g["n"]), v, pct(gv["top1_agreement"]), f"{gv['mean_prob_change']:+.3f}",
                         f"{pct(g['clean_accuracy'])} -> {pct(gv['accuracy'])}",
                         usd(gv["mean_abs_price_change"])])
    rep.table(["photos", "n", "occluder", "top-1 agreement", "p change", "accuracy clean -> occluded",
               "mean abs price change"], rows)
    alls = s["all"]
    rep.para("Over all {} photos, top-1 agreement with the unoccluded photo: {}.".format(
        alls["n"], "; ".join(f"`{v}` {pct(alls[v]['top1_agreement'])}" for v in VARIANTS)))
    rep.figure(bars_figure(data), "agreement", "Top-1 agreement with the unoccluded photo by occluder.")
    if data["heatmaps"]:
        rep.figure(heatmap_figure(data, args), "heatmaps",
                   f"Occlusion sensitivity: for each point, the mean drop in the probability of the "
                   f"unoccluded top-1 over the grey boxes ({GRID_SIZE:.0%} x {GRID_SIZE:.0%} of the "
                   f"photo, {GRID}x{GRID} positions) that covered it. Red: covering it lowers the probability, "
                   f"blue: raises it; opacity is scaled per photo to its largest change (in the title).")
    rep.write()


def bars_figure(data: dict[str, Any]) -> plt.Figure:
    s = data["summary"]
    groups = [g for g in s if s[g]["n"] > 0]
    fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
    width = 0.8 / len(VARIANTS)
    x = np.arange(len(groups))
    for i, v in enumerate(VARIANTS):
        ax.bar(x + i * width, [s[g][v]["top1_agreement"] for g in groups], width, label=v)
    ax.set_xticks(x + width * (len(VARIANTS) - 1) / 2)
    ax.set_xticklabels([f"{g} (n={s[g]['n']})" for g in groups], fontsize=8)
    ax.set(ylabel="top-1 = unoccluded top-1", ylim=(0, 1))
    ax.legend(fontsize=8)
    return fig


def heatmap_figure(data: dict[str, Any], args: StudyArgs) -> plt.Figure:
    maps = data["heatmaps"]
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps), 2.4), squeeze=False, constrained_layout=True)
    for ax, m in zip(axes[0], maps, strict=True):
        with Image.open(args.data / m["file"]) as f:
            img = f.convert("RGB")
        ax.imshow(img)
        heat = sensitivity_map(np.asarray(m["drop"]).ravel(), grid_rects())
        vmax = max(0.05, float(np.abs(heat).max()))  # per photo: where it matters, whatever the size
        ax.imshow(overlay(heat, vmax), extent=(0, img.width, img.height, 0), interpolation="bilinear")
        ax.set_xlim(0, img.width)
        ax.set_ylim(img.height, 0)
        ax.axis("off")
        mark = "correct" if m["top1"] == m["truth"] else f"label: {str(m['truth'])[:22]}"
        ax.set_title(f"{m['top1'][:34]}\np={m['top1_prob']:.2f} ({mark}), max drop {heat.max():.2f}",
                     fontsize=7)
    return fig


DROP_CMAP = "RdBu_r"


def overlay(heat: np.ndarray, vmax: float) -> np.ndarray:
    """RGBA: red where occluding lowers the probability, blue where it raises it; opacity grows
    with the size of the change, so unimportant regions show the photo untouched."""
    cmap = plt.get_cmap(DROP_CMAP)
    rgba = cmap(np.clip((heat / vmax + 1) / 2, 0, 1))
    rgba[..., 3] = 0.8 * np.clip(np.abs(heat) / vmax, 0, 1)
    return rgba


def main(argv: Sequence[str] | None = None) -> int:
    return study_main(NAME, __doc__, run, DEFAULT_LIMIT, argv)


if __name__ == "__main__":
    sys.exit(main())
