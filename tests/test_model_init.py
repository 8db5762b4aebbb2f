"""Fine-tuning from a model file (``--init model``) and framed samples in training augmentation."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from core.modelfile import InputSpec
from tests.synthetic_cars import make_folder, tiny_train_args
from training.config import TrainConfig
from training.data.dataset import Augment

REPO = Path(__file__).resolve().parent.parent


def _train(args: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "training.cli", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


def _folded(data: Path, out: Path, *extra: str) -> list[str]:
    args = tiny_train_args(data, out, "--epochs", "1", *extra)
    return [a if a != "--no-fold-bn" else "--fold-bn" for a in args]


@pytest.fixture(scope="module")
def start_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from training.release.export import export_run

    data = make_folder(tmp_path_factory.mktemp("cars") / "data", cars_per_class=4)
    run = tmp_path_factory.mktemp("runs") / "start"
    _train(_folded(data, run))
    return data, export_run(run, run / "model" / "carvalue.onnx", quantize=False, bench_batches=1)


def _net_from(model_file: Path) -> torch.nn.Module:
    from training.loop import model_init
    from training.loop.modeling import build_model, model_config, trunk_start

    cfg = TrainConfig(data="x", init="model", pretrained_path=str(model_file), freeze_blocks=0)
    meta = model_init.read_metadata(model_file)
    mcfg = model_config(cfg, trunk_start(cfg), meta.price.num_bins, len(meta.make_models), len(meta.years))
    net = build_model(cfg, mcfg, trunk=None)
    model_init.load_weights(net, model_file)
    return net.eval()


@pytest.mark.slow  # start_model trains and exports a model file (~55 s here); some tests train again (~50 s)
def test_a_model_files_weights_give_its_own_outputs(start_model: tuple[Path, Path]) -> None:
    _, model_file = start_model
    net = _net_from(model_file)
    session = ort.InferenceSession(str(model_file))
    size = session.get_inputs()[0].shape[-1]
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    expected = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        got = net(torch.from_numpy(x))
    for e, g in zip(expected[:4], got, strict=True):
        np.testing.assert_allclose(e.reshape(g.shape), g.numpy(), atol=1e-4)


@pytest.mark.slow  # start_model trains and exports a model file (~55 s here); some tests train again (~50 s)
def test_fine_tune_from_a_model_file_records_where_it_started(start_model: tuple[Path, Path], tmp_path: Path) -> None:
    from training.loop.checkpoint import load_checkpoint
    from training.loop.model_init import read_metadata

    data, model_file = start_model
    out = tmp_path / "tuned"
    _train(_folded(data, out, "--init", "model", "--pretrained-path", str(model_file), "--framed", "0.5"))
    ck = load_checkpoint(out)
    trunk = ck.meta["provenance"]["trunk"]
    assert trunk["init"] == "model" and trunk["padding"] == "same"
    assert trunk["start_model_sha256"] == __import__("hashlib").sha256(model_file.read_bytes()).hexdigest()
    assert ck.meta["split"]["sha256"] == read_metadata(model_file).provenance["split"]["sha256"]
    from training.release.export import export_run

    card = (export_run(out, out / "model" / "carvalue.onnx", quantize=False, bench_batches=1).parent
            / "MODEL_CARD.md").read_text()
    assert "Start: the model file carvalue.onnx" in card and "heads from the start model" in card
    assert "50% of samples framed" in card and "linear probe" not in card


@pytest.mark.slow  # start_model trains and exports a model file (~55 s here); some tests train again (~50 s)
def test_a_run_on_every_photo_ships_with_its_split_runs_held_out_figures(start_model: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    """The shipped model trains on every photo but validation: nothing is left to test it on, so
    export needs the split run's model file and records its held-out figures as such."""
    from carvalue_gui.model_dialog import held_out_results
    from training.loop.model_init import read_metadata
    from training.release.export import export_run

    data, split_model = start_model
    out = tmp_path / "all"
    _train(_folded(data, out, "--test-fraction", "0", "--lr", "1e-3"))
    with pytest.raises(ValueError, match="no test photos"):
        export_run(out, out / "model" / "carvalue.onnx", quantize=False, bench_batches=1)
    path = export_run(out, out / "model" / "carvalue.onnx", quantize=False, bench_batches=1, reference=split_model)
    meta, theirs = read_metadata(path), read_metadata(split_model)
    assert meta.metrics["test"] is None and meta.provenance["counts"]["test"] == 0
    ref = meta.metrics["held_out_reference"]
    assert ref["test"] == theirs.metrics["test"] and ref["split"] == theirs.provenance["split"]
    assert ref["sha256"] == __import__("hashlib").sha256(split_model.read_bytes()).hexdigest()
    assert ref["recipe_differences"] == {"lr": [1e-3, 3e-3]}  # the test part and paths are not recipe
    card = (path.parent / "MODEL_CARD.md").read_text()
    assert "Held-out metrics (the same recipe's split run)" in card and "lr 0.001 vs 0.003" in card
    start = export_run(out, tmp_path / "start" / "carvalue.onnx", quantize=False, bench_batches=1, unmeasured=True)
    assert "None: this run held no photos out" in (start.parent / "MODEL_CARD.md").read_text()
    assert "held_out_reference" not in read_metadata(start).metrics
    # a start file's evaluation skips the non-car photo sets and keeps apart from the full one
    assert meta.metrics["confidence"]["non_car"] and read_metadata(start).metrics["confidence"]["non_car"] == {}
    assert (out / "eval-start" / "report.json").is_file() and (out / "eval" / "report.json").is_file()
    test, _, title = held_out_results(meta)
    assert test == theirs.metrics["test"] and "without the test photos" in title
    report = (out / "eval" / "report.md").read_text()
    assert "none held out for testing" in report and "top-1" not in report.split("Input:")[0]


