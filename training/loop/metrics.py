"""Losses and held-out metrics for the four heads, each computed only where its label exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from core.modelfile import PriceSpec
from core.pricing import PriceBin, bin_quantile, shown_median
from core.scores import log_softmax
from training.data.dataset import IGNORE, CarPhotos, LabelSpace, collate

TASKS = ("price", "median", "make_model", "year")


@dataclass(frozen=True)
class LossWeights:
    price: float = 1.0
    median: float = 1.0
    make_model: float = 1.0
    year: float = 1.0


def label_counts(cls_targets: torch.Tensor, median_targets: torch.Tensor) -> dict[str, int]:
    """How many photos of a (full) batch carry each label: the denominators of the losses."""
    return {"price": int((cls_targets[:, 0] != IGNORE).sum()),
            "median": int((~torch.isnan(median_targets)).sum()),
            "make_model": int((cls_targets[:, 1] != IGNORE).sum()),
            "year": int((cls_targets[:, 2] != IGNORE).sum())}


def multitask_loss(outputs: tuple[torch.Tensor, ...], cls_targets: torch.Tensor,
                   median_targets: torch.Tensor, counts: dict[str, int], weights: LossWeights,
                   label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of per-task *sums* over the labelled photos of this (micro-)batch divided by
    ``counts`` (labelled photos in the whole batch), so micro-batches add up to the batch mean.
    A task with no labels contributes exactly zero (and zero gradient), never NaN."""
    price_logits, median, mm_logits, year_logits = outputs
    parts: dict[str, torch.Tensor] = {}
    for name, logits, col in (("price", price_logits, 0), ("make_model", mm_logits, 1),
                              ("year", year_logits, 2)):
        target = cls_targets[:, col]
        if counts[name] == 0 or not bool((target != IGNORE).any()):
            parts[name] = logits.sum() * 0.0
            continue
        ce = F.cross_entropy(logits.float(), target, ignore_index=IGNORE, reduction="sum",
                             label_smoothing=label_smoothing)
        parts[name] = ce / counts[name]
    mask = ~torch.isnan(median_targets)
    if counts["median"] == 0 or not bool(mask.any()):
        parts["median"] = median.sum() * 0.0
    else:
        diff = (median.float() - torch.nan_to_num(median_targets, nan=0.0)).abs()
        parts["median"] = torch.where(mask, diff, torch.zeros_like(diff)).sum() / counts["median"]
    total = (weights.price * parts["price"] + weights.median * parts["median"]
             + weights.make_model * parts["make_model"] + weights.year * parts["year"])
    return total, parts


def class_makes(make_models: Sequence[str], make_of: dict[str, str]) -> tuple[tuple[str, ...], torch.Tensor]:
    """(makes, (classes,) index of each make/model class's make, -1 for a class with none: Unknown)."""
    makes = tuple(sorted({make_of[c] for c in make_models if c in make_of}))
    return makes, torch.tensor([makes.index(make_of[c]) if c in make_of else -1 for c in make_models])


def make_loss(mm_logits: torch.Tensor, mm_targets: torch.Tensor, class_make: torch.Tensor, count: int
              ) -> torch.Tensor:
    """Cross-entropy of the make: -log of the make's probability, the sum of its classes' make/model
    probabilities (each make's logit is the log-sum-exp of its classes' logits), summed over the
    photos whose class has a make and divided by ``count`` (the batch's labelled photos, as the
    other losses)."""
    n_makes = int(class_make.max()) + 1
    if n_makes == 0:
        return mm_logits.sum() * 0.0
    cm = class_make.to(mm_logits.device)
    groups = torch.arange(n_makes, device=mm_logits.device)[:, None] == cm[None, :]
    groups = torch.cat([groups, (cm < 0)[None, :]])  # and the classes of no make (Unknown): their own column
    z = mm_logits.float()[:, None, :].masked_fill(~groups[None], float("-inf"))  # (N, makes + 1, classes)
    make_logits = torch.logsumexp(z, dim=-1)  # softmax over these = the classes' probabilities summed by make
    target = torch.where(mm_targets >= 0, class_make.to(mm_targets.device)[mm_targets.clamp(min=0)],
                         torch.full_like(mm_targets, -1))
    keep = target >= 0
    if not bool(keep.any()):
        return mm_logits.sum() * 0.0
    return F.cross_entropy(make_logits[keep], target[keep], reduction="sum") / max(count, 1)


# -- held-out metrics (numpy, from collected outputs) -----------------------------------------
@dataclass
class Collected:
    """Outputs and targets of a whole evaluation pass (numpy, float64 logits)."""

    price_logits: np.ndarray
    median: np.ndarray
    make_model_logits: np.ndarray
    year_logits: np.ndarray
    cls_targets: np.ndarray  # (N, 3): price_bin, make_model, year; IGNORE where unknown
    median_targets: np.ndarray  # (N,), NaN where unknown


