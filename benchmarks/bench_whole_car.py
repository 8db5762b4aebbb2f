"""What the natural-photo whole-car check (issue 27) costs one prediction.

One prediction on a crop box (a crop move: decode once, then crop + resize + one forward pass +
decode of every output) with the model file as it is, against the same photo and box with a
baseline model file (by default the bundled model of commit dc9d451, before the check had its
car output), in alternating rounds so both see the same machine.  Target: <= 1.1x.

Prints one JSON object.

    .venv/bin/python -m benchmarks.bench_whole_car [--model M] [--baseline B | --baseline-rev REV]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks.bench_framing import framed_camera_photo
from benchmarks.common import summary_ms, timeit
from core.framing import CropMode
from core.predictor import Predictor, default_model_path
from core.preprocess import load_photo

REPO = Path(__file__).resolve().parent.parent
BASELINE_REV = "dc9d451"  # the bundled model before the natural-photo whole-car check


def committed_model(rev: str, out: Path) -> Path:
    """The bundled model file as committed at ``rev``."""
    blob = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:resources/models/carvalue.onnx"],
                          check=True, capture_output=True).stdout
    out.write_bytes(blob)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--baseline-rev", default=BASELINE_REV)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_path = a.baseline or committed_model(a.baseline_rev, Path(tmp) / "baseline.onnx")
        new, old = Predictor.load(a.model), Predictor.load(base_path)
        photo = load_photo(framed_camera_photo(Path(tmp) / "framed-12mp.jpg"))
        box = new.predict(photo, CropMode.AUTO).crop
        t_new: list[float] = []
        t_old: list[float] = []
        ratios = []
        for _ in range(a.rounds):
            tn = timeit(lambda: new.predict(photo, box), a.repeat)
            to = timeit(lambda: old.predict(photo, box), a.repeat)
            t_new += tn
            t_old += to
            ratios.append(statistics.median(tn) / statistics.median(to))
        result = {"model": str(a.model), "baseline": str(a.baseline or f"{a.baseline_rev}:resources/models/carvalue.onnx"),
                  "car_output": new.metadata.framing is not None and bool(new.metadata.framing.car_output),
                  "one_prediction_ms": summary_ms(t_new), "baseline_ms": summary_ms(t_old),
                  "ratio": statistics.median(ratios), "round_ratios": ratios, "target": "<= 1.1x"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
