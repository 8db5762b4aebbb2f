"""The whole-car check's training side (issue 27): natural photos split by category, the partial
views the pan sweep cuts, and the graft that replaces the head without touching anything else."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from training.framing import whole_car_data as wd

KINDS = ("car", "vehicle_not_car", "car_part", "not_car")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 40), st.integers(1, 5)), min_size=1, max_size=60))
def test_natural_photos_split_by_category_never_by_photo(cats: list[tuple[str, int, int]]) -> None:
    photos = [wd.NaturalPhoto(Path(f"{kind}/{c}/{i}.jpg"), "src", f"{kind}-{c}", kind)
              for kind, c, n in cats for i in range(n)]
    parts = wd.split_by_category(photos)
    assert sorted(p.path for ps in parts.values() for p in ps) == sorted(p.path for p in photos)  # nothing lost
    where = {}
    for part, ps in parts.items():
        for p in ps:
            if p.kind != "car":  # whole cars are one category, split by photo (see split_by_category)
                assert where.setdefault(p.group, part) == part  # a category sits in one part only
    for kind in KINDS[1:]:  # whole cars go by a hash of each photo: a few may all land in one part
        groups = {p.group for p in photos if p.kind == kind}
        if len(groups) >= 3:  # each kind with enough categories reaches validation and test
            assert all(any(p.kind == kind for p in parts[part]) for part in ("val", "test"))
    again = wd.split_by_category(list(reversed(photos)))  # fixed: the photos' order does not matter
    assert {k: {p.path for p in v} for k, v in parts.items()} == {k: {p.path for p in v} for k, v in again.items()}


def test_read_natural_refuses_an_unknown_kind(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,source,category,kind\na.jpg,s,c,maybe_car\n")
    with pytest.raises(ValueError, match="unknown kind 'maybe_car'"):
        wd.read_natural(tmp_path)


@settings(max_examples=50, deadline=None)
@given(w=st.integers(200, 900), h=st.integers(120, 600), seed=st.integers(0, 10_000))
def test_sweep_parts_hold_at_most_half_the_car(w: int, h: int, seed: int) -> None:
    from core.geometry import Box

    rng = np.random.default_rng(seed)
    frame = Image.new("RGB", (w, h))
    car = Box(w * 0.1, h * 0.3, w * 0.8, h * 0.5)
    part = wd.sweep_part(frame, car, rng)
    assert 0.25 * car.w - 1 <= part.width <= 0.5 * car.w + 1
    corner = wd.corner_part(Image.new("RGB", (w, h)), rng)
    assert corner.width <= 0.4 * w + 1 and corner.height <= 0.7 * h + 1


def test_car_samples_label_whole_cars_and_parts(tmp_path: Path) -> None:
    path = tmp_path / "car.jpg"
    Image.new("RGB", (300, 150), (200, 30, 30)).save(path)
    samples = list(wd.car_samples([path, path], None, seed=0))
    kinds = {s.kind: s.label for s in samples}
    assert kinds == {"tight": wd.WHOLE, "framed": wd.WHOLE, "found": wd.WHOLE, "sweep-half": wd.PART,
                     "corner": wd.PART, "partial": wd.PART}


def test_eval_cases_paste_into_the_pool_given_and_say_which_background(tmp_path: Path) -> None:
    """whole_car_eval.car_cases frames each car on the pool it is given (not the default test
    backgrounds), and the pool names the background of each framed case (flags_by_background
    counts flags per background so)."""
    from training.framing.heads import BackgroundPool
    from training.framing.whole_car_eval import car_cases

    car = tmp_path / "car.jpg"
    Image.new("RGB", (300, 150), (200, 30, 30)).save(car)
    bgs = []
    for name, colour in (("blue.png", (0, 0, 255)), ("green.png", (0, 255, 0))):
        Image.new("RGB", (800, 600), colour).save(tmp_path / name)
        bgs.append(tmp_path / name)
    pool = BackgroundPool(bgs)
    seen = []
    for kind, _, _ in car_cases([car] * 4, seed=3, bgs=pool):
        if "framed" in kind:
            assert pool.last is not None, "the case was not framed on the pool given"
            seen.append(pool.last.name)
    assert len(seen) == 8 and set(seen) == {"blue.png", "green.png"}


def test_cars_framed_on_natural_photos_are_whole_cars_on_the_pool_given(tmp_path: Path) -> None:
    """The head's natural-background composites (kind framed-natural) and whole_car_eval's
    (framed_cases) put each car on a picture of the pool they are given, labelled a whole car."""
    from training.framing.heads import BackgroundPool
    from training.framing.whole_car_eval import framed_cases

    car = tmp_path / "car.jpg"
    Image.new("RGB", (300, 150), (200, 30, 30)).save(car)
    rng = np.random.default_rng(0)
    for name in ("field.png", "kitchen.png"):  # textured pictures (compose matches their colours to the car's)
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(tmp_path / name)
    pool = BackgroundPool([tmp_path / "field.png"])
    samples = list(wd.natural_framed_samples([car, car], pool.pick, seed=1))
    assert [(s.kind, s.label) for s in samples] == [("framed-natural", wd.WHOLE)] * 2
    assert pool.last == tmp_path / "field.png"
    other = list(wd.natural_framed_samples([car, car], BackgroundPool([tmp_path / "kitchen.png"]).pick, seed=1))
    for a, b in zip(samples, other, strict=True):  # the same car and frame, another picture behind it
        assert a.image.size == b.image.size and np.asarray(a.image).std() > 10
        assert not np.array_equal(np.asarray(a.image), np.asarray(b.image))
    cases = list(framed_cases([car] * 3, seed=2, bgs=pool, where="on a test photo"))
    assert [k for k, _, _ in cases] == ["whole: framed on a test photo, car at 35% of the frame",
                                        "whole: framed on a test photo, car at 60% of the frame"] * 3
    assert all(name == "car.jpg" for _, _, name in cases)


def test_each_parts_natural_backgrounds_are_its_own_categories_without_cars(tmp_path: Path) -> None:
    """Cars are framed on natural photos of their own part's categories only: a threshold or
    reported background is never a training category's, and no background holds a car."""
    from training.framing.whole_car import natural_background_pools

    photos = [wd.NaturalPhoto(tmp_path / f"{cat}-{i}.jpg", "src", cat, kind)
              for cat, kind in (("panda", "not_car"), ("kitchen", "not_car"), ("cab", "car"), ("bus", "vehicle_not_car"))
              for i in range(2)]
    parts = wd.split_by_category(photos)
    pools = natural_background_pools(parts)
    for part, pool in pools.items():
        want = {p.path for p in parts[part] if p.kind == "not_car"}
        assert set(pool.files) == want
    assert sum(len(p.files) for p in pools.values()) == 4