def test_recipe_differences_ignore_paths_and_count_a_missing_setting_as_its_default() -> None:
    from training.release.held_out_reference import recipe_differences, start_model_configs

    ours = {"lr": 1e-4, "framed": 0.0, "out": "runs/a", "test_fraction": 0.0, "threads": 1, "epochs": 8}
    theirs = {"lr": 1e-4, "out": "runs/b", "test_fraction": 0.1, "epochs": 16}  # older: no "framed"
    assert recipe_differences(ours, theirs) == {"epochs": [8, 16]}
    assert start_model_configs({"trunk": {"start_model_training": {"config": theirs}}}) == [theirs]
    assert start_model_configs({"trunk": {"init": "keras"}}) == [] and start_model_configs("junk") == []


def test_every_stage_of_a_fine_tuned_chain_is_compared() -> None:
    """A stage-3 model records its stage-2 start, which records its stage-1 start: all three
    stages of the shipped run are compared with the split run's, not only the last two."""
    from training.release.held_out_reference import start_model_configs
    from training.release.model_card import _start_difference

    def chain(*configs: dict[str, object]) -> dict[str, object]:
        trunk: dict[str, object] = {"init": "keras"}
        for c in reversed(configs):
            trunk = {"init": "model", "start_model_training": {"config": c}, "start_model_trunk": trunk}
        return {"trunk": trunk}

    stage2, stage1 = {"epochs": 8, "framed": 0.5}, {"epochs": 16}
    assert start_model_configs(chain(stage2, stage1)) == [stage2, stage1]
    assert start_model_configs({"trunk": {"start_model_training": "junk"}}) == []
    assert _start_difference({}, [{}]) == ", from start models trained the same way, and 2 stages back the same way"
    assert "2 stages back with epochs 12 vs 16" in _start_difference({}, [{"epochs": [12, 16]}])


@pytest.mark.slow  # start_model trains and exports a model file (~55 s here); some tests train again (~50 s)
def test_a_model_file_from_another_split_or_vocabulary_is_refused(start_model: tuple[Path, Path]) -> None:
    from training.loop.model_init import ModelInitError, check_compatible, read_metadata

    _, model_file = start_model
    meta = read_metadata(model_file)
    split = meta.provenance["split"]["sha256"]
    check_compatible(meta, model_file, meta.make_models, meta.years, split)
    with pytest.raises(ModelInitError, match="another split"):
        check_compatible(meta, model_file, meta.make_models, meta.years, "0" * 64)
    with pytest.raises(ModelInitError, match="classes"):
        check_compatible(meta, model_file, ("Other 2001", *meta.make_models[1:]), meta.years, split)
    with pytest.raises(ModelInitError, match="years"):
        check_compatible(meta, model_file, meta.make_models, ("1999", *meta.years[1:]), split)


@pytest.mark.slow  # start_model trains and exports a model file (~55 s here); some tests train again (~50 s)
def test_missing_or_misshapen_weights_are_an_error(start_model: tuple[Path, Path], tmp_path: Path) -> None:
    import onnx

    from training.loop.model_init import ModelInitError, load_weights

    _, model_file = start_model
    net = _net_from(model_file)
    graph = onnx.load(str(model_file))
    victim = next(t for t in graph.graph.initializer if t.name == "make_model_head.bias")
    victim.name = "renamed"
    broken = tmp_path / "broken.onnx"
    onnx.save(graph, str(broken))
    with pytest.raises(ModelInitError, match="make_model_head.bias"):
        load_weights(net, broken)


