"""``carvalue-data dedup``: perceptual-hash every stored photo; report the duplicates.

Which photos count as duplicates is not stored but derived (the ``duplicate_phashes`` view:
perceptual hashes carried by more than one stored photo row), so it is always current: a new
scrape that adds a second copy of a stock photo drops the first copy too, without re-hashing.
"""

from __future__ import annotations

import sqlite3
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from tqdm import tqdm

from core.dataset import database as db
from core.dataset.image_store import ImageStore
from core.dataset.phash import perceptual_hash_file
from core.preprocess import ImageLoadError

BATCH = 512


@dataclass(frozen=True)
class DedupReport:
    hashed: int
    failed: int
    stored_photos: int
    duplicate_photos: int
    duplicate_groups: int

    def as_dict(self) -> dict[str, int | float]:
        kept = self.stored_photos - self.duplicate_photos
        return {"hashed_now": self.hashed, "failed_now": self.failed, "stored_photos": self.stored_photos,
                "duplicate_photos_dropped": self.duplicate_photos, "duplicate_groups": self.duplicate_groups,
                "photos_kept": kept,
                "fraction_dropped": round(self.duplicate_photos / self.stored_photos, 6) if self.stored_photos else 0.0}


def _hash_one(job: tuple[str, str]) -> tuple[str, str | None, str | None]:
    """Worker: (sha256, path) -> (sha256, phash or None, error or None)."""
    sha, path = job
    try:
        return sha, perceptual_hash_file(path), None
    except ImageLoadError as e:
        return sha, None, e.reason
    except OSError as e:  # the file vanished or is unreadable; `verify` repairs that
        return sha, None, f"cannot read file ({e.strerror or e})"


_UNHASHED_AFTER = ("SELECT DISTINCT p.sha256 FROM photos p LEFT JOIN phashes h ON h.sha256 = p.sha256 "
                   "WHERE p.status = 'stored' AND h.sha256 IS NULL AND p.sha256 > ? ORDER BY p.sha256 LIMIT ?")


def count_unhashed(conn: sqlite3.Connection) -> int:
    return int(conn.execute(
        "SELECT COUNT(DISTINCT p.sha256) FROM photos p LEFT JOIN phashes h ON h.sha256 = p.sha256 "
        "WHERE p.status = ? AND h.sha256 IS NULL", (db.PHOTO_STORED,)).fetchone()[0])


def dedup(conn: sqlite3.Connection, store: ImageStore, jobs: int = 1, progress: bool = True,
          min_for_pool: int = 128) -> DedupReport:
    """Hash what is not hashed yet (in ``jobs`` processes when there are at least ``min_for_pool``)."""
    total = count_unhashed(conn)
    hashed = failed = 0
    bar = tqdm(total=total, unit="photo", disable=not progress, file=sys.stderr, desc="dedup")
    pool = ProcessPoolExecutor(jobs) if jobs > 1 and total >= min_for_pool else None
    try:
        for page in db.hash_pages(conn, _UNHASHED_AFTER, page=BATCH):
            work = [(sha, str(store.path_for(sha))) for sha in page]
            results = list(pool.map(_hash_one, work, chunksize=32) if pool else map(_hash_one, work))
            with db.Transaction(conn) as c:
                c.executemany("INSERT OR REPLACE INTO phashes(sha256, phash, error) VALUES (?,?,?)", results)
            failed += sum(1 for _, ph, _ in results if ph is None)
            hashed += sum(1 for _, ph, _ in results if ph is not None)
            bar.update(len(page))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    stored = conn.execute("SELECT COUNT(*) FROM photos WHERE status = ?", (db.PHOTO_STORED,)).fetchone()[0]
    groups, dups = conn.execute("SELECT COUNT(*), COALESCE(SUM(n), 0) FROM duplicate_phashes").fetchone()
    return DedupReport(hashed, failed, int(stored), int(dups), int(groups))
