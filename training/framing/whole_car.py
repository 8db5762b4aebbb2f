"""Retrain a framed model file's whole-car check on natural photos: no car / part of a car / whole car.

The check reads the pooled trunk features (the vector the classifier reads) through a small
MLP.  It used to learn "not a whole car" from graphics and partial views only, and passed half
of natural non-car photos (a panda, a cassette tape): anything photographed on a blurred
background looked like a car pasted into a frame.  Here the same kind of head learns from
natural photos split by category (training/framing/whole_car_data.py), partial views as the pan sweep
and careless boxes cut them, and the installed and drawn negatives, and gets a second output:

- ``whole_car_logit``: the crop shows one whole car (as before: the found box, the tick);
- ``car_logit``: the crop shows a car or part of one (below its threshold: "no car").

Both come from one hidden layer on the pooled features, so a prediction costs what it did
(two small matrix products on a 1280-vector).  The trunk, the classifier and the box head are
untouched: only the whole-car branch of the graph is replaced (checked bit for bit on export).

  python -m training.framing.whole_car build --model resources/models/carvalue.onnx \
      --data ../shared/data/stanford-cars-train --split training/reports/bundled-model-160/split.json \
      --natural ../shared/data/natural-photos --out runs/whole-car
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from training.framing import whole_car_data as wd
from training.framing.heads import BackgroundPool, split_files, to_input, training_backgrounds
from training.framing.onnx_features import in_batches, session_with_tensor

WHOLE_GEMM_WEIGHT = "framing/whole.0.weight"  # the branch's first layer in a framed file


GRID_BLOCKS_NODE = "framing/whole_grid_blocks"  # a grid-reading head's first node (whole_car_graft._read_grid)
INNER_INPUT = "framing/whole_inner"  # an inner-reading head's input (whole_car_graft._read_inner)


def whole_branch_gemm(model: Any) -> Any:
    """The whole-car branch's first layer (the Gemm whose weight is WHOLE_GEMM_WEIGHT)."""
    for node in model.graph.node:
        if node.op_type == "Gemm" and len(node.input) > 1 and node.input[1] == WHOLE_GEMM_WEIGHT:
            return node
    raise ValueError("not a framed model file: no whole-car branch (framing/whole.0.weight) in its graph")


def pooled_name(model: Any) -> str:
    """The pooled feature vector the classifier reads: the whole-car branch's input, or where that
    branch reads the feature map's blocks, the map's mean over its cells."""
    first = whole_branch_gemm(model)
    if first.input[0] == INNER_INPUT:  # the Concat's first part
        return str(next(n for n in model.graph.node if n.output[0] == INNER_INPUT).input[0])
    if not any(n.name == GRID_BLOCKS_NODE for n in model.graph.node):
        return str(first.input[0])
    fmap = feature_map_name(model)
    for n in model.graph.node:
        attrs = {a.name: a for a in n.attribute}
        if (n.op_type == "ReduceMean" and n.input[0] == fmap and "axes" in attrs and "keepdims" in attrs
                and list(attrs["axes"].ints) == [2, 3] and attrs["keepdims"].i == 0):
            return str(n.output[0])
    raise ValueError("no mean of the feature map over its cells in the graph")


def feature_map_name(model: Any) -> str:
    """The trunk's last feature map (N, C, H, W), which the pooled vector is the mean of."""
    for node in model.graph.node:
        if node.name == GRID_BLOCKS_NODE:
            return str(node.input[0])
    pooled = pooled_name(model)
    node = next(n for n in model.graph.node if pooled in n.output)
    if node.op_type not in ("ReduceMean", "GlobalAveragePool"):
        raise ValueError(f"the pooled features come from a {node.op_type}, not a mean over the feature map")
    return str(node.input[0])


# Inner blocks of the MobileNetV2 trunk (as torch.onnx names them), each pooled over its cells for a
# head that reads more than the last, car-tuned layer: blocks 6, 10, 13 and 16 end in a residual Add,
# block 17 in its projection Conv (32 + 64 + 96 + 160 + 320 channels).
INNER_TENSORS = ("/features/features.6/Add_output_0", "/features/features.10/Add_output_0",
                 "/features/features.13/Add_output_0", "/features/features.16/Add_output_0",
                 "/features/features.17/conv/conv.2/Conv_output_0")
INNER_PREFIX = "inner/"


def feature_session(model_path: Path, threads: int = 2, grid: bool = False, inner: bool = False) -> tuple[Any, Any]:
    """A session of the framed model file that also returns the pooled features (last output),
    or with ``grid`` the feature map they are the mean of; with ``inner`` also the INNER_TENSORS'
    means and maxima over their cells (outputs named INNER_PREFIX + mean/max + index)."""
    def tensor(model: Any) -> str:
        if inner:
            add_inner_outputs(model)
        return (feature_map_name if grid else pooled_name)(model)

    return session_with_tensor(model_path, tensor, threads)


