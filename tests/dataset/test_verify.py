"""`verify` finds planted damage in the store and repairs it (or marks the photo lost)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from benchmarks.fakesite import FakeSite
from core.dataset import database
from core.dataset.dedup import dedup
from core.dataset.export import records_from_db
from core.dataset.image_store import ImageStore
from core.dataset.verify import verify
from tests.dataset.conftest import FAST


def _damage(root: Path, conn: sqlite3.Connection) -> dict[str, str]:
    store = ImageStore(root)
    rows = conn.execute("SELECT sha256 FROM photos WHERE status='stored' AND url NOT LIKE '%stock%' "
                        "GROUP BY sha256 ORDER BY sha256 LIMIT 3").fetchall()
    missing, truncated, swapped = (r[0] for r in rows)
    store.path_for(missing).unlink()
    p = store.path_for(truncated)
    p.write_bytes(p.read_bytes()[:300])
    store.path_for(swapped).write_bytes(b"GIF89a not really an image")
    return {"missing": missing, "truncated": truncated, "swapped": swapped}


def test_verify_repairs_planted_damage(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, _ = scraped
    conn = database.connect(db_path)
    dedup(conn, ImageStore(root), progress=False)
    before = records_from_db(db_path, root)
    bad = _damage(root, conn)
    (root / ".tmp").mkdir(exist_ok=True)
    stray = root / ".tmp" / "123-abc"
    stray.write_bytes(b"half a photo")
    past = time.time() - 7200
    os.utime(stray, (past, past))

    report = verify(conn, ImageStore(root), refetch=True, policy=FAST, rate=0, progress=False)
    assert set(report.bad) == set(bad.values())
    assert report.bad[bad["missing"]] == "file is missing"
    assert "do not match" in report.bad[bad["truncated"]]
    assert report.repaired == 3 and report.lost == 0 and report.temp_files_removed == 1
    assert not stray.exists()
    store = ImageStore(root)
    assert all(store.problem(s) is None for s in database.stored_hashes(conn))
    # Re-encoding the same download gives the same bytes: rows point at the same names again;
    # dedup re-hashes the replaced files and training sees exactly what it saw before.
    assert conn.execute("SELECT COUNT(*) FROM phashes WHERE sha256 IN (?,?,?)", tuple(bad.values())).fetchone()[0] == 0
    dedup(conn, store, progress=False)
    assert records_from_db(db_path, root) == before
    assert verify(conn, store, progress=False).bad == {}


def test_verify_without_refetch_marks_photos_lost(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, _ = scraped
    conn = database.connect(db_path)
    dedup(conn, ImageStore(root), progress=False)
    n_before = len(records_from_db(db_path, root))
    bad = _damage(root, conn)
    report = verify(conn, ImageStore(root), refetch=False, progress=False)
    assert report.repaired == 0 and report.lost == 3
    lost = conn.execute("SELECT sha256, error FROM photos WHERE status = 'lost'").fetchall()
    assert {s for s, _ in lost} == set(bad.values())
    assert all("--no-refetch" in e for _, e in lost)
    assert len(records_from_db(db_path, root)) == n_before - 3


def test_verify_marks_lost_when_the_photo_is_gone_from_the_site(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, site = scraped
    conn = database.connect(db_path)
    sha, url = conn.execute("SELECT sha256, url FROM photos WHERE listing_id = 1001 AND photo_index = 1").fetchone()
    ImageStore(root).path_for(sha).unlink()
    name = url.rsplit("/", 1)[-1].removesuffix(".jpg")
    site.faults.photo_faults[name] = "404"
    try:
        report = verify(conn, ImageStore(root), refetch=True, policy=FAST, rate=0, progress=False)
    finally:
        del site.faults.photo_faults[name]
    assert report.lost == 1
    status, error = conn.execute("SELECT status, error FROM photos WHERE listing_id = 1001 AND photo_index = 1").fetchone()
    assert status == "lost" and "file is missing" in error and "HTTP 404" in error
