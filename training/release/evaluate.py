"""Held-out evaluation of a training run: JSON + Markdown report with plots.

Everything is measured on the run's *test* split (never trained on, never used to fit
anything). The validation split is used to fit what must be fitted after training: the
test-time resize mode ("stretch" vs "center_crop"), per-head softmax temperatures, and the
"does not look like a whole car" confidence threshold. Baselines (majority class from the
training split, the training split's median price) sit beside the model's numbers.

A run with no test part (the shipped model, trained on every photo but the validation part)
gets what validation fits and the non-car checks, and a report that claims no accuracy: its
held-out figures are the same recipe's split run's (training/release/held_out_reference.py).
"""
# Over 400 lines: one held-out evaluation and its report (fits, metrics, baselines, plots)

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.dataset.records import ImageRecord
from core.geometry import Box
from core.model import CarValueNet
from core.modelfile import InputSpec
from core.preprocess import IMAGE_SUFFIXES, ImageLoadError, crop_resize, load_photo, normalise
from core.scores import energy, log_softmax, max_prob
from training.data.dataset import IGNORE, CarPhotos, LabelSpace
from training.formatting import json_safe, pct, usd
from training.loop.metrics import (
    Collected,
    collect,
    cross_entropy,
    expected_calibration_error,
    fit_temperature,
    shown_median_errors,
    summarise,
    topk,
    year_within,
)
from training.loop.trained import Trained, load_trained

CENTER_CROP_FRACTION = 224 / 256  # "resize the short side to 256, take the central 224"
FLAG_RATE = 0.05  # at most this share of held-out car photos may be flagged "not a whole car"


# -- images that are not (whole) cars ----------------------------------------------------------
WALLPAPERS = Path("/usr/share/backgrounds")
# Debian's mate-backgrounds ships these as photographs (flowers, grass, water, a storm); the rest
# of /usr/share/backgrounds (gnome-, ukui-, mate-backgrounds) is drawn or rendered art.
WALLPAPER_PHOTOS = WALLPAPERS / "mate" / "nature"


def non_car_images(folders: Sequence[Path], sklearn_samples: bool = True,
                   exclude: Sequence[Path] = ()) -> list[tuple[str, Image.Image]]:
    """Images that show no car: scikit-learn's two bundled sample photos (when asked) plus
    every readable image under ``folders`` that is not under one of ``exclude``."""
    out: list[tuple[str, Image.Image]] = []
    if sklearn_samples:
        from sklearn.datasets import load_sample_images

        samples = load_sample_images()
        for name, arr in zip(samples.filenames, samples.images, strict=True):
            out.append((f"sklearn:{Path(name).name}", Image.fromarray(arr).convert("RGB")))
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if any(p.is_relative_to(e) for e in exclude):
                continue
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                try:
                    out.append((str(p), load_photo(p).image))
                except ImageLoadError as e:
                    print(f"skipped {e}")
    return out


def default_non_car_sets() -> dict[str, list[tuple[str, Image.Image]]]:
    """Real non-car photos (scikit-learn samples + mate-backgrounds' nature photos) and, apart,
    wallpaper art, whichever of them this machine has."""
    sets = {"real photos (scikit-learn samples, mate-backgrounds nature)":
            non_car_images([WALLPAPER_PHOTOS] if WALLPAPER_PHOTOS.is_dir() else [])}
    if WALLPAPERS.is_dir():
        art = non_car_images([WALLPAPERS], sklearn_samples=False, exclude=[WALLPAPER_PHOTOS])
        if art:
            sets["wallpaper art (gnome/ukui/mate backgrounds)"] = art
    return sets


def partial_views(records: Sequence[ImageRecord], seed: int = 0) -> dict[str, list[Image.Image]]:
    """Heavily cropped parts of held-out car photos (what a crop box on a wheel, a door or a
    corner sees): random 10% and 20% area windows, and the left/right 30% strips."""
    rng = np.random.default_rng(seed)
    views: dict[str, list[Image.Image]] = defaultdict(list)
    for r in records:
        img = load_photo(r.image_path).image
        w, h = img.size
        for name, frac in (("random 10% of area", 0.10), ("random 20% of area", 0.20)):
            side_w, side_h = w * math.sqrt(frac), h * math.sqrt(frac)
            box = Box(float(rng.uniform(0, w - side_w)), float(rng.uniform(0, h - side_h)), side_w, side_h)
            views[name].append(img.crop(_int_box(box)))
        views["left 30% strip"].append(img.crop(_int_box(Box(0, 0, 0.3 * w, h))))
        views["right 30% strip"].append(img.crop(_int_box(Box(0.7 * w, 0, 0.3 * w, h))))
    return dict(views)