def add_inner_outputs(model: Any) -> None:
    """Append to ``model``'s graph outputs each INNER_TENSORS' mean and maximum over its cells
    (INNER_PREFIX + "mean"/"max" + index); a graph without them is refused."""
    import onnx
    from onnx import helper

    have = {o for n in model.graph.node for o in n.output}
    for i, name in enumerate(INNER_TENSORS):
        if name not in have:
            raise ValueError(f"no {name} in the graph: not a MobileNetV2 trunk as torch.onnx exports it")
        for op, what in (("GlobalAveragePool", "mean"), ("GlobalMaxPool", "max")):
            out = f"{INNER_PREFIX}{what}{i}"
            model.graph.node.append(helper.make_node(op, [name], [out], name=out))
            model.graph.output.append(helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None))


GRID = 3  # the feature map's cells pooled in GRID x GRID blocks (a 9x9 map: 3x3 cells each)


def grid_means(fmap: np.ndarray, grid: int = GRID) -> np.ndarray:
    """(N, grid*grid, C) means of the map's blocks, row by row (top-left first); the map's sides
    must divide by ``grid``."""
    n, c, h, w = fmap.shape
    if h % grid or w % grid:
        raise ValueError(f"a {h}x{w} feature map does not split into {grid}x{grid} blocks")
    blocks = fmap.reshape(n, c, grid, h // grid, grid, w // grid).mean(axis=(3, 5))
    return blocks.reshape(n, c, grid * grid).transpose(0, 2, 1)


def extract(sess: Any, spec: Any, samples: Iterator[wd.Sample], batch: int = 32,
            pool: ThreadPoolExecutor | None = None) -> dict[str, np.ndarray]:
    """Pooled features (fp16), the old whole-car logit, the make/model logits' energy and top
    probability, and each sample's label, kind and group; where the session's last output is the
    feature map (``feature_session(..., grid=True)``), also its block means (``grid``, fp16); where
    it has the inner blocks' outputs (``inner=True``), their means then maxima (``inner``, fp16)."""
    names = [o.name for o in sess.get_outputs()]
    cols: dict[str, list[Any]] = {k: [] for k in ("feat", "grid", "inner", "old_logit", "energy", "top_prob",
                                                  "label", "kind", "group")}
    inner = [n for n in (f"{INNER_PREFIX}{w}{i}" for w in ("mean", "max") for i in range(len(INNER_TENSORS)))
             if n in names]
    chunk: list[wd.Sample] = []

    def flush() -> None:
        xs = list(pool.map(lambda s: to_input(s.image, spec), chunk)) if pool else [to_input(s.image, spec) for s in chunk]
        outs = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: np.stack(xs)}), strict=True))
        last = outs[names[-1]]
        if last.ndim == 4:  # the feature map: the pooled vector is its mean
            cols["grid"].append(grid_means(last).astype(np.float16))
            last = last.mean(axis=(2, 3))
        cols["feat"].append(last.reshape(len(chunk), -1).astype(np.float16))
        if inner:  # the inner blocks' means, then their maxima
            cols["inner"].append(np.concatenate([outs[n].reshape(len(chunk), -1) for n in inner], axis=1)
                                 .astype(np.float16))
        cols["old_logit"].append(np.ravel(outs["whole_car_logit"]).astype(np.float32))
        z = outs["make_model_logits"].astype(np.float64)
        m = z.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))).ravel()
        cols["energy"].append(lse.astype(np.float32))
        cols["top_prob"].append(np.exp(z.max(axis=1) - lse).astype(np.float32))
        for s in chunk:
            cols["label"].append(s.label)
            cols["kind"].append(s.kind)
            cols["group"].append(s.group)
        chunk.clear()

    for part in in_batches(samples, batch, "samples", 20):
        chunk[:] = part
        flush()
    out = {k: np.concatenate(v) for k, v in cols.items()
           if k in ("feat", "grid", "inner", "old_logit", "energy", "top_prob") and v}
    out["label"] = np.asarray(cols["label"], np.int64)
    out["kind"] = np.asarray(cols["kind"])
    out["group"] = np.asarray(cols["group"])
    return out


def natural_background_pools(nat: dict[str, list[wd.NaturalPhoto]]) -> dict[str, BackgroundPool]:
    """Per part, the natural photos of its own categories with no car in them, to frame that
    part's cars on (never a held-out category's): without them, a natural scene behind a car
    looked like "no car" to the head."""
    return {part: BackgroundPool([p.path for p in nat.get(part, []) if p.kind == "not_car"]) for part in wd.PARTS}


