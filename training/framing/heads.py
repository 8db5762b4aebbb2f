"""Teach a model file where the car is and whether a crop shows a whole car.

The framing heads (:class:`core.model.FramingHeads`) read the trunk's last feature map.  This
module trains them on that map with the trunk frozen, then grafts them into the model file as
two more outputs (``car_box``, ``whole_car_logit``) with a ``framing`` metadata section: one
forward pass of the same network now also says where the car is.  Training on a frozen trunk
takes minutes on 2 cores, against an hour for a full run, and leaves the classifier's outputs
bit-identical (checked on export).

Samples (each: an image, the car's box as fractions of it or none, whole car yes/no):
- framed (two per photo): a tight Stanford crop composited into a larger frame
  (training/data/compositing.py), the car covering 15-100% of it: box known, whole car.
- found: a framed photo cropped to its car's box moved by up to 8% per side: whole car.
- tight: the Stanford crop itself: box = the whole input, whole car.
- partial: 8-40% of a car's area: no whole car, box not scored.
- non-car: wallpapers, photos, clip art, rendered text, gradients, screenshots, logos
  (training/data/negatives.py), whole or a random region: no whole car, box not scored.
Train/validation samples come from the split's train/val photos with training backgrounds and
negatives; the held-out report uses the split's test photos with held-out backgrounds and
held-out negatives only.

  python -m training.framing.heads build --model resources/models/carvalue.onnx \
      --data ../shared/data/stanford-cars-train --split training/reports/split-model/split.json \
      --out runs/framing
"""
# Over 400 lines: the framing study end to end, sharing the trunk's feature extraction

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.geometry import Box
from core.modelfile import InputSpec, ModelMetadata, open_session
from core.preprocess import crop_resize, normalise
from core.scores import sigmoid
from training.data import compositing as comp

FEATURE_OUTPUT = "feature_map"


@dataclass(frozen=True)
class Sample:
    image: Image.Image
    box: tuple[float, float, float, float] | None  # x0, y0, x1, y1 as fractions of the image
    whole: bool
    kind: str


