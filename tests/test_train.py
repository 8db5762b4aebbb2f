"""Training: labels and masking, the split, checkpoints, exact resumption, torchrun (gloo)."""
# Over 400 lines: the training loop's tests share the tiny-run fixtures

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.dataset.records import ImageRecord
from core.modelfile import UNKNOWN, InputSpec
from tests.synthetic_cars import make_folder, tiny_train_args
from training.config import TrainConfig
from training.data.dataset import (
    IGNORE,
    Augment,
    CarPhotos,
    EpochSampler,
    LabelSpace,
    records_from_folder,
    split_by_group,
)
from training.loop.checkpoint import Progress, load_checkpoint, save_checkpoint
from training.loop.metrics import LossWeights, label_counts, multitask_loss

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _train(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "training.cli", *args], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=300, **kw)  # type: ignore[call-overload]


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    ck = load_checkpoint(run)
    return load_file(str(ck.weights_path))


# -- labels and masking ------------------------------------------------------------------------
def _rec(i: int, group: str, make: str = "Audi", model: str = "A4", year: int | None = 2012,
         price: float | None = 20e3) -> ImageRecord:
    return ImageRecord(Path(f"/x/{i}.jpg"), group, make, model, year, price)


def test_label_space_encodes_and_masks_missing_labels() -> None:
    recs = [_rec(0, "a"), _rec(1, "b", "Geo", "Metro", 1993, None), _rec(2, "c", year=None)]
    ls = LabelSpace.from_records(recs, "make_model")
    assert ls.make_models == ("Audi A4", "Geo Metro", UNKNOWN)
    assert ls.years == ("1993", "2012", UNKNOWN)
    t = ls.encode_all(recs + [_rec(3, "d", "Kia", "Rio")])
    assert t[0].make_model == 0 and t[0].year == 1 and t[0].price_bin == 3  # bins: <10k, 10-15k, 15-20k, 20-25k
    assert t[1].price_bin == IGNORE and math.isnan(t[1].median)
    assert t[2].year == IGNORE
    assert t[3].make_model == 2  # not in the vocabulary: Unknown (a real label, not masked)


def test_losses_are_masked_and_a_batch_without_prices_gives_zero_not_nan() -> None:
    torch.manual_seed(0)
    n = 6
    outs = (torch.randn(n, 10, requires_grad=True), torch.randn(n, requires_grad=True),
            torch.randn(n, 5, requires_grad=True), torch.randn(n, 4, requires_grad=True))
    cls = torch.tensor([[IGNORE, 1, 2]] * n)
    med = torch.full((n,), float("nan"))
    total, parts = multitask_loss(outs, cls, med, label_counts(cls, med), LossWeights())
    assert parts["price"].item() == 0.0 and parts["median"].item() == 0.0
    total.backward()
    assert all(torch.isfinite(o.grad).all() for o in outs)  # type: ignore[union-attr]
    assert outs[0].grad.abs().sum() == 0 and outs[1].grad.abs().sum() == 0  # type: ignore[union-attr]

    # partial labels: the loss equals the mean over labelled photos only
    cls2 = torch.tensor([[3, 1, 2], [IGNORE, 1, 2], [5, 1, 2], [IGNORE, 1, 2], [0, 1, 2], [1, 1, 2]])
    med2 = torch.tensor([0.5, float("nan"), -0.2, float("nan"), 0.0, 1.0])
    _, parts2 = multitask_loss(outs, cls2, med2, label_counts(cls2, med2), LossWeights())
    keep = cls2[:, 0] != IGNORE
    expected = torch.nn.functional.cross_entropy(outs[0][keep], cls2[keep, 0])
    assert parts2["price"].item() == pytest.approx(expected.item(), rel=1e-6)
    m = ~torch.isnan(med2)
    assert parts2["median"].item() == pytest.approx((outs[1][m] - med2[m]).abs().mean().item(), rel=1e-6)


def test_micro_batches_add_up_to_the_full_batch_loss() -> None:
    torch.manual_seed(1)
    n = 8
    outs = (torch.randn(n, 10), torch.randn(n), torch.randn(n, 5), torch.randn(n, 4))
    cls = torch.tensor([[i % 10 if i % 3 else IGNORE, i % 5, i % 4] for i in range(n)])
    med = torch.tensor([float("nan") if i % 3 == 0 else i / 10 for i in range(n)])
    counts = label_counts(cls, med)
    full, _ = multitask_loss(outs, cls, med, counts, LossWeights(), 0.1)
    parts = [multitask_loss(tuple(o[s:s + 3] for o in outs), cls[s:s + 3], med[s:s + 3], counts,
                            LossWeights(), 0.1)[0] for s in range(0, n, 3)]
    assert sum(p.item() for p in parts) == pytest.approx(full.item(), rel=1e-5)


