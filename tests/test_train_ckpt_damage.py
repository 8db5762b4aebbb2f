"""`carvalue-train` resuming from damaged or foreign checkpoints (issue 30 item 16, repro
train_ckpt_cases.sh): one line on stderr, never a traceback, and the newest intact checkpoint
that --keep-checkpoints kept is used instead."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.synthetic_cars import make_folder, tiny_train_args
from training.loop.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
STEPS = 3  # the base run stops after 3 steps with all three checkpoints kept

pytestmark = pytest.mark.slow  # 17 tests, each resumes a training run: 8-18 s each, minutes in all


def _train(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "training.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return tiny_train_args(data, out, "--keep-checkpoints", "3", *extra)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cars") / "data")


@pytest.fixture(scope="module")
def base_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "base"
    res = _train(_args(data, out, "--max-steps", str(STEPS)))
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"step-{i:08d}" for i in (1, 2, 3)]
    return out


@pytest.fixture(scope="module")
def folded_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same data, BatchNorm folded: another architecture's weights."""
    out = tmp_path_factory.mktemp("runs") / "folded"
    args = [a for a in _args(data, out, "--max-steps", "1") if a != "--no-fold-bn"]
    res = _train(args)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _copy(base: Path, run: Path) -> Path:
    """The base run in another folder, its checkpoints saying so (``out`` is part of the config)."""
    shutil.copytree(base, run)
    for meta_path in (run / "checkpoints").glob("step-*/meta.json"):
        meta = json.loads(meta_path.read_text())
        meta["config"]["out"] = str(run)
        meta_path.write_text(json.dumps(meta))
    return run


def _newest(run: Path) -> Path:
    return run / "checkpoints" / f"step-{STEPS:08d}"


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(ck: Path) -> None:
        p = ck / name
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return damage


def _empty(name: str) -> Callable[[Path], None]:
    return lambda ck: (ck / name).write_bytes(b"")


def _more_classes(ck: Path) -> None:
    w = load_file(str(ck / "model.safetensors"))
    head = w["make_model_head.weight"]
    w["make_model_head.weight"] = torch.cat([head, head[:1]])
    w["make_model_head.bias"] = torch.cat([w["make_model_head.bias"], w["make_model_head.bias"][:1]])
    save_file(w, str(ck / "model.safetensors"))


FALLS_BACK: dict[str, Callable[[Path], None]] = {
    "trunc_weights": _truncate("model.safetensors"),
    "trunc_state": _truncate("state.pt"),
    "empty_state": _empty("state.pt"),
    "empty_weights": _empty("model.safetensors"),
    "meta_garbage": lambda ck: (ck / "meta.json").write_text("{not json"),
    "meta_deep": lambda ck: (ck / "meta.json").write_text("[" * 100000 + "]" * 100000),
    "meta_wrong_types": lambda ck: (ck / "meta.json").write_text(json.dumps({"config": 5, "labels": [],
                                                                             "progress": "x"})),
    "no_meta": lambda ck: (ck / "meta.json").unlink(),
    "state_garbage": lambda ck: (ck / "state.pt").write_bytes(b"PK\x03\x04" + b"\x00" * 100),
    "other_classes_weights": _more_classes,
}


def _one_line_errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("carvalue-train:")]


@pytest.mark.parametrize("case", sorted(FALLS_BACK))
def test_damaged_newest_checkpoint_falls_back(base_run: Path, data: Path, tmp_path: Path, case: str) -> None:
    run = _copy(base_run, tmp_path / "run")
    FALLS_BACK[case](_newest(run))
    res = _train(_args(data, run, "--max-steps", str(STEPS + 1)))
    assert res.returncode == 0, res.stderr[-3000:]
    lines = _one_line_errors(res.stderr)
    assert any("trying an older checkpoint" in line and str(_newest(run)) in line for line in lines), lines
    assert any("resuming from the older checkpoint" in line and "step-00000002" in line for line in lines), lines
    assert load_checkpoint(run).progress.step == STEPS + 1  # step 2 resumed, then one more step...
    assert (run / "checkpoints" / f"damaged-step-{STEPS:08d}").is_dir()  # ...the damaged one set aside


def test_other_architecture_weights_fall_back(base_run: Path, folded_run: Path, data: Path, tmp_path: Path) -> None:
    run = _copy(base_run, tmp_path / "run")
    src = load_checkpoint(folded_run).path
    shutil.copy(src / "model.safetensors", _newest(run) / "model.safetensors")
    res = _train(_args(data, run, "--max-steps", str(STEPS + 1)))
    assert res.returncode == 0, res.stderr[-3000:]
    lines = _one_line_errors(res.stderr)
    assert any("weights do not fit the model" in line for line in lines), lines


@pytest.mark.parametrize("text", ['{"checkpoint": "../../../../etc"}', "garbage", '{"checkpoint": 5}', "[" * 100000])
def test_bad_last_json_resumes_newest(base_run: Path, data: Path, tmp_path: Path, text: str) -> None:
    run = _copy(base_run, tmp_path / "run")
    (run / "last.json").write_text(text)
    assert load_checkpoint(run).path == _newest(run)
    res = _train(_args(data, run, "--max-steps", str(STEPS + 1)))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and load_checkpoint(run).progress.step == STEPS + 1


def test_no_intact_checkpoint_is_one_line(base_run: Path, data: Path, tmp_path: Path) -> None:
    run = _copy(base_run, tmp_path / "run")
    for ck in (run / "checkpoints").iterdir():
        (ck / "state.pt").write_bytes(b"")
    res = _train(_args(data, run, "--max-steps", str(STEPS + 1)))
    assert res.returncode == 2
    last = _one_line_errors(res.stderr)[-1]
    assert "no intact checkpoint to resume" in last and "--keep-checkpoints" in last, last


def test_foreign_checkpoint_with_its_config_is_refused(base_run: Path, folded_run: Path, data: Path,
                                                       tmp_path: Path) -> None:
    """Every checkpoint from a run with other flags: the config mismatch, one line, exit 2."""
    run = _copy(base_run, tmp_path / "run")
    src = load_checkpoint(folded_run).path
    for ck in (run / "checkpoints").iterdir():
        for name in ("model.safetensors", "state.pt", "meta.json"):
            shutil.copy(src / name, ck / name)
    res = _train(_args(data, run, "--max-steps", str(STEPS + 1)))
    assert res.returncode == 2
    assert "different config" in _one_line_errors(res.stderr)[-1]


def test_foreign_newest_checkpoint_falls_back(base_run: Path, folded_run: Path, data: Path, tmp_path: Path) -> None:
    """The repro's other_arch_all: only the newest replaced by another run's; the older one is ours."""
    run = _copy(base_run, tmp_path / "run")
    src = load_checkpoint(folded_run).path
    for name in ("model.safetensors", "state.pt", "meta.json"):
        shutil.copy(src / name, _newest(run) / name)
    res = _train(_args(data, run, "--max-steps", str(STEPS + 1)))
    assert res.returncode == 0, res.stderr[-3000:]
    assert any("step-00000002" in line for line in _one_line_errors(res.stderr))


def test_evaluate_and_export_damaged_run_one_line(base_run: Path, tmp_path: Path) -> None:
    run = _copy(base_run, tmp_path / "run")
    for ck in (run / "checkpoints").iterdir():
        (ck / "meta.json").write_text("{not json")
    for args in (["evaluate", str(run)], ["export", str(run), "--out", str(tmp_path / "m.onnx")]):
        res = _train(args)
        assert res.returncode == 2, res.stderr[-2000:]
        assert len(_one_line_errors(res.stderr)) == 1