# -- the trunk's feature map from a model file ---------------------------------------------------
def feature_tensor_name(model: Any) -> str:
    """The tensor the classifier heads pool: the input of the graph's GlobalAveragePool."""
    pools = [n for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    if len(pools) != 1:
        raise ValueError(f"expected one global pool in the graph, found {len(pools)}")
    return str(pools[0].input[0])


def feature_session(model_path: str | os.PathLike[str], threads: int | None = None) -> tuple[Any, ModelMetadata]:
    """An ONNX Runtime session of the model file that also returns its feature map."""
    import onnx
    import onnxruntime as ort

    model = classifier_graph(model_path)
    name = feature_tensor_name(model)
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    _, meta = open_session(model_path, threads=1)
    return sess, meta


def to_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """What the app feeds the network for this image with the crop box on all of it."""
    return normalise(crop_resize(image, Box.full(image.size), spec), spec)


def extract(sess: Any, spec: InputSpec, samples: Iterator[Sample], batch: int = 32,
            pool: ThreadPoolExecutor | None = None) -> dict[str, np.ndarray]:
    """Feature maps (fp16) and targets of every sample."""
    fmaps, boxes, has_box, whole, kinds, logits = [], [], [], [], [], []
    names = [o.name for o in sess.get_outputs()]
    fidx = names.index(feature_tensor_name_of(sess))
    midx = names.index("make_model_logits")
    chunk: list[Sample] = []

    def flush() -> None:
        xs = list(pool.map(lambda s: to_input(s.image, spec), chunk)) if pool else [to_input(s.image, spec) for s in chunk]
        outs = sess.run(None, {sess.get_inputs()[0].name: np.stack(xs)})
        fmaps.append(outs[fidx].astype(np.float16))
        logits.append(outs[midx].astype(np.float32))
        for s in chunk:
            boxes.append(s.box or (0.0, 0.0, 1.0, 1.0))
            has_box.append(s.box is not None)
            whole.append(s.whole)
            kinds.append(s.kind)
        chunk.clear()

    for s in samples:
        chunk.append(s)
        if len(chunk) == batch:
            flush()
    if chunk:
        flush()
    return {"fmap": np.concatenate(fmaps), "box": np.asarray(boxes, np.float32), "has_box": np.asarray(has_box),
            "whole": np.asarray(whole, np.float32), "kind": np.asarray(kinds), "mm_logits": np.concatenate(logits)}


def feature_tensor_name_of(sess: Any) -> str:
    """The feature map: the output ``feature_session`` appended last."""
    return str(sess.get_outputs()[-1].name)


def classifier_graph(model_path: str | os.PathLike[str]) -> Any:
    """The model file's graph with only the classifier's outputs (a format-2 file's framing
    outputs and the nodes that make them dropped), so features and grafts start from the same
    network whether or not it was framed before."""
    import tempfile

    import onnx
    import onnx.utils

    model = onnx.load(str(model_path))
    classifier = ["price_logits", "median", "make_model_logits", "year_logits"]
    if [o.name for o in model.graph.output] == classifier:
        return model
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "classifier.onnx"
        onnx.utils.extract_model(str(model_path), str(out), ["input"], classifier)
        trimmed = onnx.load(str(out))
    trimmed.metadata_props.extend(model.metadata_props)
    return trimmed


# -- samples --------------------------------------------------------------------------------------
def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def norm_box(box: Box, size: tuple[int, int]) -> tuple[float, float, float, float]:
    w, h = size
    return (box.x / w, box.y / h, (box.x + box.w) / w, (box.y + box.h) / h)


class BackgroundPool:
    """Background photos for one split, decoded lazily and cached small (<= 1024 px)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self._cache: dict[int, Image.Image] = {}
        self.last: Path | None = None  # the file the last pick came from (a study's per-background figures)

    def pick(self, rng: np.random.Generator) -> Image.Image | None:
        if not self.files:
            return None
        i = int(rng.integers(len(self.files)))
        self.last = self.files[i]
        if i not in self._cache:
            from training.data.negatives import load_negative

            self._cache[i] = load_negative(self.files[i])
        return self._cache[i]


def car_samples(photos: Sequence[Path], backgrounds: BackgroundPool, seed: int,
                coverage: tuple[float, float] = (0.15, 1.0), framed: int = 1) -> Iterator[Sample]:
    """Per photo: ``framed`` framed composites, then one of found / tight / partial."""
    rng = np.random.default_rng(seed)
    for i, path in enumerate(photos):
        car = _open_rgb(path)
        other = _open_rgb(photos[(i * 7919 + 13) % len(photos)])
        for _ in range(framed):
            recipe = comp.random_recipe(rng, coverage)
            c = comp.compose(car, recipe, rng, backgrounds.pick(rng), [other])
            yield Sample(c.image, norm_box(c.box, c.image.size), True, f"framed-{c.fill}")
        r = rng.uniform()
        if r < 0.35:
            found = comp.jitter_box(c.box, c.image.size, rng)
            crop = c.image.crop((round(found.x), round(found.y), round(found.x + found.w), round(found.y + found.h)))
            rel = Box(c.box.x - round(found.x), c.box.y - round(found.y), c.box.w, c.box.h).clamp(crop.size)
            yield Sample(crop, norm_box(rel, crop.size), True, "found")
        elif r < 0.6:
            yield Sample(car, (0.0, 0.0, 1.0, 1.0), True, "tight")
        else:
            yield Sample(comp.partial_view(car, rng), None, False, "partial")


def non_car_samples(split: str, n_synthetic: int, seed: int, max_per_source: int = 1200,
                    files: bool = True) -> Iterator[Sample]:
    """Installed non-car images (whole, and one random region of each; at most
    ``max_per_source`` files of one source, so thousands of clip-art files do not drown the
    photos) and synthetic graphics."""
    from training.data.negatives import load_negative, negative_files, synthetic_negatives

    rng = np.random.default_rng(seed)
    by_source: dict[str, list[Path]] = {}
    for path, source in negative_files(split):
        by_source.setdefault(source.name, []).append(path)
    chosen = sorted(p for paths in by_source.values()
                    for p in (paths if len(paths) <= max_per_source else
                              [paths[j] for j in sorted(rng.choice(len(paths), max_per_source, replace=False))]))
    for path in chosen if files else []:
        try:
            im = load_negative(path)
        except (OSError, ValueError) as e:
            print(f"skipped {path}: {e}")
            continue
        yield Sample(im, None, False, "non-car")
        w, h = im.size
        cw, ch = max(16, int(w * rng.uniform(0.3, 0.8))), max(16, int(h * rng.uniform(0.3, 0.8)))
        x, y = int(rng.integers(0, max(1, w - cw))), int(rng.integers(0, max(1, h - ch)))
        yield Sample(im.crop((x, y, x + cw, y + ch)), None, False, "non-car-region")
    for im in synthetic_negatives(n_synthetic, seed, split):
        yield Sample(im.convert("RGB"), None, False, "synthetic")


# -- training ---------------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows of two (N, 4) x0, y0, x1, y1 arrays."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def train_heads(train: dict[str, np.ndarray], val: dict[str, np.ndarray], epochs: int = 20, seed: int = 0,
                lr: float = 2e-3, batch: int = 128) -> tuple[Any, list[dict[str, float]]]:
    """AdamW on L1 + GIoU (box, where a car is) + BCE (whole car); returns the heads and a log."""
    import torch
    import torch.nn.functional as F

    from core.model import FramingHeads

    torch.manual_seed(seed)
    heads = FramingHeads()
    opt = torch.optim.AdamW(heads.parameters(), lr=lr, weight_decay=1e-3)
    n = len(train["whole"])
    steps = epochs * math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    pos_weight = torch.tensor(float((1 - train["whole"]).sum() / max(train["whole"].sum(), 1)))
    rng = np.random.default_rng(seed)
    log = []
    for epoch in range(epochs):
        heads.train()
        order = rng.permutation(n)
        t0, total = time.perf_counter(), 0.0
        for s in range(0, n, batch):
            idx = np.sort(order[s:s + batch])
            f = torch.from_numpy(train["fmap"][idx].astype(np.float32))
            tb = torch.from_numpy(train["box"][idx])
            hb = torch.from_numpy(train["has_box"][idx])
            tw = torch.from_numpy(train["whole"][idx])
            box, whole = heads(f)
            loss = F.binary_cross_entropy_with_logits(whole, tw, pos_weight=pos_weight)
            if hb.any():
                loss = loss + 2.0 * (F.l1_loss(box[hb], tb[hb]) + _giou_loss(box[hb], tb[hb]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        m = evaluate_heads(heads, val)
        log.append({"epoch": epoch + 1, "train_loss": total / n, "seconds": time.perf_counter() - t0, **m})
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in log[-1].items()}), flush=True)
    return heads, log


def _giou_loss(a: Any, b: Any) -> Any:
    import torch

    ix = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    iy = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    hull = ((torch.maximum(a[:, 2], b[:, 2]) - torch.minimum(a[:, 0], b[:, 0]))
            * (torch.maximum(a[:, 3], b[:, 3]) - torch.minimum(a[:, 1], b[:, 1])))
    giou = inter / union.clamp(min=1e-6) - (hull - union) / hull.clamp(min=1e-6)
    return (1 - giou).mean()


def head_outputs(heads: Any, data: dict[str, np.ndarray], batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    import torch

    heads.eval()
    boxes, logits = [], []
    with torch.no_grad():
        for s in range(0, len(data["whole"]), batch):
            b, w = heads(torch.from_numpy(data["fmap"][s:s + batch].astype(np.float32)))
            boxes.append(b.numpy())
            logits.append(w.numpy())
    return np.concatenate(boxes), np.concatenate(logits)


def evaluate_heads(heads: Any, data: dict[str, np.ndarray]) -> dict[str, float]:
    box, logit = head_outputs(heads, data)
    hb = data["has_box"]
    iou = box_iou(box[hb], data["box"][hb])
    whole = data["whole"] > 0.5
    pred = logit > 0
    return {"val_box_iou_median": float(np.median(iou)), "val_box_iou_ge_0.8": float((iou >= 0.8).mean()),
            "val_whole_acc": float((pred == whole).mean()), "val_whole_flagged": float((~pred[whole]).mean()),
            "val_non_whole_passed": float(pred[~whole].mean())}


def choose_thresholds(logits: np.ndarray, whole: np.ndarray, kinds: np.ndarray, flag_share: float = 0.02,
                      unsure_share: float = 0.04) -> tuple[float, float]:
    """Score thresholds (sigmoid of the logit) on validation: at most ``flag_share`` of the
    whole cars of each kind (tight crops, framed photos, found boxes) are flagged, and at most
    ``unsure_share`` of them are flagged or shown as unsure.  Per kind, so that no kind of
    photo a user drops in is flagged more than the share (they score differently)."""
    scores = sigmoid(np.asarray(logits, dtype=np.float64))
    groups = {"tight": [], "framed": [], "found": []}
    for s, w, k in zip(scores, whole, kinds, strict=True):
        if w > 0.5:
            groups[str(k).split("-")[0]].append(s)
    present = [np.asarray(v) for v in groups.values() if v]
    flag = min(float(np.quantile(v, flag_share)) for v in present)
    unsure = min(float(np.quantile(v, unsure_share)) for v in present)
    flag = min(max(flag, 1e-3), 0.98)
    return flag, min(max(unsure, flag), 0.99)


# -- grafting the heads into the model file ----------------------------------------------------
def graft(model_path: Path, heads: Any, framing: dict[str, Any], out: Path, flip_tta: bool | None = None) -> None:
    """Write ``out``: the model file with the framing heads fed from its feature map, the
    ``framing`` metadata section added and the format version raised to 2; ``flip_tta``, when
    given, is written into its input spec (else the source file's stands)."""
    import dataclasses
    import tempfile

    import onnx
    import torch
    from onnx import compose

    from core.modelfile import FORMAT_VERSION, FramingSpec, write_model_file

    base = classifier_graph(model_path)
    fname = feature_tensor_name(base)
    _, meta = open_session(model_path, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        hp = Path(tmp) / "heads.onnx"
        heads.eval()
        dummy = torch.zeros(2, 1280, 7, 7)
        torch.onnx.export(heads, (dummy,), str(hp), input_names=[FEATURE_OUTPUT],
                          output_names=["car_box", "whole_car_logit"], opset_version=17, dynamo=False,
                          dynamic_axes={FEATURE_OUTPUT: {0: "batch"}, "car_box": {0: "batch"},
                                        "whole_car_logit": {0: "batch"}})
        head_model = onnx.load(str(hp))
        head_model.ir_version = base.ir_version
        base.graph.output.append(onnx.helper.make_tensor_value_info(fname, onnx.TensorProto.FLOAT, None))
        merged = compose.merge_models(base, head_model, io_map=[(fname, FEATURE_OUTPUT)], prefix2="framing/")
        keep = [o for o in merged.graph.output if o.name != fname]
        del merged.graph.output[:]
        merged.graph.output.extend(keep)
        for o in merged.graph.output:
            if o.name.startswith("framing/"):
                o.name = o.name.removeprefix("framing/")
        for node in merged.graph.node:
            node.output[:] = [x.removeprefix("framing/") if x in ("framing/car_box", "framing/whole_car_logit") else x
                              for x in node.output]
        onnx.checker.check_model(merged)
        raw = Path(tmp) / "merged.onnx"
        onnx.save(merged, str(raw))
        spec = FramingSpec(**framing)
        # Held-out framing figures belong to the heads they measured: a new graft drops them
        # until framing_report --record measures these.
        metrics = {k: v for k, v in meta.metrics.items() if k != "framing"}
        spec_in = meta.input if flip_tta is None else dataclasses.replace(meta.input, flip_tta=flip_tta)
        new_meta = dataclasses.replace(meta, framing=spec, format_version=FORMAT_VERSION, metrics=metrics,
                                       input=spec_in)
        write_model_file(raw, new_meta, out)
    out.chmod(0o644)


def classifier_parity(a: Path, b: Path, x: np.ndarray) -> float:
    """Largest difference of the four classifier outputs between two model files."""
    sa, _ = open_session(a, threads=2)
    sb, _ = open_session(b, threads=2)
    names = ["price_logits", "median", "make_model_logits", "year_logits"]
    oa = sa.run(names, {sa.get_inputs()[0].name: x})
    ob = sb.run(names, {sb.get_inputs()[0].name: x})
    return float(max(np.abs(p - q).max() for p, q in zip(oa, ob, strict=True)))


# -- the build ---------------------------------------------------------------------------------------
def stanford_classes(data: Path) -> dict[str, tuple[str, int]]:
    """file -> (class name as the model file spells it, model year), from labels.csv."""
    from training.data.labels_csv import read_labels_csv

    rows = read_labels_csv(data, ("file", "make", "model", "year"))
    return {r.file: (f"{r.make} {r.model} {r.year}", r.year) for r in rows if r.year is not None}


def split_files(split_json: Path, data: Path) -> dict[str, list[Path]]:
    parts = json.loads(split_json.read_text())["parts"]
    return {k: [data / f for f in v["files"]] for k, v in parts.items()}


def training_backgrounds() -> list[Path]:
    """Backgrounds behind training composites: the training-side photos and wallpapers (a few
    dozen files; graphics too, for variety at the seam), never the held-out ones."""
    from training.data.negatives import background_files, negative_files

    graphics = [p for p, src in negative_files("train") if src.kind == "graphic" and src.name != "openclipart-png"]
    return sorted(set(background_files("train")) | set(graphics))


def choose_margin(model_file: Path, photos: Sequence[Path], labels: dict[str, str], data: Path, seed: int,
                  margins: Sequence[float] = (-0.1, -0.075, -0.05, -0.025, 0.0, 0.025, 0.05)) -> dict[str, Any]:
    """The found-box margin for make/model top-1 on validation photos framed into training
    backgrounds (car at 20-70% of the frame): a classifier that learnt on tight crops only is
    better on a found box drawn a little inside the car.  The found box is also what the app
    shows as the car, so the margin closest to zero whose top-1 is within one standard error of
    the best is chosen (a tighter box must pay more than the noise of a few hundred photos)."""
    from core.predictor import Predictor
    from core.preprocess import photo_from_image

    pred = Predictor.load(model_file, flip_tta=False)
    flipped = Predictor.load(model_file, flip_tta=True)
    bgs = BackgroundPool(training_backgrounds())
    rng = np.random.default_rng(seed)
    hits = {m: 0 for m in margins}
    flip_hits = {m: 0 for m in margins}
    n = 0
    for path in photos:
        truth = labels.get(str(path.relative_to(data)))
        if truth is None:
            continue
        c = comp.compose(_open_rgb(path), comp.random_recipe(rng, (0.2, 0.7), fills=("photo",), long_side=1024),
                         rng, bgs.pick(rng))
        photo = photo_from_image(c.image)
        located = pred.locate(photo)
        if located.box is None:
            continue
        b = located.box
        crops = [Box(b.x - m * b.w, b.y - m * b.h, b.w * (1 + 2 * m), b.h * (1 + 2 * m)).clamp(photo.original_size)
                 for m in margins]
        for m, p, f in zip(margins, pred.predict_crops(photo, crops), flipped.predict_crops(photo, crops), strict=True):
            hits[m] += p.make_models[0].label == truth
            flip_hits[m] += f.make_models[0].label == truth
        n += 1
    top1 = {m: hits[m] / max(n, 1) for m in margins}
    chosen, rule = pick_margin(top1, n)
    flip_top1 = flip_hits[chosen] / max(n, 1)
    return {"margin": chosen, "val_top1_by_margin": {f"{m:+.3f}": v for m, v in top1.items()}, "photos": n,
            "rule": rule, "flip_tta": flip_top1 > top1[chosen],
            "val_flip_top1_by_margin": {f"{m:+.3f}": flip_hits[m] / max(n, 1) for m in margins}}


def pick_margin(top1: dict[float, float], n: int) -> tuple[float, str]:
    """The margin closest to 0 whose top-1 (on ``n`` photos) is within one standard error of
    the best; ties go to the higher top-1."""
    best = max(top1.values())
    se = math.sqrt(best * (1 - best) / max(n, 1))
    chosen = min((m for m in top1 if top1[m] >= best - se), key=lambda m: (abs(m), -top1[m]))
    return chosen, f"closest to 0 within one standard error ({se:.3f}) of the best top-1 ({best:.3f})"


def build(model: Path, data: Path, split_json: Path, out_dir: Path, epochs: int = 20, seed: int = 0,
          n_synthetic: int = 600, limit: int = 0, framed: int = 2, heads_file: Path | None = None) -> dict[str, Any]:
    """Samples -> features -> heads -> grafted model file ``out_dir/carvalue.onnx`` + log."""
    import torch

    from training.data.negatives import SOURCES_LICENCES

    out_dir.mkdir(parents=True, exist_ok=True)
    files = split_files(split_json, data)
    if limit:
        files = {k: v[:limit] for k, v in files.items()}
    torch.set_num_threads(2)
    sess, meta = feature_session(model)
    pool = ThreadPoolExecutor(2)
    t0 = time.perf_counter()
    bg_train = BackgroundPool(training_backgrounds())

    def stream(photos: Sequence[Path], s: int, n_syn: int, negative_files: bool) -> Iterator[Sample]:
        yield from car_samples(photos, bg_train, s, framed=framed)
        yield from non_car_samples("train", n_syn, s, files=negative_files)

    # Validation: the split's val photos with training backgrounds, and synthetic negatives of
    # another seed (the installed negatives are split train/test only; test is for the report).
    cache = out_dir / "features.npz"
    if cache.is_file():
        with np.load(cache) as z:
            train = {k.removeprefix("train_"): z[k] for k in z.files if k.startswith("train_")}
            val = {k.removeprefix("val_"): z[k] for k in z.files if k.startswith("val_")}
    else:
        train = extract(sess, meta.input, stream(files["train"], seed, n_synthetic, True), pool=pool)
        val = extract(sess, meta.input, stream(files["val"], seed + 1, n_synthetic // 4, False), pool=pool)
        np.savez(cache, **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()})
    t_extract = time.perf_counter() - t0
    print(f"features: {len(train['whole'])} train, {len(val['whole'])} val samples in {t_extract:.0f} s", flush=True)
    if heads_file is not None:  # trained already: only the thresholds and the margin are chosen again
        from core.model import FramingHeads

        heads, log = FramingHeads(), []
        heads.load_state_dict(torch.load(heads_file, weights_only=True))
    else:
        heads, log = train_heads(train, val, epochs=epochs, seed=seed)
    _, val_logits = head_outputs(heads, val)
    flag, unsure = choose_thresholds(val_logits, val["whole"], val["kind"])
    torch.save(heads.state_dict(), out_dir / "framing_heads.pt")
    framing = {"threshold": flag, "unsure_below": unsure, "temperature": 1.0, "found_margin": 0.0,
               "sources": tuple(SOURCES_LICENCES),
               "note": ("box and whole-car heads trained on the frozen trunk (training/framing/heads.py): framed "
                        "composites of the split's training photos, tight crops, partial views (8-40% of a car) "
                        "and non-car images and graphics; thresholds on validation samples: at most 2% of the "
                        "whole cars of each kind (tight, framed, found box) flagged, 4% flagged or unsure; the found box's margin chosen on framed "
                        "validation photos")}
    summary = {"samples": {"train": _counts(train), "val": _counts(val)}, "feature_seconds": t_extract,
               "epochs": log, "threshold": flag, "unsure_below": unsure}
    (out_dir / "train_log.json").write_text(json.dumps(summary, indent=1, default=str))
    graft(model, heads, framing, out_dir / "carvalue.onnx")
    labels = {f: name for f, (name, _) in stanford_classes(data).items()}
    summary["margin"] = choose_margin(out_dir / "carvalue.onnx", files["val"], labels, data, seed + 2)
    print(json.dumps(summary["margin"]), flush=True)
    framing["found_margin"] = summary["margin"]["margin"]
    graft(model, heads, framing, out_dir / "carvalue.onnx", flip_tta=summary["margin"]["flip_tta"])
    x = np.stack([to_input(_open_rgb(p), meta.input) for p in (files.get("test") or files["val"])[:16]])
    summary["classifier_parity"] = classifier_parity(model, out_dir / "carvalue.onnx", x)
    (out_dir / "train_log.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _counts(d: dict[str, np.ndarray]) -> dict[str, int]:
    kinds, counts = np.unique(d["kind"], return_counts=True)
    return {str(k): int(c) for k, c in zip(kinds, counts, strict=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.heads", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train the framing heads and graft them into a model file")
    b.add_argument("--model", type=Path, required=True)
    b.add_argument("--data", type=Path, required=True)
    b.add_argument("--split", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--epochs", type=int, default=20)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--synthetic", type=int, default=600)
    b.add_argument("--limit", type=int, default=0, help="photos per split part (smoke runs)")
    b.add_argument("--framed", type=int, default=2, help="framed composites per training photo")
    b.add_argument("--heads", type=Path, help="heads trained already (framing_heads.pt): choose thresholds and margin only")
    a = ap.parse_args(argv)
    summary = build(a.model, a.data, a.split, a.out, a.epochs, a.seed, a.synthetic, a.limit, a.framed, a.heads)
    print(json.dumps({k: v for k, v in summary.items() if k != "epochs"}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