# -- split -------------------------------------------------------------------------------------
def test_split_never_puts_a_group_on_both_sides(tmp_path: Path) -> None:
    recs = make_folder(tmp_path / "d", cars_per_class=6, photos_per_car=3)
    records = records_from_folder(recs)
    split = split_by_group(records, 0.2, 0.2, seed=3, class_key="make_model")
    parts = {name: {records[i].group for i in idx}
             for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))}
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"] and not parts["val"] & parts["test"]
    assert len(split.train) + len(split.val) + len(split.test) == len(records)
    # stratified: every class on every side
    for idx in (split.train, split.val, split.test):
        assert {records[i].make_model for i in idx} == {r.make_model for r in records}
    # seeded and recorded
    again = split_by_group(records, 0.2, 0.2, seed=3, class_key="make_model")
    assert again.digest() == split.digest()
    assert split_by_group(records, 0.2, 0.2, seed=4, class_key="make_model").digest() != split.digest()
    saved = json.loads(split.to_json(records, recs))
    assert saved["sha256"] == split.digest() and len(saved["parts"]["test"]["files"]) == len(split.test)


def test_sampler_shards_ranks_and_skips_for_resume() -> None:
    full = list(EpochSampler(20, seed=1, epoch=2, size=32, batch_size=4))
    assert len(full) == 20 and sorted(k[0] for k in full) == list(range(20))
    assert list(EpochSampler(20, seed=1, epoch=2, size=32, skip=8, batch_size=4)) == full[8:]
    r0 = [k[0] for k in EpochSampler(20, 1, 2, 32, rank=0, world=2, batch_size=4)]
    r1 = [k[0] for k in EpochSampler(20, 1, 2, 32, rank=1, world=2, batch_size=4)]
    assert len(r0) == len(r1) == 8 and not set(r0) & set(r1)
    assert [k[0] for k in EpochSampler(20, 1, 3, 32, batch_size=4)] != [k[0] for k in full]


