"""``--arch clip-vit-b16 --init-weights FILE``: open_clip's ViT tower from a local file (a tiny
random configuration here), trained with the usual heads and layer-wise lr decay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file

from core.dataset.clip_model import ClipWeightsError, load_clip
from core.geometry import Box
from core.model import ModelConfig
from core.preprocess import crop_resize, load_photo, normalise
from tests.synthetic_cars import make_folder, run_train_cli, tiny_train_args
from tests.tiny_clip import TINY_CLIP, write_tiny_clip
from training.config import TrainConfig
from training.data.dataset import IGNORE
from training.loop import clip_arch
from training.loop.checkpoint import load_checkpoint
from training.loop.distill import teacher_targets
from training.loop.metrics import LossWeights, autocast_context, label_counts, multitask_loss
from training.loop.train import make_optimizer
from training.loop.trained import load_trained


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_layer_wise_lrs_decay_from_the_heads_to_the_embeddings(clip_files: tuple[Path, Path]) -> None:
    weights, config = clip_files
    cfg = TrainConfig(data="x", arch="clip-vit-b16", init_weights=str(weights), clip_config=str(config), size=32,
                      lr=1e-3, layer_decay=0.75, freeze_blocks=0)
    net = clip_arch.build(str(config), 32, ModelConfig(10, 5, 4, architecture=cfg.arch), str(weights), 0)
    lr_of = {id(p): g["lr"] for g in make_optimizer(net, cfg).param_groups for p in g["params"]}  # type: ignore[arg-type]
    names = dict(net.named_parameters())
    expected = {"features.conv1.weight": 1e-3 * 0.75 ** 3, "features.positional_embedding": 1e-3 * 0.75 ** 3,
                "features.transformer.resblocks.0.attn.in_proj_weight": 1e-3 * 0.75 ** 2,
                "features.transformer.resblocks.1.mlp.c_fc.weight": 1e-3 * 0.75,
                "features.ln_post.weight": 1e-3, "features.proj": 1e-3, "make_model_head.weight": 1e-3}
    for name, lr in expected.items():
        assert lr_of[id(names[name])] == pytest.approx(lr), name
    assert len(lr_of) == len(names)  # every parameter in exactly one group
    frozen = clip_arch.build(str(config), 32, ModelConfig(10, 5, 4), str(weights), 1)
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert "features.transformer.resblocks.1.attn.in_proj_weight" in trainable
    assert not {"features.conv1.weight", "features.transformer.resblocks.0.attn.in_proj_weight"} & trainable


def test_the_tower_is_the_files_and_takes_the_runs_input_size(clip_files: tuple[Path, Path]) -> None:
    weights, config = clip_files
    state = torch.load(weights, weights_only=True)
    net = clip_arch.build(str(config), 32, ModelConfig(10, 5, 4), str(weights), 0)
    for k, v in net.features.state_dict().items():
        assert torch.equal(v, state[f"visual.{k}"]), k
    wider = clip_arch.build(str(config), 48, ModelConfig(10, 5, 4), str(weights), 0)  # 6x6 patches, not 4x4
    assert wider.features.positional_embedding.shape == (37, 32)
    assert [o.shape for o in wider(torch.rand(2, 3, 48, 48))] == [(2, 10), (2,), (2, 5), (2, 4)]


@pytest.mark.slow  # three CLI runs: ~24 s here
def test_training_steps_change_the_weights_resume_and_export_is_refused(
        clip_files: tuple[Path, Path], tmp_path: Path) -> None:
    weights, config = clip_files
    data = make_folder(tmp_path / "data")
    out = tmp_path / "run"
    args = tiny_train_args(data, out, "--arch", "clip-vit-b16", "--init-weights", str(weights),
                           "--clip-config", str(config), "--layer-decay", "0.75")
    first = run_train_cli([*args, "--max-steps", "2"])
    assert first.returncode == 0, first.stderr[-3000:]
    start = torch.load(weights, weights_only=True)
    trained = load_file(str(load_checkpoint(out).weights_path))
    changed = [k for k in trained if k.startswith("features.") and not torch.equal(trained[k], start["visual." + k[9:]])]
    assert "features.transformer.resblocks.0.attn.in_proj_weight" in changed and "features.proj" in changed
    second = run_train_cli(args)  # resumes to the end
    assert second.returncode == 0, second.stderr[-3000:]
    ck = load_checkpoint(out)
    assert ck.progress.epoch == 2 and ck.meta["model_config"]["architecture"] == "clip-vit-b16"
    assert ck.meta["provenance"]["trunk"]["weights_file"] == weights.name
    refused = run_train_cli(["export", str(out), "--out", str(tmp_path / "m.onnx")])
    assert refused.returncode == 2 and "cannot become the app's model file" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "data", cars_per_class=3)
    res = run_train_cli(tiny_train_args(data, tmp_path / "run", "--arch", "clip-vit-b16",
                               "--init-weights", str(tmp_path / "ViT-B-16.bin")))
    assert res.returncode == 2 and "CLIP weights file not found (it is never downloaded" in res.stderr
    assert "Traceback" not in res.stderr
    no_flag = run_train_cli(tiny_train_args(data, tmp_path / "run2", "--arch", "clip-vit-b16"))
    assert no_flag.returncode == 2 and "needs --init-weights FILE" in no_flag.stderr


def test_weights_of_another_shape_or_no_checkpoint_are_clear_errors(clip_files: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    _, config = clip_files
    wide = {**TINY_CLIP, "vision_cfg": {**TINY_CLIP["vision_cfg"], "width": 64}}
    wide_weights, _ = write_tiny_clip(tmp_path / "wide", config=wide)
    with pytest.raises(ClipWeightsError, match=r"clip-0\.pt: not weights of this CLIP model .*size mismatch"):
        load_clip(wide_weights, str(config))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint, only text" * 10)
    with pytest.raises(ClipWeightsError, match="junk.pt: not a readable CLIP checkpoint"):
        load_clip(junk, str(config))
    with pytest.raises(ClipWeightsError, match="no such open_clip model configuration"):
        load_clip(wide_weights, "ViT-Q-99")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_weights_file_loads_or_is_a_clear_error(clip_files: tuple[Path, Path], tmp_path: Path,
                                                          data: st.DataObject) -> None:
    """Whatever a weights file holds (truncated, bytes overwritten, another format, another state
    dict), load_clip loads it or raises ClipWeightsError: never another exception."""
    weights, config = clip_files
    good = weights.read_bytes()
    how = data.draw(st.sampled_from(["truncated", "overwritten", "random", "safetensors"]), label="how")
    suffix = ".pt"
    if how == "truncated":
        blob = good[:data.draw(st.integers(0, len(good) - 1), label="length")]
    elif how == "overwritten":
        at = data.draw(st.integers(0, len(good) - 1), label="at")
        patch = data.draw(st.binary(min_size=1, max_size=64), label="patch")
        blob = good[:at] + patch + good[at + len(patch):]
    elif how == "random":
        blob = data.draw(st.binary(max_size=2048), label="bytes")
        suffix = data.draw(st.sampled_from([".pt", ".bin", ".safetensors"]), label="suffix")
    else:  # a well-formed safetensors file of arbitrary tensors: some keys right, some shapes wrong
        from safetensors.torch import save_file

        state = torch.load(weights, weights_only=True)
        keys = data.draw(st.lists(st.sampled_from(sorted(state)), unique=True, max_size=6), label="keys")
        extra = data.draw(st.lists(st.text("abcdef.", min_size=1, max_size=12), unique=True, max_size=3), label="extra")
        shapes = {k: tuple(state[k].shape) if data.draw(st.booleans(), label=f"{k} right shape") else (3,)
                  for k in keys}
        tensors = {k: torch.zeros(shape) for k, shape in shapes.items()}
        tensors.update({k: torch.zeros(2) for k in extra if k not in tensors})
        path = tmp_path / "state.safetensors"
        save_file(tensors, str(path))
        blob, suffix = path.read_bytes(), ".safetensors"
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(blob)
    try:
        model = load_clip(path, str(config))
    except ClipWeightsError as e:
        assert str(path) in str(e)
    else:
        assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.slow  # a CLIP run, then a student taught by it: ~20 s here
def test_a_clip_run_teaches_the_mobilenet_student(clip_files: tuple[Path, Path], tmp_path: Path) -> None:
    """A CLIP run cannot become a model file, but its folder can be --teacher: its last checkpoint
    runs in torch at its own input size."""
    weights, config = clip_files
    data = make_folder(tmp_path / "data")
    clip_run = tmp_path / "clip-run"
    res = run_train_cli(tiny_train_args(data, clip_run, "--arch", "clip-vit-b16", "--init-weights", str(weights),
                                        "--clip-config", str(config), "--size", "48", "--epochs", "1"))
    assert res.returncode == 0, res.stderr[-3000:]
    student = tmp_path / "student"
    res = run_train_cli(tiny_train_args(data, student, "--teacher", str(clip_run), "--epochs", "1"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "teacher clip-run: logits of" in res.stdout and "48 px" in res.stdout
    teacher = load_checkpoint(student).meta["provenance"]["teacher"]
    assert teacher["model"] == "clip-run" and teacher["kind"].startswith("training run")
    t = load_trained(clip_run)
    records = t.part("train")[:2]
    got = teacher_targets(clip_run, records, t.labels.make_models, t.labels.years, tmp_path / "targets")
    spec = t.spec("stretch")
    image = load_photo(records[0].image_path).image
    x = torch.from_numpy(normalise(crop_resize(image, Box.full(image.size), spec), spec)[None])
    flipped = torch.from_numpy(normalise(crop_resize(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Box.full(image.size), spec), spec)[None])
    with torch.no_grad():
        mean = (t.model.eval()(x)[2] + t.model(flipped)[2]) / 2
    assert torch.allclose(got.make_model[0], mean[0], atol=1e-5)


def test_a_step_under_bf16_autocast_has_finite_gradients(clip_files: tuple[Path, Path]) -> None:
    """The trainer's autocast (bf16 on CUDA; on CPU only with --cpu-amp, emulated here, no GPU in the
    tests): the tower computes in bf16, the losses in fp32, every trainable weight gets a finite gradient."""
    weights, config = clip_files
    net = clip_arch.build(str(config), 32, ModelConfig(10, 5, 4), str(weights), 0)
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    cls = torch.tensor([[1, 2, 3], [4, 0, IGNORE], [IGNORE, 1, 1], [0, 4, 2]])
    med = torch.tensor([0.1, float("nan"), -0.2, 0.3])
    with autocast_context(torch.device("cpu"), True, cpu=True):
        feats = net.forward_features(x)
        outputs = net.forward_head(feats)
    assert feats.dtype == torch.bfloat16
    loss, _ = multitask_loss(outputs, cls, med, label_counts(cls, med), LossWeights())
    assert loss.dtype == torch.float32
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert float(net.features.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum()) > 0
