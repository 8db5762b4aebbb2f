"""Every model-file fault gives one ModelFileError naming the file and the fault."""

from __future__ import annotations

import copy
import io
import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.modelfile import (
    FORMAT_VERSION,
    METADATA_KEY,
    PRICE_CEILING,
    ModelFileError,
    ModelMetadata,
    open_session,
    write_model_file,
)
from core.predictor import Predictor
from training.testmodels import random_metadata


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


# -- malformed metadata: every field, every wrong kind of value ---------------------------------
def _meta_dict() -> dict[str, Any]:
    d = json.loads(random_metadata().to_json())
    d["temperatures"] = {"price": 0.6, "make_model": 0.5, "year": 0.7}
    return d


_MISSING = object()


def _mutated(d: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """``d`` with the field at ``path`` set to ``value`` (or removed: _MISSING); a path through a
    value that is not a container leaves ``d`` as it is."""
    d = copy.deepcopy(d)
    parent: Any = d
    for key in path[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return d
    last = path[-1]
    if isinstance(parent, list) and isinstance(last, int) and -len(parent) <= last < len(parent):
        pass
    elif not (isinstance(parent, dict) and isinstance(last, str)):
        return d
    if value is not _MISSING:
        parent[last] = value
    elif isinstance(parent, list) or last in parent:
        del parent[last]
    return d


_PATHS: list[tuple[str | int, ...]] = [
    ("make_models",), ("make_models", 0), ("years",), ("years", 0), ("format_version",),
    ("architecture",), ("name",), ("created",), ("provenance",), ("metrics",), ("price_model",),
    ("input",), ("input", "size"), ("input", "mean"), ("input", "mean", 1), ("input", "std"),
    ("input", "std", 2), ("input", "resize"), ("input", "crop_fraction"), ("input", "flip_tta"),
    ("price",), ("price", "edges"), ("price", "edges", 0), ("price", "edges", -1), ("price", "log_mean"),
    ("price", "log_std"), ("price", "currency"), ("price", "meaning"),
    ("confidence",), ("confidence", "method"), ("confidence", "threshold"), ("confidence", "scale"),
    ("confidence", "temperature"), ("confidence", "note"),
    ("temperatures",), ("temperatures", "price"), ("temperatures", "make_model"), ("temperatures", "year"),
]
_BAD_VALUES = st.one_of(
    st.sampled_from([_MISSING, None, True, False, 0, -1, 1, 0.0, -0.0, 1e-300, 1e308, -1e308, 10**400,
                     math.nan, math.inf, -math.inf, "", "224", "nan", [], [1, 2], ["a", "b", "c"],
                     [math.nan] * 3, {}, {"a": 1}, "Unknown"]),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**30), 10**30),
    st.text(max_size=5), st.lists(st.floats(-1e6, 1e6), max_size=12),
)


def _all_numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _all_numbers(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _all_numbers(v)]
    return []


@given(edits=st.lists(st.tuples(st.sampled_from(_PATHS), _BAD_VALUES), min_size=1, max_size=3))
@settings(max_examples=60, deadline=None)
def test_fuzzed_metadata_loads_valid_or_raises_model_file_error(
        edits: list[tuple[tuple[str | int, ...], object]]) -> None:
    d = _meta_dict()
    for path, value in edits:
        d = _mutated(d, path, value)
    text = json.dumps(d)  # NaN and Infinity written as JSON's non-standard literals
    try:
        meta = ModelMetadata.from_json(text, "fuzz.onnx")
    except ModelFileError as e:
        assert str(e).startswith("fuzz.onnx: ") and "\n" not in str(e)
        return
    meta.validate("fuzz.onnx")
    assert all(math.isfinite(x) for x in _all_numbers(json.loads(meta.to_json())))
    assert all(t > 0 for t in meta.temperatures.values())
    assert meta.confidence.scale > 0 and meta.confidence.temperature > 0 and meta.price.log_std > 0
    assert isinstance(meta.input.flip_tta, bool)  # never 1, "yes" or None: Predictor branches on it