def test_augmentation_is_deterministic_per_sample_and_crops_at_least_min_area(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "d", cars_per_class=1, photos_per_car=1)
    records = records_from_folder(folder)
    ds = CarPhotos(records, LabelSpace.from_records(records), InputSpec(size=32))
    a, _, _ = ds[(0, 123, 32)]
    b, _, _ = ds[(0, 123, 32)]
    c, _, _ = ds[(0, 124, 32)]
    assert a.shape == (3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    aug = Augment(min_area=0.25)
    rng = np.random.default_rng(0)
    for _ in range(200):
        box = aug.box((300, 150), rng)
        assert box.w * box.h >= 0.25 * 300 * 150 - 1e-6
        assert 0 <= box.x and box.x + box.w <= 300 + 1e-6 and 0 <= box.y and box.y + box.h <= 150 + 1e-6


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path: Path) -> None:
    from core.model import CarValueNet, ModelConfig

    torch.manual_seed(0)
    model = CarValueNet(ModelConfig(10, 3, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 3, 32, 32))[2].sum().backward()
    opt.step()
    cfg = TrainConfig(data="somewhere", epochs=3)
    labels = LabelSpace(("a", "b", UNKNOWN), ("2012", "2013", UNKNOWN), "make_model", meaning="m")
    state = {"optimizer": opt.state_dict(), "rng_cpu": torch.get_rng_state()}
    path = save_checkpoint(tmp_path, model, state, cfg, labels, Progress(1, 5, 17), {"split": {"sha256": "x"}})
    assert path.name == "step-00000017" and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    ck = load_checkpoint(tmp_path)
    assert ck.config == cfg and ck.labels == labels and ck.progress == Progress(1, 5, 17)
    fresh = CarValueNet(ModelConfig(10, 3, 3))
    ck.load_weights(fresh)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    st = ck.state()
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    opt2.load_state_dict(st["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    # pruning keeps the newest
    for s in (18, 19):
        save_checkpoint(tmp_path, model, state, cfg, labels, Progress(1, 6, s), {}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000018", "step-00000019"]
    assert load_checkpoint(tmp_path).progress.step == 19


# -- whole runs (subprocesses) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cars") / "data")


@pytest.fixture(scope="module")
def unbroken_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "unbroken"
    res = _train(tiny_train_args(tiny_data, out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_tiny_run_writes_log_plot_split_and_checkpoint(unbroken_run: Path) -> None:
    rows = (unbroken_run / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,step")
    assert (unbroken_run / "curves.png").stat().st_size > 1000
    split = json.loads((unbroken_run / "split.json").read_text())
    ck = load_checkpoint(unbroken_run)
    assert ck.progress == Progress(2, 0, 8) and ck.meta["split"]["sha256"] == split["sha256"]
    assert ck.labels.class_key == "make_model" and ck.labels.make_models[-1] == UNKNOWN


def test_resume_after_step_limit_equals_unbroken_run(tiny_data: Path, unbroken_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "stopped"
    first = _train(tiny_train_args(tiny_data, out, "--max-steps", "3"))  # stops mid-epoch 1
    assert first.returncode == 0, first.stderr[-3000:]
    assert load_checkpoint(out).progress == Progress(0, 3, 3)
    second = _train(tiny_train_args(tiny_data, out))
    assert second.returncode == 0, second.stderr[-3000:]
    a, b = _final_weights(unbroken_run), _final_weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _csv_losses(out) == _csv_losses(unbroken_run)


def _csv_losses(run: Path) -> list[str]:
    import csv

    with (run / "log.csv").open() as f:
        return [r["train_loss"] + "/" + r["val_make_model_ce"] for r in csv.DictReader(f)]


def test_resume_after_sigkill_mid_epoch_equals_unbroken_run(tiny_data: Path, unbroken_run: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "killed"
    # A slow worker (1 DataLoader process) and an epoch-2 kill point: SIGKILL once a mid-epoch
    # checkpoint of epoch 2 (step 5 or later) exists.
    proc = subprocess.Popen([PY, "-m", "training.cli", *tiny_train_args(tiny_data, out, "--workers", "1")],
                            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 240
    killed = False
    while time.time() < deadline and proc.poll() is None:
        last = out / "last.json"
        if last.exists() and int(json.loads(last.read_text())["checkpoint"].split("-")[-1]) >= 5:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    if not killed:
        pytest.fail(f"run ended before it could be killed: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
    assert load_checkpoint(out).progress.step < 8
    res = _train(tiny_train_args(tiny_data, out))
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _final_weights(unbroken_run), _final_weights(out)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_refuses_a_different_config(tiny_data: Path, unbroken_run: Path) -> None:
    res = _train(tiny_train_args(tiny_data, unbroken_run, "--lr", "1e-2"))
    assert res.returncode != 0 and "different config" in res.stderr


@pytest.fixture
def torchrun() -> Path:
    """The torchrun beside this Python (the test is skipped where there is none)."""
    path = Path(PY).with_name("torchrun")
    if not path.exists():
        pytest.skip(f"torchrun not found beside {PY}")
    return path


@pytest.mark.slow  # two training processes under torchrun: ~20 s
def test_two_process_torchrun_gloo(tiny_data: Path, tmp_path: Path, torchrun: Path) -> None:
    out = tmp_path / "ddp"
    args = tiny_train_args(tiny_data, out, "--batch-size", "2", "--micro-batch", "2")
    res = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "training.cli", *args],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ck = load_checkpoint(out)
    assert ck.meta["world_size"] == 2
    # 16 training photos / 2 ranks / batch 2 = 4 steps an epoch, 2 epochs
    assert ck.progress == Progress(2, 0, 8)
    assert len((out / "log.csv").read_text().splitlines()) == 3


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _two_nodes(args: list[str], torchrun: Path) -> list[subprocess.CompletedProcess[str]]:
    """``training.cli args`` under torchrun as two nodes of one process each on localhost (gloo),
    as two machines would run it: each launched on its own with --nnodes 2 and its --node_rank."""
    port = _free_port()
    procs = [subprocess.Popen([str(torchrun), "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                               "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "training.cli", *args],
                              cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.mark.slow  # two torchrun launches of two nodes each: ~40 s
def test_two_node_torchrun_on_localhost_trains_stops_and_resumes(tiny_data: Path, tmp_path: Path,
                                                                  torchrun: Path) -> None:
    out = tmp_path / "nodes"
    args = tiny_train_args(tiny_data, out, "--batch-size", "2", "--micro-batch", "2")
    first = _two_nodes([*args, "--max-steps", "3"], torchrun)
    assert all(r.returncode == 0 for r in first), [r.stderr[-2000:] for r in first]
    stopped = load_checkpoint(out)
    assert stopped.meta["world_size"] == 2 and stopped.progress.step == 3
    second = _two_nodes(args, torchrun)  # the same command again on both machines resumes
    assert all(r.returncode == 0 for r in second), [r.stderr[-2000:] for r in second]
    ck = load_checkpoint(out)
    assert ck.meta["world_size"] == 2
    assert ck.progress == Progress(2, 0, 8)  # 16 photos / 2 nodes / batch 2 = 4 steps an epoch, 2 epochs
    assert len((out / "log.csv").read_text().splitlines()) == 3


# -- model surgery and schedule ----------------------------------------------------------------
def test_folding_batchnorm_keeps_the_eval_outputs() -> None:
    from core.model import CarValueNet, ModelConfig
    from training.loop.modeling import fold_batchnorm

    torch.manual_seed(0)
    model = CarValueNet(ModelConfig(10, 5, 4, padding="same", bn_eps=1e-3))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)  # type: ignore[union-attr]
            m.running_var.uniform_(0.5, 2.0)  # type: ignore[union-attr]
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert fold_batchnorm(model) == n_bn == 52
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        after = model(x)
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_lr_schedule_warms_up_then_decays_to_the_floor() -> None:
    from training.loop.train import lr_factor

    f = [lr_factor(s, total=100, warmup=10, min_fraction=0.01) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[100] == pytest.approx(0.01)


def test_probe_init_fits_the_heads_before_training(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe"
    args = [a for a in tiny_train_args(tiny_data, out, "--epochs", "1", "--max-steps", "1", "--probe-init",
                                       "--probe-max-images", "12", "--probe-steps", "20")
            if a != "--no-probe-init"]
    res = _train(args)
    assert res.returncode == 0, res.stderr[-3000:]
    info = load_checkpoint(out).meta["provenance"]["probe_init"]
    assert info["probe_size"] == 32 and 0 <= info["probe_train_make_model_acc"] <= 1
    assert "linear-probe head init" in res.stdout


def test_shown_median_errors_use_the_apps_estimator() -> None:
    """Two photos: one whose head sits inside the histogram's likely range, one far outside it;
    the shown median is the head clipped into the range, exactly as core.predictor does."""
    import math

    import numpy as np

    from core.modelfile import PriceSpec
    from core.pricing import PriceBin, bin_quantile
    from training.data.dataset import LabelSpace
    from training.loop.metrics import Collected, shown_median_errors

    edges = (10e3, 20e3)
    labels = LabelSpace(make_models=("A", "Unknown"), years=("2010", "Unknown"), edges=edges,
                        log_mean=math.log(15e3), log_std=1.0)
    z = lambda usd: (math.log(usd) - labels.log_mean) / labels.log_std  # noqa: E731
    logits = np.log(np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1]]))  # most mass in 10k-20k
    c = Collected(price_logits=logits, median=np.array([z(15e3), z(90e3)]),
                  make_model_logits=np.zeros((2, 2)), year_logits=np.zeros((2, 2)),
                  cls_targets=np.zeros((2, 3), dtype=int), median_targets=np.array([z(15e3), z(16e3)]))
    out = shown_median_errors(c, labels, price_temperature=1.0)
    bins = [PriceBin(lo, hi, q) for (lo, hi), q in zip(PriceSpec(edges=edges).bounds(), (0.1, 0.8, 0.1), strict=True)]
    high = bin_quantile(bins, 0.75)
    assert out["head_outside_likely_range"] == 0.5
    assert out["shown_mae_usd"] == pytest.approx((0 + abs(high - 16e3)) / 2, rel=1e-9)
    assert out["head_mae_usd"] == pytest.approx((0 + 74e3) / 2, rel=1e-6)
    assert out["shown_mae_usd"] < out["head_mae_usd"]


def test_unaugmented_training_sample_is_what_the_app_feeds(tmp_path: Path) -> None:
    """The model file's input spec is the one source of normalisation: a training sample with
    every augmentation off equals the app's input for the whole photo (it used the Keras
    mean/std whatever the trunk wanted)."""
    from core.predictor import Predictor
    from core.preprocess import crop_to_input, load_photo

    folder = make_folder(tmp_path / "d", cars_per_class=1, photos_per_car=1)
    records = records_from_folder(folder)
    spec = InputSpec(size=64, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    plain = Augment(min_area=1.0, ratio=(1.0, 1.0), ratio_mode="relative", hflip=False, jitter=0.0)
    ds = CarPhotos(records, LabelSpace.from_records(records), spec, augment=plain)
    trained_on, _, _ = ds[(0, 7, 64)]
    app_feeds = crop_to_input(Predictor.as_photo(load_photo(records[0].image_path)), None, spec)
    np.testing.assert_array_equal(trained_on.numpy(), app_feeds)
    evaluated_on, _, _ = ds[0]
    np.testing.assert_array_equal(evaluated_on.numpy(), app_feeds)


# -- bf16 autocast on CPU (--cpu-amp) ----------------------------------------------------------
def test_autocast_context_is_bf16_on_cpu_only_when_asked() -> None:
    from training.loop.metrics import autocast_context

    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    cpu = torch.device("cpu")
    with autocast_context(cpu, True):  # --amp is for CUDA: the CPU stays fp32
        assert conv(x).dtype == torch.float32
    with autocast_context(cpu, True, cpu=True):
        assert conv(x).dtype == torch.bfloat16


def test_cpu_amp_is_refused_where_the_cpu_would_emulate_bf16(tiny_data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from training.cli import main
    from training.loop import train as train_module

    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(ValueError, match="--cpu-amp needs a CPU with native bf16"):
        main(tiny_train_args(tiny_data, tmp_path / "run", "--cpu-amp"))
    assert not (tmp_path / "run" / "last.json").exists()


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no native bf16")
def test_cpu_amp_trains_in_bf16_and_a_run_cannot_switch_it(tiny_data: Path, unbroken_run: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    res = _train(tiny_train_args(tiny_data, out, "--cpu-amp"))
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _final_weights(unbroken_run), _final_weights(out)
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert changed, "bf16 autocast left every weight bit-identical to the fp32 run"
    assert all(torch.isfinite(v).all() for v in b.values())
    refused = _train(tiny_train_args(tiny_data, unbroken_run, "--cpu-amp"))
    assert refused.returncode != 0 and "different config" in refused.stderr


def test_make_loss_is_the_cross_entropy_of_the_classes_summed_by_make() -> None:
    from training.loop.metrics import class_makes, make_loss

    makes, class_make = class_makes(("Audi A4 2012", "Audi S5 2012", "BMW M3 2012", UNKNOWN),
                                    {"Audi A4 2012": "Audi", "Audi S5 2012": "Audi", "BMW M3 2012": "BMW"})
    assert makes == ("Audi", "BMW") and class_make.tolist() == [0, 0, 1, -1]
    torch.manual_seed(0)
    z = torch.randn(4, 4)
    targets = torch.tensor([0, 2, 3, -100])  # Audi, BMW, Unknown (no make), unlabelled
    p = torch.softmax(z, dim=1)
    want = -(torch.log(p[0, 0] + p[0, 1]) + torch.log(p[1, 2])) / 4
    assert torch.allclose(make_loss(z, targets, class_make, 4), want, atol=1e-6)
    # the make is right whichever Audi class wins: a confusion inside the make costs nothing more
    sure_a4, sure_s5 = torch.tensor([[9.0, 0, 0, 0]]), torch.tensor([[0, 9.0, 0, 0]])
    one = torch.tensor([0])
    assert torch.allclose(make_loss(sure_a4, one, class_make, 1), make_loss(sure_s5, one, class_make, 1))
    assert float(make_loss(z, torch.tensor([3, -100]), class_make, 2)) == 0.0


def test_a_run_with_the_make_loss_trains_and_logs_it(tiny_data: Path, tmp_path: Path) -> None:
    res = _train(tiny_train_args(tiny_data, tmp_path / "make", "--loss-make", "1"))
    assert res.returncode == 0, res.stderr[-3000:]
    header, *rows = (tmp_path / "make" / "log.csv").read_text().splitlines()
    col = header.split(",").index("train_make")
    assert all(float(r.split(",")[col]) > 0 for r in rows)
