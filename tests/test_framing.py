"""Finding the car: compositing, the framing outputs of a model file, and auto crops."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.framing import CropMode, Located, WholeCar, found_box, parse_crop, verdict
from core.geometry import Box, box_iou
from core.modelfile import FramingSpec, InputSpec
from core.preprocess import photo_from_image
from training.data import compositing as comp

torch = pytest.importorskip("torch")


def _car(w: int = 120, h: int = 60, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


# -- compositing ------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(coverage=st.floats(0.15, 1.0), aspect=st.sampled_from(comp.FRAME_ASPECTS), car_w=st.integers(20, 800),
       car_h=st.integers(20, 600), out=st.integers(32, 384), long_side=st.integers(64, 1024))
def test_a_fitted_frame_is_smaller_but_keeps_the_car_at_least_the_input_size(
        coverage: float, aspect: float, car_w: int, car_h: int, out: int, long_side: int) -> None:
    from dataclasses import replace

    recipe = comp.FrameRecipe(coverage=coverage, aspect=aspect, fill="plain", cx=0.5, cy=0.5, long_side=long_side)
    side = comp.fitted_long_side((car_w, car_h), recipe, out)
    assert out <= side <= long_side or side == long_side
    _, (cw, ch) = comp.frame_size((car_w, car_h), replace(recipe, long_side=side))
    _, (cw0, ch0) = comp.frame_size((car_w, car_h), recipe)
    if side < long_side:  # shrunk: the car's shorter side still reaches the input size (rounding aside)
        assert min(cw, ch) >= out - 2
    else:  # kept: at the recipe's own side the car was no bigger than the input already
        assert min(cw0, ch0) <= out + 1 or side == out


@settings(max_examples=25, deadline=None)
@given(coverage=st.floats(0.15, 1.0), aspect=st.sampled_from(comp.FRAME_ASPECTS), fill=st.sampled_from(comp.FILLS),
       cx=st.floats(0, 1), cy=st.floats(0, 1), car_w=st.integers(20, 400), car_h=st.integers(20, 300),
       seed=st.integers(0, 2**16))
def test_composite_holds_the_whole_car_at_its_box(coverage: float, aspect: float, fill: str, cx: float, cy: float,
                                                  car_w: int, car_h: int, seed: int) -> None:
    car = _car(car_w, car_h, seed)
    recipe = comp.FrameRecipe(coverage=coverage, aspect=aspect, fill=fill, cx=cx, cy=cy, long_side=256, feather=0.0)
    rng = np.random.default_rng(seed)
    c = comp.compose(car, recipe, rng, background=_car(300, 200, seed + 1))
    fw, fh = c.image.size
    assert max(fw, fh) == 256
    b = c.box
    assert 0 <= b.x and 0 <= b.y and b.x + b.w <= fw and b.y + b.h <= fh  # the whole car is in the frame
    assert c.coverage <= coverage * 1.15 + 0.02  # never more than asked (less only when it would not fit)
    # With the least feathering (the outermost pixel half blended), inside it the frame at the
    # box is exactly the resized car.
    pasted = np.asarray(c.image.crop((int(b.x), int(b.y), int(b.x + b.w), int(b.y + b.h))))
    expected = np.asarray(car.resize((int(b.w), int(b.h)), Image.Resampling.BILINEAR))
    assert np.array_equal(pasted[1:-1, 1:-1], expected[1:-1, 1:-1])


def test_composite_is_reproducible_and_coverage_follows_the_recipe() -> None:
    car = _car(200, 100)
    r = comp.FrameRecipe(coverage=0.35, aspect=4 / 3, fill="reflect", cx=0.3, cy=0.6)
    a = comp.compose(car, r, np.random.default_rng(5))
    b = comp.compose(car, r, np.random.default_rng(5))
    assert a.box == b.box and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.coverage == pytest.approx(0.35, abs=0.02)


def test_feathered_seam_blends_into_the_background() -> None:
    """The crop's outer pixels are mixed with the background: no hard rectangle edge."""
    car = Image.new("RGB", (100, 50), (255, 0, 0))
    r = comp.FrameRecipe(coverage=0.3, aspect=4 / 3, fill="white", cx=0.5, cy=0.5, feather=0.1)
    c = comp.compose(car, r, np.random.default_rng(0))
    arr = np.asarray(c.image).astype(int)
    x0, y_mid = int(c.box.x), int(c.box.y + c.box.h / 2)
    edge, inside = arr[y_mid, x0], arr[y_mid, x0 + int(c.box.w / 2)]
    assert inside[1] < 10  # the car's middle is the car
    assert edge[1] > 100  # its edge is mostly background


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 1.0))
def test_colour_matching_is_the_per_pixel_formula_as_a_lookup_table(seed: int, strength: float) -> None:
    """The background's mean/std move ``strength`` of the way to the crop border's: the table
    gives the float formula's levels (within one, from rounding of the mean), and the border's
    mean is approached."""
    rng = np.random.default_rng(seed)
    bg = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    car = Image.fromarray((rng.integers(0, 60, (20, 30, 3)) + rng.integers(0, 190, 3)).astype(np.uint8))
    a = np.asarray(bg, dtype=np.float32)
    mean, std = a.reshape(-1, 3).mean(0), a.reshape(-1, 3).std(0) + 1.0
    t_mean, t_std = comp._border_stats(car)
    gain = np.clip(1.0 + strength * (t_std / std - 1.0), 0.3, 3.0)
    expected = np.clip((a - mean) * gain + mean + strength * (t_mean - mean), 0, 255).astype(np.uint8)
    got = np.asarray(comp._match_colours(bg, car, strength))
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    before = np.abs(a.reshape(-1, 3).mean(0) - t_mean).sum()
    after = np.abs(got.reshape(-1, 3).astype(np.float32).mean(0) - t_mean).sum()
    assert after <= before + 3  # clipping at 0/255 may hold a channel back, never push it away


