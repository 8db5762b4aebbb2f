"""A model file's session that also returns one of its inner tensors (the pooled features the
heads read), for the heads fitted on a finished model file (training/whole_car.py,
training/make_head.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.modelfile import ModelMetadata, open_session


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
