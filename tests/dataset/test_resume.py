"""Kill a scrape with SIGKILL mid-run, run it again: the result equals an unbroken run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.fakesite import FakeSite
from core.dataset.image_store import ImageStore, sha256_hex
from tests.dataset.conftest import FAST, FIRST_ID, LAST_ID

REPO = Path(__file__).resolve().parents[2]


def scrape_cmd(site: FakeSite, db: Path, images: Path, rate: float) -> list[str]:
    return [sys.executable, "-m", "core.dataset.cli", "scrape", "--db", str(db), "--images", str(images),
            "--ids", f"{FIRST_ID}:{LAST_ID}", "--seed", "7", "--workers", "4", "--rate", str(rate),
            "--listing-url", site.listing_url_template(), "--timeout", str(FAST.timeout_s),
            "--retries", str(FAST.retries), "--backoff", str(FAST.backoff_s), "--backoff-max", str(FAST.backoff_max_s),
            "--max-retry-after", "2", "--no-progress"]


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


def snapshot(db: Path, images: Path) -> dict[str, object]:
    conn = sqlite3.connect(db)
    try:
        return {
            "attempts": conn.execute("SELECT listing_id, outcome, http_status, error FROM attempts ORDER BY 1").fetchall(),
            "listings": conn.execute("SELECT * FROM listings ORDER BY listing_id").fetchall(),
            "photos": conn.execute("SELECT * FROM photos ORDER BY listing_id, photo_index").fetchall(),
            "files": sorted(ImageStore(images).iter_hashes()),
        }
    finally:
        conn.close()


def count_attempts(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def test_sigkill_mid_run_then_resume_equals_unbroken_run(site: FakeSite, tmp_path: Path) -> None:
    db, images = tmp_path / "killed.sqlite", tmp_path / "killed-images"
    proc = subprocess.Popen(scrape_cmd(site, db, images, rate=40), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while count_attempts(db) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = count_attempts(db)
    assert proc.returncode == -signal.SIGKILL
    assert 8 <= done_at_kill < LAST_ID - FIRST_ID, "the kill must land mid-run"
    # Nothing half-written under a real name: every stored file hashes to its name.
    store = ImageStore(images)
    for sha in store.iter_hashes():
        assert sha256_hex(store.read(sha)) == sha

    run(scrape_cmd(site, db, images, rate=0))  # resume
    unbroken_db, unbroken_images = tmp_path / "unbroken.sqlite", tmp_path / "unbroken-images"
    run(scrape_cmd(site, unbroken_db, unbroken_images, rate=0))

    resumed, unbroken = snapshot(db, images), snapshot(unbroken_db, unbroken_images)
    assert len(unbroken["attempts"]) == LAST_ID - FIRST_ID  # type: ignore[arg-type]
    assert resumed == unbroken
    # Every stored row's file is present and whole.
    for row in resumed["photos"]:  # type: ignore[union-attr]
        if row[3] == "stored":
            assert sha256_hex(store.read(row[6])) == row[6]
