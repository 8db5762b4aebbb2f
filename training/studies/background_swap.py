"""Study 2: the same car pasted onto different real backgrounds: how far does the price move?

Stanford Cars photos are cropped to the car's bounding box, so each car photo is scaled to fill
a fraction of a CANVAS-sized frame (two FRAMINGS: "tight", the car fills 90% of the frame's
limiting side, close to the training photos; "loose", 60%, a car in a scene) and pasted (as its
whole rectangle: the few original background pixels inside the box come along) onto each
background, horizontally centred.  The reference is the same paste onto plain grey; every other
background is compared with it (absolute change in median price, top-1 make/model agreement),
and top-1 accuracy against the label is reported for the original photo, the grey paste and the
photo backgrounds.  Backgrounds: see training/studies/backgrounds.py (photos plus noise).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from training.formatting import pct, usd
from training.studies.backgrounds import Background, all_backgrounds, licence_lines
from training.studies.common import (
    StudyArgs,
    as_photo,
    load_predictor,
    mean_or_nan,
    median_or_nan,
    model_line,
    open_photo,
    pick_cars,
    pil_of,
    study_main,
    truth_label,
)
from training.studies.report import Report

NAME = "background_swap"
DEFAULT_LIMIT = 150  # car photos (the held-out split has ~730, ~200 of them wide)
CANVAS = (448, 336)
# (name, fill): the car's scaled size is ``fill`` of the frame's width or height, whichever
# limits first; its bottom sits at 1 - 0.3 * (1 - fill) of the height (0.97 tight, 0.88 loose).
FRAMINGS: tuple[tuple[str, float], ...] = (("tight", 0.9), ("loose", 0.6))
REFERENCE = "plain grey"
EXAMPLE_BACKGROUNDS = 6


def fit_background(bg: Image.Image, size: tuple[int, int] = CANVAS) -> Image.Image:
    """Scale to cover ``size`` and centre-crop to it."""
    w, h = size
    s = max(w / bg.width, h / bg.height)
    big = bg.resize((max(w, round(bg.width * s)), max(h, round(bg.height * s))), Image.Resampling.BILINEAR)
    x, y = (big.width - w) // 2, (big.height - h) // 2
    return big.crop((x, y, x + w, y + h))


def composite(car: Image.Image, bg: Image.Image, fill: float, size: tuple[int, int] = CANVAS) -> Image.Image:
    """``car`` (a photo cropped to the car) pasted onto ``bg`` as described in the module doc."""
    canvas = fit_background(bg, size)
    w, h = size
    s = min(fill * w / car.width, fill * h / car.height)
    cw, ch = max(1, round(car.width * s)), max(1, round(car.height * s))
    scaled = car.resize((cw, ch), Image.Resampling.BILINEAR)
    x = (w - cw) // 2
    y = max(0, round(car_bottom(fill) * h) - ch)
    canvas.paste(scaled, (x, y))
    return canvas


def car_bottom(fill: float) -> float:
    return 1 - 0.3 * (1 - fill)


def run(args: StudyArgs) -> dict[str, Any]:
    predictor = load_predictor(args.model)
    vocab = predictor.metadata.make_models
    backgrounds = all_backgrounds(args.seed)
    if REFERENCE not in [b.name for b in backgrounds]:
        raise RuntimeError(f"background set lacks the reference {REFERENCE!r}")
    sel = pick_cars(args, predictor, what="car photos")
    cars: list[dict[str, Any]] = []
    for car in sel.cars:
        photo = open_photo(car, args.data)
        img = pil_of(photo)
        original = predictor.predict(photo)
        entry: dict[str, Any] = {
            "file": car.file, "truth": truth_label(car, vocab),
            "original": {"price": original.median_price, "top1": original.top_make_model.label,
                         "confidence": original.confidence, "flagged": not original.looks_like_car},
            "framings": {}}
        for fname, fill in FRAMINGS:
            preds = predictor.predict_many([as_photo(composite(img, b.image, fill), f"{car.file}+{b.name}")
                                            for b in backgrounds])
            entry["framings"][fname] = {
                "price": {b.name: p.median_price for b, p in zip(backgrounds, preds, strict=True)},
                "top1": {b.name: p.top_make_model.label for b, p in zip(backgrounds, preds, strict=True)},
                "confidence": {b.name: p.confidence for b, p in zip(backgrounds, preds, strict=True)},
                "flagged": {b.name: not p.looks_like_car for b, p in zip(backgrounds, preds, strict=True)},
            }
        cars.append(entry)
    data = {"study": NAME, "model": str(args.model), "reference": REFERENCE, "canvas": CANVAS,
            "framings": dict(FRAMINGS), "held_out": sel.held_out, "pool_size": sel.pool_size,
            "backgrounds": [{"name": b.name, "kind": b.kind, "source": b.source} for b in backgrounds],
            "summary": {f: summarise(cars, backgrounds, f) for f, _ in FRAMINGS}, "cars": cars}
    write_report(args, model_line(predictor), sel.note, data, backgrounds)
    return data


def summarise(cars: Sequence[dict[str, Any]], backgrounds: Sequence[Background], framing: str) -> dict[str, Any]:
    others = [b for b in backgrounds if b.name != REFERENCE]
    photo_bgs = [b.name for b in others if b.kind == "photo"]
    views = [c["framings"][framing] for c in cars]

    def changes(names: Sequence[str]) -> tuple[list[float], list[float], list[bool]]:
        abs_d, rel_d, agree = [], [], []
        for v in views:
            ref_price, ref_top = v["price"][REFERENCE], v["top1"][REFERENCE]
            for n in names:
                abs_d.append(abs(v["price"][n] - ref_price))
                rel_d.append(abs(v["price"][n] / ref_price - 1))
                agree.append(v["top1"][n] == ref_top)
        return abs_d, rel_d, agree

    labelled = [(c, c["framings"][framing]) for c in cars if c["truth"] is not None]
    per_bg = {}
    for b in others:
        a, r, g = changes([b.name])
        per_bg[b.name] = {"kind": b.kind, "mean_abs_change": mean_or_nan(a),
                          "median_abs_change": median_or_nan(a), "median_rel_change": median_or_nan(r),
                          "top1_agreement": mean_or_nan(g),
                          "accuracy": mean_or_nan(v["top1"][b.name] == c["truth"] for c, v in labelled),
                          "mean_price": mean_or_nan(v["price"][b.name] for v in views)}
    a, r, g = changes(photo_bgs)
    spreads = [max(v["price"][n] for n in photo_bgs) / min(v["price"][n] for n in photo_bgs)
               for v in views] if photo_bgs else []
    # How big the background effect is next to the differences between cars: the mean (over
    # cars) variance of log price across photo backgrounds, over the variance across cars of
    # each car's mean log price.  Near 0: the car decides the price; near 1 or more: the scene.
    logp = np.log([[v["price"][n] for n in photo_bgs] for v in views]) if photo_bgs else np.zeros((0, 0))
    within = float(logp.var(axis=1).mean()) if logp.size else float("nan")
    between = float(logp.mean(axis=1).var()) if logp.shape[0] > 1 else float("nan")
    orig_abs = [abs(v["price"][REFERENCE] - c["original"]["price"]) for c, v in zip(cars, views, strict=True)]
    orig_agree = [v["top1"][REFERENCE] == c["original"]["top1"] for c, v in zip(cars, views, strict=True)]
    return {
        "n_cars": len(cars),
        "n_labelled": len(labelled),
        "n_photo_backgrounds": len(photo_bgs),
        "photo_backgrounds": {"mean_abs_change": mean_or_nan(a), "median_abs_change": median_or_nan(a),
                              "median_rel_change": median_or_nan(r), "top1_agreement": mean_or_nan(g)},
        "median_price_spread_across_photo_backgrounds": median_or_nan(spreads),
        "log_price_var_within_car": within,
        "log_price_var_between_cars": between,
        "background_to_car_variance_ratio": within / between if between > 0 else float("nan"),
        "reference_vs_original": {"mean_abs_change": mean_or_nan(orig_abs),
                                  "median_abs_change": median_or_nan(orig_abs),
                                  "top1_agreement": mean_or_nan(orig_agree)},
        "accuracy": {"original": mean_or_nan(c["original"]["top1"] == c["truth"] for c, _ in labelled),
                     "reference": mean_or_nan(v["top1"][REFERENCE] == c["truth"] for c, v in labelled),
                     "photo_backgrounds": mean_or_nan(v["top1"][n] == c["truth"]
                                                      for c, v in labelled for n in photo_bgs)},
        "mean_reference_price": mean_or_nan(v["price"][REFERENCE] for v in views),
        "confidence": {"original": mean_or_nan(c["original"]["confidence"] for c in cars),
                       "reference": mean_or_nan(v["confidence"][REFERENCE] for v in views),
                       "photo_backgrounds": mean_or_nan(v["confidence"][n] for v in views for n in photo_bgs)},
        "flagged": {"original": mean_or_nan(c["original"]["flagged"] for c in cars),
                    "reference": mean_or_nan(v["flagged"][REFERENCE] for v in views),
                    "photo_backgrounds": mean_or_nan(v["flagged"][n] for v in views for n in photo_bgs)},
        "per_background": per_bg,
    }


def write_report(args: StudyArgs, predictor_line: str, note: str, data: dict[str, Any],
                 backgrounds: Sequence[Background]) -> None:
    rep = Report(NAME, "Study: background intervention (same car, different backgrounds)", args.out)
    rep.data = data
    rep.para(predictor_line)
    rep.para(f"Photos: {note}")
    framings = ", ".join(f"**{n}** (the car fills {f:.0%} of the frame's limiting side, bottom at "
                         f"{car_bottom(f):.0%} of the height)" for n, f in FRAMINGS)
    rep.para(f"Each car photo (already cropped to the car) is scaled and pasted onto each background "
             f"in a {CANVAS[0]}x{CANVAS[1]} frame, in two framings: {framings}; the whole frame is "
             f"predicted. Reference: the same paste onto {REFERENCE}. The car's own pixels are "
             f"identical in every frame of a framing, so any change comes from the surroundings. (The "
             f"pasted rectangle keeps the few background pixels that were inside the car's bounding "
             f"box.) The training photos are tight crops of cars, so the loose framing is itself "
             f"outside the training distribution: compare with the tight one.")
    rep.para("Backgrounds used:")
    rep.bullets(licence_lines(list(backgrounds)))
    rep.heading("Summary")
    rows = []
    for fname, _ in FRAMINGS:
        s = data["summary"][fname]
        pb, ro, acc = s["photo_backgrounds"], s["reference_vs_original"], s["accuracy"]
        rows.append([fname, str(s["n_cars"]), usd(pb["mean_abs_change"]), usd(pb["median_abs_change"]),
                     pct(pb["median_rel_change"]), pct(pb["top1_agreement"]),
                     f"{s['median_price_spread_across_photo_backgrounds']:.2f}",
                     f"{s['background_to_car_variance_ratio']:.2f}",
                     f"{pct(acc['original'])} / {pct(acc['reference'])} / {pct(acc['photo_backgrounds'])}",
                     f"{usd(ro['median_abs_change'])}, {pct(ro['top1_agreement'])}"])
    rep.table(["framing", "cars", "mean abs price change", "median abs change", "median rel. change",
               "top-1 agreement", "price spread per car", "variance ratio",
               "accuracy: original / grey / photo bgs", "grey paste vs original: median change, agreement"],
              rows)
    rep.bullets([
        "Changes and agreement: each car on each of the "
        f"{data['summary'][FRAMINGS[0][0]]['n_photo_backgrounds']} photo backgrounds against the same "
        "car on grey.",
        "Price spread per car: median over cars of (highest / lowest price across the photo backgrounds).",
        "Variance ratio: variance of log price across backgrounds (mean over cars) / variance across "
        "cars of their mean log price; 0 would mean only the car matters, 1 that the background "
        "moves the price as much as the difference between cars does.",
    ])
    for fname, _ in FRAMINGS:
        s = data["summary"][fname]
        rep.para(f"{fname}: variance ratio {s['log_price_var_within_car']:.4f} / "
                 f"{s['log_price_var_between_cars']:.4f} = {s['background_to_car_variance_ratio']:.2f}; "
                 f"mean price on grey {usd(s['mean_reference_price'])}; mean confidence original "
                 f"{s['confidence']['original']:.3f} / grey {s['confidence']['reference']:.3f} / photo "
                 f"backgrounds {s['confidence']['photo_backgrounds']:.3f}; flagged as not a whole car "
                 f"{pct(s['flagged']['original'])} / {pct(s['flagged']['reference'])} / "
                 f"{pct(s['flagged']['photo_backgrounds'])}.")
    for fname, _ in FRAMINGS:
        s = data["summary"][fname]
        rep.heading(f"Per background, {fname} framing (against the grey reference)", level=3)
        rows = [[n, v["kind"], usd(v["mean_abs_change"]), usd(v["median_abs_change"]),
                 pct(v["median_rel_change"]), pct(v["top1_agreement"]), pct(v["accuracy"]),
                 usd(v["mean_price"])]
                for n, v in sorted(s["per_background"].items(), key=lambda kv: -kv[1]["mean_abs_change"])]
        rep.table(["background", "kind", "mean abs change", "median abs change", "median rel. change",
                   "top-1 agreement", "accuracy", "mean price"], rows)
    rep.figure(per_background_figure(data), "per_background",
               "Median relative price change and top-1 agreement against the grey reference, by "
               "background and framing.")
    rep.figure(example_figure(data, args, backgrounds), "example",
               "One car on several backgrounds in both framings, with the predicted median price and "
               "top-1 make/model.")
    rep.write()


def per_background_figure(data: dict[str, Any]) -> plt.Figure:
    first = data["summary"][FRAMINGS[0][0]]["per_background"]
    names = sorted(first, key=lambda n: -first[n]["median_rel_change"])
    y = np.arange(len(names))
    h = 0.8 / len(FRAMINGS)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.3 * len(names) + 1.3), sharey=True, constrained_layout=True)
    for i, (fname, _) in enumerate(FRAMINGS):
        per = data["summary"][fname]["per_background"]
        axes[0].barh(y + i * h, [100 * per[n]["median_rel_change"] for n in names], h, label=fname)
        axes[1].barh(y + i * h, [per[n]["top1_agreement"] for n in names], h, label=fname)
    axes[0].set(yticks=y + h * (len(FRAMINGS) - 1) / 2, yticklabels=names,
                xlabel="median |price change| vs grey (%)")
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8)
    axes[1].set(xlabel="top-1 agreement with grey", xlim=(0, 1))
    return fig


def example_figure(data: dict[str, Any], args: StudyArgs, backgrounds: Sequence[Background]) -> plt.Figure:
    cars = data["cars"]  # a car the model gets right on its own photo, when there is one
    car = next((c for c in cars if c["original"]["top1"] == c["truth"]), cars[0])
    with Image.open(args.data / car["file"]) as im:
        img = im.convert("RGB")
    shown = [b for b in backgrounds if b.name == REFERENCE]
    shown += [b for b in backgrounds if b.name != REFERENCE][:EXAMPLE_BACKGROUNDS - 1]
    fig, axes = plt.subplots(len(FRAMINGS), len(shown), figsize=(1.75 * len(shown), 1.75 * len(FRAMINGS)),
                             squeeze=False, constrained_layout=True)
    for row, (fname, fill) in zip(axes, FRAMINGS, strict=True):
        view = car["framings"][fname]
        for ax, b in zip(row, shown, strict=True):
            ax.axis("off")
            ax.imshow(composite(img, b.image, fill).resize((CANVAS[0] // 3, CANVAS[1] // 3)))
            ax.set_title(f"{fname}, {b.name}: {usd(view['price'][b.name])}\n"
                         f"{view['top1'][b.name][:26]}", fontsize=5.5)
    fig.suptitle(f"{car['file']} (label: {car['truth']}; own photo: {usd(car['original']['price'])}, "
                 f"{car['original']['top1'][:30]})", fontsize=7)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    return study_main(NAME, __doc__, run, DEFAULT_LIMIT, argv)


if __name__ == "__main__":
    sys.exit(main())
