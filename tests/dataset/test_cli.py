"""`carvalue-data` end to end on the loopback site: every stage, its --help, and training on the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.fakesite import FakeSite
from core.dataset.cli import build_parser, main
from core.dataset.labels import BAD, GOOD, LabelFile
from tests.dataset.conftest import FAST, FIRST_ID, LAST_ID
from tests.dataset.test_junk_filter import random_trunk

REPO = Path(__file__).resolve().parents[2]
STAGES = ["scrape", "verify", "dedup", "label", "filter", "shards", "merge", "stats"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_explains_itself(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([stage, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: carvalue-data {stage}" in out and len(out) > 300


def test_top_level_help_lists_the_stages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for stage in STAGES:
        assert stage in out
    for action, flag in (("train", "--max-good-loss"), ("apply", "--filter")):
        with pytest.raises(SystemExit):
            main(["filter", action, "--help"])
        assert flag in capsys.readouterr().out


def test_bad_arguments_give_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scrape", "--db", str(tmp_path / "d.sqlite"), "--images", str(tmp_path), "--ids", "9:3"]) == 2
    assert "--ids needs 0 <= A < B" in capsys.readouterr().err
    assert main(["dedup", "--db", str(tmp_path / "none.sqlite"), "--images", str(tmp_path)]) == 2
    assert "no such database" in capsys.readouterr().err
    assert build_parser().parse_args(["stats", "--db", "x"]).stage == "stats"


@pytest.mark.slow  # every stage through the CLI, training included: ~18 s
@pytest.mark.usefixtures("torch_threads_restored")
def test_pipeline_end_to_end(site: FakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, images = str(tmp_path / "db.sqlite"), str(tmp_path / "images")
    common = ["--db", db, "--images", images]
    fast = ["--rate", "0", "--timeout", str(FAST.timeout_s), "--retries", "3", "--backoff", "0.01",
            "--backoff-max", "0.05", "--max-retry-after", "2"]

    def run(*args: str) -> dict[str, object]:
        assert main(list(args)) == 0
        return json.loads(capsys.readouterr().out)

    scraped = run("scrape", *common, "--ids", f"{FIRST_ID}:{LAST_ID}", "--listing-url", site.listing_url_template(),
                  "--workers", "4", "--no-progress", *fast)
    assert scraped["listings"] == {"ok": 29, "missing": 5, "invalid": 1, "error": 1}  # type: ignore[comparison-overlap]
    # shard 1/2 of a new range into the same database: only that half is visited
    half = run("scrape", *common, "--ids", "3000:3010", "--shard", "1/2", "--listing-url",
               site.listing_url_template(), "--no-progress", *fast)
    assert sum(half["listings"].values()) == 5  # type: ignore[union-attr]
    verified = run("verify", *common, *fast)
    assert verified["bad"] == 0 and verified["checked"] > 60
    deduped = run("dedup", *common, "--jobs", "1", "--no-progress")
    assert deduped["duplicate_groups"] == 1 and deduped["failed_now"] == 0

    # Hand labels (as the labeller writes them): whole-listing verdicts stand in for real ones.
    import sqlite3

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT DISTINCT sha256, listing_id FROM photos WHERE status='stored' "
                        "AND url NOT LIKE '%stock%' ORDER BY sha256").fetchall()
    labels = LabelFile(tmp_path / "labels.json")
    for sha, lid in rows[:40]:
        labels.set(sha, GOOD if lid % 2 else BAD)
    trunk = str(random_trunk(tmp_path / "trunk.safetensors"))
    trained = run("filter", "train", *common, "--labels", str(tmp_path / "labels.json"), "--out",
                  str(tmp_path / "filter"), "--trunk", trunk, "--batch-size", "16",
                  "--image-size", "64", "--threads", "1")
    held = trained["held_out"]
    assert held["good_loss"] < 0.01 and set(held) >= {"precision", "recall", "fraction_removed"}  # type: ignore[operator]
    applied = run("filter", "apply", *common, "--filter", str(tmp_path / "filter"), "--trunk", trunk,
                  "--no-progress", "--threads", "1")
    n_files = conn.execute("SELECT COUNT(DISTINCT sha256) FROM photos WHERE status='stored'").fetchone()[0]
    assert applied["scored_total"] == n_files and applied["unreadable"] == 0
    again = run("filter", "apply", *common, "--filter", str(tmp_path / "filter"), "--trunk", trunk, "--no-progress",
                "--threads", "1")
    assert again["scored_now"] == 0  # resumable: nothing left to score

    shards = run("shards", *common, "--out", str(tmp_path / "shards"), "--shard-size", "20")
    assert shards["samples"] > 0
    assert main(["stats", "--db", db]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["duplicate_photos"] == deduped["duplicate_photos_dropped"]
    assert stats["junk"] == applied["junk"]

    from core.dataset.export import records_from_db

    records = records_from_db(db)
    assert len(records) == shards["samples"]

    # The output trains a model with the training code (a seconds-long CPU run).
    from tests.synthetic_cars import tiny_train_args

    out = tmp_path / "run"
    args = tiny_train_args(Path(db), out, "--images-root", images, "--epochs", "1")
    proc = subprocess.run([sys.executable, "-m", "training.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    split = json.loads((out / "split.json").read_text())
    assert split  # the trainer split our listings into train/val/test
    assert any(out.rglob("*.onnx")) or any(out.rglob("*.safetensors"))


def test_the_cli_imports_neither_torch_nor_qt_until_a_stage_needs_them() -> None:
    code = ("import sys, core.dataset.cli, core.dataset.scrape, core.dataset.dedup, core.dataset.export; "
            "bad = [m for m in ('torch', 'PySide6', 'carvalue_gui', 'training') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
