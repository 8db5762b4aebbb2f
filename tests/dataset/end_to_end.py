"""Every stage, in order, on a listing site served on loopback; the integration test and the demo.

    scrape (--shard i/n on N "machines") -> merge -> verify -> dedup -> filter train/apply
    -> shards -> carvalue-train train (from the shards) -> evaluate -> export -> carvalue predict

The test (tests/dataset/test_end_to_end.py) runs it with the smallest settings (seconds); the
demo runs it bigger and prints each stage's result and time as JSON lines::

    .venv/bin/python -m tests.dataset.end_to_end --out /tmp/carvalue-demo            # ~minutes
    .venv/bin/python -m tests.dataset.end_to_end --out /tmp/x --listings 40 --epochs 1 --size 32

Stand-ins, said plainly: the site's photos are drawn (benchmarks/fakesite.py); the junk
filter's hand labels are made up (photo 2 of each listing "bad"), and without ``--trunk`` its
features come from a random-weight MobileNetV2 trunk (the ImageNet one is not on this machine);
the network starts from random weights (``--init random``).  Training streams the shards
through webdataset (training/data/shard_stream.py); ``--from-db`` trains from the database instead.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from benchmarks.fakesite import FakeSite, default_faults
from core.dataset.cli import main as data_main
from core.dataset.labels import BAD, GOOD, LabelFile

REPO = Path(__file__).resolve().parents[2]
# Fast retries; a 2 s deadline holds on a busy machine, and the site's one stalled page (2.5 s) still outlasts it.
FAST_FLAGS = ["--rate", "0", "--timeout", "2", "--retries", "3", "--backoff", "0.01", "--backoff-max", "0.05",
              "--max-retry-after", "2"]


def _data(*args: str) -> dict[str, object]:
    """One ``carvalue-data`` stage in this process; its JSON report."""
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = data_main(list(args))
    if rc != 0:
        raise RuntimeError(f"carvalue-data {args[0]} exited {rc}")
    return json.loads(buf.getvalue()) if buf.getvalue().strip() else {}


def _python(*args: str, timeout: float = 900) -> str:
    """A command in a fresh interpreter (as a user runs it); its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    res = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} exited {res.returncode}: {res.stderr[-3000:]}")
    return res.stdout


def train_args(data: Path, images: Path | None, run: Path, epochs: int, size: int) -> list[str]:
    """The smallest settings the trainer takes (tests/synthetic_cars.py's tiny run), from the
    database (with its image store) or from the shards (``images`` None)."""
    source = ["--data", str(data)] + (["--images-root", str(images)] if images is not None else [])
    return ["-m", "training.cli", "train", *source, "--out", str(run),
            "--init", "random", "--size", str(size), "--epochs", str(epochs), "--batch-size", "8",
            "--micro-batch", "4", "--warmup-steps", "2", "--lr", "3e-3", "--val-fraction", "0.2",
            "--test-fraction", "0.2", "--no-fold-bn", "--freeze-blocks", "0", "--no-probe-init", "--workers", "0",
            "--no-progress", "--checkpoint-every", "1", "--eval-batch", "16", "--threads", "1"]


# Evaluation (its non-car set: scikit-learn's two sample photos, not the wallpaper folders) and
# export in one interpreter: torch is imported once.
_EVALUATE_EXPORT = (
    "import sys; from training.release.evaluate import evaluate_run, non_car_images; from training.release.export import export_run; "
    "evaluate_run(sys.argv[1], non_car={'sklearn samples': non_car_images([])}, batch=16); "
    "print(export_run(sys.argv[1], sys.argv[2], quantize=False))")


