"""What training reads from the pipeline: one :class:`ImageRecord` per usable photo.

Usable = its listing was read (outcome ok), its file is stored, its perceptual hash is known
and occurs once (not a stock photo), and the junk filter (if it was applied) did not reject it.
``group`` is the listing ID: training splits by listing, never by photo.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.dataset import database as db
from core.dataset.image_store import ImageStore
from core.dataset.records import ImageRecord

_USABLE_SQL = """
SELECT p.listing_id, p.photo_index, p.sha256, l.make, l.model, l.year, l.price, l.mileage
FROM photos p
JOIN listings l ON l.listing_id = p.listing_id
JOIN phashes h ON h.sha256 = p.sha256
LEFT JOIN junk_scores j ON j.sha256 = p.sha256
WHERE p.status = 'stored'
  AND h.phash IS NOT NULL
  AND h.phash NOT IN (SELECT phash FROM duplicate_phashes)
  AND COALESCE(j.is_junk, 0) = 0
ORDER BY p.listing_id, p.photo_index
"""


class NotDeduplicated(RuntimeError):
    pass


@dataclass(frozen=True)
class UsablePhoto:
    listing_id: int
    photo_index: int
    sha256: str
    make: str
    model: str
    year: int | None
    price: float | None
    mileage: float | None


def usable_photos(conn: sqlite3.Connection) -> Iterator[UsablePhoto]:
    """Training photos in (listing, photo index) order; requires `dedup` to have run."""
    missing = conn.execute(
        "SELECT COUNT(DISTINCT p.sha256) FROM photos p LEFT JOIN phashes h ON h.sha256 = p.sha256 "
        "WHERE p.status = ? AND h.sha256 IS NULL", (db.PHOTO_STORED,)).fetchone()[0]
    if missing:
        raise NotDeduplicated(f"{missing} stored photos have no perceptual hash yet; run `carvalue-data dedup` "
                              "first (duplicates cannot be dropped otherwise)")
    for lid, idx, sha, make, model, year, price, mileage in conn.execute(_USABLE_SQL):
        yield UsablePhoto(int(lid), int(idx), sha, make or "", model or "", year, price, mileage)


def records_from_db(db_path: str | Path, images_root: str | Path | None = None) -> list[ImageRecord]:
    """Every usable photo as an ImageRecord (group = listing ID), for training's Dataset.

    ``images_root`` defaults to the store the scrape recorded in the database."""
    conn = db.connect(db_path, create=False, readonly=True)
    try:
        if images_root is None:
            images_root = db.get_meta(conn, "images_root")
            if images_root is None:
                raise db.DatabaseError(f"{db_path}: no image store recorded; pass the image store root")
        store = ImageStore(images_root)
        return [ImageRecord(image_path=store.path_for(p.sha256), group=str(p.listing_id), make=p.make,
                            model=p.model, year=p.year, price=p.price, mileage=p.mileage)
                for p in usable_photos(conn)]
    finally:
        conn.close()


def split_of(group: str, val: float = 0.1, test: float = 0.1) -> str:
    """A stable train/val/test assignment from a hash of the group (listing) ID."""
    u = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big") / 2**64
    return "test" if u < test else "val" if u < test + val else "train"