def test_partial_view_holds_at_most_the_share_asked() -> None:
    car = _car(300, 150)
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = comp.partial_view(car, rng, max_share=0.4)
        assert p.width * p.height <= 0.4 * 300 * 150 * 1.05


# -- core.framing -----------------------------------------------------------------------------------
def test_parse_crop() -> None:
    assert parse_crop("auto") is CropMode.AUTO and parse_crop(" FULL ") is CropMode.FULL
    assert parse_crop("1,2,3,4") == Box(1, 2, 3, 4)
    for bad in ("", "car", "1,2,3", "nan,0,1,1", "0,0,0,5"):
        with pytest.raises(ValueError):
            parse_crop(bad)


def test_found_box_maps_input_fractions_to_photo_pixels() -> None:
    spec = InputSpec(size=224)
    crop = Box(100, 50, 400, 200)
    b = found_box(np.array([0.25, 0.5, 0.75, 1.0]), crop, spec, 0.0, (1000, 800))
    assert b == Box(200, 150, 200, 100)
    widened = found_box(np.array([0.25, 0.5, 0.75, 1.0]), crop, spec, 0.1, (1000, 800))
    assert widened is not None and widened.w == pytest.approx(240) and widened.x == pytest.approx(180)
    centre = found_box(np.array([0.0, 0.0, 1.0, 1.0]), Box(0, 0, 400, 200), InputSpec(resize="center_crop"), 0.0,
                       (400, 200))
    assert centre == Box(100, 0, 200, 200)
    assert found_box(np.array([np.nan, 0, 1, 1]), crop, spec, 0.0, (1000, 800)) is None
    assert found_box(np.array([0.5, 0.5, 0.5, 0.9]), crop, spec, 0.0, (1000, 800)) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=4, max_size=4),
       st.integers(1, 5000), st.integers(1, 5000))
def test_found_box_is_inside_the_photo_or_none(v: list[float], w: int, h: int) -> None:
    b = found_box(np.array(v), Box(0, 0, w, h), InputSpec(), 0.05, (w, h))
    if b is not None:
        assert all(math.isfinite(t) for t in b.as_tuple())
        assert b.x >= 0 and b.y >= 0 and b.x + b.w <= w + 1e-6 and b.y + b.h <= h + 1e-6


def test_verdict_bands_and_iou() -> None:
    spec = FramingSpec(threshold=0.2, unsure_below=0.6)
    assert [verdict(s, spec) for s in (0.1, 0.3, 0.9)] == [WholeCar.NO, WholeCar.UNSURE, WholeCar.YES]
    assert box_iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert box_iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(1 / 3)
    full = Box(0, 0, 100, 100)
    assert Located(Box(1, 1, 98, 98), 0.9).crop_for_estimate(full) is None  # the car fills the photo
    assert Located(Box(10, 10, 40, 40), 0.9).crop_for_estimate(full) == Box(10, 10, 40, 40)
    assert Located(None, math.nan).crop_for_estimate(full) is None
    from core.framing import whole_car_score

    assert whole_car_score(math.nan, spec) == 0.0 and verdict(whole_car_score(math.nan, spec), spec) is WholeCar.NO
    assert whole_car_score(1e9, spec) == 1.0 and whole_car_score(-1e9, spec) == 0.0  # no overflow


