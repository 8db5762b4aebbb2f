"""Shared by the merge tests: sharded scrapes of the loopback site, and snapshots to compare."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmarks.fakesite import FakeSite, default_faults
from core.dataset import database
from core.dataset.dedup import dedup
from core.dataset.http_client import RetryPolicy
from core.dataset.ids import IdRange, Shard, visit_order
from core.dataset.image_store import ImageStore
from core.dataset.scrape import Scraper
from tests.dataset.conftest import FIRST_ID, LAST_ID, fast_config

SEED = 7
MACHINES = 3
# The merged scrapes must equal the unsharded one, so no request may miss its deadline by chance on
# a busy machine: a 2 s deadline (conftest's 0.3 s is for tests of the deadline itself); the
# site's one stalled page stalls longer than that, so its first request still times out.
STEADY = RetryPolicy(retries=3, backoff_s=0.01, backoff_max_s=0.05, timeout_s=2.0, max_retry_after_s=2.0)


def steady_site() -> FakeSite:
    faults = default_faults()
    faults.stall_s = 2.5
    return FakeSite(faults).start()


def scrape_shard(site: FakeSite, base: Path, name: str, shard: Shard) -> tuple[Path, Path]:
    """One machine's scrape of the fake site's range (its own fresh site, so one-time faults fire
    on whichever machine visits that ID first, as on the real site)."""
    db_path, images = base / f"{name}.sqlite", base / f"{name}-images"
    conn = database.connect(db_path)
    try:
        Scraper(conn, ImageStore(images), fast_config(site, policy=STEADY)).run(
            visit_order(IdRange(FIRST_ID, LAST_ID), SEED, shard))
    finally:
        conn.close()
    return db_path, images


def scrape_all(base: Path) -> tuple[list[tuple[Path, Path]], tuple[Path, Path]]:
    """Three machines' sharded scrapes and one unsharded scrape of the same site (its one-time
    faults re-armed in between, so both meet the same faults), the unsharded one deduplicated;
    the first machine ran dedup too (its perceptual hashes travel with its files)."""
    site = steady_site()
    try:
        parts = [scrape_shard(site, base, f"machine{i}", Shard(i, MACHINES)) for i in range(MACHINES)]
        site.requests.clear()
        whole = scrape_shard(site, base, "unsharded", Shard(0, 1))
    finally:
        site.stop()
    for db_path, images in (parts[0], whole):
        conn = database.connect(db_path)
        dedup(conn, ImageStore(images), progress=False)
        conn.close()
    return parts, whole


def snapshot(db_path: Path, images: Path) -> dict[str, object]:
    """What must agree between a merge and one unsharded scrape (``attempted_at`` aside)."""
    conn = sqlite3.connect(db_path)
    try:
        return {
            "attempts": conn.execute("SELECT listing_id, outcome, http_status, error FROM attempts ORDER BY 1").fetchall(),
            "listings": conn.execute("SELECT * FROM listings ORDER BY listing_id").fetchall(),
            "photos": conn.execute("SELECT * FROM photos ORDER BY listing_id, photo_index").fetchall(),
            "phashes": conn.execute("SELECT * FROM phashes ORDER BY sha256").fetchall(),
            "duplicate_groups": conn.execute("SELECT phash, n FROM duplicate_phashes ORDER BY phash").fetchall(),
            "files": sorted(ImageStore(images).iter_hashes()),
        }
    finally:
        conn.close()