def cross_entropy(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    keep = y != IGNORE
    if not keep.any():
        return math.nan
    lp = log_softmax(logits[keep], temperature)
    return float(-lp[np.arange(keep.sum()), y[keep]].mean())


def topk(logits: np.ndarray, y: np.ndarray, k: int) -> float:
    keep = y != IGNORE
    if not keep.any():
        return math.nan
    top = np.argsort(-logits[keep], axis=1, kind="stable")[:, :k]
    return float((top == y[keep, None]).any(axis=1).mean())


def year_within(logits: np.ndarray, y: np.ndarray, years: tuple[str, ...], tol: int) -> float:
    """Share of labelled photos whose predicted year is within ``tol`` years (Unknown never is)."""
    keep = y != IGNORE
    if not keep.any():
        return math.nan
    values = np.array([float(v) if v.isdigit() else math.nan for v in years])
    pred = values[logits[keep].argmax(axis=1)]
    true = values[y[keep]]
    return float(np.nan_to_num(np.abs(pred - true) <= tol, nan=0.0).mean())


def expected_calibration_error(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0,
                               bins: int = 15) -> float:
    keep = y != IGNORE
    if not keep.any():
        return math.nan
    p = np.exp(log_softmax(logits[keep], temperature))
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = pred == y[keep]
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising cross-entropy on (validation) data: golden-section search over
    log T in [log 0.05, log 20] (the NLL is unimodal in T)."""
    keep = y != IGNORE
    if not keep.any():
        return 1.0
    lo, hi = math.log(0.05), math.log(20.0)
    g = (math.sqrt(5) - 1) / 2
    f = lambda t: cross_entropy(logits[keep], y[keep], math.exp(t))  # noqa: E731
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    return float(math.exp((lo + hi) / 2))


def summarise(c: Collected, labels: LabelSpace) -> dict[str, float]:
    """The headline numbers for a held-out set (NaN where a task has no labels)."""
    y_price, y_mm, y_year = c.cls_targets[:, 0], c.cls_targets[:, 1], c.cls_targets[:, 2]
    out = {
        "price_acc": topk(c.price_logits, y_price, 1),
        "price_ce": cross_entropy(c.price_logits, y_price),
        "make_model_top1": topk(c.make_model_logits, y_mm, 1),
        "make_model_top5": topk(c.make_model_logits, y_mm, 5),
        "make_model_ce": cross_entropy(c.make_model_logits, y_mm),
        "year_exact": topk(c.year_logits, y_year, 1),
        "year_within1": year_within(c.year_logits, y_year, labels.years, 1),
        "year_within2": year_within(c.year_logits, y_year, labels.years, 2),
    }
    keep = ~np.isnan(c.median_targets)
    if keep.any():
        pred = labels.price_spec().to_dollars(c.median[keep])
        true = labels.price_spec().to_dollars(c.median_targets[keep])
        out["median_mae_usd"] = float(np.abs(pred - true).mean())
        out["median_mape"] = float((np.abs(pred - true) / true).mean())
    else:
        out["median_mae_usd"] = out["median_mape"] = math.nan
    return out


def shown_median_errors(c: Collected, labels: LabelSpace, price_temperature: float) -> dict[str, float]:
    """Errors of the median the app shows (``core.pricing.shown_median``: the median head kept
    inside the price histogram's interquartile range at the model file's price temperature),
    of the head alone and of the histogram's own median, and how often the head falls outside
    that range.  Uses core's functions, so the figures are of exactly what users see."""
    keep = ~np.isnan(c.median_targets)
    if not keep.any():
        return {}
    bounds = PriceSpec(edges=tuple(labels.edges)).bounds()
    probs = np.exp(log_softmax(c.price_logits[keep], price_temperature))
    head = labels.price_spec().to_dollars(c.median[keep])
    true = labels.price_spec().to_dollars(c.median_targets[keep])
    shown, hist, outside = [], [], 0
    for h, p in zip(head, probs, strict=True):
        bins = [PriceBin(lo, hi, float(q)) for (lo, hi), q in zip(bounds, p, strict=True)]
        low, high = bin_quantile(bins, 0.25), bin_quantile(bins, 0.75)
        shown.append(shown_median(float(h), low, high))
        hist.append(bin_quantile(bins, 0.5))
        outside += not (low <= h <= high)
    out = {"head_outside_likely_range": outside / len(head)}
    for name, pred in (("shown", np.array(shown)), ("head", head), ("histogram", np.array(hist))):
        out[f"{name}_mae_usd"] = float(np.abs(pred - true).mean())
        out[f"{name}_mape"] = float((np.abs(pred - true) / true).mean())
    return out


# -- running the model over a dataset (the trainer's validation, the evaluation) ----------------
def collect(model: nn.Module, dataset: CarPhotos, indices: Sequence[int], batch_size: int,
            device: torch.device, channels_last: bool = True, size: int | None = None,
            workers: int = 0) -> Collected:
    """Run the (unwrapped) model over ``dataset[indices]`` in eval mode (evaluation view)."""
    was_training = model.training
    model.eval()
    keys = [(i, -1, size or dataset.eval_spec.size) for i in indices]
    loader = DataLoader(dataset, batch_size=batch_size, sampler=keys, num_workers=workers,  # type: ignore[arg-type]
                        collate_fn=collate, pin_memory=device.type == "cuda")
    outs: list[list[np.ndarray]] = [[], [], [], [], [], []]
    with torch.no_grad():
        for x, cls, med in loader:
            x = x.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            with autocast_context(device, True):
                res = model(x)
            for j, t in enumerate(res):
                outs[j].append(t.float().cpu().numpy().astype(np.float64))
            outs[4].append(cls.numpy())
            outs[5].append(med.numpy().astype(np.float64))
    model.train(was_training)
    cat = [np.concatenate(o) if o else np.zeros((0,)) for o in outs]
    return Collected(*cat)


def autocast_context(device: torch.device, enabled: bool, cpu: bool = False) -> Any:
    """bf16 autocast on CUDA when ``enabled``; on CPU only when ``cpu`` (``--cpu-amp``)."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cpu:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()