@pytest.mark.parametrize(("path", "value", "fragment"), [
    (("input", "std"), ["0.5", "0.5", "0.5"], "input.std must be a number"),
    (("input", "mean"), ["a", "b", "c"], "input.mean must be a number"),
    (("input", "size"), "224", "input.size must be an integer"),
    (("price", "edges"), ["10000", "20000"], "price.edges must be a number"),
    (("temperatures",), [1.0, 2.0], "temperatures must be an object"),
    (("temperatures", "price"), 0, "temperature 'price' must be a number in"),
    (("confidence", "scale"), 0, "confidence.scale"),
    (("confidence", "scale"), math.nan, "not a finite number"),
    (("confidence", "temperature"), None, "confidence.temperature must be a number"),
    (("price", "log_mean"), 1e6, "price.log_mean"),
    (("price", "log_std"), 0.0, "price.log_std"),
    (("price", "edges", -1), 1e300, "price edges must stay below"),
    (("make_models",), "Acura,Unknown", "make_models must be a list of strings"),
    (("years", 0), 2012, "years must be a string"),
    (("format_version",), True, "format_version"),
    (("input", "mean", 0), 1e999, "not a finite number"),
])
def test_malformed_metadata_names_the_field(path: tuple[str | int, ...], value: object, fragment: str) -> None:
    with pytest.raises(ModelFileError) as info:
        ModelMetadata.from_json(json.dumps(_mutated(_meta_dict(), path, value)), "x.onnx")
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_huge_integer_or_deep_nesting_is_a_model_file_error() -> None:
    d = _meta_dict()
    text = json.dumps(d)
    for bad in (text.replace('"size": 224', '"size": ' + "9" * 5000),
                text.replace('"metrics": {}', '"metrics": ' + "[" * 100_000 + "]" * 100_000)):
        with pytest.raises(ModelFileError, match="not valid JSON"):
            ModelMetadata.from_json(bad, "x.onnx")


_NUMERIC_PATHS: list[tuple[str | int, ...]] = [
    ("input", "mean", 0), ("input", "std", 1), ("input", "crop_fraction"), ("price", "edges", 0),
    ("price", "edges", -1), ("price", "log_mean"), ("price", "log_std"), ("confidence", "threshold"),
    ("confidence", "scale"), ("confidence", "temperature"), ("temperatures", "price"),
    ("temperatures", "make_model"), ("temperatures", "year"),
]
_NUMBERS = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0, 1e-300, 1e-3, 0.01, 100, 1e4, 20.7, 21.0, 1e8]))


@given(edits=st.lists(st.tuples(st.sampled_from(_NUMERIC_PATHS), _NUMBERS), min_size=1, max_size=4),
       method=st.sampled_from(["max_prob", "energy"]), resize=st.sampled_from(["stretch", "center_crop"]))
@settings(max_examples=40, deadline=None)
def test_metadata_that_loads_gives_finite_predictions(
        model_session: tuple[Any, Path], edits: list[tuple[tuple[str | int, ...], float]],
        method: str, resize: str) -> None:
    d = _meta_dict()
    d["confidence"]["method"], d["input"]["resize"] = method, resize
    for path, value in edits:
        d = _mutated(d, path, value)
    try:
        meta = ModelMetadata.from_json(json.dumps(d), "fuzz.onnx")
    except ModelFileError:
        return
    session, path = model_session
    pred = Predictor(session, meta, path).predict(Image.new("RGB", (96, 64), (90, 120, 150)))
    out = pred.to_dict()
    assert all(math.isfinite(x) for x in _all_numbers(out)), out
    json.dumps(out, allow_nan=False)
    assert 0 < pred.median_price <= PRICE_CEILING and 0 <= pred.confidence <= 1


@pytest.fixture(scope="module")
def model_session(model_file: Path) -> tuple[Any, Path]:
    session, _ = open_session(model_file)
    return session, model_file


def test_a_zero_temperature_file_is_refused_by_the_cli(tmp_path: Path, model_file: Path) -> None:
    """It used to print all-NaN probabilities, a $90,000 median and NaN in the JSON."""
    from core.cli import main

    d = _meta_dict()
    d["temperatures"] = {"price": 0}
    bad = _rewrite_metadata(model_file, tmp_path / "t0.onnx", json.dumps(d))
    photo = tmp_path / "car.png"
    Image.new("RGB", (96, 64), (90, 120, 150)).save(photo)
    out, err = io.StringIO(), io.StringIO()
    assert main([str(photo), "--json", "--model", str(bad)], out, err) == 2
    assert out.getvalue() == "" and len(err.getvalue().strip().splitlines()) == 1
    assert "temperature 'price'" in err.getvalue()