def _int_box(b: Box) -> tuple[int, int, int, int]:
    return (round(b.x), round(b.y), max(round(b.x + b.w), round(b.x) + 1), max(round(b.y + b.h), round(b.y) + 1))


@torch.no_grad()
def logits_for_images(model: CarValueNet, images: Sequence[Image.Image], spec: InputSpec,
                      batch: int = 32) -> np.ndarray:
    """Make/model logits of whole images prepared exactly as the app prepares a crop."""
    out = []
    for i in range(0, len(images), batch):
        x = np.stack([normalise(crop_resize(im, Box.full(im.size), spec), spec) for im in images[i:i + batch]])
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        out.append(model(t)[2].double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


# -- the report --------------------------------------------------------------------------------
def evaluate_run(run: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 model_file: str | os.PathLike[str] | None = None, batch: int = 64, limit: int = 0,
                 non_car: dict[str, list[tuple[str, Image.Image]]] | None = None) -> Path:
    """Evaluate the run's last checkpoint; writes ``report.json``, ``report.md`` and PNG plots
    to ``out`` (default ``<run>/eval``) and returns the Markdown path."""
    t = load_trained(run)
    out_dir = Path(out) if out else Path(run) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = t.labels
    test_records, val_records, train_records = t.part("test"), t.part("val"), t.part("train")
    if limit:
        test_records = test_records[:limit]
        val_records = val_records[:limit]
    device = torch.device("cpu")

    def run_set(records: list[ImageRecord], spec: InputSpec) -> Collected:
        ds = CarPhotos(records, labels, spec)
        return collect(t.model, ds, range(len(ds)), batch, device, True)

    # 1. test-time resize mode, chosen on validation
    modes = {"stretch": t.spec("stretch"), "center_crop": t.spec("center_crop", CENTER_CROP_FRACTION)}
    val_by_mode = {m: run_set(val_records, s) for m, s in modes.items()}
    val_top1 = {m: topk(c.make_model_logits, c.cls_targets[:, 1], 1) for m, c in val_by_mode.items()}
    chosen = max(val_top1, key=lambda m: (val_top1[m], m == "stretch"))
    spec = modes[chosen]
    val = val_by_mode[chosen]
    # A run with no test part (the shipped model, trained on every photo but the validation
    # part) has nothing held out to measure: the report then holds what was fitted on validation
    # and the non-car checks, and says so; its held-out figures are those of the split run.
    held_out = bool(test_records)
    test_by_mode = {m: run_set(test_records, s) for m, s in modes.items()} if held_out else {}
    test = test_by_mode.get(chosen)

    # 2. temperatures (validation) and calibration (test)
    heads = {"price": (0, "price_logits"), "make_model": (1, "make_model_logits"), "year": (2, "year_logits")}
    temps, ece = {}, {}
    for head, (col, attr) in heads.items():
        temps[head] = fit_temperature(getattr(val, attr), val.cls_targets[:, col])
        if test is None:
            continue
        logits, y = getattr(test, attr), test.cls_targets[:, col]
        ece[head] = {"before": expected_calibration_error(logits, y),
                     "after": expected_calibration_error(logits, y, temps[head]),
                     "nll_before": cross_entropy(logits, y), "nll_after": cross_entropy(logits, y, temps[head])}

    # 3. baselines from the training split
    base = baselines(train_records, test, labels) if test is not None else {}

    # 4. "does not look like a whole car" (partial views of validation photos when none is held out)
    non_car_sets = default_non_car_sets() if non_car is None else non_car
    conf = confidence_threshold(t, spec, val, test, temps["make_model"], test_records or val_records, non_car_sets)

    report: dict[str, Any] = {
        "run": str(run), "checkpoint": str(t.ckpt.path), "step": t.ckpt.progress.step,
        "split": t.ckpt.meta.get("split"), "held_out": held_out,
        "counts": {"train": len(t.split.train), "val": len(t.split.val), "test": len(t.split.test)},
        "evaluated": {"val": len(val_records), "test": len(test_records)},
        "input": {"size": spec.size, "resize": spec.resize, "crop_fraction": spec.crop_fraction,
                  "mean": list(spec.mean), "std": list(spec.std),
                  "val_make_model_top1_by_mode": val_top1,
                  "test_make_model_top1_by_mode": {m: topk(c.make_model_logits, c.cls_targets[:, 1], 1)
                                                  for m, c in test_by_mode.items()}},
        "test": summarise(test, labels) if test is not None else None, "val": summarise(val, labels),
        "temperatures": temps, "calibration": ece, "baselines": base, "confidence": conf,
        # The median the app shows vs the head alone and the histogram's median (chosen on val).
        "median_estimators": {"val": shown_median_errors(val, labels, temps["price"]),
                              **({"test": shown_median_errors(test, labels, temps["price"])} if test is not None else {})},
        "per_make_top1": per_make_accuracy(test_records, test) if test is not None else {},
        "labels": {"make_models": len(labels.make_models), "years": len(labels.years),
                   "price_meaning": labels.meaning},
    }
    if model_file:
        report["onnx_parity"] = onnx_parity(t, Path(model_file), (test_records or val_records)[:32], spec)
    plots = write_plots(out_dir, test, temps, labels, report["per_make_top1"]) if test is not None else {}
    (out_dir / "report.json").write_text(json.dumps(json_safe(report), indent=1))
    md = out_dir / "report.md"
    md.write_text(markdown(report, plots))
    return md


def baselines(train: Sequence[ImageRecord], test: Collected, labels: LabelSpace) -> dict[str, float]:
    """Majority class of the training split for each classifier; the training split's median
    price as a constant median prediction."""
    tr = labels.encode_all(train)
    out: dict[str, float] = {}
    for name, col, attr in (("price_acc", 0, "price_bin"), ("make_model_top1", 1, "make_model"),
                            ("year_exact", 2, "year")):
        values = [getattr(x, attr) for x in tr if getattr(x, attr) != IGNORE]
        if not values:
            out[f"majority_{name}"] = math.nan
            continue
        majority = Counter(values).most_common(1)[0][0]
        y = test.cls_targets[:, col]
        keep = y != IGNORE
        out[f"majority_{name}"] = float((y[keep] == majority).mean()) if keep.any() else math.nan
        if name == "year_exact":
            fake = np.full((len(y), len(labels.years)), -1e9)
            fake[:, majority] = 0.0
            out["majority_year_within1"] = year_within(fake, y, labels.years, 1)
    prices = [r.price for r in train if r.price is not None]
    keep = ~np.isnan(test.median_targets)
    if prices and keep.any():
        med = float(np.median(prices))
        true = labels.price_spec().to_dollars(test.median_targets[keep])
        out["train_median_price_usd"] = med
        out["train_median_mae_usd"] = float(np.abs(true - med).mean())
        out["train_median_mape"] = float((np.abs(true - med) / true).mean())
    return out


def confidence_threshold(t: Trained, spec: InputSpec, val: Collected, test: Collected | None, temperature: float,
                         test_records: Sequence[ImageRecord],
                         non_car: dict[str, list[tuple[str, Image.Image]]]) -> dict[str, Any]:
    """The max-probability threshold (make/model head, fitted temperature) below which a photo
    is flagged: the 5% quantile on validation car photos; flagged shares reported on test car
    photos (when the run holds any out), partial views of ``test_records``, and real non-car photos."""
    val_scores = max_prob(val.make_model_logits, temperature)
    threshold = float(np.quantile(val_scores, FLAG_RATE, method="lower")) if len(val_scores) else 0.0
    result: dict[str, Any] = {"method": "max_prob", "temperature": temperature, "threshold": threshold,
                              "fit_on": f"{len(val_scores)} validation car photos (5% quantile)",
                              "flagged_val": float((val_scores < threshold).mean()) if len(val_scores) else math.nan,
                              "flagged_test": (float((max_prob(test.make_model_logits, temperature) < threshold).mean())
                                               if test is not None else math.nan)}
    # The alternative score (energy = logsumexp of the logits), thresholded the same way, for
    # comparison in the report; the model file uses max_prob.
    val_energy = energy(val.make_model_logits, temperature)
    e_threshold = float(np.quantile(val_energy, FLAG_RATE, method="lower")) if len(val_energy) else 0.0
    # The app shows sigmoid((energy - threshold) / scale): 0.5 at the threshold, 0.9 at the
    # median validation car photo.
    e_scale = max(float(np.median(val_energy)) - e_threshold, 1e-3) / math.log(9.0) if len(val_energy) else 1.0
    result["energy_alternative"] = {"threshold": e_threshold, "scale": e_scale,
                                    "flagged_test": (float((energy(test.make_model_logits, temperature) < e_threshold).mean())
                                                     if test is not None else math.nan)}
    result["non_car"] = {}
    for set_name, images in non_car.items():
        if not images:
            continue
        logits = logits_for_images(t.model, [im for _, im in images], spec)
        scores = max_prob(logits, temperature)
        result["non_car"][set_name] = {
            "photos": len(images), "flagged": int((scores < threshold).sum()),
            "flagged_share": float((scores < threshold).mean()),
            "per_photo": {n: round(float(s), 4) for (n, _), s in zip(images, scores, strict=True)}}
        result["energy_alternative"][f"{set_name} flagged_share"] = float(
            (energy(logits, temperature) < e_threshold).mean())
    parts = partial_views(test_records[:200])
    result["partial_views"] = {}
    for name, ims in parts.items():
        logits = logits_for_images(t.model, ims, spec)
        s = max_prob(logits, temperature)
        result["partial_views"][name] = {"crops": len(ims), "flagged_share": float((s < threshold).mean())}
        result["energy_alternative"][f"{name} flagged_share"] = float((energy(logits, temperature) < e_threshold).mean())
    return result


def per_make_accuracy(records: Sequence[ImageRecord], c: Collected) -> dict[str, dict[str, float]]:
    by: dict[str, list[bool]] = defaultdict(list)
    pred = c.make_model_logits.argmax(axis=1)
    for r, p, y in zip(records, pred, c.cls_targets[:, 1], strict=True):
        if y != IGNORE:
            by[r.make].append(bool(p == y))
    return {m: {"photos": len(v), "top1": float(np.mean(v))} for m, v in sorted(by.items())}


def onnx_parity(t: Trained, model_file: Path, records: Sequence[ImageRecord], spec: InputSpec) -> dict[str, Any]:
    """Largest absolute difference between torch and ONNX Runtime outputs on the same inputs."""
    from core.predictor import Predictor

    pred = Predictor.load(model_file)
    if pred.metadata.input.size != spec.size:
        raise ValueError(f"{model_file}: input size {pred.metadata.input.size} != run size {spec.size}")
    ds = CarPhotos(list(records), t.labels, pred.metadata.input)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        ref = [o.numpy() for o in t.model(x.contiguous(memory_format=torch.channels_last))]
    got = pred.run_batch(x.numpy())
    names = ("price_logits", "median", "make_model_logits", "year_logits")
    diffs = {n: float(np.abs(np.ravel(got[n]) - np.ravel(r)).max()) for n, r in zip(names, ref, strict=True)}
    return {"photos": len(ds), "max_abs_diff": diffs, "max": max(diffs.values()),
            "top1_agree": float((got["make_model_logits"].argmax(1) == ref[2].argmax(1)).mean())}


# -- plots and Markdown ------------------------------------------------------------------------
def write_plots(out: Path, c: Collected, temps: dict[str, float], labels: LabelSpace,
                per_make: dict[str, dict[str, float]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    # calibration (reliability) curve of the make/model head
    y = c.cls_targets[:, 1]
    keep = y != IGNORE
    if keep.any():
        fig, ax = plt.subplots(figsize=(5, 5))
        for name, temp in (("T = 1", 1.0), (f"T = {temps['make_model']:.2f} (fit on val)", temps["make_model"])):
            p = np.exp(log_softmax(c.make_model_logits[keep], temp))
            conf, correct = p.max(1), p.argmax(1) == y[keep]
            edges = np.linspace(0, 1, 11)
            xs, ys = [], []
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                m = (conf > lo) & (conf <= hi)
                if m.sum() >= 3:
                    xs.append(conf[m].mean())
                    ys.append(correct[m].mean())
            ax.plot(xs, ys, marker="o", label=name)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlabel("confidence (top-1 probability)")
        ax.set_ylabel("accuracy")
        ax.set_title("make/model calibration (test)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "calibration.png", dpi=100)
        plt.close(fig)
        plots["calibration"] = "calibration.png"
    m = ~np.isnan(c.median_targets)
    if m.any():
        true = labels.price_spec().to_dollars(c.median_targets[m])
        pred = labels.price_spec().to_dollars(c.median[m])
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(true, pred, s=6, alpha=0.5)
        lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("label price (USD)")
        ax.set_ylabel("predicted median (USD)")
        ax.set_title("median price, test photos")
        fig.tight_layout()
        fig.savefig(out / "price_scatter.png", dpi=100)
        plt.close(fig)
        plots["price_scatter"] = "price_scatter.png"
    if per_make:
        makes = sorted(per_make, key=lambda k: per_make[k]["top1"])
        fig, ax = plt.subplots(figsize=(7, max(3, 0.18 * len(makes))))
        ax.barh(makes, [per_make[k]["top1"] for k in makes])
        ax.set_xlabel("make/model top-1 (test)")
        ax.set_xlim(0, 1)
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        fig.savefig(out / "per_make.png", dpi=100)
        plt.close(fig)
        plots["per_make"] = "per_make.png"
    return plots


def median_estimator_lines(est: dict[str, dict[str, float]]) -> list[str]:
    """Markdown table: the shown median (head kept inside the histogram's likely range), the
    head alone and the histogram's median, on validation (where it was chosen) and test."""
    if not est.get("test"):
        return []
    lines = ["## Median price shown", "",
             "The app shows the median head's estimate moved into the price histogram's interquartile "
             "(\"likely\") range when it falls outside it "
             f"({pct(est['test']['head_outside_likely_range'])} of test photos).", "",
             "| estimator | val MAE | val MAPE | test MAE | test MAPE |", "| --- | --- | --- | --- | --- |"]
    for name, label in (("shown", "shown (head kept in the likely range)"), ("head", "median head alone"),
                        ("histogram", "histogram median")):
        v, t = est.get("val", {}), est["test"]
        lines.append(f"| {label} | {usd(v.get(f'{name}_mae_usd', math.nan))} | {pct(v.get(f'{name}_mape', math.nan))} "
                     f"| {usd(t[f'{name}_mae_usd'])} | {pct(t[f'{name}_mape'])} |")
    return [*lines, ""]


def markdown(r: dict[str, Any], plots: dict[str, str]) -> str:
    if r.get("test") is None:
        return markdown_fit_only(r)
    t, b, conf = r["test"], r["baselines"], r["confidence"]
    lines = [
        "# Held-out evaluation", "",
        f"Run `{r['run']}`, checkpoint step {r['step']}; split sha256 `{(r['split'] or {}).get('sha256', '?')[:16]}…`;",
        f"photos: {r['counts']['train']} train, {r['evaluated']['val']} validation (fits temperatures, resize "
        f"mode and the confidence threshold), {r['evaluated']['test']} test (everything below).", "",
        f"Input: {r['input']['size']} px, resize `{r['input']['resize']}` (chosen on validation; make/model "
        f"top-1 on val by mode: " + ", ".join(f"{k} {pct(v)}" for k, v in r["input"]["val_make_model_top1_by_mode"].items())
        + "; on test: " + ", ".join(f"{k} {pct(v)}" for k, v in r["input"]["test_make_model_top1_by_mode"].items()) + ").", "",
        "| metric | model | baseline |", "| --- | --- | --- |",
        f"| make/model top-1 | {pct(t['make_model_top1'])} | {pct(b.get('majority_make_model_top1'))} (majority class) |",
        f"| make/model top-5 | {pct(t['make_model_top5'])} | |",
        f"| year exact | {pct(t['year_exact'])} | {pct(b.get('majority_year_exact'))} (majority year) |",
        f"| year within ±1 | {pct(t['year_within1'])} | {pct(b.get('majority_year_within1'))} |",
        f"| year within ±2 | {pct(t['year_within2'])} | |",
        f"| price range accuracy | {pct(t['price_acc'])} | {pct(b.get('majority_price_acc'))} (majority range) |",
        f"| price range cross-entropy | {t['price_ce']:.3f} | |",
        f"| median price MAE | {usd(t['median_mae_usd'])} | {usd(b.get('train_median_mae_usd', math.nan))} (training median {usd(b.get('train_median_price_usd', math.nan))}) |",
        f"| median price MAPE | {pct(t['median_mape'])} | {pct(b.get('train_median_mape', math.nan))} |",
        "", f"Price labels: {r['labels']['price_meaning']}", "",
        *median_estimator_lines(r.get("median_estimators", {})),
        "## Calibration (expected calibration error, 15 bins; temperatures fit on validation)", "",
        "| head | temperature | ECE before | ECE after | NLL before | NLL after |", "| --- | --- | --- | --- | --- | --- |",
    ]
    for head, e in r["calibration"].items():
        lines.append(f"| {head} | {r['temperatures'][head]:.3f} | {pct(e['before'])} | {pct(e['after'])} | "
                     f"{e['nll_before']:.3f} | {e['nll_after']:.3f} |")
    lines += ["", "## \"Does not look like a whole car\"", "",
              f"Score: top make/model probability at temperature {conf['temperature']:.3f}; flagged below "
              f"{conf['threshold']:.4f} (the 5% quantile of {conf['fit_on']}).", "",
              "| photos | flagged |", "| --- | --- |",
              f"| validation cars | {pct(conf['flagged_val'])} |", f"| test cars | {pct(conf['flagged_test'])} |"]
    for name, v in conf.get("partial_views", {}).items():
        lines.append(f"| {name} of {v['crops']} test cars | {pct(v['flagged_share'])} |")
    for set_name, nc in conf.get("non_car", {}).items():
        lines.append(f"| {nc['photos']} {set_name} | {nc['flagged']} ({pct(nc['flagged_share'])}) |")
    alt = conf.get("energy_alternative", {})
    if alt:
        lines += ["", "For comparison, the energy score (logsumexp of the logits) at its own 5% validation quantile flags: "
                  + "; ".join(f"{k.removesuffix(' flagged_share').replace('_', ' ')} {pct(v)}" for k, v in alt.items()
                              if k not in ("threshold", "scale")) + "."]
    if "onnx_parity" in r:
        p = r["onnx_parity"]
        lines += ["", "## torch vs ONNX Runtime", "",
                  f"On {p['photos']} test photos: largest absolute output difference {p['max']:.2e}; "
                  f"top-1 agreement {pct(p['top1_agree'])}."]
    lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in plots.items()]
    pm = r["per_make_top1"]
    worst = sorted(pm, key=lambda k: pm[k]["top1"])[:8]
    lines += ["", "Hardest makes (test top-1): " + ", ".join(f"{k} {pct(pm[k]['top1'])} ({pm[k]['photos']})" for k in worst), ""]
    return "\n".join(lines)


def markdown_fit_only(r: dict[str, Any]) -> str:
    """The report of a run with no test part: what was fitted on validation, and the non-car
    checks (images no run trains on); no accuracy is claimed for it."""
    conf = r["confidence"]
    lines = [
        "# Evaluation of a run with no test part", "",
        f"Run `{r['run']}`, checkpoint step {r['step']}; split sha256 `{(r['split'] or {}).get('sha256', '?')[:16]}…`;",
        f"photos: {r['counts']['train']} train, {r['evaluated']['val']} validation, none held out for testing. "
        "Held-out accuracy cannot be measured on photos the network trained on: report the same recipe's "
        "split run instead.", "",
        f"Input: {r['input']['size']} px, resize `{r['input']['resize']}` (chosen on validation: "
        + ", ".join(f"{k} {pct(v)}" for k, v in r["input"]["val_make_model_top1_by_mode"].items()) + ").", "",
        "Temperatures fit on validation: " + ", ".join(f"{h} {v:.3f}" for h, v in r["temperatures"].items()) + ".", "",
        "## \"Does not look like a whole car\" (threshold fit on validation)", "",
        "| images | flagged |", "| --- | --- |",
    ]
    for name, v in conf.get("partial_views", {}).items():
        lines.append(f"| {name} of {v['crops']} validation cars | {pct(v['flagged_share'])} |")
    for set_name, nc in conf.get("non_car", {}).items():
        lines.append(f"| {nc['photos']} {set_name} | {nc['flagged']} ({pct(nc['flagged_share'])}) |")
    return "\n".join([*lines, ""])
