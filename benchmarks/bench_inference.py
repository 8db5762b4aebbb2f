"""Inference hot paths: ONNX Runtime vs eager torch, and JPEG draft-mode decoding.

Prints one JSON object.  Both engines run the same architecture (random weights with the
bundled model's output sizes when it exists), in the same process, so the ratio is meaningful
on a noisy machine.  Targets (issue 3): ORT >= 3x faster than eager torch at batch 1; draft-mode
decoding >= 3x faster than full decoding of a 24-MP JPEG.

    .venv/bin/python -m benchmarks.bench_inference [--repeat 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import camera_jpeg, summary_ms, timeit
from core.modelfile import ModelFileError, physical_cores
from core.predictor import Predictor, sweep_boxes
from core.preprocess import crop_to_input, load_photo
from tests.modelfactory import make_model_file, random_metadata

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO.parent / "shared" / "data" / "stanford-cars-train" / "images" / "00002.jpg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(physical_cores())
    result: dict[str, object] = {"threads": physical_cores(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        meta = random_metadata()
        try:
            bundled = Predictor.load()
            meta = random_metadata(bundled.metadata.input.size, bundled.metadata.make_models,
                                   bundled.metadata.years)
            result["output_sizes_from"] = str(bundled.path)
        except ModelFileError as e:
            result["output_sizes_from"] = f"test vocabulary ({e.fault})"
        path, net = make_model_file(tmpdir / "m.onnx", metadata=meta)
        predictor = Predictor.load(path)
        spec = predictor.metadata.input

        jpeg = camera_jpeg(tmpdir / "camera.jpg", source=SAMPLE)
        photo = load_photo(jpeg)
        x1 = crop_to_input(photo, None, spec)[None]
        boxes = sweep_boxes(photo.original_size, 16, 0.5)
        x16 = np.stack([crop_to_input(photo, b, spec) for b in boxes])

        ort1 = timeit(lambda: predictor.run_batch(x1), args.repeat)
        ort16 = timeit(lambda: predictor.run_batch(x16), max(5, args.repeat // 5))
        net = net.eval().to(memory_format=torch.channels_last)  # type: ignore[attr-defined]
        t1 = torch.from_numpy(x1).contiguous(memory_format=torch.channels_last)
        t16 = torch.from_numpy(x16).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            torch1 = timeit(lambda: net(t1), args.repeat)
            torch16 = timeit(lambda: net(t16), max(5, args.repeat // 5))
        sweep_e2e = timeit(lambda: predictor.sweep(photo, n=16), max(5, args.repeat // 5))
        single_e2e = timeit(lambda: predictor.predict(photo), args.repeat)

        result["onnxruntime_batch1"] = summary_ms(ort1)
        result["torch_eager_channels_last_batch1"] = summary_ms(torch1)
        result["onnxruntime_sweep16_batch"] = summary_ms(ort16)
        result["torch_eager_channels_last_sweep16_batch"] = summary_ms(torch16)
        result["ratio_torch_over_ort_batch1_p50"] = round(float(np.median(torch1) / np.median(ort1)), 2)
        result["ratio_torch_over_ort_sweep16_p50"] = round(float(np.median(torch16) / np.median(ort16)), 2)
        result["predict_end_to_end_incl_crop_resize"] = summary_ms(single_e2e)
        result["sweep16_end_to_end_incl_crop_resize"] = summary_ms(sweep_e2e)

        def decode(path: Path, draft: bool) -> None:
            with Image.open(path) as im:
                if draft:
                    im.draft("RGB", (1024, 683))
                im.load()

        noisy = camera_jpeg(tmpdir / "camera_iso.jpg", source=SAMPLE, noise=12)
        for label, path in (("jpeg_24mp", jpeg), ("jpeg_24mp_high_iso_noise", noisy)):
            full = timeit(lambda p=path: decode(p, False), 5, warmup=1)
            drafted = timeit(lambda p=path: decode(p, True), 5, warmup=1)
            result[label] = {
                "size": list(Image.open(path).size), "bytes": path.stat().st_size,
                "decode_full": summary_ms(full), "decode_draft": summary_ms(drafted),
                "ratio_full_over_draft_p50": round(float(np.median(full) / np.median(drafted)), 2),
            }
        result["load_photo_24mp (draft + exif + downscale)"] = summary_ms(timeit(lambda: load_photo(jpeg), 5, 1))
    result["targets_met"] = {
        "ort_3x_faster_than_torch_batch1": result["ratio_torch_over_ort_batch1_p50"] >= 3,  # type: ignore[operator]
        "draft_3x_faster_than_full": result["jpeg_24mp"]["ratio_full_over_draft_p50"] >= 3,  # type: ignore[index]
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