_FRAMING_PATHS: list[tuple[str | int, ...]] = [
    ("framing",), ("framing", "box_output"), ("framing", "whole_car_output"), ("framing", "temperature"),
    ("framing", "threshold"), ("framing", "unsure_below"), ("framing", "found_margin"), ("framing", "sources"),
    ("framing", "sources", 0), ("framing", "note"), ("framing", "part_weights"), ("framing", "part_weights", 1),
    ("framing", "part_bias"), ("framing", "second_look"), ("framing", "second_look_min_top"),
]


@given(edits=st.lists(st.tuples(st.sampled_from(_FRAMING_PATHS), _BAD_VALUES), min_size=1, max_size=3))
@settings(max_examples=60, deadline=None)
def test_fuzzed_framing_section_loads_valid_or_raises_model_file_error(
        edits: list[tuple[tuple[str | int, ...], object]]) -> None:
    """The format-2 framing section (found box, whole-car check): every field wrong in every way."""
    from core.modelfile import FramingSpec

    d = _meta_dict()
    d["framing"] = {"box_output": "car_box", "whole_car_output": "whole_car_logit", "temperature": 1.0,
                    "threshold": 0.1, "unsure_below": 0.2, "found_margin": -0.05,
                    "sources": [{"name": "x", "licence": "y"}], "note": "", "part_weights": [0.6, 1.1, 3.7],
                    "part_bias": 2.0, "second_look": True, "second_look_min_top": 0.4}
    for path, value in edits:
        d = _mutated(d, path, value)
    try:
        meta = ModelMetadata.from_json(json.dumps(d), "fuzz.onnx")
    except ModelFileError as e:
        assert str(e).startswith("fuzz.onnx: ") and "\n" not in str(e)
        return
    fr = meta.framing
    if fr is None:
        return
    assert isinstance(fr, FramingSpec)
    assert isinstance(fr.box_output, str) and isinstance(fr.whole_car_output, str) and fr.box_output != fr.whole_car_output
    assert fr.temperature > 0 and 0 < fr.threshold <= fr.unsure_below < 1 and -0.25 <= fr.found_margin <= 0.5
    assert all(isinstance(s, dict) for s in fr.sources) and isinstance(fr.note, str)
    assert fr.part_weights == () or (len(fr.part_weights) == 3 and all(abs(w) <= 1e3 for w in fr.part_weights))
    assert isinstance(fr.part_bias, float) and abs(fr.part_bias) <= 1e3
    assert isinstance(fr.second_look, bool) and 0 <= fr.second_look_min_top <= 1
    assert all(math.isfinite(x) for x in _all_numbers(json.loads(meta.to_json())))


@pytest.mark.parametrize("flip", [True, False])
def test_flip_tta_is_read_from_the_input_spec_and_can_be_overridden(tmp_path: Path, model_file: Path,
                                                                    flip: bool) -> None:
    d = json.loads(random_metadata().to_json())
    d["input"]["flip_tta"] = flip
    path = _rewrite_metadata(model_file, tmp_path / "flip.onnx", json.dumps(d))
    assert Predictor.load(path).flip_tta is flip
    assert Predictor.load(path, flip_tta=not flip).flip_tta is (not flip)
    del d["input"]["flip_tta"]  # files written before the field: no flipping
    assert Predictor.load(_rewrite_metadata(model_file, tmp_path / "old.onnx", json.dumps(d))).flip_tta is False


@pytest.mark.parametrize("value", [1, "yes", None, [True]])
def test_flip_tta_must_be_a_boolean(tmp_path: Path, model_file: Path, value: Any) -> None:
    d = json.loads(random_metadata().to_json())
    d["input"]["flip_tta"] = value
    _expect(_rewrite_metadata(model_file, tmp_path / "flip.onnx", json.dumps(d)), "input.flip_tta")