# -- model files with framing outputs (heads with a known answer: training/testmodels.py) -----------
@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.testmodels import make_model_file

    path, _ = make_model_file(tmp_path_factory.mktemp("framing") / "base.onnx", size=64, padding="same")
    return path


def _framed(base: Path, out: Path, box: tuple[float, float, float, float], logit: float) -> Path:
    from training.testmodels import make_framed_model_file

    return make_framed_model_file(base, out, box, logit)


class CountingPredictor:
    def __init__(self, path: Path) -> None:
        from core.predictor import Predictor

        self.p = Predictor.load(path)
        self.batches = 0
        run = self.p.run_batch

        def counted(batch: np.ndarray) -> dict[str, np.ndarray]:
            self.batches += 1
            return run(batch)

        self.p.run_batch = counted  # type: ignore[method-assign]


def test_auto_crop_predicts_on_the_found_car_in_two_passes(base_model: Path, tmp_path: Path) -> None:
    cp = CountingPredictor(_framed(base_model, tmp_path / "m.onnx", (0.25, 0.5, 0.75, 1.0), 3.0))
    photo = photo_from_image(_car(800, 600))
    p = cp.p.predict(photo, CropMode.AUTO)
    assert cp.batches == 2
    assert p.found_box == Box(200, 300, 400, 300) and p.crop == p.found_box
    assert p.whole_car is WholeCar.YES
    direct = cp.p.predict(photo, Box(200, 300, 400, 300))
    assert p.make_models == direct.make_models  # the estimate is the found box's estimate
    d = json.loads(json.dumps(p.to_dict()))
    assert d["found_box"] == {"x": 200, "y": 300, "w": 400, "h": 300} and d["whole_car"] == "whole car"


def test_auto_crop_keeps_the_photo_when_the_car_fills_it_or_no_car_is_seen(base_model: Path, tmp_path: Path) -> None:
    photo = photo_from_image(_car(640, 480))
    fills = CountingPredictor(_framed(base_model, tmp_path / "fills.onnx", (0.01, 0.0, 1.0, 0.99), 3.0))
    p = fills.p.predict(photo, CropMode.AUTO)
    assert fills.batches == 1 and p.crop == Box(0, 0, 640, 480)
    none = CountingPredictor(_framed(base_model, tmp_path / "none.onnx", (0.25, 0.25, 0.5, 0.5), -4.0))
    q = none.p.predict(photo, CropMode.AUTO)
    assert none.batches == 1 and q.crop == Box(0, 0, 640, 480) and q.whole_car is WholeCar.NO
    assert q.found_box is None  # no car seen: nothing found
    unsure = CountingPredictor(_framed(base_model, tmp_path / "unsure.onnx", (0.0, 0.0, 1.0, 1.0), 0.0))
    assert unsure.p.predict(photo, CropMode.AUTO).whole_car is WholeCar.UNSURE


def test_grafting_leaves_the_classifier_bit_identical(base_model: Path, tmp_path: Path) -> None:
    from training.framing.heads import classifier_parity

    framed = _framed(base_model, tmp_path / "m.onnx", (0.1, 0.1, 0.9, 0.9), 1.0)
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    assert classifier_parity(base_model, framed, x) == 0.0


def test_model_without_framing_auto_is_the_whole_photo(base_model: Path) -> None:
    from core.predictor import Predictor

    pred = Predictor.load(base_model)
    photo = photo_from_image(_car(300, 200))
    auto, full = pred.predict(photo, CropMode.AUTO), pred.predict(photo, CropMode.FULL)
    assert auto.crop == full.crop == Box(0, 0, 300, 200) and auto.found_box is None
    assert auto.make_models == full.make_models


