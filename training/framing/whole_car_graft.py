"""Graft a trained whole-car head into a framed model file: its first layer reads the pooled trunk
features, the feature map's 3x3 blocks, or the pooled vector and the inner blocks' means (the
head's ``reads``); the ops added are ones a model file may hold (core/graphcheck.py), and every
other output stays bit for bit (``parity``).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training.framing import whole_car_data as wd

CAR_OUTPUT = "car_logit"
WHOLE_OUTPUT = "whole_car_logit"


class Head(Protocol):
    """What is grafted (whole_car_head.Head): the two layers' weights and what the first reads."""

    @property
    def w0(self) -> np.ndarray: ...
    @property
    def b0(self) -> np.ndarray: ...
    @property
    def w1(self) -> np.ndarray: ...
    @property
    def b1(self) -> np.ndarray: ...
    @property
    def reads(self) -> str: ...


def graft(model_path: Path, head: Head, th: dict[str, float], out: Path, note: str,
          drop_rules: bool = False) -> None:
    """``model_path`` with its whole-car branch replaced by ``head`` (two outputs), the framing
    spec's thresholds and car output set; everything else in the graph unchanged.  With
    ``drop_rules`` the part rule and second look, decided for the old head, are taken out (the
    recipe's next steps decide them again for this one)."""
    import onnx
    from onnx import helper, numpy_helper

    from core.modelfile import open_session, write_model_file

    model = onnx.load(str(model_path))
    g = model.graph
    _read_pooled(model)
    if head.reads == "grid":
        _read_grid(model, _feature_map_shape(model_path))
    elif head.reads == "inner":
        _read_inner(model)
    inits = {i.name: i for i in g.initializer}
    for name, arr in (("framing/whole.0.weight", head.w0), ("framing/whole.0.bias", head.b0),
                      ("framing/whole.2.weight", head.w1), ("framing/whole.2.bias", head.b1)):
        if name not in inits:
            raise ValueError(f"{model_path}: no {name} in the graph (not a framed model file)")
        inits[name].CopyFrom(numpy_helper.from_array(arr.astype(np.float32), name))
    last = next(n for n in g.node if n.op_type == "Gemm" and n.input[1] == "framing/whole.2.weight")
    tail = [n for n in g.node if last.output[0] in n.input]
    for n in tail:  # the old Squeeze to whole_car_logit (and, on a second graft, the Gathers)
        g.node.remove(n)
    for out_name, j in ((WHOLE_OUTPUT, 0), (CAR_OUTPUT, 1)):
        idx = f"framing/{out_name}_index"
        if idx not in inits:
            g.initializer.append(numpy_helper.from_array(np.asarray(j, dtype=np.int64), idx))
        g.node.append(helper.make_node("Gather", [last.output[0], idx], [out_name], axis=1,
                                       name=f"framing/{out_name}_gather"))
    if CAR_OUTPUT not in [o.name for o in g.output]:
        g.output.append(helper.make_tensor_value_info(CAR_OUTPUT, onnx.TensorProto.FLOAT, ["batch"]))
    used = {x for n in g.node for x in n.input}
    for n in [n for n in g.node if n.op_type == "Constant" and not set(n.output) & used]:
        g.node.remove(n)
    onnx.checker.check_model(model)
    _, meta = open_session(model_path, threads=1)
    assert meta.framing is not None
    framing = dataclasses.replace(meta.framing, threshold=th["threshold"], unsure_below=th["unsure_below"],
                                  car_output=CAR_OUTPUT, car_threshold=th["car_threshold"], note=note,
                                  sources=with_natural_sources(meta.framing.sources))
    if drop_rules:
        framing = dataclasses.replace(framing, part_weights=(), part_bias=0.0, second_look=False,
                                      second_look_min_top=0.0)
    metrics = {k: v for k, v in meta.metrics.items() if k != "framing"}
    new_meta = dataclasses.replace(meta, framing=framing, metrics=metrics)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "graph.onnx"
        onnx.save(model, str(raw))
        write_model_file(raw, new_meta, out)


GRID_INPUT = "framing/whole_grid"  # (N, 9 C): the feature map's 3x3 block means, row by row


