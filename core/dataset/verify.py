"""``carvalue-data verify``: make the store agree with the database again.

Each stored photo's file must exist, hash to its own name and decode.  A bad file (deleted by
hand, a disk error, a copy cut short) is removed and downloaded again from its URL; the rows
then point at the new file.  A photo that cannot be fetched again is marked ``lost`` with the
reason, so training never reads it.  Perceptual hashes and junk scores of removed files are
dropped (``dedup`` / ``filter apply`` recompute them for the new file).
"""

from __future__ import annotations

import random
import sqlite3
import sys
from dataclasses import dataclass, field

import requests
from tqdm import tqdm

from core.dataset import database as db
from core.dataset.http_client import RateLimiter, RetryPolicy, fetch, new_session
from core.dataset.image_store import (
    DEFAULT_QUALITY,
    DEFAULT_SHORT_SIDE,
    ImageStore,
    encode_for_store,
)
from core.dataset.listing_page import is_fetchable_url
from core.preprocess import ImageLoadError


@dataclass
class VerifyReport:
    checked: int = 0
    bad: dict[str, str] = field(default_factory=dict)  # sha256 -> problem
    repaired: int = 0
    lost: int = 0
    temp_files_removed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "bad": len(self.bad), "repaired": self.repaired, "lost_rows": self.lost,
                "temp_files_removed": self.temp_files_removed,
                "problems": dict(list(self.bad.items())[:20])}


def verify(conn: sqlite3.Connection, store: ImageStore, refetch: bool = True, policy: RetryPolicy | None = None,
           rate: float = 8.0, short_side: int = DEFAULT_SHORT_SIDE, quality: int = DEFAULT_QUALITY,
           temp_age_s: float = 3600.0, progress: bool = True) -> VerifyReport:
    report = VerifyReport(temp_files_removed=store.clean_temp(temp_age_s))
    total = conn.execute("SELECT COUNT(DISTINCT sha256) FROM photos WHERE status = ?", (db.PHOTO_STORED,)).fetchone()[0]
    with tqdm(total=total, unit="photo", desc="verify", disable=not progress, file=sys.stderr) as bar:
        for page in db.hash_pages(conn, db.STORED_HASHES_AFTER):
            for sha in page:
                report.checked += 1
                problem = store.problem(sha)
                if problem is not None:
                    report.bad[sha] = problem
            bar.update(len(page))
    if not report.bad:
        return report
    session = new_session()
    limiter = RateLimiter(rate)
    rng = random.Random()
    policy = policy or RetryPolicy()
    for sha, problem in report.bad.items():
        store.remove(sha)
        rows = conn.execute("SELECT listing_id, photo_index, url FROM photos WHERE sha256 = ? AND status = ?",
                            (sha, db.PHOTO_STORED)).fetchall()
        with db.Transaction(conn) as c:
            c.execute("DELETE FROM phashes WHERE sha256 = ?", (sha,))
            c.execute("DELETE FROM junk_scores WHERE sha256 = ?", (sha,))
        for listing_id, index, url in rows:
            new_sha, reason = (None, f"{problem}; not re-fetched (--no-refetch)")
            if refetch:
                new_sha, reason = _refetch(url, store, session, policy, limiter, rng, short_side, quality)
            with db.Transaction(conn) as c:
                if new_sha is not None:
                    report.repaired += 1
                    c.execute("UPDATE photos SET sha256 = ?, error = NULL WHERE listing_id = ? AND photo_index = ?",
                              (new_sha, listing_id, index))
                else:
                    report.lost += 1
                    c.execute("UPDATE photos SET status = ?, error = ? WHERE listing_id = ? AND photo_index = ?",
                              (db.PHOTO_LOST, f"{problem}; {reason}", listing_id, index))
    return report


def _refetch(url: str, store: ImageStore, session: requests.Session, policy: RetryPolicy, limiter: RateLimiter,
             rng: random.Random, short_side: int, quality: int) -> tuple[str | None, str]:
    if not is_fetchable_url(url):
        return None, "URL cannot be fetched"
    got = fetch(session, url, policy, limiter, rng)
    if not got.ok or got.content is None:
        return None, f"re-fetch failed ({'HTTP ' + str(got.status) if got.not_found else got.error})"
    try:
        encoded = encode_for_store(got.content, short_side, quality, url)
    except ImageLoadError as e:
        return None, f"re-fetched file unusable ({e.reason})"
    return store.put(encoded.jpeg), "re-fetched"