def test_cli_crop_auto_is_the_default_and_full_is_offered(base_model: Path, tmp_path: Path) -> None:
    import io

    from core.cli import main

    model = _framed(base_model, tmp_path / "m.onnx", (0.25, 0.5, 0.75, 1.0), 3.0)
    photo = tmp_path / "car.png"
    _car(800, 600).save(photo)
    out = io.StringIO()
    assert main([str(photo), "--json", "--model", str(model)], out=out) == 0
    auto = json.loads(out.getvalue())["photos"][0]["prediction"]
    assert auto["crop"] == {"x": 200, "y": 300, "w": 400, "h": 300} and auto["found_box"] == auto["crop"]
    out = io.StringIO()
    assert main([str(photo), "--json", "--crop", "full", "--model", str(model)], out=out) == 0
    assert json.loads(out.getvalue())["photos"][0]["prediction"]["crop"] == {"x": 0, "y": 0, "w": 800, "h": 600}
    out = io.StringIO()
    assert main([str(photo), "--model", str(model)], out=out) == 0
    assert "car found at  200,300,400,300" in out.getvalue()


def test_predict_many_auto_batches_both_passes(base_model: Path, tmp_path: Path) -> None:
    """The photo list's estimates: one batch for the whole photos, one for the found cars."""
    cp = CountingPredictor(_framed(base_model, tmp_path / "m.onnx", (0.25, 0.5, 0.75, 1.0), 3.0))
    photos = [photo_from_image(_car(400 + 40 * i, 300, seed=i)) for i in range(5)]
    preds = cp.p.predict_many(photos, [CropMode.AUTO] * 5, batch_size=8)
    assert cp.batches == 2
    singles = [cp.p.predict(ph, CropMode.AUTO) for ph in photos]
    for p, q in zip(preds, singles, strict=True):
        assert p.crop == q.crop == q.found_box
        assert [lp.label for lp in p.make_models] == [lp.label for lp in q.make_models]


def test_whole_car_message_never_asks_to_widen_a_box_that_covers_the_photo() -> None:
    from core.framing import whole_car_message

    for judged in WholeCar:
        whole = whole_car_message(judged, covers_photo=True)
        assert "widen" not in whole.lower() and "reset" not in whole.lower()
        assert "%" not in whole_car_message(judged, covers_photo=False)  # the sigmoid is no probability
    assert "Widen the box" in whole_car_message(WholeCar.NO, covers_photo=False)
    assert "Unsure" in whole_car_message(WholeCar.UNSURE, covers_photo=False)
    assert "--crop auto" in whole_car_message(WholeCar.NO, False, reset="--crop auto")


def test_a_framed_model_can_be_framed_again(base_model: Path, tmp_path: Path) -> None:
    """Features and grafts start from the classifier alone, whether or not the file was framed."""
    import onnx

    from training.framing.heads import classifier_parity, feature_session, feature_tensor_name_of

    once = _framed(base_model, tmp_path / "once.onnx", (0.1, 0.1, 0.9, 0.9), 1.0)
    twice = _framed(once, tmp_path / "twice.onnx", (0.25, 0.5, 0.75, 1.0), 3.0)
    names = [o.name for o in onnx.load(str(twice)).graph.output]
    assert names.count("car_box") == 1 and names.count("whole_car_logit") == 1
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    assert classifier_parity(base_model, twice, x) == 0.0
    p = CountingPredictor(twice).p.predict(photo_from_image(_car(800, 600)), CropMode.AUTO)
    assert p.found_box == Box(200, 300, 400, 300)
    sess, _ = feature_session(twice)
    assert sess.get_outputs()[-1].name == feature_tensor_name_of(sess)
    assert not CountingPredictor(twice).p.flip_tta  # the base file's input spec stands
    from core.predictor import Predictor
    from training.testmodels import make_framed_model_file

    flipped = make_framed_model_file(twice, tmp_path / "flip.onnx", (0.1, 0.1, 0.9, 0.9), 1.0, flip_tta=True)
    assert Predictor.load(flipped).flip_tta and Predictor.load(flipped).metadata.input.flip_tta
    fmap = sess.run([feature_tensor_name_of(sess)], {"input": x})[0]
    assert fmap.shape[1] == 1280


@settings(max_examples=80, deadline=None)
@given(st.one_of(st.text(max_size=40), st.sampled_from(["auto", "FULL", " Auto ", "1,2,3,4", "-5,0,10,10",
                                                         "nan,0,1,1", "inf,0,1,1", "1,2,3", "1,2,0,4", "1e400,0,1,1"])))