def run_pipeline(work: Path, listings: int = 36, machines: int = 3, epochs: int = 1, size: int = 32,
                 trunk: Path | None = None, log: Callable[[dict[str, object]], None] = lambda _: None,
                 from_db: bool = False) -> dict[str, dict[str, object]]:
    """Run every stage into ``work``; returns each stage's report (with ``seconds``)."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, object]] = {}

    def stage(name: str, fn: Callable[[], dict[str, object]]) -> dict[str, object]:
        t0 = time.monotonic()
        result = fn()
        result["seconds"] = round(time.monotonic() - t0, 2)
        out[name] = result
        log({"stage": name, **result})
        return result

    faults = default_faults()
    faults.stall_s = 2.5
    site = FakeSite(faults).start()
    db, images = work / "listings.sqlite", work / "store"
    common = ["--db", str(db), "--images", str(images)]
    try:
        ids = f"1000:{1000 + listings}"
        parts: list[str] = []
        for i in range(machines):
            part_db, part_images = work / f"machine{i}.sqlite", work / f"machine{i}-store"
            stage(f"scrape {i}/{machines}", lambda i=i, d=part_db, s=part_images: _data(
                "scrape", "--db", str(d), "--images", str(s), "--ids", ids, "--shard", f"{i}/{machines}",
                "--listing-url", site.listing_url_template(), "--workers", "4", "--no-progress", *FAST_FLAGS))
            parts += ["--part", str(part_db), str(part_images)]
        stage("merge", lambda: _data("merge", *common, *parts, "--jobs", "1", "--no-progress"))
        stage("verify", lambda: _data("verify", *common, *FAST_FLAGS))
        stage("dedup", lambda: _data("dedup", *common, "--jobs", "1", "--no-progress"))
        labels = work / "labels.json"
        _make_labels(db, labels)
        trunk_path = trunk or _random_trunk(work / "random-trunk.safetensors")
        feature = ["--trunk", str(trunk_path), "--threads", "1"]
        stage("filter train", lambda: _data("filter", "train", *common, "--labels", str(labels), "--out",
                                            str(work / "junkfilter"), "--image-size", "64", "--batch-size", "16",
                                            *feature))
        stage("filter apply", lambda: _data("filter", "apply", *common, "--filter", str(work / "junkfilter"),
                                            "--no-progress", *feature))
        stage("shards", lambda: _data("shards", *common, "--out", str(work / "shards"), "--shard-size", "64"))
        photo = _a_photo(site, work)
    finally:
        site.stop()
    run, model = work / "run", work / "model.onnx"
    source: tuple[Path, Path | None] = (db, images) if from_db else (work / "shards", None)
    stage("train", lambda: {"from": str(source[0]),
                            "stdout": _python(*train_args(*source, run, epochs, size)).strip()[-200:]})
    stage("evaluate + export", lambda: _evaluate_export(run, model))
    stage("predict", lambda: json.loads(_python("-m", "carvalue_gui.launcher", "predict", str(photo), "--model",
                                                str(model), "--json")))
    return out


def _evaluate_export(run: Path, model: Path) -> dict[str, object]:
    written = _python("-c", _EVALUATE_EXPORT, str(run), str(model)).strip().splitlines()[-1]
    test = json.loads((run / "eval" / "report.json").read_text())["test"]
    return {"model_file": written, "model_bytes": model.stat().st_size,
            **{k: test[k] for k in ("make_model_top1", "year_within1", "price_acc", "median_mae_usd") if k in test}}


def _make_labels(db: Path, path: Path) -> None:
    """Stand-in hand labels: photo 2 of a listing "bad", the others "good" (the labeller's file format)."""
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT sha256, MIN(photo_index) FROM photos WHERE status = 'stored' AND url NOT LIKE "
                        "'%stock%' GROUP BY sha256 ORDER BY sha256").fetchall()
    conn.close()
    labels = LabelFile(path)
    for sha, index in rows[:80]:
        labels.set(sha, BAD if index == 2 else GOOD)


def _random_trunk(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    from core.model import mobilenet_v2_features

    torch.manual_seed(0)
    save_file(mobilenet_v2_features(padding="same", bn_eps=1e-3).state_dict(), str(path))
    return path


def _a_photo(site: FakeSite, work: Path) -> Path:
    """A photo as a user has it: the site's full-size JPEG of one listing."""
    path = work / "user-photo.jpg"
    path.write_bytes(site.photo_bytes("p1001-0"))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="work folder (made if missing; reuse resumes each stage)")
    p.add_argument("--listings", type=int, default=300, help="listing IDs on the site (default 300)")
    p.add_argument("--machines", type=int, default=3, help="sharded scrapes merged (default 3)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=64, help="training input size (default 64)")
    p.add_argument("--trunk", type=Path, default=None, help="ImageNet MobileNetV2 trunk for the junk filter")
    p.add_argument("--from-db", action="store_true", help="train from the database, not the shards")
    a = p.parse_args(argv)
    t0 = time.monotonic()
    run_pipeline(a.out, a.listings, a.machines, a.epochs, a.size, a.trunk, log=lambda r: print(json.dumps(r)),
                 from_db=a.from_db)
    print(json.dumps({"total_seconds": round(time.monotonic() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
