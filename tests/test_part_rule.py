"""The part-of-a-car rule (issue 27): its signals, its place in the verdict, the model file's
fields, and the fit (training/framing/part_rule.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from core.cli import main
from core.framing import WholeCar, looks_partial, part_signals
from core.geometry import Box
from core.modelfile import FramingSpec, ModelFileError, ModelMetadata, open_session
from training.testmodels import random_metadata

unit = st.floats(0, 1, allow_nan=False)
side = st.floats(0.01, 1e5, allow_nan=False)


@given(score=unit, top=unit, w=side, h=side, cw=side, ch=side, found=st.booleans())
def test_the_signals_are_finite_and_read_the_car_found(score: float, top: float, w: float, h: float,
                                                       cw: float, ch: float, found: bool) -> None:
    car = Box(0, 0, w, h) if found else None
    s = part_signals(score, top, car, Box(0, 0, cw, ch))
    assert len(s) == 3 and all(math.isfinite(v) for v in s)
    shape = (w, h) if found else (cw, ch)
    assert s[2] == pytest.approx(math.log(shape[0] / shape[1]))
    assert part_signals(min(score + 0.1, 1.0), top, car, Box(0, 0, cw, ch))[0] >= s[0]


@given(x=st.tuples(*[st.floats(-20, 20)] * 3), w=st.tuples(*[st.floats(-5, 5)] * 3), b=st.floats(-5, 5))
def test_the_rule_is_the_sign_of_its_sum_and_absent_without_weights(x: tuple[float, ...], w: tuple[float, ...],
                                                                    b: float) -> None:
    spec = FramingSpec(part_weights=w, part_bias=b)
    assert looks_partial(x, spec) == (sum(a * c for a, c in zip(w, x, strict=True)) + b < 0)
    assert looks_partial(x, FramingSpec()) is False


@pytest.mark.parametrize("weights,bias", [([1.0, 2.0], 0.0), ([1.0, 2.0, "x"], 0.0), ([1.0, 1.0, 1.0], 1e9),
                                          ([float("nan")] * 3, 0.0), ([], 1e9)])
def test_a_damaged_rule_in_the_model_file_is_named(weights: list[object], bias: float) -> None:
    d = json.loads(random_metadata().to_json())
    d["format_version"] = 2
    d["framing"] = {**json.loads(json.dumps(dataclasses.asdict(FramingSpec()))), "part_weights": weights,
                    "part_bias": bias}
    with pytest.raises(ModelFileError, match="part_|NaN"):
        ModelMetadata.from_json(json.dumps(d, allow_nan=True), "x.onnx")


@pytest.fixture(scope="module")
def boxed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files whose head always says "whole car": the car it finds tall and narrow (half a side
    view) or wide; each with a rule that flags a car found taller than wide."""
    pytest.importorskip("torch")
    from core.modelfile import write_model_file
    from training.testmodels import make_framed_model_file, make_model_file

    d = tmp_path_factory.mktemp("part-rule")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    out = {}
    for name, box in (("tall", (0.4, 0.0, 0.6, 1.0)), ("wide", (0.0, 0.3, 1.0, 0.7))):
        path = make_framed_model_file(base, d / f"{name}.onnx", box, 5.0, car_logit=5.0)
        out[f"{name}, no rule"] = path
        _, meta = open_session(path, threads=1)
        assert meta.framing is not None
        rule = dataclasses.replace(meta.framing, part_weights=(0.0, 0.0, 1.0), part_bias=0.0)
        write_model_file(path, dataclasses.replace(meta, framing=rule), d / f"{name}-rule.onnx")
        out[name] = d / f"{name}-rule.onnx"
    return out


def _predict_json(model: Path, photo: Path) -> dict[str, object]:
    out, err = io.StringIO(), io.StringIO()
    assert main([str(photo), "--model", str(model), "--json"], out, err) == 0, err.getvalue()
    return json.loads(out.getvalue())["photos"][0]["prediction"]


def test_the_cli_calls_a_car_found_taller_than_wide_part_of_a_car(boxed: dict[str, Path], tmp_path: Path) -> None:
    photo = tmp_path / "half.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(photo)
    tall, wide = _predict_json(boxed["tall"], photo), _predict_json(boxed["wide"], photo)
    assert tall["whole_car"] == "not a whole car" and tall["looks_like_car"] is False and tall["no_car"] is False
    assert wide["whole_car"] == "whole car" and wide["looks_like_car"] is True
    assert _predict_json(boxed["tall, no rule"], photo)["looks_like_car"] is True  # the rule made the difference


def test_the_signals_survive_the_second_pass_and_the_rule_reads_the_first(boxed: dict[str, Path]) -> None:
    from core.framing import CropMode
    from core.predictor import Predictor

    image = Image.new("RGB", (900, 300), (90, 100, 110))
    p = Predictor.load(boxed["wide"]).predict(image, CropMode.AUTO)
    first = Predictor.load(boxed["wide"]).predict(image)
    assert p.found_box is not None and p.crop != first.crop  # a second pass ran on the car found
    assert p.part_signals == first.part_signals and p.whole_car is WholeCar.YES


def test_the_fit_flags_parts_and_keeps_whole_cars_within_the_allowance() -> None:
    from training.framing.part_rule import fit, rates

    rng = np.random.default_rng(0)
    n = 300
    kinds = ["whole: tight crop"] * n + ["whole: framed"] * n + ["part: half a side view"] * n
    aspect = np.r_[rng.normal(0.5, 0.2, 2 * n), rng.normal(-0.3, 0.2, n)]
    x = np.c_[rng.normal(0, 1, 3 * n), rng.normal(-1, 0.5, 3 * n), aspect]
    head = np.r_[rng.uniform(size=2 * n) < 0.02, rng.uniform(size=n) < 0.5]
    w, b = fit(kinds, x, head, allow=0.01)
    assert w[2] > 0  # a wider car found is more a whole car
    after = rates(kinds, head | (x @ w + b < 0))
    before = rates(kinds, head)
    assert after["part: half a side view"] > 0.9 > before["part: half a side view"]
    assert all(after[k] <= before[k] + 0.01 + 1e-9 for k in before if k.startswith("whole"))
    with pytest.raises(ValueError, match="both"):
        fit(kinds[:n], x[:n], head[:n], allow=0.01)
