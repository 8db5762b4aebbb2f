"""`carvalue predict`: tables, JSON, per-file errors, exit codes, no Qt."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.cli import attach_dash_values, build_parser, main
from core.predictor import MAX_SWEEP_POSITIONS, Predictor
from core.preprocess import Photo

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    good = tmp_path / "car.jpg"
    Image.fromarray(rng.integers(0, 255, (200, 400, 3), dtype=np.uint8)).save(good)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    return {"good": good, "empty": empty, "text": text}


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(args, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_table_output(model_file: Path, photos: dict[str, Path]) -> None:
    rc, out, err = run([str(photos["good"]), "--model", str(model_file), "--top", "2"])
    assert rc == 0 and err == ""
    assert str(photos["good"]) in out and "price" in out and "make/model" in out and "whole car" in out


def test_json_lines_with_crop_and_sweep(model_file: Path, photos: dict[str, Path]) -> None:
    rc, out, _ = run([str(photos["good"]), str(photos["good"]), "--json", "--model", str(model_file),
                      "--crop", "10,20,100,80", "--sweep", "4", "--top", "3"])
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    doc = json.loads(lines[0])  # the result document (docs/result-schema.md), one photo
    assert doc["schema_version"] == 1 and len(doc["photos"]) == 1
    obj = doc["photos"][0]
    pred = obj["prediction"]
    assert obj["source"] == str(photos["good"]) and obj["size"] == [400, 200]
    assert pred["crop"] == {"x": 10, "y": 20, "w": 100, "h": 80}
    assert len(pred["make_models"]) == 3 and len(obj["sweep"]["predictions"]) == 4
    assert obj["sweep"]["positions"] == sorted(obj["sweep"]["positions"])
    assert sum(b["probability"] for b in pred["price_bins"]) == pytest.approx(1.0)


def test_bad_files_get_one_line_each_and_the_rest_still_run(model_file: Path, photos: dict[str, Path]) -> None:
    args = [str(photos["empty"]), str(photos["good"]), str(photos["text"]), "--json", "--model", str(model_file)]
    rc, out, err = run(args)
    assert rc == 1
    assert len(out.strip().splitlines()) == 1
    errs = err.strip().splitlines()
    assert len(errs) == 2
    assert str(photos["empty"]) in errs[0] and "empty" in errs[0]
    assert str(photos["text"]) in errs[1] and "not an image" in errs[1]


def test_bad_usage_exits_2(model_file: Path, photos: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([])[0] == 2
    assert run([str(photos["good"]), "--crop", "1,2,3"])[0] == 2
    assert run([str(photos["good"]), "--top", "0"])[0] == 2
    rc, _, err = run([str(photos["good"]), "--model", str(photos["text"])])
    assert rc == 2 and "cannot load model" in err and str(photos["text"]) in err


def test_launcher_predict_never_imports_qt(model_file: Path, photos: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "from carvalue_gui.launcher import main\n"
        f"rc = main(['predict', {str(photos['good'])!r}, '--model', {str(model_file)!r}])\n"
        "assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules, 'Qt was imported'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "make/model" in r.stdout


def test_real_car_photo(model_file: Path, car_photo: Path) -> None:
    rc, out, _ = run([str(car_photo), "--json", "--model", str(model_file)])
    with Image.open(car_photo) as im:
        width = im.width
    assert rc == 0 and json.loads(out)["photos"][0]["prediction"]["crop"]["w"] == width


# -- limits and outside input --------------------------------------------------------------------
def test_a_nan_or_infinite_crop_is_bad_usage(model_file: Path, photos: dict[str, Path]) -> None:
    for crop in ("nan,0,10,10", "0,0,inf,10", "--crop=0,-inf,10,10"):
        args = [str(photos["good"]), "--model", str(model_file)]
        args += [crop] if crop.startswith("--") else ["--crop", crop]
        rc, out, err = run(args)
        assert rc == 2 and out == "" and "finite" in err, (crop, err)


def test_a_negative_crop_needs_no_equals_sign(model_file: Path, photos: dict[str, Path]) -> None:
    rc, out, err = run([str(photos["good"]), "--crop", "-500,-20,600,100", "--json", "--model", str(model_file)])
    assert rc == 0 and err == ""
    crop = json.loads(out)["photos"][0]["prediction"]["crop"]
    assert crop == {"x": 0, "y": 0, "w": 600 - 200, "h": 100}  # clamped into 400x200
    assert attach_dash_values(["a.jpg", "--crop", "-5,0,1,1", "--top", "2"]) == ["a.jpg", "--crop=-5,0,1,1", "--top", "2"]
    assert attach_dash_values(["--crop", "--json"]) == ["--crop", "--json"]  # not a box: argparse says so


def test_sweep_positions_are_bounded(model_file: Path, photos: dict[str, Path]) -> None:
    for n in ("100000", "65", "1", "0", "-3", "x"):
        rc, out, err = run([str(photos["good"]), "--sweep", n, "--model", str(model_file)])
        assert rc == 2 and out == "" and f"2 to {MAX_SWEEP_POSITIONS} positions" in err, (n, err)
    assert build_parser().parse_args(["a.jpg", "--sweep", str(MAX_SWEEP_POSITIONS)]).sweep == MAX_SWEEP_POSITIONS
    rc, out, _ = run([str(photos["good"]), "--sweep", "2", "--json", "--model", str(model_file)])
    assert rc == 0 and len(json.loads(out)["photos"][0]["sweep"]["positions"]) == 2


def test_photos_that_used_to_crash_and_a_fifo_each_get_their_own_line(
        model_file: Path, photos: dict[str, Path], tmp_path: Path) -> None:
    wide = tmp_path / "3000x2001.png"  # its whole-photo crop crashed with a traceback that
    Image.new("L", (3000, 2001), 90).save(wide)  # stopped the photos after it
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    rc, out, err = run([str(wide), str(fifo), str(photos["good"]), "--json", "--model", str(model_file)])
    assert rc == 1
    assert [json.loads(line)["photos"][0]["source"] for line in out.splitlines()] == [str(wide), str(photos["good"])]
    assert err.splitlines() == [f"error: {fifo}: not a regular file"]


def test_an_unexpected_failure_is_that_photos_error(model_file: Path, photos: dict[str, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = Predictor.predict

    def predict(self: Predictor, photo: Photo, *args: object, **kwargs: object) -> object:
        if photo.source.endswith("second.jpg"):
            raise RuntimeError("simulated\nONNX Runtime failure")
        return real(self, photo, *args, **kwargs)  # type: ignore[arg-type]

    second = photos["good"].with_name("second.jpg")
    second.write_bytes(photos["good"].read_bytes())
    monkeypatch.setattr(Predictor, "predict", predict)
    rc, out, err = run([str(photos["good"]), str(second), str(photos["good"]), "--json", "--model", str(model_file)])
    assert rc == 1 and len(out.splitlines()) == 2
    assert err.splitlines() == [f"error: {second}: cannot estimate (RuntimeError: simulated ONNX Runtime failure)"]


def test_a_photo_over_the_pixel_limit_gets_one_line_with_its_size(model_file: Path, tmp_path: Path) -> None:
    from tests.test_preprocess import png_header_only

    big = tmp_path / "200mp.png"
    big.write_bytes(png_header_only(20000, 10000))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rc, out, err = run([str(big), "--model", str(model_file)])
    assert rc == 1 and out == ""
    assert err.splitlines() == [f"error: {big}: photo is 200.0 MP (20000x10000); the limit is 150 MP"]
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]


def _strict_json(line: str) -> dict[str, object]:
    def refuse(token: str) -> object:
        raise AssertionError(f"{token} in the JSON")

    return json.loads(line, parse_constant=refuse)


_VALUE = st.one_of(st.integers(-5000, 5000), st.floats(-1e9, 1e9), st.sampled_from([0, -0.0, 1e300, math.nan, math.inf]))


@given(mode=st.sampled_from(["L", "LA", "P", "RGBA", "CMYK", "I;16", "F", "1"]),
       size=st.tuples(st.integers(1, 1400), st.integers(1, 1400)),
       crop=st.one_of(st.none(), st.tuples(_VALUE, _VALUE, _VALUE, _VALUE)))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cli_on_any_mode_size_and_crop(model_file: Path, tmp_path: Path, mode: str, size: tuple[int, int],
                                       crop: tuple[float, ...] | None) -> None:
    path = tmp_path / f"x-{mode.replace(';', '')}.{'tif' if mode in ('CMYK', 'F', 'I;16') else 'png'}"
    Image.new("RGB", (3, 2), (200, 40, 90)).resize(size).convert("L" if mode in ("I;16", "F") else mode) \
        .convert(mode).save(path)
    args = [str(path), "--json", "--model", str(model_file)]
    if crop is not None:
        args += ["--crop", ",".join(map(str, crop))]
    rc, out, err = run(args)
    if crop is not None and (not all(math.isfinite(v) for v in crop) or crop[2] <= 0 or crop[3] <= 0):
        assert rc == 2 and out == "" and len(err.splitlines()) >= 1
    elif min(size) < 32:
        assert rc == 1 and out == "" and err.splitlines() == [f"error: {path}: image is too small ({size[0]}x{size[1]}; "
                                                              "needs at least 32 px a side)"]
    else:
        assert rc == 0 and err == "", err
        obj = _strict_json(out)
        c = obj["photos"][0]["prediction"]["crop"]  # type: ignore[index]
        assert isinstance(c, dict) and 0 <= c["x"] and c["x"] + c["w"] <= size[0] + 1e-6
