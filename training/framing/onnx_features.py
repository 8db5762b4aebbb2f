"""A model file's session that also returns one of its inner tensors (the pooled features the
heads read), for the heads fitted on a finished model file (training/framing/whole_car.py,
training/framing/make_head.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from core.modelfile import ModelMetadata, open_session

T = TypeVar("T")


def session_with_tensor(model_path: Path, tensor_of: Callable[[Any], str],
                        threads: int = 2) -> tuple[Any, ModelMetadata]:
    """(session, metadata): the model file's ONNX Runtime session whose last output is the
    tensor ``tensor_of(onnx model)`` names; the metadata read and checked as the app does."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(model_path))
    m.graph.output.append(onnx.helper.make_tensor_value_info(tensor_of(m), onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    return sess, open_session(model_path, threads=1)[1]


def in_batches(items: Iterable[T], batch: int, what: str = "samples", every: int = 20) -> Iterator[list[T]]:
    """``items`` in lists of ``batch`` (the last one shorter), printing how many went by and the
    rate every ``every`` batches (feature passes over thousands of photos take minutes)."""
    chunk: list[T] = []
    n, t0 = 0, time.perf_counter()
    for item in items:
        chunk.append(item)
        if len(chunk) == batch:
            yield chunk
            chunk = []
            n += batch
            if n % (batch * every) == 0:
                print(f"  {n} {what}, {n / (time.perf_counter() - t0):.0f}/s", flush=True)
    if chunk:
        yield chunk
