"""Read the parts of an ONNX file that ``core.graphcheck`` checks, straight from protobuf's wire
format (the app ships onnxruntime, not the ``onnx`` package).

Only what the check needs is decoded: the graph's nodes (op type, domain, inputs, outputs,
attributes), its initializers (dims, data type, small values), input names, and whether the file
has model-local functions, training info, sparse tensors or subgraphs (all refused). Any
malformed byte raises :class:`WireError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# TensorProto.DataType -> numpy dtype (little-endian) of raw_data.
DTYPES: dict[int, str] = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?",
                          10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8"}
SMALL = 4096  # values of tensors up to this many elements are decoded (shape arithmetic)


class WireError(ValueError):
    """The bytes are not the protobuf an ONNX model is."""


@dataclass
class Tensor:
    name: str = ""
    dims: tuple[int, ...] = ()
    data_type: int = 0
    value: np.ndarray | None = None  # decoded when small and stored in the file itself
    external: bool = False

    @property
    def count(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n


@dataclass
class Attribute:
    name: str = ""
    value: Any = None  # float, int, bytes, Tensor, list[float] / list[int] / list[bytes]


@dataclass
class Node:
    op_type: str = ""
    domain: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attributes: dict[str, Attribute] = field(default_factory=dict)


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    initializers: list[Tensor] = field(default_factory=list)
    inputs: list[tuple[str, tuple[int | str, ...]]] = field(default_factory=list)  # (name, declared dims)
    outputs: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # parts of the file a CarValue model never has


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int for varints and fixed-size fields, a (start, end)
    span for length-delimited ones."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = _varint(buf, pos, end)
            yield num, wt, v
        elif wt == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise WireError("a field runs past the end of its message")
            yield num, wt, (pos, pos + n)
            pos += n
        elif wt == 5:
            if pos + 4 > end:
                raise WireError("truncated 32-bit field")
            yield num, wt, int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        elif wt == 1:
            if pos + 8 > end:
                raise WireError("truncated 64-bit field")
            yield num, wt, int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        else:
            raise WireError(f"unsupported wire type {wt}")


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf-8", "replace")


def _ints(buf: memoryview, wt: int, v: Any) -> list[int]:
    """A repeated int64 field's values from one occurrence (packed or not)."""
    if wt == 0:
        return [_signed(v)]
    if wt != 2:
        raise WireError(f"an integer field with wire type {wt}")
    out: list[int] = []
    pos, end = v
    while pos < end:
        x, pos = _varint(buf, pos, end)
        out.append(_signed(x))
    return out


