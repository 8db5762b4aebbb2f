"""Every model-file fault gives one ModelFileError naming the file and the fault."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from core.modelfile import (
    FORMAT_VERSION,
    METADATA_KEY,
    ModelFileError,
    ModelMetadata,
    open_session,
    write_model_file,
)
from core.predictor import Predictor
from tests.modelfactory import random_metadata


def _expect(path: Path, fragment: str) -> None:
    with pytest.raises(ModelFileError) as info:
        Predictor.load(path)
    msg = str(info.value)
    assert str(path) in msg and fragment in msg, msg


def test_roundtrip_metadata(model_file: Path) -> None:
    _, meta = open_session(model_file)
    assert meta == random_metadata()
    assert meta.make_models[-1] == "Unknown" and meta.years[-1] == "Unknown"
    assert meta.format_version == FORMAT_VERSION


def test_missing(tmp_path: Path) -> None:
    _expect(tmp_path / "none.onnx", "not found")


def test_empty(tmp_path: Path) -> None:
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    _expect(p, "empty")


def test_truncated(tmp_path: Path, model_file: Path) -> None:
    p = tmp_path / "trunc.onnx"
    p.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    _expect(p, "truncated or damaged")


def test_not_onnx(tmp_path: Path) -> None:
    p = tmp_path / "photo.onnx"
    p.write_bytes(b"\xff\xd8\xff\xe0 definitely a jpeg" * 10)
    _expect(p, "not an ONNX model")


def _rewrite_metadata(src: Path, dst: Path, value: str | None) -> Path:
    import onnx

    m = onnx.load(str(src))
    del m.metadata_props[:]
    if value is not None:
        e = m.metadata_props.add()
        e.key, e.value = METADATA_KEY, value
    onnx.save(m, str(dst))
    return dst


def test_metadata_missing(tmp_path: Path, model_file: Path) -> None:
    _expect(_rewrite_metadata(model_file, tmp_path / "nometa.onnx", None), "no 'carvalue' metadata")


def test_metadata_not_json(tmp_path: Path, model_file: Path) -> None:
    _expect(_rewrite_metadata(model_file, tmp_path / "bad.onnx", "{not json"), "not valid JSON")


def test_metadata_newer_version(tmp_path: Path, model_file: Path) -> None:
    d = json.loads(random_metadata().to_json())
    d["format_version"] = FORMAT_VERSION + 1
    _expect(_rewrite_metadata(model_file, tmp_path / "new.onnx", json.dumps(d)), "newer than this app supports")


def test_metadata_key_missing(tmp_path: Path, model_file: Path) -> None:
    d = json.loads(random_metadata().to_json())
    del d["years"]
    _expect(_rewrite_metadata(model_file, tmp_path / "noyears.onnx", json.dumps(d)), "missing 'years'")


def test_output_sizes_disagree_with_vocabulary(tmp_path: Path, model_file: Path) -> None:
    meta = random_metadata()
    wrong = replace(meta, make_models=meta.make_models[1:])  # one class fewer than the graph has
    _expect(_rewrite_metadata(model_file, tmp_path / "wrong.onnx", wrong.to_json()), "make_model_logits")
    wrong_bins = replace(meta, price=replace(meta.price, edges=(10e3, 20e3)))
    _expect(_rewrite_metadata(model_file, tmp_path / "bins.onnx", wrong_bins.to_json()), "price_logits")


@pytest.mark.parametrize("field,value,fragment", [
    ("make_models", ["A", "B"], "end with 'Unknown'"),
    ("years", ["2012"], "end with 'Unknown'"),
])
def test_vocabulary_rules(field: str, value: list[str], fragment: str) -> None:
    d = json.loads(random_metadata().to_json())
    d[field] = value
    with pytest.raises(ModelFileError, match=fragment):
        ModelMetadata.from_json(json.dumps(d), "x.onnx")


def test_bad_price_edges_rejected() -> None:
    d = json.loads(random_metadata().to_json())
    d["price"]["edges"] = [20000, 10000]
    with pytest.raises(ModelFileError, match="increasing"):
        ModelMetadata.from_json(json.dumps(d), "x.onnx")


def test_write_is_atomic_and_refuses_graphs_without_our_outputs(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["input"], ["out"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])])
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "id.onnx"
        onnx.save(helper.make_model(graph), str(raw))
        with pytest.raises(ModelFileError, match="lacks outputs"):
            write_model_file(raw, random_metadata(), tmp_path / "out.onnx")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
