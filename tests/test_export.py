"""Evaluation report and model-file export of a tiny trained run: metadata round trip through
Predictor.load, torch-vs-ONNX parity, the model card."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core import scores
from core.modelfile import UNKNOWN
from core.predictor import Predictor
from core.preprocess import crop_to_input
from tests.synthetic_cars import make_folder, tiny_train_args

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = make_folder(tmp_path_factory.mktemp("cars") / "data", cars_per_class=5)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "training.cli", *tiny_train_args(data, out, "--epochs", "1")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def evaluated(trained_run: Path) -> Path:
    from training.release.evaluate import evaluate_run, non_car_images

    md = evaluate_run(trained_run, non_car={"sklearn samples": non_car_images([])})
    assert md.is_file()
    return trained_run / "eval"


def test_evaluation_report_has_metrics_baselines_calibration_and_plots(evaluated: Path) -> None:
    r = json.loads((evaluated / "report.json").read_text())
    for key in ("make_model_top1", "make_model_top5", "year_exact", "year_within1", "year_within2",
                "price_acc", "price_ce", "median_mae_usd", "median_mape"):
        assert key in r["test"], key
    assert 0 <= r["test"]["make_model_top1"] <= 1
    assert "majority_make_model_top1" in r["baselines"] and r["baselines"]["train_median_price_usd"] > 0
    assert set(r["temperatures"]) == {"price", "make_model", "year"}
    assert all(0.05 <= v <= 20 for v in r["temperatures"].values())
    assert r["input"]["resize"] in ("stretch", "center_crop")
    conf = r["confidence"]
    assert conf["non_car"]["sklearn samples"]["photos"] == 2  # scikit-learn's two bundled sample photos
    assert set(conf["partial_views"]) == {"random 10% of area", "random 20% of area", "left 30% strip", "right 30% strip"}
    md = (evaluated / "report.md").read_text()
    assert "make/model top-1" in md and "majority" in md
    for png in ("calibration.png", "price_scatter.png", "per_make.png"):
        assert (evaluated / png).stat().st_size > 1000, png


def test_export_round_trips_metadata_and_matches_torch(trained_run: Path, evaluated: Path, tmp_path: Path) -> None:
    from training.loop.trained import load_trained
    from training.release.evaluate import onnx_parity
    from training.release.export import export_run

    out = export_run(trained_run, tmp_path / "models" / "carvalue.onnx", evaluated, quantize=True, bench_batches=2)
    pred = Predictor.load(out)
    meta = pred.metadata
    t = load_trained(trained_run)
    assert meta.make_models == t.labels.make_models and meta.make_models[-1] == UNKNOWN
    assert meta.years == t.labels.years
    assert meta.price.edges == t.labels.edges and meta.price.log_mean == pytest.approx(t.labels.log_mean)
    assert meta.price.meaning == t.labels.meaning
    report = json.loads((evaluated / "report.json").read_text())
    assert meta.confidence.threshold == pytest.approx(report["confidence"]["threshold"])
    assert meta.temperatures["make_model"] == pytest.approx(report["temperatures"]["make_model"])
    assert meta.metrics["test"]["make_model_top1"] == pytest.approx(report["test"]["make_model_top1"])
    assert meta.provenance["split"]["sha256"] == t.ckpt.meta["split"]["sha256"]
    assert meta.provenance["counts"]["test"] == len(t.split.test)
    q = meta.metrics["quantization"]
    assert q["tried"] and isinstance(q["keep_int8"], bool)
    card = (out.parent / "MODEL_CARD.md").read_text()
    assert "Held-out metrics" in card and "Known limits" in card

    if meta.provenance["weights"] == "fp32":
        parity = onnx_parity(t, out, [t.records[i] for i in t.split.test], meta.input)
        assert parity["max"] < 1e-4, parity
    # the exported fp32 parity recorded at export time
    assert meta.metrics["onnx_parity_fp32"]["max"] < 1e-4

    # predictions through the app's Predictor on a held-out photo
    photo = t.records[t.split.test[0]].image_path
    p = pred.predict(photo)
    assert p.make_models[0].label in meta.make_models and 0 <= p.confidence <= 1


def test_fp32_export_parity_on_random_inputs(trained_run: Path, tmp_path: Path) -> None:
    from core.model import export_onnx
    from training.loop.trained import load_trained

    t = load_trained(trained_run)
    raw = tmp_path / "raw.onnx"
    export_onnx(t.model, str(raw), 32)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (5, 3, 32, 32)).astype(np.float32)
    got = sess.run(None, {"input": x})
    with torch.no_grad():
        ref = t.model(torch.from_numpy(x))
    for g, r in zip(got, ref, strict=True):
        assert np.abs(np.ravel(g) - np.ravel(r.numpy())).max() < 1e-4


def test_export_with_energy_confidence(trained_run: Path, evaluated: Path, tmp_path: Path) -> None:
    from training.release.export import export_run

    out = export_run(trained_run, tmp_path / "e.onnx", evaluated, quantize=False, confidence_method="energy")
    pred = Predictor.load(out)
    spec = pred.metadata.confidence
    report = json.loads((evaluated / "report.json").read_text())
    assert spec.method == "energy" and spec.threshold == pytest.approx(report["confidence"]["energy_alternative"]["threshold"])
    assert spec.scale > 0
    from training.loop.trained import load_trained

    t = load_trained(trained_run)
    photo = t.records[t.split.test[0]].image_path
    p = pred.predict(photo)
    x = crop_to_input(Predictor.as_photo(photo), None, pred.metadata.input)
    # the app's own energy (core.scores, in float64): a copy in float32 rounds differently, and
    # a tiny test model's photos sit within 1e-7 of the threshold
    energy = float(scores.energy(pred.run_batch(x[None])["make_model_logits"][0], spec.temperature))
    assert p.looks_like_car == (energy >= spec.threshold)