def _floats(buf: memoryview, wt: int, v: Any) -> list[float]:
    if wt == 5:
        return [struct.unpack("<f", v.to_bytes(4, "little"))[0]]
    if wt != 2:
        raise WireError(f"a float field with wire type {wt}")
    data = bytes(buf[v[0]:v[1]])
    return list(struct.unpack(f"<{len(data) // 4}f", data[:len(data) // 4 * 4]))


def _doubles(buf: memoryview, wt: int, v: Any) -> list[float]:
    if wt == 1:
        return [struct.unpack("<d", v.to_bytes(8, "little"))[0]]
    if wt != 2:
        raise WireError(f"a double field with wire type {wt}")
    data = bytes(buf[v[0]:v[1]])
    return list(struct.unpack(f"<{len(data) // 8}d", data[:len(data) // 8 * 8]))


def read_tensor(buf: memoryview, start: int, end: int) -> Tensor:
    t = Tensor()
    dims: list[int] = []
    raw: tuple[int, int] | None = None
    typed: list[tuple[int, int, Any]] = []  # (field, wire type, value): decoded once the size is known
    for num, wt, v in fields(buf, start, end):
        if num == 1:
            dims += _ints(buf, wt, v)
        elif num == 2 and wt == 0:
            t.data_type = v
        elif num == 8 and wt == 2:
            t.name = _text(buf, v)
        elif num == 9 and wt == 2:
            raw = v
        elif num == 14 and wt == 0:
            t.external = v == 1
        elif num == 13:
            t.external = True
        elif num in (4, 5, 7, 10, 11):  # float / int32 / int64 / double / uint64 data
            typed.append((num, wt, v))
    if any(d < 0 for d in dims):
        raise WireError(f"tensor {t.name!r} has a negative dimension")
    t.dims = tuple(dims)
    dtype = DTYPES.get(t.data_type)
    if t.external or dtype is None or t.count > SMALL:
        return t
    if raw is not None:
        if raw[1] - raw[0] > SMALL * 8:
            return t
        arr = np.frombuffer(bytes(buf[raw[0]:raw[1]]), dtype=dtype)
    else:
        values: list[float] = []
        for num, wt, v in typed:
            if wt == 2 and v[1] - v[0] > SMALL * 10:  # more bytes than SMALL values take
                return t
            values += _floats(buf, wt, v) if num == 4 else _doubles(buf, wt, v) if num == 10 else _ints(buf, wt, v)
            if len(values) > SMALL:
                return t
        if t.data_type == 10:  # float16 in int32_data holds the bits
            arr = np.array(values, dtype=np.int64).astype(np.uint16).view("<f2")
        else:
            arr = np.array(values).astype(dtype)
    if arr.size == t.count:
        t.value = arr.reshape(t.dims)
    return t


def _attribute(buf: memoryview, start: int, end: int, graph: Graph) -> Attribute:
    a = Attribute()
    floats: list[float] = []
    ints: list[int] = []
    strings: list[bytes] = []
    repeated = False
    for num, wt, v in fields(buf, start, end):
        if num == 1 and wt == 2:
            a.name = _text(buf, v)
        elif num == 2 and wt == 5:
            a.value = _floats(buf, wt, v)[0]
        elif num == 3 and wt == 0:
            a.value = _signed(v)
        elif num == 4 and wt == 2:
            a.value = bytes(buf[v[0]:v[1]])
        elif num == 5 and wt == 2:
            a.value = read_tensor(buf, *v)
        elif num == 7:
            floats += _floats(buf, wt, v)
            repeated = True
        elif num == 8:
            ints += _ints(buf, wt, v)
            repeated = True
        elif num == 9 and wt == 2:
            strings.append(bytes(buf[v[0]:v[1]]))
            repeated = True
        elif num in (6, 11):
            graph.refused.append("a subgraph (control flow: Loop, Scan or If)")
        elif num in (10, 22, 23):
            graph.refused.append("tensor-list or sparse attributes")
    if repeated:
        a.value = floats or ints or strings
    return a


def _node(buf: memoryview, start: int, end: int, graph: Graph) -> Node:
    n = Node()
    for num, wt, v in fields(buf, start, end):
        if wt != 2:
            continue
        if num == 1:
            n.inputs.append(_text(buf, v))
        elif num == 2:
            n.outputs.append(_text(buf, v))
        elif num == 4:
            n.op_type = _text(buf, v)
        elif num == 7:
            n.domain = _text(buf, v)
        elif num == 5:
            attr = _attribute(buf, *v, graph)
            n.attributes[attr.name] = attr
    return n


def _value_info_name(buf: memoryview, start: int, end: int) -> str:
    for num, wt, v in fields(buf, start, end):
        if num == 1 and wt == 2:
            return _text(buf, v)
    return ""


def _sub(buf: memoryview, span: tuple[int, int], number: int) -> tuple[int, int] | None:
    """The span of the first length-delimited field ``number`` inside ``span``."""
    for num, wt, v in fields(buf, *span):
        if num == number and wt == 2:
            return v  # type: ignore[no-any-return]
    return None


def _declared_dims(buf: memoryview, start: int, end: int) -> tuple[int | str, ...]:
    """ValueInfoProto -> TypeProto (2) -> tensor_type (1) -> shape (2) -> dim (1): dim_value (1)
    or dim_param (2); "" for a dimension with neither."""
    span: tuple[int, int] | None = (start, end)
    for number in (2, 1, 2):
        span = _sub(buf, span, number) if span else None
    if span is None:
        return ()
    dims: list[int | str] = []
    for num, wt, v in fields(buf, *span):
        if num != 1 or wt != 2:
            continue
        dim: int | str = ""
        for n2, w2, v2 in fields(buf, *v):
            if n2 == 1 and w2 == 0:
                dim = _signed(v2)
            elif n2 == 2 and w2 == 2:
                dim = _text(buf, v2)
        dims.append(dim)
    return tuple(dims)


def read_graph(buf: memoryview, max_nodes: int) -> Graph:
    """The main graph of the ModelProto in ``buf``."""
    graph = Graph()
    span: tuple[int, int] | None = None
    for num, wt, v in fields(buf, 0, len(buf)):
        if num == 7 and wt == 2:
            span = v
        elif num == 20:
            graph.refused.append("training info")
        elif num == 25:
            graph.refused.append("model-local functions")
    if span is None:
        raise WireError("the file has no graph")
    for num, wt, v in fields(buf, *span):
        if wt != 2:
            continue
        if num == 1:
            if len(graph.nodes) >= max_nodes:
                graph.refused.append(f"more than {max_nodes} nodes")
                break
            graph.nodes.append(_node(buf, *v, graph))
        elif num == 5:
            graph.initializers.append(read_tensor(buf, *v))
        elif num == 15:
            graph.refused.append("sparse initializers")
        elif num == 11:
            graph.inputs.append((_value_info_name(buf, *v), _declared_dims(buf, *v)))
        elif num == 12:
            graph.outputs.append(_value_info_name(buf, *v))
    return graph
