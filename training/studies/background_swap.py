"""Study 2: the same car pasted onto different real backgrounds: how far does the price move?

Stanford Cars photos are cropped to the car's bounding box, so each car photo is scaled to
CAR_WIDTH of a CANVAS-sized frame and pasted (as its whole rectangle: the few original
background pixels inside the box come along) onto each background, horizontally centred with
its bottom at CAR_BOTTOM of the height.  The reference is the same paste onto plain grey; every
other background is compared with it (absolute change in median price, top-1 make/model
agreement).  The original photo's prediction is reported too, for the effect of the framing
alone.  Backgrounds: see training/studies/backgrounds.py (photos plus uniform noise).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from training.studies.backgrounds import Background, all_backgrounds, licence_lines
from training.studies.common import (
    StudyArgs,
    as_photo,
    load_predictor,
    mean_or_nan,
    median_or_nan,
    model_line,
    open_photo,
    parse_args,
    pick_cars,
    pil_of,
)
from training.studies.report import Report, dollars, pct

NAME = "background_swap"
DEFAULT_LIMIT = 150  # car photos (the held-out split has ~730, ~200 of them wide)
CANVAS = (448, 336)
CAR_WIDTH = 0.6  # of the canvas width (less when the car would be taller than CAR_MAX_HEIGHT)
CAR_MAX_HEIGHT = 0.7
CAR_BOTTOM = 0.88
REFERENCE = "plain grey"
EXAMPLE_BACKGROUNDS = 6


def fit_background(bg: Image.Image, size: tuple[int, int] = CANVAS) -> Image.Image:
    """Scale to cover ``size`` and centre-crop to it."""
    w, h = size
    s = max(w / bg.width, h / bg.height)
    big = bg.resize((max(w, round(bg.width * s)), max(h, round(bg.height * s))), Image.Resampling.BILINEAR)
    x, y = (big.width - w) // 2, (big.height - h) // 2
    return big.crop((x, y, x + w, y + h))


def composite(car: Image.Image, bg: Image.Image, size: tuple[int, int] = CANVAS) -> Image.Image:
    """``car`` (a photo cropped to the car) pasted onto ``bg`` as described in the module doc."""
    canvas = fit_background(bg, size)
    w, h = size
    s = min(CAR_WIDTH * w / car.width, CAR_MAX_HEIGHT * h / car.height)
    cw, ch = max(1, round(car.width * s)), max(1, round(car.height * s))
    scaled = car.resize((cw, ch), Image.Resampling.BILINEAR)
    x = (w - cw) // 2
    y = max(0, round(CAR_BOTTOM * h) - ch)
    canvas.paste(scaled, (x, y))
    return canvas


def run(args: StudyArgs) -> dict[str, Any]:
    predictor = load_predictor(args.model)
    backgrounds = all_backgrounds(args.seed)
    names = [b.name for b in backgrounds]
    if REFERENCE not in names:
        raise RuntimeError(f"background set lacks the reference {REFERENCE!r}")
    sel = pick_cars(args, predictor, what="car photos")
    cars: list[dict[str, Any]] = []
    for car in sel.cars:
        photo = open_photo(car, args.data)
        img = pil_of(photo)
        original = predictor.predict(photo)
        preds = predictor.predict_many([as_photo(composite(img, b.image), f"{car.file}+{b.name}")
                                        for b in backgrounds])
        cars.append({
            "file": car.file,
            "original": {"price": original.median_price, "top1": original.top_make_model.label},
            "price": {b.name: p.median_price for b, p in zip(backgrounds, preds, strict=True)},
            "top1": {b.name: p.top_make_model.label for b, p in zip(backgrounds, preds, strict=True)},
            "confidence": {b.name: p.confidence for b, p in zip(backgrounds, preds, strict=True)},
        })
    data = {"study": NAME, "model": str(args.model), "reference": REFERENCE, "canvas": CANVAS,
            "car_width": CAR_WIDTH, "held_out": sel.held_out, "pool_size": sel.pool_size,
            "backgrounds": [{"name": b.name, "kind": b.kind, "source": b.source} for b in backgrounds],
            "summary": summarise(cars, backgrounds), "cars": cars}
    write_report(args, model_line(predictor), sel.note, data, backgrounds)
    return data


def summarise(cars: Sequence[dict[str, Any]], backgrounds: Sequence[Background]) -> dict[str, Any]:
    others = [b for b in backgrounds if b.name != REFERENCE]
    photo_bgs = [b.name for b in others if b.kind == "photo"]

    def changes(names: Sequence[str]) -> tuple[list[float], list[float], list[bool]]:
        abs_d, rel_d, agree = [], [], []
        for c in cars:
            ref_price, ref_top = c["price"][REFERENCE], c["top1"][REFERENCE]
            for n in names:
                abs_d.append(abs(c["price"][n] - ref_price))
                rel_d.append(abs(c["price"][n] / ref_price - 1))
                agree.append(c["top1"][n] == ref_top)
        return abs_d, rel_d, agree

    per_bg = {}
    for b in others:
        a, r, g = changes([b.name])
        per_bg[b.name] = {"kind": b.kind, "mean_abs_change": mean_or_nan(a),
                          "median_abs_change": median_or_nan(a), "median_rel_change": median_or_nan(r),
                          "top1_agreement": mean_or_nan(g),
                          "mean_price": mean_or_nan(c["price"][b.name] for c in cars)}
    a, r, g = changes(photo_bgs)
    spreads = [max(c["price"][n] for n in photo_bgs) / min(c["price"][n] for n in photo_bgs)
               for c in cars] if photo_bgs else []
    # How big the background effect is next to the differences between cars: the mean (over
    # cars) variance of log price across photo backgrounds, over the variance across cars of
    # each car's mean log price.  Near 0: the car decides the price; near 1 or more: the scene.
    logp = np.log([[c["price"][n] for n in photo_bgs] for c in cars]) if photo_bgs else np.zeros((0, 0))
    within = float(logp.var(axis=1).mean()) if logp.size else float("nan")
    between = float(logp.mean(axis=1).var()) if logp.shape[0] > 1 else float("nan")
    orig_abs = [abs(c["price"][REFERENCE] - c["original"]["price"]) for c in cars]
    orig_agree = [c["top1"][REFERENCE] == c["original"]["top1"] for c in cars]
    return {
        "n_cars": len(cars),
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
        "mean_reference_price": mean_or_nan(c["price"][REFERENCE] for c in cars),
        "per_background": per_bg,
    }


def write_report(args: StudyArgs, predictor_line: str, note: str, data: dict[str, Any],
                 backgrounds: Sequence[Background]) -> None:
    s = data["summary"]
    pb, ro = s["photo_backgrounds"], s["reference_vs_original"]
    rep = Report(NAME, "Study: background intervention (same car, different backgrounds)", args.out)
    rep.data = data
    rep.para(predictor_line)
    rep.para(f"Photos: {note}")
    rep.para(f"Each car photo (already cropped to the car) is scaled to {CAR_WIDTH:.0%} of a "
             f"{CANVAS[0]}x{CANVAS[1]} frame and pasted, bottom at {CAR_BOTTOM:.0%} of the height, onto "
             f"each background; the whole frame is predicted. Reference: the same paste onto "
             f"{REFERENCE}. The car's own pixels are identical in every frame, so any change comes "
             f"from the surroundings. (The pasted rectangle keeps the few background pixels that "
             f"were inside the car's bounding box.)")
    rep.para("Backgrounds used:")
    rep.bullets(licence_lines(list(backgrounds)))
    rep.heading("Summary")
    rep.bullets([
        f"Cars: {s['n_cars']}; real photo backgrounds: {s['n_photo_backgrounds']}.",
        f"Over all car x photo-background pairs, absolute change in median price against the grey "
        f"reference: mean {dollars(pb['mean_abs_change'])}, median {dollars(pb['median_abs_change'])} "
        f"(median relative change {pct(pb['median_rel_change'])}; mean reference price "
        f"{dollars(s['mean_reference_price'])}).",
        f"Top-1 make/model agreement with the grey reference: {pct(pb['top1_agreement'])}.",
        f"Per car, highest / lowest price across the photo backgrounds: median ratio "
        f"{s['median_price_spread_across_photo_backgrounds']:.2f}.",
        f"Variance of log price across backgrounds (mean over cars) / variance across cars: "
        f"{s['log_price_var_within_car']:.4f} / {s['log_price_var_between_cars']:.4f} = "
        f"{s['background_to_car_variance_ratio']:.2f} (0: only the car matters).",
        f"Framing alone (grey paste vs the original photo): mean absolute change "
        f"{dollars(ro['mean_abs_change'])}, median {dollars(ro['median_abs_change'])}, top-1 "
        f"agreement {pct(ro['top1_agreement'])}.",
    ])
    rep.heading("Per background (against the grey reference)")
    rows = [[n, v["kind"], dollars(v["mean_abs_change"]), dollars(v["median_abs_change"]),
             pct(v["median_rel_change"]), pct(v["top1_agreement"]), dollars(v["mean_price"])]
            for n, v in sorted(s["per_background"].items(), key=lambda kv: -kv[1]["mean_abs_change"])]
    rep.table(["background", "kind", "mean abs change", "median abs change", "median rel. change",
               "top-1 agreement", "mean price"], rows)
    rep.figure(per_background_figure(data), "per_background",
               "Median relative price change and top-1 agreement against the grey reference, by background.")
    rep.figure(example_figure(data, args, backgrounds), "example",
               "One car on several backgrounds, with the predicted median price and top-1 make/model.")
    rep.write()


def per_background_figure(data: dict[str, Any]) -> plt.Figure:
    per = data["summary"]["per_background"]
    names = sorted(per, key=lambda n: -per[n]["median_rel_change"])
    y = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.28 * len(names) + 1.2), sharey=True, constrained_layout=True)
    axes[0].barh(y, [100 * per[n]["median_rel_change"] for n in names],
                 color=["C0" if per[n]["kind"] == "photo" else "C7" for n in names])
    axes[0].set(yticks=y, yticklabels=names, xlabel="median |price change| vs grey (%)")
    axes[0].invert_yaxis()
    axes[1].barh(y, [per[n]["top1_agreement"] for n in names], color="C1")
    axes[1].set(xlabel="top-1 agreement with grey", xlim=(0, 1))
    return fig


def example_figure(data: dict[str, Any], args: StudyArgs, backgrounds: Sequence[Background]) -> plt.Figure:
    car = data["cars"][0]
    with Image.open(args.data / car["file"]) as im:
        img = im.convert("RGB")
    shown = [b for b in backgrounds if b.name == REFERENCE]
    shown += [b for b in backgrounds if b.name != REFERENCE][:EXAMPLE_BACKGROUNDS - 1]
    cols = 3
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(9, 2.4 * rows), squeeze=False, constrained_layout=True)
    for ax in axes.flat:
        ax.axis("off")
    for ax, b in zip(axes.flat, shown, strict=False):
        ax.imshow(composite(img, b.image).resize((CANVAS[0] // 2, CANVAS[1] // 2)))
        ax.set_title(f"{b.name}: {dollars(car['price'][b.name])}\n{car['top1'][b.name][:34]}", fontsize=7)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(NAME, __doc__.splitlines()[0], argv, default_limit=DEFAULT_LIMIT)
    run(args)
    print(f"wrote {args.out / (NAME + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
