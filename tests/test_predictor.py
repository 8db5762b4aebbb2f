"""Predictor behaviour on a random-weight model file, torch-vs-ONNX parity, and import hygiene."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.predictor import (
    MAX_SWEEP_POSITIONS,
    SWEEP_BATCH,
    PhotoError,
    Prediction,
    Predictor,
    default_model_path,
    sweep_boxes,
)
from core.preprocess import (
    Box,
    ImageLoadError,
    Photo,
    crop_to_input,
    photo_from_image,
    working_size,
)
from core.pricing import bin_quantile, shown_median

REPO = Path(__file__).resolve().parent.parent


def scene(w: int = 400, h: int = 200, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    noise = rng.normal(0, 30, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def predictor(model_file: Path) -> Predictor:
    return Predictor.load(model_file)


def test_probabilities_sum_to_one_and_topk_sorted(predictor: Predictor) -> None:
    p = predictor.predict(scene(), top_k=5)
    assert sum(b.probability for b in p.price_bins) == pytest.approx(1.0, abs=1e-6)
    assert len(p.price_bins) == predictor.metadata.price.num_bins
    for items in (p.make_models, p.years):
        probs = [lp.probability for lp in items]
        assert len(items) == 5 and probs == sorted(probs, reverse=True)
        assert all(0 <= q <= 1 for q in probs)
    assert p.price_bins[0].low == 0 and p.price_bins[-1].high is None
    assert [b.low for b in p.price_bins[1:]] == list(predictor.metadata.price.edges)
    assert p.median_price > 0 and p.price_low <= p.median_price <= p.price_high
    assert p.median_price == shown_median(p.median_head, p.price_low, p.price_high)
    assert 0 <= p.confidence <= 1
    assert p.looks_like_car == (p.confidence >= predictor.metadata.confidence.threshold)


def test_full_probability_vectors_sum_to_one(predictor: Predictor) -> None:
    k = len(predictor.metadata.make_models)
    p = predictor.predict(scene(), top_k=k)
    assert sum(lp.probability for lp in p.make_models) == pytest.approx(1.0, abs=1e-6)
    assert sorted(lp.label for lp in p.make_models) == sorted(predictor.metadata.make_models)


def test_crop_changes_the_input_and_is_recorded(predictor: Predictor) -> None:
    img = scene()
    full = predictor.predict(img)
    left = predictor.predict(img, crop=Box(0, 0, 150, 200))
    assert full.crop == Box(0, 0, 400, 200) and left.crop == Box(0, 0, 150, 200)
    assert full.price_bins != left.price_bins


def test_predict_many_matches_single(predictor: Predictor) -> None:
    imgs = [scene(seed=i) for i in range(5)]
    many = predictor.predict_many(imgs, batch_size=2)
    for img, m in zip(imgs, many, strict=True):
        s = predictor.predict(img)
        assert m.make_models[0].label == s.make_models[0].label
        assert m.median_price == pytest.approx(s.median_price, rel=1e-4)
        np.testing.assert_allclose([b.probability for b in m.price_bins],
                                   [b.probability for b in s.price_bins], atol=1e-5)


def test_sweep_covers_photo_left_to_right(predictor: Predictor) -> None:
    img = scene(600, 200)
    sw = predictor.sweep(img, n=16, width=0.4)
    assert len(sw.boxes) == len(sw.predictions) == 16
    xs = [b.x for b in sw.boxes]
    assert xs[0] == 0 and xs == sorted(xs) and len(set(xs)) == 16
    assert sw.boxes[-1].x + sw.boxes[-1].w == pytest.approx(600)
    assert all(b.h == 200 and b.w == pytest.approx(240) for b in sw.boxes)
    pos = sw.positions
    assert pos[0] == pytest.approx(0.2) and pos[-1] == pytest.approx(0.8)
    # One batch equals crop-by-crop prediction.
    single = predictor.predict(img, crop=sw.boxes[7])
    assert sw.predictions[7].median_price == pytest.approx(single.median_price, rel=1e-4)


def test_sweep_carries_every_make_models_probability(predictor: Predictor) -> None:
    sw = predictor.sweep(scene(600, 200), n=8, width=0.5, top_k=3)
    labels = predictor.metadata.make_models
    assert sw.make_model_probs.shape == (8, len(labels))
    assert np.allclose(sw.make_model_probs.sum(axis=1), 1.0)
    for row, pred in zip(sw.make_model_probs, sw.predictions, strict=True):
        assert len(pred.make_models) == 3
        for m in pred.make_models:  # the top-k agree with the full distribution
            assert row[labels.index(m.label)] == pytest.approx(m.probability, rel=1e-9)
    # A label ranked low everywhere still has its real probability, not 0.
    last = min(labels, key=lambda lab: sw.make_model_probs[:, labels.index(lab)].max())
    assert np.all(sw.probabilities_of(last) > 0)
    assert np.array_equal(sw.probabilities_of("no such car"), np.zeros(8))


def test_sweep_boxes_validation() -> None:
    assert sweep_boxes((100, 50), 1, 0.5) == [Box(25, 0, 50, 50)]
    with pytest.raises(ValueError):
        sweep_boxes((100, 50), 0)
    with pytest.raises(ValueError):
        sweep_boxes((100, 50), MAX_SWEEP_POSITIONS + 1)
    with pytest.raises(ValueError):
        sweep_boxes((100, 50), 4, 1.5)


def test_shown_median_is_the_head_kept_inside_the_likely_range() -> None:
    assert shown_median(12_000.0, 10_000.0, 15_000.0) == 12_000.0
    assert shown_median(8_000.0, 10_000.0, 15_000.0) == 10_000.0
    assert shown_median(40_000.0, 10_000.0, 15_000.0) == 15_000.0


def test_bin_quantile_interpolates() -> None:
    from core.pricing import PriceBin

    bins = [PriceBin(0, 10e3, 0.5), PriceBin(10e3, 20e3, 0.5), PriceBin(20e3, None, 0.0)]
    assert bin_quantile(bins, 0.25) == pytest.approx(5e3)
    assert bin_quantile(bins, 0.5) == pytest.approx(10e3)
    assert bin_quantile(bins, 0.75) == pytest.approx(15e3)


@pytest.mark.parametrize("padding", ["torch", "same"])
def test_torch_and_onnx_agree(tmp_path: Path, padding: str) -> None:
    import torch

    from training.testmodels import make_model_file

    path, net = make_model_file(tmp_path / "parity.onnx", seed=3, padding=padding)
    pred = Predictor.load(path)
    photo = photo_from_image(scene(seed=4))
    batch = np.stack([crop_to_input(photo, b, pred.metadata.input)
                      for b in (None, Box(10, 10, 100, 150), Box(200, 0, 200, 200))])
    onnx_out = pred.run_batch(batch)
    with torch.no_grad():
        torch_out = net(torch.from_numpy(batch))  # type: ignore[operator]
    for name, t in zip(("price_logits", "median", "make_model_logits", "year_logits"), torch_out, strict=True):
        diff = np.abs(onnx_out[name].reshape(t.shape) - t.numpy()).max()
        assert diff < 1e-4, (name, diff)


@pytest.mark.slow  # exports a model to look at its graph: ~19 s
def test_exported_graph_is_plain_convolutions(tmp_path: Path) -> None:
    """TF "same" padding must reach the file as Conv pads: no Pad or shape arithmetic per conv,
    which kept ONNX Runtime from its blocked layout and cost a third of the forward time."""
    import onnx

    from training.testmodels import make_model_file

    path, _ = make_model_file(tmp_path / "same.onnx", padding="same")
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert ops <= {"Conv", "Clip", "Add", "GlobalAveragePool", "Reshape", "Flatten", "Squeeze", "Gemm"}, ops
    asymmetric = [n for n in graph.node if n.op_type == "Conv"
                  for a in n.attribute if a.name == "pads" and list(a.ints) == [0, 0, 1, 1]]
    assert len(asymmetric) == 5  # the stem and the four stride-2 depthwise convs


def test_importing_the_predictor_loads_no_torch_or_qt() -> None:
    code = ("import sys, core.predictor, core.cli; "
            "bad = [m for m in ('torch', 'torchvision', 'open_clip', 'PySide6', 'pyqtgraph') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_default_model_path_inside_a_pyinstaller_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "resources" / "models" / "carvalue.onnx"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    monkeypatch.delenv("CARVALUE_MODEL", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert default_model_path() == target
    monkeypatch.setenv("CARVALUE_MODEL", "/some/where.onnx")
    assert default_model_path() == Path("/some/where.onnx")


# -- outside input: every size, mode and crop ----------------------------------------------------
def _finite_numbers(value: object) -> bool:
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite_numbers(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


_MODES = ("L", "LA", "P", "RGBA", "CMYK", "I;16", "F", "1", "RGB")
_CROP_VALUE = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, -500.0, 1e300, math.nan, math.inf, -math.inf]))
_CROPS = st.one_of(st.none(), st.builds(Box, _CROP_VALUE, _CROP_VALUE, _CROP_VALUE, _CROP_VALUE))


def _image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    """A cheap image of ``mode`` whose pixels are not all equal."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), "RGB").resize(size)
    if mode in ("I;16", "F"):
        return small.convert("L").convert(mode)
    return small.convert(mode)