def _read_grid(model: Any, fmap_shape: tuple[int, int, int]) -> None:
    """Make the whole-car branch's first layer read the feature map's 3x3 block means (row by
    row, each block's C channels: whole_car.grid_means) instead of the pooled vector: a Reshape
    into blocks, a ReduceMean over each, a Transpose and a Reshape (ops a model file may hold),
    added once. ``fmap_shape``: the map's (C, H, W)."""
    from onnx import helper, numpy_helper

    from training.framing.whole_car import (
        GRID,
        GRID_BLOCKS_NODE,
        feature_map_name,
        whole_branch_gemm,
    )

    g = model.graph
    first = whole_branch_gemm(model)
    if first.input[0] == GRID_INPUT:
        return
    c, h, w = fmap_shape
    if h % GRID or w % GRID:
        raise ValueError(f"a {h}x{w} feature map does not split into {GRID}x{GRID} blocks")
    blocks, flat = "framing/whole_grid_blocks_shape", "framing/whole_grid_shape"
    g.initializer.extend([
        numpy_helper.from_array(np.asarray([0, c, GRID, h // GRID, GRID, w // GRID], dtype=np.int64), blocks),
        numpy_helper.from_array(np.asarray([0, GRID * GRID * c], dtype=np.int64), flat)])
    nodes = [helper.make_node("Reshape", [feature_map_name(model), blocks], ["framing/whole_grid_blocks"],
                              name=GRID_BLOCKS_NODE),
             helper.make_node("ReduceMean", ["framing/whole_grid_blocks"], ["framing/whole_grid_means"],
                              axes=[3, 5], keepdims=0, name="framing/whole_grid_means"),
             helper.make_node("Transpose", ["framing/whole_grid_means"], ["framing/whole_grid_nhwc"],
                              perm=[0, 2, 3, 1], name="framing/whole_grid_nhwc"),
             helper.make_node("Reshape", ["framing/whole_grid_nhwc", flat], [GRID_INPUT], name="framing/whole_grid")]
    at = list(g.node).index(first)
    for k, n in enumerate(nodes):
        g.node.insert(at + k, n)
    first.input[0] = GRID_INPUT




def _read_inner(model: Any) -> None:
    """Make the whole-car branch's first layer read the pooled vector and the inner blocks' means
    (inner_inputs): a GlobalAveragePool and a Flatten per block and one Concat, added once."""
    from onnx import helper

    from training.framing.whole_car import (
        INNER_INPUT,
        INNER_TENSORS,
        pooled_name,
        whole_branch_gemm,
    )

    g = model.graph
    first = whole_branch_gemm(model)
    have = {o for n in g.node for o in n.output}
    nodes, parts = [], [pooled_name(model)]
    for i, name in enumerate(INNER_TENSORS):
        if name not in have:
            raise ValueError(f"no {name} in the graph: not a MobileNetV2 trunk as torch.onnx exports it")
        pooled, flat = f"{INNER_INPUT}_pool{i}", f"{INNER_INPUT}_flat{i}"
        nodes += [helper.make_node("GlobalAveragePool", [name], [pooled], name=pooled),
                  helper.make_node("Flatten", [pooled], [flat], axis=1, name=flat)]
        parts.append(flat)
    nodes.append(helper.make_node("Concat", parts, [INNER_INPUT], axis=1, name=INNER_INPUT))
    at = list(g.node).index(first)
    for k, n in enumerate(nodes):
        g.node.insert(at + k, n)
    first.input[0] = INNER_INPUT


def _read_pooled(model: Any) -> None:
    """Make the whole-car branch's first layer read the pooled vector again where an earlier graft
    had it read the blocks or the inner blocks (whose nodes, then unused, are dropped)."""
    from training.framing.whole_car import INNER_INPUT, pooled_name, whole_branch_gemm

    g = model.graph
    first = whole_branch_gemm(model)
    if first.input[0] not in (GRID_INPUT, INNER_INPUT):
        return
    first.input[0] = pooled_name(model)  # the mean of the map over its cells
    for n in [n for n in g.node if n.name.startswith(("framing/whole_grid", INNER_INPUT))]:
        g.node.remove(n)
    for i in [i for i in g.initializer if i.name.startswith("framing/whole_grid")]:
        g.initializer.remove(i)


def _feature_map_shape(model_path: Path) -> tuple[int, int, int]:
    """(C, H, W) of the model file's trunk feature map, from one run on a blank input."""
    from training.framing.whole_car import feature_session

    sess, meta = feature_session(model_path, threads=1, grid=True)
    x = np.zeros((1, 3, meta.input.size, meta.input.size), np.float32)
    fmap = sess.run(None, {sess.get_inputs()[0].name: x})[-1]
    return int(fmap.shape[1]), int(fmap.shape[2]), int(fmap.shape[3])


def with_natural_sources(sources: Sequence[dict[str, str]]) -> tuple[dict[str, str], ...]:
    """The framing section's sources with the natural-photos folder's added (once)."""
    names = {s["name"] for s in sources}
    return (*sources, *(s for s in wd.NATURAL_SOURCES if s["name"] not in names))


def parity(a: Path, b: Path, n: int = 8, seed: int = 0) -> float:
    """Largest difference of every output the two files share but the whole-car and car logits."""
    from core.modelfile import open_session

    sa, meta = open_session(a, threads=2)
    sb, _ = open_session(b, threads=2)
    x = np.random.default_rng(seed).normal(0, 1, (n, 3, meta.input.size, meta.input.size)).astype(np.float32)
    names = [o.name for o in sa.get_outputs() if o.name not in (WHOLE_OUTPUT, CAR_OUTPUT)]
    oa = sa.run(names, {sa.get_inputs()[0].name: x})
    ob = sb.run(names, {sb.get_inputs()[0].name: x})
    return float(max(np.abs(p - q).max() for p, q in zip(oa, ob, strict=True)))