def test_config_refuses_init_model_without_a_file_or_folding() -> None:
    with pytest.raises(ValueError, match="--init model"):
        TrainConfig(data="x", init="model").validate()
    with pytest.raises(ValueError, match="--init model"):
        TrainConfig(data="x", init="model", pretrained_path="m.onnx", fold_bn=False).validate()
    with pytest.raises(ValueError, match="framed"):
        TrainConfig(data="x", framed=1.5).validate()


# -- framed samples ------------------------------------------------------------------------------
def _car(w: int = 120, h: int = 80) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 200
    arr[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (20, 40, 220)
    return Image.fromarray(arr)


@pytest.mark.parametrize("long_side", [640, 0])
@pytest.mark.parametrize("backgrounds", [False, True])
def test_framed_view_crops_around_the_whole_car(backgrounds: bool, long_side: int, tmp_path: Path) -> None:
    bgs: tuple[str, ...] = ()
    if backgrounds:
        street = tmp_path / "street.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8)).save(street)
        bgs = (str(street),)
    aug = Augment(framed=1.0, framed_box_jitter=0.15, backgrounds=bgs, framed_long_side=long_side)
    for seed in range(40):
        frame, box = aug.framed_view(_car(), np.random.default_rng(seed), 64)
        if long_side == 0:  # fitted: the car is still at least the input size (the box's sides move in by <= 15% each)
            assert max(frame.size) < 640 and min(box.w, box.h) >= 0.7 * (64 - 2)
        assert frame.width >= box.x + box.w - 1e-6 and frame.height >= box.y + box.h - 1e-6
        # the box is the pasted car with each side moved by at most 15% of its size: the car's
        # blue centre is always inside it
        arr = np.asarray(frame.crop((round(box.x), round(box.y), round(box.x + box.w), round(box.y + box.h))))
        blue = (arr[..., 2] > 150) & (arr[..., 0] < 100)
        assert blue.mean() > 0.1, seed


def test_framed_samples_are_deterministic_and_shaped_like_the_others() -> None:
    spec = InputSpec(size=48)
    framed = Augment(framed=1.0)
    a = framed(_car(), spec, np.random.default_rng(7))
    b = framed(_car(), spec, np.random.default_rng(7))
    plain = Augment()(_car(), spec, np.random.default_rng(7))
    assert a.shape == plain.shape == (3, 48, 48) and a.dtype == plain.dtype
    np.testing.assert_array_equal(a, b)
    assert dataclasses.replace(framed, framed=0.0)(_car(), spec, np.random.default_rng(7)).tolist() == plain.tolist()


def test_the_card_names_the_imagenet_start_of_a_chain_of_fine_tunes() -> None:
    from training.release.model_card import _start_line

    keras = {"init": "keras", "source": "Keras MobileNetV2", "licence_note": "Apache-2.0."}
    stage2 = {"init": "model", "start_model": "s1.onnx", "start_model_trunk": keras}
    stage3 = {"init": "model", "start_model": "s2.onnx", "start_model_sha256": "ab" * 32,
              "start_model_training": {"steps": 1688}, "start_model_trunk": stage2}
    line = _start_line(stage3)
    assert "s2.onnx" in line and "1688 steps" in line and "the last of 2 training stages before this one" in line
    assert "its ImageNet start: Keras MobileNetV2" in line
    assert "training stages" not in _start_line(stage2 | {"start_model_training": {"steps": 9}})


@pytest.mark.slow  # start_model trains and exports a model file (~55 s here); some tests train again (~50 s)
def test_the_model_card_is_written_again_from_the_model_file_alone(start_model: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    """``python -m training.release.model_card`` rebuilds export's card from the file's metadata: every
    training stage of the chain, the name given at export and the notes given to the stages."""
    from training.release.export import export_run
    from training.release.model_card import main

    data, model_file = start_model
    out = tmp_path / "tuned"
    note = "The resolution was chosen after both candidates were measured on the test photos."
    _train(_folded(data, out, "--init", "model", "--pretrained-path", str(model_file), "--notes", note))
    path = export_run(out, out / "model" / "carvalue.onnx", quantize=False, bench_batches=1, name="tuned-model")
    exported = (path.parent / "MODEL_CARD.md").read_text()
    assert main([str(path), "--out", str(tmp_path / "again.md")]) == 0
    again = (tmp_path / "again.md").read_text()
    assert again == exported
    assert again.startswith("# Model card: carvalue.onnx (tuned-model)")
    assert "- Stage 1 of 2:" in again and "heads random" in again.split("- Stage 2")[0]
    assert "- Stage 2 of 2:" in again and "heads from the start model" in again.split("- Stage 2")[1]
    assert f"- {note}" in again.split("## Known limits")[1]