def test_parse_crop_gives_a_mode_a_finite_box_or_value_error(text: str) -> None:
    """``--crop`` text from the command line: any string."""
    try:
        got = parse_crop(text)
    except ValueError:
        return
    if isinstance(got, Box):
        assert all(math.isfinite(v) for v in got.as_tuple()) and got.w > 0 and got.h > 0
    else:
        assert got in (CropMode.AUTO, CropMode.FULL)


def _scores(top1: float) -> dict[str, float]:
    return {"photos": 10, "make_model_top1": top1, "make_model_top5": 0.9, "year_within1": 0.9, "flagged": 0.0,
            "unsure": 0.0}


def test_framing_card_lists_flip_rows_when_measured_and_reads_older_reports() -> None:
    from training.framing.report import card_section

    framed = {"35%": {"auto": _scores(0.7), "full": _scores(0.2), "found_iou_median": 0.71}}
    old = {"tight": {"full": _scores(0.8), "auto": _scores(0.81)}, "framed": framed,
           "non_car_flagged": {"all": {"images": 5, "flagged": 1.0}}, "partial_views_flagged": 0.8}
    card = card_section(old, [{"name": "x", "licence": "MIT"}])
    assert "flip" not in card and "| 0.71 |" in card
    new = {**old, "tight": {**old["tight"], "full_flip": _scores(0.82), "auto_flip": _scores(0.834)},
           "framed": {"35%": {**framed["35%"], "auto_flip": _scores(0.755)}}}
    card = card_section(new, [])
    assert "| tight crops, `--crop auto`, flip test-time augmentation | 83.4% |" in card
    assert "| car at 35% of the frame, held-out backgrounds, crop auto, flip test-time augmentation | 75.5% |" in card
    assert "give the flip rows" in card_section({**new, "flip_tta_in_model_file": True}, [])
    assert "rows without it" in card_section({**new, "flip_tta_in_model_file": False}, [])
    # a model trained on every photo: car rows from its split run, non-car figures its own
    own = {"test_photos": 0, "flip_tta_in_model_file": True, "non_car_flagged": {"all": {"images": 9, "flagged": 0.5}}}
    card = card_section(own, [], reference=new)
    assert "car rows are those of the same recipe's split run" in card and "| 83.4% |" in card
    assert "flagged: 50.0% of 9" in card and "80.0% (split run)" in card
    with pytest.raises(ValueError, match="no test photos"):
        card_section(own, [])


def test_margin_is_the_one_closest_to_zero_within_the_noise_of_the_best() -> None:
    from training.framing.heads import pick_margin

    # the bundled model's validation figures (380 photos): tightening by 7.5% paid 5.5 points
    bundled = {-0.1: 0.782, -0.075: 0.789, -0.05: 0.784, -0.025: 0.755, 0.0: 0.734, 0.025: 0.729, 0.05: 0.703}
    assert pick_margin(bundled, 380)[0] == -0.05  # within 2.1 points of the best, closer to 0
    flat = {-0.05: 0.80, -0.025: 0.805, 0.0: 0.795, 0.025: 0.79}
    assert pick_margin(flat, 380)[0] == 0.0
    assert pick_margin(flat, 100_000)[0] == -0.025  # with many photos half a point is real
    assert pick_margin({0.025: 0.5, -0.025: 0.5}, 10)[0] in (0.025, -0.025)


def test_trained_head_design_grafts_and_gives_a_box_inside_the_input(base_model: Path, tmp_path: Path) -> None:
    """The real FramingHeads (not a fixed answer) through the graft: any feature-map size (a
    64-px input gives 2x2), boxes ordered and inside 0..1, the same numbers as torch."""
    import onnxruntime as ort
    import torch

    from core.model import FramingHeads
    from training.framing.heads import feature_session, feature_tensor_name_of, graft

    torch.manual_seed(0)
    heads = FramingHeads().eval()
    out = tmp_path / "heads.onnx"
    graft(base_model, heads, {"threshold": 0.3, "unsure_below": 0.6, "sources": ()}, out)
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    sess, _ = feature_session(out)
    fmap = sess.run([feature_tensor_name_of(sess)], {"input": x})[0]
    box = ort.InferenceSession(str(out)).run(["car_box"], {"input": x})[0]
    with torch.no_grad():
        expected, _ = heads(torch.from_numpy(fmap))
    np.testing.assert_allclose(box, expected.numpy(), atol=1e-5)
    assert np.all((box >= 0) & (box <= 1)) and np.all(box[:, 2] > box[:, 0]) and np.all(box[:, 3] > box[:, 1])
