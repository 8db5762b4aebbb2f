"""Model files whose graph would allocate gigabytes or never finish are refused at load
(core.graphcheck), before ONNX Runtime sees them; real CarValue graphs still load."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import graphcheck, onnxwire
from core.modelfile import ModelFileError, open_session

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "resources" / "models" / "carvalue.onnx"
SAMPLE = ROOT / "resources" / "samples" / "synthetic-sedan.jpg"


def _add_to_output(model: onnx.ModelProto, out_name: str, extra: str) -> None:
    """The graph output ``out_name`` becomes its old value + ``extra``."""
    g = model.graph
    for n in g.node:
        n.output[:] = [out_name + "_orig" if o == out_name else o for o in n.output]
        n.input[:] = [out_name + "_orig" if i == out_name else i for i in n.input]
    g.node.append(helper.make_node("Add", [out_name + "_orig", extra], [out_name]))


def _init(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    model.graph.initializer.append(numpy_helper.from_array(value, name))


def _zeroed_into_median(model: onnx.ModelProto, tensor: str) -> None:
    """median += 0 * sum(tensor): the tensor is computed on every forward pass."""
    g = model.graph
    _init(model, "zero_f", np.array(0.0, np.float32))
    g.node.append(helper.make_node("Cast", [tensor], [tensor + "_f"], to=TensorProto.FLOAT))
    g.node.append(helper.make_node("ReduceSum", [tensor + "_f"], [tensor + "_sum"], keepdims=0))
    g.node.append(helper.make_node("Mul", [tensor + "_sum", "zero_f"], [tensor + "_zero"]))
    _add_to_output(model, "median", tensor + "_zero")


def _constant_of_shape(m: onnx.ModelProto) -> None:  # the repro's cos_4gib: 2^30 floats
    _init(m, "bomb_shape", np.array([1 << 30], np.int64))
    m.graph.node.append(helper.make_node("ConstantOfShape", ["bomb_shape"], ["bomb"],
                                         value=numpy_helper.from_array(np.array([1.0], np.float32))))
    _zeroed_into_median(m, "bomb")


def _loop(m: onnx.ModelProto) -> None:  # the repro's loop_forever: 2^40 iterations
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "one_f"], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one_f")])
    _init(m, "trip", np.array(1 << 40, np.int64))
    _init(m, "cond0", np.array(True))
    _init(m, "acc0", np.array(0.0, np.float32))
    m.graph.node.append(helper.make_node("Loop", ["trip", "cond0", "acc0"], ["acc_final"], body=body))
    _zeroed_into_median(m, "acc_final")


def _if(m: onnx.ModelProto) -> None:
    branch = helper.make_graph([helper.make_node("Constant", [], ["b"], value_float=0.0)], "branch", [],
                               [helper.make_tensor_value_info("b", TensorProto.FLOAT, [])])
    _init(m, "cond0", np.array(True))
    m.graph.node.append(helper.make_node("If", ["cond0"], ["if_out"], then_branch=branch, else_branch=branch))
    _zeroed_into_median(m, "if_out")


def _expand(m: onnx.ModelProto) -> None:
    _init(m, "one", np.array([1.0], np.float32))
    _init(m, "big", np.array([1 << 15, 1 << 15], np.int64))
    m.graph.node.append(helper.make_node("Expand", ["one", "big"], ["bomb"]))
    _zeroed_into_median(m, "bomb")


def _tile(m: onnx.ModelProto) -> None:
    _init(m, "one", np.array([1.0], np.float32))
    _init(m, "reps", np.array([1 << 31], np.int64))
    m.graph.node.append(helper.make_node("Tile", ["one", "reps"], ["bomb"]))
    _zeroed_into_median(m, "bomb")


def _range(m: onnx.ModelProto) -> None:
    for name, v in (("r0", 0.0), ("r1", 1e12), ("r2", 1.0)):
        _init(m, name, np.array(v, np.float32))
    m.graph.node.append(helper.make_node("Range", ["r0", "r1", "r2"], ["bomb"]))
    _zeroed_into_median(m, "bomb")


def _photo_sized(m: onnx.ModelProto) -> None:
    """A ConstantOfShape sized by the photo's pixels: the check cannot follow it."""
    g = m.graph
    g.node.append(helper.make_node("ReduceMean", ["input"], ["px"], keepdims=0))
    _init(m, "scale", np.array(1e9, np.float32))
    g.node.append(helper.make_node("Mul", ["px", "scale"], ["px_big"]))
    g.node.append(helper.make_node("Cast", ["px_big"], ["px_int"], to=TensorProto.INT64))
    g.node.append(helper.make_node("Unsqueeze", ["px_int", "ax0"], ["px_shape"]))
    _init(m, "ax0", np.array([0], np.int64))
    g.node.append(helper.make_node("ConstantOfShape", ["px_shape"], ["bomb"]))
    _zeroed_into_median(m, "bomb")


def _batch17(m: onnx.ModelProto) -> None:
    """2^30 values only when the batch has 17 photos (a check at one batch size misses it)."""
    g = m.graph
    _init(m, "i0", np.array([0], np.int64))
    _init(m, "n17", np.array([17], np.int64))
    _init(m, "small", np.array([1], np.int64))
    _init(m, "huge", np.array([1 << 30], np.int64))
    g.node.append(helper.make_node("Shape", ["input"], ["in_shape"]))
    g.node.append(helper.make_node("Gather", ["in_shape", "i0"], ["n"], axis=0))
    g.node.append(helper.make_node("Equal", ["n", "n17"], ["is17"]))
    g.node.append(helper.make_node("Where", ["is17", "huge", "small"], ["size"]))
    g.node.append(helper.make_node("ConstantOfShape", ["size"], ["bomb"]))
    _zeroed_into_median(m, "bomb")


