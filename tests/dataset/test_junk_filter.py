"""Junk filter: threshold logic, metrics, training, pickle-free save/load, features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.dataset.junk_filter import (
    FilterFileError,
    JunkFilter,
    choose_threshold,
    evaluate,
    train_junk_filter,
)


def test_threshold_drops_fewer_than_one_percent_of_good() -> None:
    good = np.arange(1000, dtype=float)  # scores 0..999
    t = choose_threshold(good, 0.01)
    assert np.sum(good < t) == 9  # 9/1000 < 1%; 10 would not be "fewer than"
    assert t == 9.0
    assert choose_threshold(np.arange(100.0), 0.01) == 0.0  # 1 of 100 is already 1%: drop none
    assert choose_threshold(np.arange(250.0), 0.01) == 2.0  # ceil(2.5) - 1 = 2 may go
    assert choose_threshold(np.array([5.0, 1.0, 3.0]), 0.5) == 3.0  # unsorted input; 1 of 3 < 50%


@pytest.mark.parametrize("n", [1, 7, 99, 100, 101, 199, 200, 201, 1234])
def test_threshold_property_for_any_count(n: int) -> None:
    rng = np.random.default_rng(n)
    good = rng.normal(size=n)
    t = choose_threshold(good, 0.01)
    dropped = np.sum(good < t)
    assert dropped / n < 0.01
    # and it is the highest such threshold: the next good score up would drop too many
    higher = np.sort(good)[good.size - 1 if dropped + 1 >= n else dropped + 1]
    assert higher == t or np.sum(good < higher) / n >= 0.01 or higher == np.sort(good)[-1]


def test_threshold_with_ties_never_drops_more() -> None:
    good = np.array([1.0] * 50 + [2.0] * 150)
    t = choose_threshold(good, 0.01)  # may drop 1 of 200; the lowest two are tied
    assert np.sum(good < t) == 0


def test_threshold_needs_sane_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        choose_threshold(np.array([]))
    with pytest.raises(ValueError, match="max_good_loss"):
        choose_threshold(np.arange(5.0), 1.5)


def test_metrics() -> None:
    good = np.array([0.5, 1.0, 2.0, 3.0])
    bad = np.array([-2.0, -1.0, 0.7, 4.0])
    m = evaluate(good, bad, 0.8)  # drops good 0.5, bad -2, -1, 0.7
    assert (m.good_dropped, m.bad_dropped) == (1, 3)
    assert m.precision == 0.75 and m.recall == 0.75 and m.fraction_removed == 0.5 and m.good_loss == 0.25


def _blobs(n_good: int, n_bad: int, dim: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = np.zeros(dim)
    centre[:3] = 3.0
    x = np.concatenate([rng.normal(size=(n_good, dim)) + centre, rng.normal(size=(n_bad, dim)) - centre])
    return x * rng.uniform(0.1, 10, dim), np.array([True] * n_good + [False] * n_bad)


def test_training_separates_and_respects_the_good_loss_bound() -> None:
    x, good = _blobs(400, 200)
    result = train_junk_filter(x, good, "test-features", held_out=0.5, max_good_loss=0.01, seed=1)
    m = result.held_out
    assert m.n_good == 200 and m.n_bad == 100
    assert m.good_dropped / m.n_good < 0.01
    assert m.recall > 0.9 and m.precision > 0.95
    assert result.warning is None
    # Scores on the training data agree with the saved arrays' formula.
    jf = result.filter
    assert np.all(jf.is_junk(x[good]).mean() < 0.05)


def test_training_refuses_too_few_labels_and_warns_when_1_percent_is_unmeasurable() -> None:
    x, good = _blobs(5, 40)
    with pytest.raises(ValueError, match="label more photos"):
        train_junk_filter(x, good, "f")
    x, good = _blobs(60, 30)
    result = train_junk_filter(x, good, "f", held_out=0.3)
    assert result.warning is not None and "held-out good" in result.warning
    assert result.held_out.good_dropped == 0


def test_save_load_roundtrip_without_pickle(tmp_path: Path) -> None:
    x, good = _blobs(100, 60)
    jf = train_junk_filter(x, good, "mobilenet_v2_imagenet").filter
    jf.save(tmp_path / "f")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["filter.json", "filter.safetensors"]
    raw = (tmp_path / "f" / "filter.safetensors").read_bytes()
    assert b"\x80\x04" not in raw[:16] and raw[8:9] == b"{"  # safetensors: u64 header length, then JSON
    back = JunkFilter.load(tmp_path / "f")
    assert np.allclose(back.scores(x), jf.scores(x)) and back.threshold == jf.threshold
    assert back.features == "mobilenet_v2_imagenet" and back.fingerprint() == jf.fingerprint()
    assert json.loads((tmp_path / "f" / "filter.json").read_text())["metrics"]["n_good"] > 0


def test_load_rejects_broken_filters(tmp_path: Path) -> None:
    x, good = _blobs(100, 60)
    train_junk_filter(x, good, "f").filter.save(tmp_path / "f")
    with pytest.raises(FilterFileError, match="missing"):
        JunkFilter.load(tmp_path / "nowhere")
    meta = json.loads((tmp_path / "f" / "filter.json").read_text())
    (tmp_path / "f" / "filter.json").write_text(json.dumps({**meta, "dim": 7}))
    with pytest.raises(FilterFileError, match="shape"):
        JunkFilter.load(tmp_path / "f")
    (tmp_path / "f" / "filter.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(FilterFileError, match="version"):
        JunkFilter.load(tmp_path / "f")
    (tmp_path / "f" / "filter.json").write_text(json.dumps(meta))
    (tmp_path / "f" / "filter.safetensors").write_bytes(b"\x80\x04garbage")
    with pytest.raises(FilterFileError, match="unreadable"):
        JunkFilter.load(tmp_path / "f")


def test_scores_check_the_feature_width() -> None:
    x, good = _blobs(100, 60)
    jf = train_junk_filter(x, good, "f").filter
    with pytest.raises(ValueError, match=r"\(N, 20\)"):
        jf.scores(np.zeros((2, 19)))


# -- features ------------------------------------------------------------------------------------
def random_trunk(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    from core.model import mobilenet_v2_features

    torch.manual_seed(0)
    save_file(mobilenet_v2_features(padding="same", bn_eps=1e-3).state_dict(), str(path))
    return path


@pytest.mark.usefixtures("torch_threads_restored")
def test_mobilenet_features_from_a_trunk_file(tmp_path: Path) -> None:
    from core.dataset.features import MobileNetFeatures, make_extractor

    fx = MobileNetFeatures(random_trunk(tmp_path / "trunk.safetensors"), size=64, threads=1)
    assert fx.name == "mobilenet_v2_imagenet@64"
    assert make_extractor(fx.name, tmp_path / "trunk.safetensors").size == 64  # type: ignore[attr-defined]
    imgs = [Image.new("RGB", (300, 200), (i * 40, 100, 200)) for i in range(3)]
    f = fx(imgs)
    assert f.shape == (3, 1280) and f.dtype == np.float32 and np.all(np.isfinite(f))
    assert not np.allclose(f[0], f[2])
    assert np.allclose(fx(imgs[:1]), f[:1], atol=1e-5)  # batch-independent (eval mode)


def test_missing_trunk_says_how_to_make_it(tmp_path: Path) -> None:
    from core.dataset.features import MobileNetFeatures

    with pytest.raises(FileNotFoundError, match="python -m training.loop.pretrained convert"):
        MobileNetFeatures()  # the isolated cache dir has none
    bad = tmp_path / "bad.safetensors"
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, np.float32)}, str(bad))
    with pytest.raises(ValueError, match="not a MobileNetV2 trunk"):
        MobileNetFeatures(bad)


def test_clip_is_local_only(tmp_path: Path) -> None:
    from core.dataset.features import make_extractor

    with pytest.raises(ValueError, match="--clip-weights"):
        make_extractor("clip")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        make_extractor("clip", clip_weights=tmp_path / "nope.bin")


@pytest.mark.usefixtures("torch_threads_restored")
def test_clip_loads_only_the_local_file_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny random open_clip CLIP saved as the local weights file: the junk filter's features are
    its image embeddings, read through the loader the trainer's --arch clip-vit-b16 uses."""
    import os

    import torch

    from core.dataset.features import CLIP, ClipFeatures
    from tests.tiny_clip import write_tiny_clip

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    weights, config = write_tiny_clip(tmp_path)
    fx = ClipFeatures(weights, model_name=str(config), threads=1)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set before open_clip could look anything up
    state = torch.load(weights, weights_only=True)
    assert torch.equal(fx.model.visual.proj, state["visual.proj"])
    images = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (40, 80), (20, 90, 200))]
    f = fx(images)
    assert fx.name == CLIP and f.shape == (2, fx.dim) == (2, 16)
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5) and not np.allclose(f[0], f[1])


def test_clip_without_open_clip_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from core.dataset.features import make_extractor

    monkeypatch.setitem(sys.modules, "open_clip", None)  # import fails
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    with pytest.raises(ImportError, match=r"carvalue\[train\]"):
        make_extractor("clip", clip_weights=weights)
