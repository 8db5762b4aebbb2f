"""`CarValue --self-test`: the installer's headless smoke test (no window, no Qt import).

Loads the bundled model, predicts the bundled sample photo, prints the result and returns 0;
on any fault prints ``self-test FAILED: <reason>`` to stderr and returns 1.  Options let a
packaging test point it at another model or photo (``--model``, ``--photo``) and ask for JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from carvalue_gui.bundle import sample_photo_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class SelfTestError(Exception):
    """A fault the self-test found; the message is the reason shown to the user."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="CarValue --self-test",
                                 description="Load the bundled model and predict the bundled sample photo.")
    ap.add_argument("--model", type=Path, default=None, help="model file (default: the bundled one)")
    ap.add_argument("--photo", type=Path, default=None, help="photo (default: the bundled sample)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return ap


def run(model: Path | None, photo: Path | None) -> dict[str, object]:
    """Do the test; returns the facts to print; raises SelfTestError naming the fault."""
    t0 = time.perf_counter()
    try:
        from core.modelfile import ModelFileError
        from core.predictor import Predictor, default_model_path
        from core.preprocess import ImageLoadError
    except ImportError as e:  # a broken bundle: a module left out by the packager
        raise SelfTestError(f"cannot import the inference code ({e})") from e
    model_path = model if model is not None else default_model_path()
    try:
        predictor = Predictor.load(model_path)
    except ModelFileError as e:
        raise SelfTestError(f"cannot load the model: {e}") from e
    except (ImportError, OSError) as e:
        raise SelfTestError(f"cannot load the model {model_path}: {type(e).__name__}: {e}") from e
    t_load = time.perf_counter()
    photo_path = photo if photo is not None else sample_photo_path()
    try:
        pred = predictor.predict(photo_path)
    except ImageLoadError as e:
        raise SelfTestError(f"cannot read the sample photo: {e}") from e
    t_pred = time.perf_counter()

    probs = [b.probability for b in pred.price_bins]
    if not math.isfinite(pred.median_price) or pred.median_price <= 0:
        raise SelfTestError(f"the model gave a nonsensical median price ({pred.median_price!r})")
    if not all(math.isfinite(p) and p >= 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-3:
        raise SelfTestError(f"price-range probabilities do not sum to 1 ({sum(probs)!r})")
    if not 0.0 <= pred.confidence <= 1.0:
        raise SelfTestError(f"confidence {pred.confidence!r} is outside 0..1")
    meta = predictor.metadata
    return {
        "status": "ok",
        "model": str(predictor.path),
        "model_name": meta.name,
        "photo": str(photo_path),
        "median_price": round(pred.median_price, 2),
        "price_range": [round(pred.price_low, 2), round(pred.price_high, 2)],
        "currency": meta.price.currency,
        "make_model": pred.top_make_model.label,
        "make_model_probability": round(pred.top_make_model.probability, 4),
        "year": pred.top_year.label,
        "year_probability": round(pred.top_year.probability, 4),
        "confidence": round(pred.confidence, 4),
        "looks_like_car": pred.looks_like_car,
        "load_s": round(t_load - t0, 3),
        "predict_s": round(t_pred - t_load, 3),
        "frozen": bool(getattr(sys, "frozen", False)),
        "python_outside_bundle": python_outside_bundle(),
        "pid": os.getpid(),
    }


def python_outside_bundle() -> list[str]:
    """Python runtime files this process has mapped from outside the app (Linux only; empty
    elsewhere).  For an installed app this must be empty: it runs on its own interpreter."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    bundle = getattr(sys, "_MEIPASS", None)
    root = str(Path(bundle).resolve()) if bundle else None
    found: set[str] = set()
    for line in maps.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        path = parts[5]
        if root is not None and path.startswith(root + os.sep):
            continue
        name = os.path.basename(path)
        if name.startswith("libpython") or "site-packages" in path or "/lib/python3" in path:
            found.add(path)
    return sorted(found)


def _print_text(r: dict[str, object]) -> None:
    lo, hi = r["price_range"]  # type: ignore[misc]
    print("CarValue self-test: ok")
    print(f"  model:       {r['model']} ({r['model_name']})")
    print(f"  photo:       {r['photo']}")
    print(f"  median:      {r['currency']} {r['median_price']:,.0f} (likely {lo:,.0f} - {hi:,.0f})")
    print(f"  make/model:  {r['make_model']} (p={r['make_model_probability']:.2f})")
    print(f"  year:        {r['year']} (p={r['year_probability']:.2f})")
    print(f"  confidence:  {r['confidence']:.2f} ({'a car' if r['looks_like_car'] else 'not clearly a car'})")
    print(f"  timings:     load {r['load_s']:.3f} s, predict {r['predict_s']:.3f} s")


def main(args: list[str] | None = None) -> int:
    try:
        opts = _parser().parse_args(args if args is not None else [])
    except SystemExit as e:  # argparse exits 0 for --help, 2 for bad usage
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    try:
        result = run(opts.model, opts.photo)
    except SelfTestError as e:
        if opts.json:
            print(json.dumps({"status": "failed", "reason": str(e)}))
        print(f"self-test FAILED: {e}", file=sys.stderr)
        return EXIT_FAILED
    if opts.json:
        print(json.dumps(result))
    else:
        _print_text(result)
    return EXIT_OK