def _huge_initializer(m: onnx.ModelProto) -> None:
    t = TensorProto(name="bomb_init", data_type=TensorProto.FLOAT, dims=[1 << 40])
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "zeros.bin"
    m.graph.initializer.append(t)
    _zeroed_into_median(m, "bomb_init")


def _custom_op(m: onnx.ModelProto) -> None:
    m.opset_import.append(helper.make_opsetid("com.evil", 1))
    m.graph.node.append(helper.make_node("Backdoor", ["input"], ["evil"], domain="com.evil"))
    _zeroed_into_median(m, "evil")


def _function(m: onnx.ModelProto) -> None:
    m.functions.append(helper.make_function("local", "Noop", ["x"], ["y"],
                                            [helper.make_node("Identity", ["x"], ["y"])],
                                            [helper.make_opsetid("", 17)]))


BOMBS = {"constant_of_shape": (_constant_of_shape, "1,073,741,824 values"),
         "loop": (_loop, "subgraph"), "if": (_if, "subgraph"),
         "expand": (_expand, "1,073,741,824 values"), "tile": (_tile, "2,147,483,648 values"),
         "range": (_range, "a range of"), "photo_sized": (_photo_sized, "cannot follow"),
         "batch17": (_batch17, "for 17 photo(s)"), "huge_initializer": (_huge_initializer, "bomb_init"),
         "custom_op": (_custom_op, "com.evil.Backdoor"), "function": (_function, "model-local functions")}


def _write(tmp_path: Path, name: str) -> Path:
    make, _ = BOMBS[name]
    m = onnx.load(str(BUNDLED))
    make(m)
    out = tmp_path / f"{name}.onnx"
    onnx.save(m, str(out))
    return out


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_refused_at_load(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name)
    start = time.monotonic()
    with pytest.raises(ModelFileError) as info:
        open_session(path)
    assert time.monotonic() - start < 20
    msg = str(info.value)
    assert str(path) in msg and "not a CarValue model graph" in msg and BOMBS[name][1] in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("name", ["constant_of_shape", "loop"])
def test_cli_refuses_bomb_bounded(tmp_path: Path, name: str) -> None:
    """The repro's two cases through `carvalue predict`: exit 2 with one line, well within 60 s
    and 1.5 GB resident."""
    path = _write(tmp_path, name)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "carvalue_gui.launcher", "predict", str(SAMPLE), str(SAMPLE), "--json",
                             "--model", str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("carvalue predict ran past 60 s")
    assert proc.returncode == 2, err.decode()
    text = err.decode().strip()
    assert "Traceback" not in text and text.count("\n") == 0 and "not a CarValue model graph" in text, text
    assert out == b""


def test_cli_bomb_memory_bounded(tmp_path: Path) -> None:
    path = _write(tmp_path, "constant_of_shape")
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "carvalue_gui.launcher", "predict", str(SAMPLE),
                          "--model", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    rc, maxrss_kb = (int(x) for x in out.stdout.split())
    assert rc == 2 and maxrss_kb < 1_500_000, out


def test_allow_list_covers_real_models() -> None:
    m = onnx.load(str(BUNDLED))
    assert {n.op_type for n in m.graph.node} <= graphcheck.ALLOWED_OPS
    assert not {"Loop", "Scan", "If"} & graphcheck.ALLOWED_OPS
    graphcheck.check_model_file(BUNDLED)


@pytest.mark.slow  # exports and frames real models: ~28 s
def test_factory_and_framed_models_pass(tmp_path: Path) -> None:
    from training.testmodels import make_framed_model_file, make_model_file

    plain, _ = make_model_file(tmp_path / "plain.onnx", size=64)
    framed = make_framed_model_file(plain, tmp_path / "framed.onnx", (0.1, 0.2, 0.8, 0.9), 2.0)
    same, _ = make_model_file(tmp_path / "same.onnx", size=64, padding="same")
    for p in (plain, framed, same):
        ops = {n.op_type for n in onnx.load(str(p)).graph.node}
        assert ops <= graphcheck.ALLOWED_OPS, ops - graphcheck.ALLOWED_OPS
        open_session(p)


def test_damaged_bytes_give_one_line(tmp_path: Path) -> None:
    data = BUNDLED.read_bytes()
    for i, cut in enumerate((len(data) // 3, 100, 17)):
        p = tmp_path / f"cut{i}.onnx"
        p.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated or damaged"):
            open_session(p)


@settings(max_examples=40, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 200_000), st.integers(0, 255)), min_size=1, max_size=8),
       cut=st.none() | st.integers(1, 300_000))
def test_mutated_files_refused_in_one_line_or_pass(edits: list[tuple[int, int]], cut: int | None) -> None:
    """Bytes changed or cut anywhere in the graph's part of the file: the check refuses them with
    GraphRefused or lets them through to ONNX Runtime, never another exception."""
    data = bytearray(_BUNDLED_BYTES if cut is None else _BUNDLED_BYTES[:cut])
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    try:
        graphcheck.check_graph(onnxwire.read_graph(memoryview(bytes(data)), graphcheck.MAX_NODES))
    except onnxwire.WireError as e:  # check_model_file reports it as a damaged file
        assert str(e)
    except graphcheck.GraphRefused as e:
        assert "\n" not in str(e)


_BUNDLED_BYTES = BUNDLED.read_bytes()
