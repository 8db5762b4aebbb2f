"""Finding the car: what the first result on a new photo costs, and what the framing outputs
add to every forward pass.

- First result on a 12-MP phone-size JPEG of a framed car (a Stanford photo composited into a
  larger background, car at ~35% of the frame): decode + ``predict(crop=AUTO)`` (the whole
  photo, then the found car: two passes) against decode + ``predict(crop=box)`` (one pass on a
  fixed box), in alternating rounds.  Target (issue 15): at most 2.2x.
- One forward pass at batch 1 with the framing outputs (format-2 model file) against the same
  network without them (the base model file), alternating.  A crop move runs one such pass, so
  this ratio is what the framing heads add to crop-move latency.

Prints one JSON object.

    .venv/bin/python -m benchmarks.bench_framing [--model resources/models/carvalue.onnx] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import SAMPLE_PHOTO as SAMPLE
from benchmarks.common import summary_ms, timeit
from core.framing import CropMode
from core.geometry import Box
from core.predictor import Predictor, default_model_path
from core.preprocess import crop_to_input, load_photo


def framed_camera_photo(path: Path, size: tuple[int, int] = (4032, 3024)) -> Path:
    """A 12-MP JPEG with a car at ~35% of the frame (the sample photo when the data is here, a
    drawn shape otherwise) on a textured background."""
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.stack([(xx / w) * 180 + 40, (yy / h) * 120 + 60, np.full_like(xx, 110)], -1)
    bg += rng.normal(0, 18, (h, w, 3)).astype(np.float32)
    frame = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    if SAMPLE.is_file():
        with Image.open(SAMPLE) as im:
            car = im.convert("RGB")
    else:
        car = Image.new("RGB", (450, 250), (180, 30, 30))
    cw = int(w * 0.7)
    ch = int(car.height * cw / car.width)
    frame.paste(car.resize((cw, ch), Image.Resampling.BILINEAR), ((w - cw) // 2, h - ch - h // 10))
    frame.save(path, quality=90)
    return path


def _base_model(model: Path, out: Path) -> Path | None:
    """The model file without its framing outputs and their nodes (None when it has none)."""
    import dataclasses

    import onnx

    from core.modelfile import open_session, write_model_file
    from training.framing.heads import classifier_graph

    _, meta = open_session(model, threads=1)
    if meta.framing is None:
        return None
    raw = out.with_suffix(".raw.onnx")
    onnx.save(classifier_graph(model), str(raw))
    write_model_file(raw, dataclasses.replace(meta, framing=None), out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=40)
    a = ap.parse_args()
    predictor = Predictor.load(a.model)
    result: dict[str, object] = {"model": str(a.model), "framing": predictor.metadata.framing is not None}
    with tempfile.TemporaryDirectory() as tmp:
        photo_path = framed_camera_photo(Path(tmp) / "framed-12mp.jpg")
        photo = load_photo(photo_path)
        found = predictor.predict(photo, CropMode.AUTO)
        box = found.crop if found.crop != photo.full_box() else Box(0, 0, *photo.original_size)
        auto_t: list[float] = []
        fixed_t: list[float] = []
        ratios = []
        for _ in range(a.rounds):
            t_auto = timeit(lambda: predictor.predict(load_photo(photo_path), CropMode.AUTO), 3, warmup=1)
            t_fixed = timeit(lambda: predictor.predict(load_photo(photo_path), box), 3, warmup=1)
            auto_t += t_auto
            fixed_t += t_fixed
            ratios.append(statistics.median(t_auto) / statistics.median(t_fixed))
        result["first_result_12mp"] = {
            "auto_ms": summary_ms(auto_t), "fixed_crop_ms": summary_ms(fixed_t),
            "ratio_auto_vs_fixed": statistics.median(ratios), "round_ratios": ratios,
            "found_box": found.found_box.as_tuple() if found.found_box else None, "target": "<= 2.2x"}
        base = _base_model(a.model, Path(tmp) / "base.onnx")
        if base is not None:
            plain = Predictor.load(base)
            x1 = crop_to_input(photo, box, predictor.metadata.input)[None]
            with_f: list[float] = []
            without: list[float] = []
            fr = []
            for _ in range(a.rounds):
                t1 = timeit(lambda: predictor.run_batch(x1), a.repeat)
                t0 = timeit(lambda: plain.run_batch(x1), a.repeat)
                with_f += t1
                without += t0
                fr.append(statistics.median(t1) / statistics.median(t0))
            result["forward_batch1"] = {"with_framing_ms": summary_ms(with_f), "without_ms": summary_ms(without),
                                        "ratio": statistics.median(fr), "round_ratios": fr}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