@given(mode=st.sampled_from(_MODES), w=st.integers(1, 1600), h=st.integers(1, 1600), crop=_CROPS,
       seed=st.integers(0, 3))
@settings(max_examples=40, deadline=None)
def test_any_mode_size_and_crop_gives_a_finite_prediction_or_a_clear_error(
        predictor: Predictor, mode: str, w: int, h: int, crop: Box | None, seed: int) -> None:
    img = _image(mode, (w, h), seed)
    try:
        p = predictor.predict(img, crop=crop, top_k=3)
    except ImageLoadError as e:
        assert min(w, h) < 32 and "too small" in str(e)
        return
    except ValueError as e:
        assert crop is not None and not crop.is_finite() and "finite" in str(e)
        return
    assert min(w, h) >= 32 and (crop is None or crop.is_finite())
    assert _finite_numbers(p.to_dict())
    c = p.crop
    assert 0 <= c.x and 0 <= c.y and c.x + c.w <= w + 1e-6 and c.y + c.h <= h + 1e-6


@given(w=st.integers(32, 12000), h=st.integers(32, 12000), crop=_CROPS.filter(lambda b: b is None or b.is_finite()),
       nudge=st.tuples(st.integers(-1, 1), st.integers(-1, 1)))
@settings(max_examples=40, deadline=None)
def test_every_photo_size_up_to_12000_px_predicts(predictor: Predictor, w: int, h: int, crop: Box | None,
                                                  nudge: tuple[int, int]) -> None:
    """The working copy has the size decoding gives it (a JPEG's draft decode may round a side
    the other way: the nudge); a small RGB copy stands for the decoded photo, so 12000 px is cheap."""
    ww, wh = working_size((w, h))
    photo = Photo(f"{w}x{h}.jpg", (w, h), Image.new("RGB", (max(1, ww + nudge[0]), max(1, wh + nudge[1])), (90, 120, 150)))
    p = predictor.predict(photo, crop=crop, top_k=2)
    assert _finite_numbers(p.to_dict()) and p.crop.x + p.crop.w <= w + 1e-6 and p.crop.y + p.crop.h <= h + 1e-6