def _framed_model_file(d: Path, size: int) -> Path:
    """A framed test model file (random weights, the framing heads grafted) at ``size`` px."""
    pytest.importorskip("torch")
    import torch

    from core.model import FramingHeads
    from training.framing.heads import graft
    from training.testmodels import make_model_file

    base, _ = make_model_file(d / "base.onnx", size=size, padding="same")
    torch.manual_seed(0)
    graft(base, FramingHeads(), {"threshold": 0.3, "unsure_below": 0.6,
                                 "sources": ({"name": "test", "licence": "none"},)}, d / "framed.onnx")
    return d / "framed.onnx"


@pytest.fixture(scope="module")
def framed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _framed_model_file(tmp_path_factory.mktemp("wholecar"), 64)


def test_graft_replaces_the_head_and_nothing_else(framed_file: Path, tmp_path: Path) -> None:
    from core.framing import CropMode
    from core.predictor import Predictor
    from training.framing import whole_car_graft as wg
    from training.framing import whole_car_head as wh

    rng = np.random.default_rng(0)
    head = wh.Head(rng.normal(0, 0.05, (16, 1280)).astype(np.float32), np.zeros(16, np.float32),
                   rng.normal(0, 1, (2, 16)).astype(np.float32), np.asarray([0.5, -0.5], np.float32))
    out = tmp_path / "new.onnx"
    wg.graft(framed_file, head, {"threshold": 0.2, "unsure_below": 0.4, "car_threshold": 0.3}, out, "test")
    assert wg.parity(framed_file, out) == 0.0  # classifier and box: bit for bit
    p = Predictor.load(out)
    fr = p.metadata.framing
    assert fr is not None and fr.car_output == "car_logit" and fr.car_threshold == 0.3 and fr.threshold == 0.2
    # The grafted graph computes what Head.logits does on the pooled features.
    from training.framing.whole_car import feature_session

    sess, meta = feature_session(out)
    x = rng.normal(0, 1, (3, 3, 64, 64)).astype(np.float32)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
    pooled = outs[[o.name for o in sess.get_outputs()][-1]]
    expected = head.logits(pooled.reshape(3, -1))
    assert np.allclose(outs["whole_car_logit"], expected[:, 0], atol=1e-4)
    assert np.allclose(outs["car_logit"], expected[:, 1], atol=1e-4)
    pred = p.predict(Image.new("RGB", (120, 80), (90, 90, 90)), CropMode.AUTO)
    assert not math.isnan(pred.car_score)
    # A second graft on the grafted file works the same (the recipe may be re-run).
    again = tmp_path / "again.onnx"
    wg.graft(out, head, {"threshold": 0.2, "unsure_below": 0.4, "car_threshold": 0.3}, again, "test")
    assert wg.parity(out, again) == 0.0


