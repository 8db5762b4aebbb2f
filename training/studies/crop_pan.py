"""Study 1: a crop box panned along wide (mostly side and three-quarter) views.

For each photo: the whole-photo prediction, then ``Predictor.sweep`` with POSITIONS crops of
WIDTH x full height from the left edge to the right.  Reported per position, over all photos:
the median price relative to the whole photo's, top-1 make/model agreement with the whole
photo, top-1 accuracy against the label, and confidence; plus a few example panels.

Photo choice: Stanford Cars photos are cropped to the car, so a wide aspect ratio means a long
car seen from the side or three-quarters.  Looked at by eye on 8 random photos per band:
1.8-2.2 is mostly three-quarter views, above 2.2 more side-on; MIN_ASPECT = 2.2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from training.formatting import pct, usd
from training.studies.common import (
    CarPhoto,
    StudyArgs,
    load_predictor,
    median_or_nan,
    model_line,
    open_photo,
    pick_cars,
    prob_of,
    study_main,
    truth_label,
)
from training.studies.report import Report

NAME = "crop_pan"
DEFAULT_LIMIT = 400  # car photos (the held-out split has ~730, ~200 of them wide)
MIN_ASPECT = 2.2
POSITIONS = 9
WIDTH = 0.5  # crop width as a fraction of the photo's width (full height)
EXAMPLES = 4


def is_wide(car: CarPhoto) -> bool:
    return car.aspect >= MIN_ASPECT


def run(args: StudyArgs) -> dict[str, Any]:
    predictor = load_predictor(args.model)
    vocab = predictor.metadata.make_models
    k = len(vocab)
    sel = pick_cars(args, predictor, is_wide,
                    f"photos with aspect ratio >= {MIN_ASPECT}")
    photos: list[dict[str, Any]] = []
    for car in sel.cars:
        photo = open_photo(car, args.data)
        full = predictor.predict(photo, top_k=k)
        sweep = predictor.sweep(photo, n=POSITIONS, width=WIDTH, top_k=k)
        truth = truth_label(car, vocab)
        photos.append({
            "file": car.file,
            "truth": truth,
            "full": {"price": full.median_price, "top1": full.top_make_model.label,
                     "top1_prob": full.top_make_model.probability, "confidence": full.confidence},
            "positions": [round(p, 6) for p in sweep.positions],
            "price": [p.median_price for p in sweep.predictions],
            "top1": [p.top_make_model.label for p in sweep.predictions],
            "top1_prob": [p.top_make_model.probability for p in sweep.predictions],
            "full_top1_prob": [prob_of(p, full.top_make_model.label) for p in sweep.predictions],
            "truth_prob": [prob_of(p, truth) if truth else None for p in sweep.predictions],
            "confidence": [p.confidence for p in sweep.predictions],
        })
    summary = summarise(photos)
    data = {"study": NAME, "model": str(args.model), "min_aspect": MIN_ASPECT, "positions": POSITIONS,
            "width": WIDTH, "held_out": sel.held_out, "pool_size": sel.pool_size,
            "summary": summary, "photos": photos}
    write_report(args, predictor_line=model_line(predictor), note=sel.note, data=data)
    return data


def summarise(photos: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ratio = np.array([[p / ph["full"]["price"] for p in ph["price"]] for ph in photos])
    agree = np.array([[t == ph["full"]["top1"] for t in ph["top1"]] for ph in photos])
    conf = np.array([ph["confidence"] for ph in photos])
    labelled = [ph for ph in photos if ph["truth"] is not None]
    correct = np.array([[t == ph["truth"] for t in ph["top1"]] for ph in labelled], dtype=bool)
    full_correct = [ph["full"]["top1"] == ph["truth"] for ph in labelled]
    spread = [max(ph["price"]) / min(ph["price"]) for ph in photos]
    distinct = [len(set(ph["top1"])) for ph in photos]
    return {
        "n_photos": len(photos),
        "n_labelled": len(labelled),
        "per_position": {
            "median_price_ratio": np.median(ratio, axis=0).tolist(),
            "q25_price_ratio": np.quantile(ratio, 0.25, axis=0).tolist(),
            "q75_price_ratio": np.quantile(ratio, 0.75, axis=0).tolist(),
            "top1_agreement": agree.mean(axis=0).tolist(),
            "top1_accuracy": correct.mean(axis=0).tolist() if labelled else [],
            "mean_confidence": conf.mean(axis=0).tolist(),
        },
        "full_top1_accuracy": float(np.mean(full_correct)) if labelled else float("nan"),
        "full_mean_confidence": float(np.mean([ph["full"]["confidence"] for ph in photos])),
        "median_abs_log_price_change": float(np.median(np.abs(np.log(ratio)))),
        "median_sweep_price_spread": median_or_nan(spread),
        "mean_distinct_top1_per_sweep": float(np.mean(distinct)),
        "fraction_sweeps_one_top1": float(np.mean([d == 1 for d in distinct])),
    }


def write_report(args: StudyArgs, predictor_line: str, note: str, data: dict[str, Any]) -> None:
    s = data["summary"]
    pp = s["per_position"]
    rep = Report(NAME, "Study: crop panned along side views", args.out)
    rep.data = data
    rep.para(f"{predictor_line}")
    rep.para(f"Photos: {note} Stanford Cars photos are cropped to the car, so a wide photo shows a "
             f"long car from the side or three-quarters; aspect >= {MIN_ASPECT} was chosen by looking "
             f"at random photos per aspect band (1.8-2.2: mostly three-quarter views).")
    rep.para(f"Each photo: one prediction on the whole photo, then {POSITIONS} crops of "
             f"{WIDTH:.0%} of the width x full height panned from the left edge to the right "
             f"(`Predictor.sweep(photo, n={POSITIONS}, width={WIDTH})`, one batch).")
    rep.heading("Summary")
    rep.bullets([
        f"Photos: {s['n_photos']} ({s['n_labelled']} with a make/model the model knows).",
        f"Whole-photo top-1 make/model accuracy: {pct(s['full_top1_accuracy'])}; "
        f"mean confidence {s['full_mean_confidence']:.3f}.",
        f"Median |log(crop price / whole-photo price)| over all crops: "
        f"{s['median_abs_log_price_change']:.3f} "
        f"(a factor of {np.exp(s['median_abs_log_price_change']):.2f}).",
        f"Median ratio of the highest to the lowest price along one sweep: "
        f"{s['median_sweep_price_spread']:.2f}.",
        f"Distinct top-1 make/models along one sweep: {s['mean_distinct_top1_per_sweep']:.2f} on "
        f"average; {pct(s['fraction_sweeps_one_top1'])} of sweeps keep one top-1 throughout.",
    ])
    rep.heading("Per crop position")
    rows = []
    for i in range(POSITIONS):
        acc = pct(pp["top1_accuracy"][i]) if pp["top1_accuracy"] else "n/a"
        rows.append([f"{i + 1}", f"{pp['median_price_ratio'][i]:.3f}",
                     f"{pp['q25_price_ratio'][i]:.3f}-{pp['q75_price_ratio'][i]:.3f}",
                     pct(pp["top1_agreement"][i]), acc, f"{pp['mean_confidence'][i]:.3f}"])
    rep.table(["position (left to right)", "median price / whole-photo price", "IQR",
               "top-1 = whole photo's", "top-1 accuracy", "mean confidence"], rows)
    rep.figure(aggregate_figure(data), "aggregate",
               "Median price relative to the whole photo (IQR shaded), top-1 agreement/accuracy and "
               "confidence against crop position.")
    rep.figure(examples_figure(data, args), "examples",
               "Example sweeps: crop centres (ticks), median price and the probability of the "
               "whole photo's top-1 make/model at each position; labels where top-1 changes.")
    rep.write()


def aggregate_figure(data: dict[str, Any]) -> plt.Figure:
    pp = data["summary"]["per_position"]
    x = np.arange(1, POSITIONS + 1)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2), constrained_layout=True)
    ax = axes[0]
    ax.plot(x, pp["median_price_ratio"], "o-")
    ax.fill_between(x, pp["q25_price_ratio"], pp["q75_price_ratio"], alpha=0.3)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set(xlabel="crop position (left to right)", ylabel="price / whole-photo price", title="price")
    ax = axes[1]
    ax.plot(x, pp["top1_agreement"], "o-", label="= whole photo's top-1")
    if pp["top1_accuracy"]:
        ax.plot(x, pp["top1_accuracy"], "s-", label="= label (accuracy)")
        ax.axhline(data["summary"]["full_top1_accuracy"], color="grey", ls="--", lw=0.8,
                   label="whole-photo accuracy")
    ax.set(xlabel="crop position", ylabel="fraction of photos", ylim=(0, 1.02), title="make/model top-1")
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(x, pp["mean_confidence"], "o-")
    ax.axhline(data["summary"]["full_mean_confidence"], color="grey", ls="--", lw=0.8, label="whole photo")
    ax.set(xlabel="crop position", ylabel="mean confidence", ylim=(0, 1.02), title="confidence")
    ax.legend(fontsize=7)
    return fig


def examples_figure(data: dict[str, Any], args: StudyArgs) -> plt.Figure:
    from PIL import Image

    photos = data["photos"]  # those the model gets right on the whole photo first
    shown = ([p for p in photos if p["full"]["top1"] == p["truth"]]
             + [p for p in photos if p["full"]["top1"] != p["truth"]])[:EXAMPLES]
    fig, axes = plt.subplots(len(shown), 2, figsize=(9, 2.1 * len(shown)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.3]}, constrained_layout=True)
    for row, ph in zip(axes, shown, strict=False):
        with Image.open(args.data / ph["file"]) as im:
            img = im.convert("RGB")
        row[0].imshow(img)
        row[0].set_xticks([c * img.width for c in ph["positions"]])
        row[0].set_xticklabels([str(i + 1) for i in range(len(ph["positions"]))], fontsize=6)
        row[0].set_yticks([])
        row[0].set_title(f"{ph['file']} (label: {ph['truth'] or 'not in vocabulary'})", fontsize=7)
        x = np.arange(1, len(ph["price"]) + 1)
        ax = row[1]
        ax.plot(x, np.array(ph["price"]) / 1000, "o-", color="C0")
        ax.axhline(ph["full"]["price"] / 1000, color="C0", ls="--", lw=0.8)
        ax.set_ylabel("median price ($k)", color="C0", fontsize=7)
        ax.tick_params(labelsize=6)
        ax2 = ax.twinx()
        ax2.plot(x, ph["full_top1_prob"], "s-", color="C1", ms=3)
        ax2.set_ylim(0, 1)
        ax2.set_ylabel(f"p({ph['full']['top1'][:22]})", color="C1", fontsize=6)
        ax2.tick_params(labelsize=6)
        prev = None
        for i, lab in enumerate(ph["top1"]):
            if lab != prev:
                ax.annotate(lab[:20], (x[i], ph["price"][i] / 1000), fontsize=5, rotation=30,
                            xytext=(2, 4), textcoords="offset points")
            prev = lab
        ax.set_xlabel(f"crop position (whole photo: {usd(ph['full']['price'])}, "
                      f"{ph['full']['top1'][:28]})", fontsize=7)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    return study_main(NAME, __doc__, run, DEFAULT_LIMIT, argv)


if __name__ == "__main__":
    sys.exit(main())