def test_predict_many_gives_a_failing_photo_its_error_and_the_rest_their_estimates(
        predictor: Predictor, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    scene().save(good)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    big = tmp_path / "3000x2001.png"  # a size whose whole-photo crop used to crash
    Image.new("L", (3000, 2001), 100).save(big)
    images = [good, empty, scene(seed=1), big, good]
    crops = [None, None, Box(math.nan, 0, 10, 10), None, Box(-500, 0, 100, 100)]
    out = predictor.predict_many(images, crops, batch_size=2)
    assert [type(r).__name__ for r in out] == ["Prediction", "PhotoError", "PhotoError", "Prediction", "Prediction"]
    assert isinstance(out[1], PhotoError) and out[1].source == str(empty) and "empty" in out[1].reason
    assert isinstance(out[2], PhotoError) and "finite" in out[2].reason
    assert isinstance(out[4], Prediction) and out[4].crop == Box(0, 0, 100, 100)
    single = predictor.predict(good)
    assert isinstance(out[0], Prediction) and out[0].median_price == pytest.approx(single.median_price, rel=1e-4)


def test_sweep_positions_are_bounded_and_run_in_batches(predictor: Predictor) -> None:
    img = scene(600, 200)
    with pytest.raises(ValueError, match=f"1 to {MAX_SWEEP_POSITIONS} positions"):
        predictor.sweep(img, n=MAX_SWEEP_POSITIONS + 1)
    n = SWEEP_BATCH * 2 + 3  # three batches, the last one short
    sw = predictor.sweep(img, n=n, width=0.5, top_k=2)
    assert len(sw.boxes) == len(sw.predictions) == n and sw.make_model_probs.shape == (n, len(predictor.metadata.make_models))
    for i in (0, SWEEP_BATCH, n - 1):  # one per batch: the same as predicting that box alone
        single = predictor.predict(img, crop=sw.boxes[i], top_k=2)
        assert sw.predictions[i].median_price == pytest.approx(single.median_price, rel=1e-4)
        assert sw.make_model_probs[i].max() == pytest.approx(single.make_models[0].probability, rel=1e-4)


def test_flip_tta_averages_the_photo_and_its_mirror(model_file: Path) -> None:
    from core.scores import softmax

    plain = Predictor.load(model_file)
    tta = Predictor.load(model_file, flip_tta=True)
    img = scene(seed=4)
    mirror = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    t = plain.metadata.temperatures.get("make_model", 1.0)
    photo, mirrored = Predictor.as_photo(img), Predictor.as_photo(mirror)
    from core.preprocess import crop_to_input

    a = plain.run_batch(crop_to_input(photo, None, plain.metadata.input)[None])["make_model_logits"][0]
    b = plain.run_batch(crop_to_input(mirrored, None, plain.metadata.input)[None])["make_model_logits"][0]
    expected = (softmax(a, t) + softmax(b, t)) / 2
    got = tta.predict(img, top_k=len(plain.metadata.make_models))
    by_label = {lp.label: lp.probability for lp in got.make_models}
    for j, label in enumerate(plain.metadata.make_models):
        assert by_label[label] == pytest.approx(expected[j], abs=1e-5)
    # A mirror-symmetric photo gains nothing and loses nothing.
    sym = Image.fromarray(np.concatenate([np.asarray(img)[:, :200], np.asarray(img)[:, :200][:, ::-1]], axis=1))
    p, q = plain.predict(sym), tta.predict(sym)
    assert [m.probability for m in p.make_models] == pytest.approx([m.probability for m in q.make_models], abs=1e-5)
    # Sweeps and batches take the same path.
    s = tta.sweep(img, n=4)
    assert np.allclose(s.make_model_probs.sum(axis=1), 1.0)
