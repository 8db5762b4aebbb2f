"""Refuse model files whose graph is not the kind a CarValue model is, before ONNX Runtime loads it.

A CarValue model is a feed-forward network: convolutions, a few dense heads, and (in the framing
graft torch exports) a little shape arithmetic. So a graph is refused when it has

- an op outside :data:`ALLOWED_OPS` (control flow such as Loop, Scan and If, custom domains),
  a subgraph, model-local functions, sparse or external tensors of unbounded size;
- an initializer or constant of more than :data:`MAX_CONSTANT` values (:data:`MAX_CONSTANTS` in all);
- a tensor, for any batch of 1 to :data:`MAX_BATCH` photos, larger than :data:`MAX_TENSOR` values
  per photo, or more than :data:`MAX_LIVE` values per photo alive at once.

The last check runs the graph's shapes (not its numbers) for every batch size, so a
ConstantOfShape, Expand, Tile or Range is bounded by the sizes it really makes, and one whose
size depends on numbers the check cannot follow (computed from the photo) is refused.
ONNX Runtime constant-folds while it loads, so the check must come first.
"""
# Over 400 lines: one allow-list of ONNX ops with the small shape rule of each, one table

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core import onnxwire
from core.onnxwire import Graph, Node, Tensor

# Present in resources/models/carvalue.onnx, the test factory's models (training/testmodels.py),
# the framing graft (training/framing/heads.py) and the int8 files training/release/export.py may write.
ALLOWED_OPS = frozenset({
    "Add", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvInteger", "Div",
    "DynamicQuantizeLinear", "Equal", "Expand", "Gather", "Gemm", "GlobalAveragePool",
    "MatMulInteger", "Mul", "Range", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape",
    "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Unsqueeze", "Where",
    # what the same networks export as with other settings (unfolded BatchNorm, plain MatMul)
    "BatchNormalization", "Flatten", "Identity", "MatMul", "Transpose", "Tile",
})
MAX_NODES = 5000
MAX_CONSTANT = 1 << 24  # values in one initializer or Constant (the bundled model's largest: 409,600)
MAX_CONSTANTS = 1 << 26  # values in all of them together (the bundled model: about 3.1 million)
MAX_BATCH = 32  # the most photos the app runs at once (16 crops, doubled by flip TTA)
MAX_TENSOR = 1 << 24  # values per photo in one tensor (the bundled model at 288 px: 2.0 million)
MAX_LIVE = 1 << 25  # values per photo alive at once


class GraphRefused(ValueError):
    """The graph is not one a CarValue model has; the message says what and where."""


class DamagedFile(GraphRefused):
    """The bytes are not a whole ONNX file."""


Info = tuple[tuple[int, ...], np.ndarray | None]  # a tensor's shape and, when small and known, its values
ABSENT: Info = tuple([(), None])  # type: ignore[assignment]  # an optional input left out (its name is "")