def sample_streams(data: Path, split_json: Path, natural: Path, seed: int, framed: int,
                   limit: int = 0, train_cars: int = 0, natural_backgrounds: bool = False) -> dict[str, Iterator[wd.Sample]]:
    """train / val / test streams.  Cars: the split's train photos to train; its held-out photos
    (whole_car_data.held_out_cars) set the thresholds (val) and are reported (test).  Natural photos by category.  Installed negatives: train / test
    (training/data/negatives.py's own split), drawn graphics of different seeds."""
    from training.framing.heads import non_car_samples as installed_non_car

    files = split_files(split_json, data)
    val_cars, test_cars = wd.held_out_cars(files)
    train = files["train"]
    if train_cars and train_cars < len(train):  # an even spread over the classes' photos
        train = [train[i] for i in np.linspace(0, len(train) - 1, train_cars).round().astype(int)]
    cars = {"train": train, "val": val_cars, "test": test_cars}
    nat = wd.split_by_category(wd.read_natural(natural))
    if limit:
        cars = {k: v[:limit] for k, v in cars.items()}
        nat = {k: v[: limit * 2] for k, v in nat.items()}
    bgs = BackgroundPool(training_backgrounds())

    def background(rng: np.random.Generator) -> Any:
        return bgs.pick(rng)

    natural_bgs = natural_background_pools(nat)

    def installed(part: str, s: int) -> Iterator[wd.Sample]:
        neg_split = "test" if part == "test" else "train"
        use_files = part != "val"  # the installed files are split train/test only
        n_syn = 0 if limit else (600 if part == "train" else 150)
        for x in installed_non_car(neg_split, n_syn, s + 1000, max_per_source=250 if part == "train" else 150,
                                   files=use_files):
            if limit and x.kind != "synthetic":
                continue
            yield wd.Sample(x.image, wd.NO_CAR, f"installed-{x.kind}", "")

    def stream(part: str, s: int) -> Iterator[wd.Sample]:
        yield from wd.car_samples(cars[part], background, s, framed=framed if part == "train" else 2)
        if natural_backgrounds:
            yield from wd.natural_framed_samples(cars[part], natural_bgs[part].pick, s + 3000)
        yield from wd.natural_samples(nat[part], s)
        yield from installed(part, s)
        if part == "train":
            yield from wd.grey_samples(cars[part])
        yield from wd.window_samples(cars[part], background, s + 2000)

    return {part: stream(part, seed + i) for i, part in enumerate(wd.PARTS)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.whole_car", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features", help="extract the samples' pooled features into OUT/features-PART.npz")
    f.add_argument("--model", type=Path, required=True)
    f.add_argument("--data", type=Path, required=True)
    f.add_argument("--split", type=Path, required=True)
    f.add_argument("--natural", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--framed", type=int, default=1)
    f.add_argument("--limit", type=int, default=0, help="car photos per part (smoke runs)")
    f.add_argument("--train-cars", type=int, default=3000, help="training car photos used (0: all)")
    f.add_argument("--parts", default="train,val,test")
    f.add_argument("--natural-backgrounds", action="store_true",
                   help="also frame each car on a natural photo of its part's categories (kind framed-natural; "
                   "tried 2026-12-08, not the shipped head: RESULTS.md)")
    f.add_argument("--grid", action="store_true", help=f"also the feature map's {GRID}x{GRID} block means "
                   "(for a head that sees where in the crop the car is)")
    f.add_argument("--inner", action="store_true", help="also the inner blocks' means and maxima (INNER_TENSORS)")
    a = ap.parse_args(argv)
    if a.cmd == "features":
        a.out.mkdir(parents=True, exist_ok=True)
        sess, meta = feature_session(a.model, grid=a.grid, inner=a.inner)
        streams = sample_streams(a.data, a.split, a.natural, a.seed, a.framed, a.limit, a.train_cars,
                                 natural_backgrounds=a.natural_backgrounds)
        with ThreadPoolExecutor(2) as pool:
            for part in a.parts.split(","):
                t0 = time.perf_counter()
                d = extract(sess, meta.input, streams[part], pool=pool)
                np.savez(a.out / f"features-{part}.npz", **d)
                kinds, counts = np.unique(d["kind"], return_counts=True)
                print(json.dumps({"part": part, "seconds": round(time.perf_counter() - t0),
                                  "samples": dict(zip(kinds.tolist(), counts.tolist(), strict=True))}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
