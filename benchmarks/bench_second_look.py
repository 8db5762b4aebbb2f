"""What the second look (framing.second_look) costs an auto estimate.

A photo dropped in is estimated with ``CropMode.AUTO``: one forward pass on the whole photo, and a
second on the car found.  The second look adds that second pass where the first sees no whole
car, so it costs nothing on a photo of a car and one more pass on a photo with none (which then
costs what a car photo costs).  Timed here on one model file with the switch off and on, in
alternating rounds, on a 12-MP framed car photo (decoded once, as the app keeps it) and on a
photo with no car (a natural photo of ../shared/data when it is there, else a drawn scene).

Prints one JSON object.

    .venv/bin/python -m benchmarks.bench_second_look [--model M] [--no-car PHOTO]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.bench_framing import framed_camera_photo
from benchmarks.common import summary_ms, timeit
from core.framing import CropMode
from core.predictor import Predictor, default_model_path
from core.preprocess import Photo, load_photo

REPO = Path(__file__).resolve().parent.parent
NATURAL = REPO.parent / "shared" / "data" / "natural-photos" / "caltech101" / "BACKGROUND_Google"


def no_car_photo(out: Path) -> Path:
    """A natural photo with no car (the first of Caltech 101's random web photos), or a drawn
    scene where the data is not beside the repository."""
    found = sorted(NATURAL.glob("*.jpg"))[:1]
    if found:
        return found[0]
    rng = np.random.default_rng(0)
    sky = np.linspace(40, 220, 480, dtype=np.float32)[:, None, None] * np.ones((480, 640, 3), np.float32)
    Image.fromarray(np.clip(sky + rng.normal(0, 25, sky.shape), 0, 255).astype(np.uint8)).save(out)
    return out


def rounds(off: Predictor, on: Predictor, photo: Photo, n: int, repeat: int) -> dict[str, object]:
    t_off: list[float] = []
    t_on: list[float] = []
    ratios = []
    for _ in range(n):
        a = timeit(lambda: on.predict(photo, CropMode.AUTO), repeat)
        b = timeit(lambda: off.predict(photo, CropMode.AUTO), repeat)
        t_on += a
        t_off += b
        ratios.append(statistics.median(a) / statistics.median(b))
    verdict = on.predict(photo, CropMode.AUTO)
    return {"with_ms": summary_ms(t_on), "without_ms": summary_ms(t_off), "ratio": statistics.median(ratios),
            "round_ratios": ratios, "verdict_with": verdict.whole_car.value,
            "verdict_without": off.predict(photo, CropMode.AUTO).whole_car.value}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--no-car", type=Path, help="a photo with no car in it")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    off, on = Predictor.load(a.model), Predictor.load(a.model)
    off.second_look, on.second_look = False, True
    with tempfile.TemporaryDirectory() as tmp:
        car = load_photo(framed_camera_photo(Path(tmp) / "framed-12mp.jpg"))
        none = load_photo(a.no_car or no_car_photo(Path(tmp) / "scene.png"))
        result = {"model": str(a.model), "file_says": on.metadata.framing is not None and on.metadata.framing.second_look,
                  "car photo (auto)": rounds(off, on, car, a.rounds, a.repeat),
                  "photo with no car (auto)": rounds(off, on, none, a.rounds, a.repeat)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