def check_model_file(path: str | os.PathLike[str]) -> None:
    """Raise GraphRefused for a graph outside what a CarValue model is (see the module's doc)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            buf = memoryview(mm)
            try:
                graph = onnxwire.read_graph(buf, MAX_NODES)
            except (onnxwire.WireError, RecursionError) as e:
                raise DamagedFile(str(e)) from None
            finally:
                buf.release()
    check_graph(graph)


def check_graph(graph: Graph) -> None:
    if graph.refused:
        raise GraphRefused(f"the graph has {graph.refused[0]}, which a CarValue model never has")
    for node in graph.nodes:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ALLOWED_OPS:
            op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
            raise GraphRefused(f"the graph uses the op {op!r}, which a CarValue model never has "
                               "(control flow and custom ops are refused)")
    constants = [*graph.initializers, *(_constant(n) for n in graph.nodes if n.op_type == "Constant")]
    total = 0
    for t in constants:
        if t.count > MAX_CONSTANT:
            raise GraphRefused(f"the constant {t.name!r} holds {t.count:,} values; the limit is {MAX_CONSTANT:,}")
        total += t.count
    if total > MAX_CONSTANTS:
        raise GraphRefused(f"the graph's constants hold {total:,} values; the limit is {MAX_CONSTANTS:,}")
    known = {t.name for t in graph.initializers}
    feeds = [(name, dims) for name, dims in graph.inputs if name not in known]
    if len(feeds) != 1 or len(feeds[0][1]) != 4 or not all(isinstance(d, int) and 0 < d <= 4096
                                                              for d in feeds[0][1][1:]):
        raise GraphRefused("the graph must have one input of shape (batch, 3, size, size)")
    name, dims = feeds[0]
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for x in node.inputs:
            last_use[x] = i
    for o in graph.outputs:
        last_use[o] = len(graph.nodes)
    fixed: dict[str, Info] = {t.name: (t.dims, t.value) for t in constants}
    for batch in range(1, MAX_BATCH + 1):
        _run_shapes(graph, {**fixed, name: ((batch, *(int(d) for d in dims[1:])), None)}, last_use, batch)


def _constant(node: Node) -> Tensor:
    attr = node.attributes.get("value")
    if attr is not None and isinstance(attr.value, Tensor):
        t = attr.value
    else:
        t = Tensor()
        for key, dtype in (("value_int", np.int64), ("value_ints", np.int64), ("value_float", np.float32),
                           ("value_floats", np.float32)):
            a = node.attributes.get(key)
            if a is not None:
                value = np.asarray(a.value, dtype=dtype)
                t = Tensor(dims=value.shape, data_type=1 if dtype is np.float32 else 7, value=value)
                break
        else:
            raise GraphRefused(f"a Constant node ({node.outputs[:1]}) has no value this check can read")
    t.name = node.outputs[0] if node.outputs else t.name
    return t


def _run_shapes(graph: Graph, env: dict[str, Info], last_use: dict[str, int], batch: int) -> None:
    """Every tensor's shape (and small integer values) for one batch size, from ``env`` (the
    constants and the input); refuse on a tensor past the limits or a shape the check cannot
    follow."""
    counted: dict[str, int] = {}  # tensors the graph makes, alive now, and their sizes
    live = 0
    for i, node in enumerate(graph.nodes):
        if node.op_type == "Constant":
            continue
        for x in node.inputs:
            if x and x not in env:
                raise GraphRefused(f"node {node.outputs[:1]} ({node.op_type}) reads {x!r}, which nothing makes")
        try:
            outs = _infer(node, [env[x] if x else ABSENT for x in node.inputs])
        except (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError) as e:
            raise GraphRefused(f"node {node.outputs[:1]} ({node.op_type}): {e}") from None
        for name, info in zip(node.outputs, outs, strict=False):
            count = math.prod(info[0])
            if count > MAX_TENSOR * batch:
                raise GraphRefused(f"node {name!r} ({node.op_type}) makes a tensor of {count:,} values for "
                                   f"{batch} photo(s); the limit is {MAX_TENSOR:,} a photo")
            env[name] = info
            live += count - counted.get(name, 0)
            counted[name] = count
        if live > MAX_LIVE * batch:
            raise GraphRefused(f"the graph holds {live:,} values at once for {batch} photo(s); "
                               f"the limit is {MAX_LIVE:,} a photo")
        for x in node.inputs:
            if last_use.get(x) == i:
                live -= counted.pop(x, 0)


# -- shape rules ---------------------------------------------------------------------------------
def _attr(node: Node, name: str, default: Any = None) -> Any:
    a = node.attributes.get(name)
    return default if a is None else a.value


def _value(info: Info, what: str) -> np.ndarray:
    if info[1] is None:
        raise ValueError(f"its {what} depends on numbers this check cannot follow")
    return info[1]


def _small(shape: tuple[int, ...], make: Callable[[], np.ndarray | None]) -> np.ndarray | None:
    return make() if math.prod(shape) <= onnxwire.SMALL else None


def _given(ins: Sequence[Info], index: int) -> bool:
    return len(ins) > index and ins[index] is not ABSENT


def _raw_axes(node: Node, ins: Sequence[Info], index: int = 1) -> list[int] | None:
    if _given(ins, index):
        return [int(a) for a in np.ravel(_value(ins[index], "axes"))]
    attr = _attr(node, "axes")
    return None if attr is None else [int(a) for a in attr]


def _axes(node: Node, ins: Sequence[Info], rank: int, index: int = 1) -> list[int] | None:
    raw = _raw_axes(node, ins, index)
    if raw is None:
        return None
    out = [a + rank if a < 0 else a for a in raw]
    if any(not 0 <= a < rank for a in out):
        raise ValueError(f"axes {raw} outside rank {rank}")
    return out


def _elementwise(node: Node, ins: Sequence[Info]) -> list[Info]:
    shapes = [s for s, _ in ins]
    shape = tuple(int(d) for d in np.broadcast_shapes(*shapes))
    values = [v for _, v in ins]
    if any(v is None for v in values):
        return [(shape, None)]
    vals: list[np.ndarray] = [v for v in values if v is not None]
    op = node.op_type
    if op == "Where":
        return [(shape, _small(shape, lambda: np.where(vals[0], vals[1], vals[2])))]
    a, b = vals[0], vals[1]
    if op == "Div" and np.issubdtype(a.dtype, np.integer):
        if np.any(b == 0):
            raise ValueError("integer division by zero")
        return [(shape, _small(shape, lambda: (np.trunc(a / b)).astype(a.dtype)))]
    funcs: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Equal": np.equal}
    f = funcs.get(op)
    if f is None:
        return [(shape, None)]
    with np.errstate(all="ignore"):
        return [(shape, _small(shape, lambda: np.asarray(f(a, b))))]


def _unary(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    if v is None:
        return [(shape, None)] * max(1, len(node.outputs))
    if node.op_type == "Cast":
        dtype = onnxwire.DTYPES.get(int(_attr(node, "to", 1)))
        return [(shape, v.astype(dtype) if dtype else None)]
    if node.op_type == "Identity":
        return [(shape, v)]
    return [(shape, None)] * max(1, len(node.outputs))


def _conv(node: Node, ins: Sequence[Info]) -> list[Info]:
    x, w = ins[0][0], ins[1][0]
    if len(x) < 3 or len(w) != len(x):
        raise ValueError(f"input {x} and weights {w} do not make a convolution")
    spatial = len(x) - 2
    kernel = list(_attr(node, "kernel_shape", None) or w[2:])
    strides = list(_attr(node, "strides", None) or [1] * spatial)
    dil = list(_attr(node, "dilations", None) or [1] * spatial)
    pads = list(_attr(node, "pads", None) or [0] * (2 * spatial))
    auto = _attr(node, "auto_pad", b"NOTSET")
    out = [x[0], w[0]]
    for i in range(spatial):
        if strides[i] <= 0 or dil[i] <= 0:
            raise ValueError("strides and dilations must be positive")
        if auto in (b"SAME_UPPER", b"SAME_LOWER"):
            out.append(-(-x[2 + i] // strides[i]))
        else:
            pad = 0 if auto == b"VALID" else pads[i] + pads[i + spatial]
            out.append((x[2 + i] + pad - (kernel[i] - 1) * dil[i] - 1) // strides[i] + 1)
    if any(d <= 0 for d in out):
        raise ValueError(f"the convolution's output {tuple(out)} is empty")
    return [(tuple(out), None)]


def _gemm(node: Node, ins: Sequence[Info]) -> list[Info]:
    a, b = ins[0][0], ins[1][0]
    if len(a) != 2 or len(b) != 2:
        raise ValueError("Gemm needs two matrices")
    m, k = (a[1], a[0]) if _attr(node, "transA", 0) else a
    k2, n = (b[1], b[0]) if _attr(node, "transB", 0) else b
    if k != k2:
        raise ValueError(f"Gemm of {a} and {b} does not fit")
    return [((m, n), None)]


def _matmul(node: Node, ins: Sequence[Info]) -> list[Info]:
    a, b = ins[0][0], ins[1][0]
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise ValueError(f"MatMul of {a} and {b} does not fit")
    batch = tuple(int(d) for d in np.broadcast_shapes(a[:-2], b[:-2]))
    return [((*batch, a[-2], b[-1]), None)]


def _reduce(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape = ins[0][0]
    axes = _axes(node, ins, len(shape))
    if not axes:
        if axes is not None and _attr(node, "noop_with_empty_axes", 0):
            return [(shape, None)]
        axes = list(range(len(shape)))
    keep = _attr(node, "keepdims", 1)
    out = [1 if i in axes else d for i, d in enumerate(shape)] if keep else \
        [d for i, d in enumerate(shape) if i not in axes]
    return [(tuple(out), None)]


def _reshape(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    target = [int(d) for d in _value(ins[1], "target shape")]
    allowzero = _attr(node, "allowzero", 0)
    out = [shape[i] if d == 0 and not allowzero and i < len(shape) else d for i, d in enumerate(target)]
    total = math.prod(shape)
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise ValueError(f"bad target shape {target}")
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or total % rest:
            raise ValueError(f"cannot reshape {shape} to {target}")
        out[out.index(-1)] = total // rest
    if math.prod(out) != total:
        raise ValueError(f"cannot reshape {shape} to {target}")
    return [(tuple(out), None if v is None else v.reshape(out))]


def _flatten(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape = ins[0][0]
    axis = int(_attr(node, "axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    return [((math.prod(shape[:axis]), math.prod(shape[axis:])), None)]


def _shape(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape = ins[0][0]
    start, end = _attr(node, "start", 0), _attr(node, "end", None)
    dims = np.array(shape[start:end] if end is not None else shape[start:], dtype=np.int64)
    return [(dims.shape, dims)]


def _gather(node: Node, ins: Sequence[Info]) -> list[Info]:
    (data, dv), (idx, iv) = ins[0], ins[1]
    axis = int(_attr(node, "axis", 0))
    axis = axis + len(data) if axis < 0 else axis
    if not 0 <= axis < len(data):
        raise ValueError(f"axis {axis} outside rank {len(data)}")
    out = (*data[:axis], *idx, *data[axis + 1:])
    value = None
    if dv is not None and iv is not None:
        i = np.where(iv < 0, iv + data[axis], iv)
        if np.any((i < 0) | (i >= data[axis])):
            raise ValueError("index out of range")
        value = _small(out, lambda: np.take(dv, i, axis=axis))
    return [(out, value)]


def _slice(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    starts = [int(x) for x in _value(ins[1], "start")]
    ends = [int(x) for x in _value(ins[2], "end")]
    axes = _axes(node, ins, len(shape), 3) if _given(ins, 3) else list(range(len(starts)))
    steps = [int(x) for x in _value(ins[4], "step")] if _given(ins, 4) else [1] * len(starts)
    if axes is None or not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise ValueError("malformed slice")
    out = list(shape)
    index: list[slice] = [slice(None)] * len(shape)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[a] = slice(s, e, st)
        out[a] = len(range(*index[a].indices(shape[a])))
    return [(tuple(out), None if v is None else v[tuple(index)])]


def _concat(node: Node, ins: Sequence[Info]) -> list[Info]:
    shapes = [s for s, _ in ins]
    rank = len(shapes[0])
    axis = int(_attr(node, "axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or any(len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
                                   for s in shapes):
        raise ValueError(f"cannot concatenate {shapes}")
    out = (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:])
    values = [v for _, v in ins]
    value = np.concatenate(values, axis=axis) if all(v is not None for v in values) else None  # type: ignore[arg-type]
    return [(out, value)]


def _unsqueeze(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    raw = _raw_axes(node, ins) or []
    rank = len(shape) + len(raw)
    axes = [a + rank if a < 0 else a for a in raw]
    if any(not 0 <= a < rank for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"bad axes {raw}")
    out = list(shape)
    for a in sorted(axes):
        out.insert(a, 1)
    return [(tuple(out), None if v is None else v.reshape(out))]


def _squeeze(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    axes = _axes(node, ins, len(shape))
    if axes is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    if any(shape[a] != 1 for a in axes):
        raise ValueError(f"cannot squeeze axes {axes} of {shape}")
    out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return [(out, None if v is None else v.reshape(out))]


def _transpose(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    perm = list(_attr(node, "perm", None) or reversed(range(len(shape))))
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"bad permutation {perm}")
    return [(tuple(shape[p] for p in perm), None if v is None else v.transpose(perm))]


def _dims(values: np.ndarray, what: str) -> tuple[int, ...]:
    out = tuple(int(d) for d in np.ravel(values))
    if any(d < 0 for d in out):
        raise ValueError(f"negative {what} {out}")
    return out


def _constant_of_shape(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape = _dims(_value(ins[0], "shape"), "shape")
    fill = _attr(node, "value")
    base = fill.value if isinstance(fill, Tensor) and fill.value is not None else np.zeros(1, np.float32)
    return [(shape, _small(shape, lambda: np.full(shape, np.ravel(base)[0], dtype=base.dtype)))]


def _expand(node: Node, ins: Sequence[Info]) -> list[Info]:
    target = _dims(_value(ins[1], "shape"), "shape")
    out = tuple(int(d) for d in np.broadcast_shapes(ins[0][0], target))
    v = ins[0][1]
    return [(out, None if v is None else _small(out, lambda: np.broadcast_to(v, out).copy()))]


def _tile(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape, v = ins[0]
    reps = _dims(_value(ins[1], "repeats"), "repeats")
    if len(reps) != len(shape):
        raise ValueError("repeats do not match the rank")
    out = tuple(d * r for d, r in zip(shape, reps, strict=True))
    return [(out, None if v is None else _small(out, lambda: np.tile(v, reps)))]


def _range(node: Node, ins: Sequence[Info]) -> list[Info]:
    start, limit, delta = (float(np.ravel(_value(i, "bound"))[0]) for i in ins[:3])
    if delta == 0 or not all(math.isfinite(x) for x in (start, limit, delta)):
        raise ValueError("a range needs finite bounds and a non-zero step")
    n = max(math.ceil((limit - start) / delta), 0)
    if n > MAX_TENSOR * MAX_BATCH:
        raise ValueError(f"a range of {n:,} values")
    dtype = ins[0][1].dtype  # type: ignore[union-attr]
    return [((n,), _small((n,), lambda: np.arange(start, limit, delta).astype(dtype)))]


def _quantize(node: Node, ins: Sequence[Info]) -> list[Info]:
    return [(ins[0][0], None), ((), None), ((), None)]


def _pool(node: Node, ins: Sequence[Info]) -> list[Info]:
    shape = ins[0][0]
    return [((*shape[:2], *(1 for _ in shape[2:])), None)]


def _batchnorm(node: Node, ins: Sequence[Info]) -> list[Info]:
    return [(ins[0][0], None)]


RULES: dict[str, Callable[[Node, Sequence[Info]], list[Info]]] = {
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Equal", "Where"), _elementwise),
    **dict.fromkeys(("Cast", "Clip", "Relu", "Sigmoid", "Softmax", "Identity"), _unary),
    "Conv": _conv, "ConvInteger": _conv, "Gemm": _gemm, "MatMul": _matmul, "MatMulInteger": _matmul,
    "ReduceMean": _reduce, "ReduceSum": _reduce, "Reshape": _reshape, "Flatten": _flatten,
    "Shape": _shape, "Gather": _gather, "Slice": _slice, "Concat": _concat, "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze, "Transpose": _transpose, "ConstantOfShape": _constant_of_shape,
    "Expand": _expand, "Tile": _tile, "Range": _range, "DynamicQuantizeLinear": _quantize,
    "GlobalAveragePool": _pool, "BatchNormalization": _batchnorm,
}


def _infer(node: Node, ins: Sequence[Info]) -> list[Info]:
    if node.op_type == "Constant":
        t = _constant(node)
        return [(t.dims, t.value)]
    rule = RULES.get(node.op_type)
    if rule is None:
        raise ValueError("no shape rule")
    if not ins or ins[0] is ABSENT or any(len(s) > 8 for s, _ in ins):
        raise ValueError("missing inputs or a rank above 8")
    return rule(node, ins)