def test_thresholds_keep_whole_cars_under_the_share() -> None:
    from training.framing import whole_car_head as wh

    rng = np.random.default_rng(1)
    n = 400
    label = np.repeat([wd.WHOLE, wd.PART, wd.NO_CAR], n)
    kind = np.repeat(["tight", "partial", "natural-not_car"], n)
    feat = np.zeros((3 * n, 4), np.float32)
    feat[:, 0] = np.where(label == wd.WHOLE, 2, -2) + rng.normal(0, 1, 3 * n)
    feat[:, 1] = np.where(label >= wd.PART, 2, -2) + rng.normal(0, 1, 3 * n)
    head = wh.Head(np.eye(4, dtype=np.float32)[:2], np.full(2, 10, np.float32),
                   np.eye(2, dtype=np.float32), np.full(2, -10, np.float32))
    th = wh.choose_thresholds(head, {"feat": feat, "label": label, "kind": kind})
    scores = wh.sigmoid(head.logits(feat))
    assert np.mean(scores[label == wd.WHOLE, 0] < th["threshold"]) <= 0.02 + 1 / n
    assert np.mean(scores[label == wd.PART, 1] < th["car_threshold"]) <= 0.10 + 1 / n
    assert th["threshold"] <= th["unsure_below"]


@pytest.fixture(scope="module")
def framed_file_96(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A framed test model file at 96 px: its feature map is 3x3, one cell per grid block."""
    return _framed_model_file(tmp_path_factory.mktemp("wholecar96"), 96)


def test_a_grid_head_grafted_reads_the_feature_maps_blocks(framed_file_96: Path, tmp_path: Path) -> None:
    from training.framing import whole_car_graft as wg
    from training.framing import whole_car_head as wh
    from training.framing.whole_car import feature_session, grid_means

    rng = np.random.default_rng(2)
    head = wh.Head(rng.normal(0, 0.05, (16, 9 * 1280)).astype(np.float32), np.zeros(16, np.float32),
                   rng.normal(0, 1, (2, 16)).astype(np.float32), np.asarray([0.5, -0.5], np.float32), "grid")
    out = tmp_path / "grid.onnx"
    th = {"threshold": 0.2, "unsure_below": 0.4, "car_threshold": 0.3}
    wg.graft(framed_file_96, head, th, out, "test")
    assert wg.parity(framed_file_96, out) == 0.0  # classifier and box: bit for bit
    sess, _ = feature_session(out, grid=True)
    x = rng.normal(0, 1, (3, 3, 96, 96)).astype(np.float32)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
    fmap = outs[[o.name for o in sess.get_outputs()][-1]]
    assert fmap.shape[2:] == (3, 3)
    expected = head.logits(head.x({"grid": grid_means(fmap)}))
    assert np.allclose(outs["whole_car_logit"], expected[:, 0], atol=1e-4)
    assert np.allclose(outs["car_logit"], expected[:, 1], atol=1e-4)
    # mirrored inputs give other block means, so the head can tell where the car is cut off
    assert not np.allclose(grid_means(fmap), grid_means(fmap[..., ::-1]))
    again = tmp_path / "again.onnx"  # a second graft reuses the grid nodes
    wg.graft(out, head, th, again, "test")
    assert wg.parity(out, again) == 0.0
    pooled = wh.Head(rng.normal(0, 0.05, (16, 1280)).astype(np.float32), np.zeros(16, np.float32),
                     rng.normal(0, 1, (2, 16)).astype(np.float32), np.asarray([0.5, -0.5], np.float32))
    back = tmp_path / "back.onnx"  # and a pooled head grafted over it reads the pooled vector again
    wg.graft(again, pooled, th, back, "test")
    sess, _ = feature_session(back)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
    feat = outs[[o.name for o in sess.get_outputs()][-1]]
    assert np.allclose(feat, fmap.mean(axis=(2, 3)), atol=1e-5)
    assert np.allclose(outs["whole_car_logit"], pooled.logits(feat)[:, 0], atol=1e-4)


def test_grid_means_are_the_blocks_row_by_row() -> None:
    from training.framing.whole_car import grid_means

    fmap = np.arange(2 * 4 * 9 * 9, dtype=np.float32).reshape(2, 4, 9, 9)
    g = grid_means(fmap)
    assert g.shape == (2, 9, 4)
    assert np.allclose(g[1, 5, 2], fmap[1, 2, 3:6, 6:9].mean())  # block row 1, column 2
    assert np.allclose(g.mean(axis=1), fmap.mean(axis=(2, 3)))  # their mean is the pooled vector
    with pytest.raises(ValueError, match="does not split"):
        grid_means(np.zeros((1, 4, 7, 7), np.float32))


@pytest.mark.parametrize("layout", ["edges", "grid"])
def test_a_head_on_where_the_car_is_learns_what_pooling_cannot_see(layout: str) -> None:
    """Whole or part differs only in which side of the crop a feature sits: the pooled vector is
    the same for both, the folded edges/grid head tells them apart."""
    pytest.importorskip("torch")
    from training.framing import whole_car_head as wh

    rng = np.random.default_rng(3)
    n, c = 800, 6
    label = np.where(np.arange(n) % 2 == 0, wd.WHOLE, wd.PART)
    grid = rng.normal(0, 0.3, (n, 9, c)).astype(np.float32)
    left = label == wd.WHOLE
    grid[left, 0::3, 0] += 2.0  # the left column of whole cars, the right column of parts
    grid[~left, 2::3, 0] += 2.0
    data = {"grid": grid.astype(np.float16), "feat": grid.mean(axis=1).astype(np.float16), "label": label,
            "kind": np.where(left, "tight", "sweep-half")}
    accuracy = {}
    for lay in ("pooled", layout):
        head = wh.train_head(data, hidden=16, epochs=30, seed=0, layout=lay)
        whole, _ = head.probs(head.x(data))
        accuracy[lay] = float(np.mean((whole > 0.5) == left))
    assert accuracy[layout] > 0.95 and accuracy["pooled"] < 0.7


def test_an_inner_head_grafted_reads_the_pooled_vector_and_the_inner_blocks(framed_file: Path, tmp_path: Path) -> None:
    """The graft computes what the head computes on ``whole_car features --inner``'s columns; a
    pooled head grafted over it reads the pooled vector alone again; the build's graft drops the
    part rule and second look decided for the old head."""
    import dataclasses

    from core.framing import CropMode
    from core.modelfile import open_session, write_model_file
    from core.predictor import Predictor
    from training.framing import whole_car_graft as wg
    from training.framing import whole_car_head as wh
    from training.framing.whole_car import INNER_INPUT, extract, feature_session

    rng = np.random.default_rng(4)
    sess, meta = feature_session(framed_file, inner=True)
    samples = [wd.Sample(Image.fromarray(rng.integers(0, 255, (48, 72, 3), dtype=np.uint8)), wd.WHOLE, "tight", "g")
               for _ in range(5)]
    data = extract(sess, meta.input, iter(samples), batch=2)
    assert data["inner"].shape == (5, 2 * (32 + 64 + 96 + 160 + 320))  # means, then maxima
    d = 1280 + 672
    head = wh.Head(rng.normal(0, 0.05, (16, d)).astype(np.float32), np.zeros(16, np.float32),
                   rng.normal(0, 1, (2, 16)).astype(np.float32), np.asarray([0.5, -0.5], np.float32), "inner")
    th = {"threshold": 0.2, "unsure_below": 0.4, "car_threshold": 0.3}
    # a file with a part rule and a second look, as the bundled one has
    _, fmeta = open_session(framed_file, threads=1)
    assert fmeta.framing is not None
    ruled = tmp_path / "ruled.onnx"
    write_model_file(framed_file, dataclasses.replace(fmeta, framing=dataclasses.replace(
        fmeta.framing, part_weights=(1.0, 1.0, 1.0), part_bias=-1.0, second_look=True, second_look_min_top=0.3)), ruled)
    out = tmp_path / "inner.onnx"
    wg.graft(ruled, head, th, out, "test", drop_rules=True)
    assert wg.parity(framed_file, out) == 0.0  # classifier and box: bit for bit
    p = Predictor.load(out)  # the graph passes the app's checks
    fr = p.metadata.framing
    assert fr is not None and fr.part_weights == () and not fr.second_look and fr.threshold == 0.2
    sess2, meta2 = feature_session(out, inner=True)  # the pooled vector is still found
    again = extract(sess2, meta2.input, iter(samples), batch=2)
    names = [o.name for o in sess2.get_outputs()]
    from training.framing.heads import to_input

    batch = np.stack([to_input(s.image, meta2.input) for s in samples])
    outs = dict(zip(names, sess2.run(None, {sess2.get_inputs()[0].name: batch}), strict=True))
    expected = head.logits(head.x(again))  # from features stored as fp16
    assert np.allclose(outs["whole_car_logit"], expected[:, 0], rtol=2e-3, atol=2e-3)
    assert np.allclose(outs["car_logit"], expected[:, 1], rtol=2e-3, atol=2e-3)
    assert np.allclose(again["feat"], data["feat"], atol=1e-2)
    blind = dataclasses.replace(head, w0=np.concatenate([head.w0[:, :1280], np.zeros((16, 672), np.float32)], 1))
    assert not np.allclose(blind.logits(head.x(again)), expected, atol=1e-2)  # the inner blocks count
    assert not math.isnan(p.predict(Image.new("RGB", (120, 80), (90, 90, 90)), CropMode.AUTO).car_score)
    kept = tmp_path / "kept.onnx"  # a study's graft keeps the file's rules
    wg.graft(ruled, head, th, kept, "test")
    kfr = Predictor.load(kept).metadata.framing
    assert kfr is not None and kfr.part_weights == (1.0, 1.0, 1.0) and kfr.second_look
    pooled = wh.Head(rng.normal(0, 0.05, (16, 1280)).astype(np.float32), np.zeros(16, np.float32),
                     rng.normal(0, 1, (2, 16)).astype(np.float32), np.asarray([0.5, -0.5], np.float32))
    back = tmp_path / "back.onnx"
    wg.graft(out, pooled, th, back, "test")
    import onnx

    assert not [n for n in onnx.load(str(back)).graph.node if n.name.startswith(INNER_INPUT)]
    sess3, meta3 = feature_session(back)
    outs3 = dict(zip([o.name for o in sess3.get_outputs()], sess3.run(None, {sess3.get_inputs()[0].name: batch}),
                     strict=True))
    feat = outs3[[o.name for o in sess3.get_outputs()][-1]].reshape(len(samples), -1)
    assert np.allclose(outs3["whole_car_logit"], pooled.logits(feat)[:, 0], atol=1e-4)


def test_the_bundled_model_card_is_written_from_the_bundled_file() -> None:
    """MODEL_CARD.md says what the bundled file records (its whole-car head's inputs, its held-out
    figures, other vehicles by leave-category-out): regenerated, it is the same text."""
    from training.release.model_card import card_text

    repo = Path(__file__).resolve().parent.parent
    model = repo / "resources" / "models" / "carvalue.onnx"
    card = (repo / "resources" / "models" / "MODEL_CARD.md").read_text()
    assert card_text(model, "training/reports/split-model/") == card
    assert "Other vehicles (motorbikes" in card and "leave-category-out through Predictor" in card


def test_the_card_says_what_the_head_reads_and_how_other_vehicles_fare() -> None:
    from training.framing.whole_car_eval import card_section

    w = {"by_kind": {"whole: tight crop": {"photos": 10, "flagged": 0.1, "no_car": 0.0, "make_model_top1": 0.9}},
         "reads": "the pooled trunk features and the means of five inner blocks of the trunk"}
    v = {"held out of training: caltech101/Motorbikes": {"n": 40, "without": 0.7, "with": 0.625},
         "all": {"n": 107, "without": 0.8, "with": 0.766}}
    text = card_section(w, vehicles=v)
    assert "Two logits on the pooled trunk features and the means of five inner blocks" in text
    assert "76.6% of 107 flagged (Motorbikes 62.5% of 40)" in text
    assert "Other vehicles" not in card_section({"by_kind": w["by_kind"]})
