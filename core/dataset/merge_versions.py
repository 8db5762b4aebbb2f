"""One listing ID's data as one machine recorded it, and the rule that picks between two.

A *version* is everything a database holds about one listing ID: its ``attempts`` row, its
``listings`` row (absent unless the page was read) and its ``photos`` rows.  Two machines that
visited the same ID (overlapping ``--shard`` ranges, a rerun elsewhere) may hold different
versions.  ``carvalue-data merge`` keeps exactly one in the main tables and every other distinct
one in ``merge_conflicts``, so nothing is lost and the kept one can be swapped by hand.

The rule is a total order (:func:`rank`), so the result does not depend on the order the parts
are merged in, nor on how often the same part is merged:

1. a listing that was read (outcome ``ok``) beats one that was not; a final outcome (missing,
   invalid, failed) beats a retryable ``error``;
2. then more stored photos (fewer photo downloads that failed);
3. then the later attempt (the site's newer data);
4. then the version's digest, a tie-break that needs no clock.

The digest covers the data, not the time it was fetched: two machines that read the same page
at different times hold the *same* version (no conflict); the later time is kept.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from core.dataset import database as db

ATTEMPT_COLS = ("listing_id", "outcome", "http_status", "error", "attempted_at")
LISTING_COLS = ("listing_id", "source_url", "title", "price", "make", "model", "year", "mileage", "trim",
                "body_style", "exterior_color", "interior_color", "drive_type", "fuel_type", "engine", "vin",
                "stock_number", "dealer_name", "dealer_website")
PHOTO_COLS = ("listing_id", "photo_index", "url", "status", "http_status", "error", "sha256", "width", "height")
_OUTCOME_RANK = {db.OUTCOME_OK: 2, db.OUTCOME_MISSING: 1, db.OUTCOME_INVALID: 1, db.OUTCOME_FAILED: 1}
_CHUNK = 500  # ids per IN (...) query: under SQLite's 999-variable floor


@dataclass(frozen=True)
class Version:
    """One database's rows for one listing ID (``attempt`` without its id and time)."""

    listing_id: int
    attempt: tuple[object, ...]  # outcome, http_status, error
    attempted_at: float
    listing: tuple[object, ...] | None  # LISTING_COLS without listing_id
    photos: tuple[tuple[object, ...], ...]  # PHOTO_COLS without listing_id, by photo_index

    @property
    def digest(self) -> str:
        """SHA-256 of the data (not of ``attempted_at``): equal digests mean equal data."""
        blob = json.dumps([self.attempt, self.listing, self.photos], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def outcome(self) -> str:
        return str(self.attempt[0])

    def stored_hashes(self) -> list[str]:
        i_status, i_sha = PHOTO_COLS.index("status") - 1, PHOTO_COLS.index("sha256") - 1
        return sorted({str(p[i_sha]) for p in self.photos if p[i_status] == db.PHOTO_STORED and p[i_sha]})

    def as_json(self) -> str:
        """The whole version, columns named, for ``merge_conflicts.version``."""
        return json.dumps({
            "attempt": dict(zip(ATTEMPT_COLS, (self.listing_id, *self.attempt, self.attempted_at), strict=True)),
            "listing": None if self.listing is None else dict(zip(LISTING_COLS[1:], self.listing, strict=True)),
            "photos": [dict(zip(PHOTO_COLS[1:], p, strict=True)) for p in self.photos],
        }, sort_keys=True)


def rank(v: Version) -> tuple[int, int, float, str]:
    """Bigger wins (see the module's docstring for why in this order)."""
    return _OUTCOME_RANK.get(v.outcome, 0), len(v.stored_hashes()), v.attempted_at, v.digest


def read_versions(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, Version]:
    """The versions ``conn`` holds for ``ids`` (an ID with no ``attempts`` row has none)."""
    ids = list(ids)
    out: dict[int, Version] = {}
    for k in range(0, len(ids), _CHUNK):
        chunk = ids[k:k + _CHUNK]
        marks = ",".join("?" * len(chunk))
        listings = {int(r[0]): tuple(r[1:]) for r in conn.execute(
            f"SELECT {','.join(LISTING_COLS)} FROM listings WHERE listing_id IN ({marks})", chunk)}
        photos: dict[int, list[tuple[object, ...]]] = {}
        for r in conn.execute(f"SELECT {','.join(PHOTO_COLS)} FROM photos WHERE listing_id IN ({marks}) "
                              "ORDER BY listing_id, photo_index", chunk):
            photos.setdefault(int(r[0]), []).append(tuple(r[1:]))
        for lid, outcome, status, error, at in conn.execute(
                f"SELECT {','.join(ATTEMPT_COLS)} FROM attempts WHERE listing_id IN ({marks})", chunk):
            lid = int(lid)
            out[lid] = Version(lid, (outcome, status, error), float(at), listings.get(lid),
                               tuple(photos.get(lid, ())))
    return out


def write_version(c: sqlite3.Connection, v: Version) -> None:
    """Make ``v`` the merged database's rows for its listing ID (inside the caller's transaction)."""
    c.execute("DELETE FROM photos WHERE listing_id = ?", (v.listing_id,))
    c.execute("DELETE FROM listings WHERE listing_id = ?", (v.listing_id,))
    if v.listing is not None:
        c.execute(f"INSERT INTO listings({','.join(LISTING_COLS)}) VALUES ({','.join('?' * len(LISTING_COLS))})",
                  (v.listing_id, *v.listing))
    c.executemany(f"INSERT INTO photos({','.join(PHOTO_COLS)}) VALUES ({','.join('?' * len(PHOTO_COLS))})",
                  [(v.listing_id, *p) for p in v.photos])
    c.execute(f"INSERT OR REPLACE INTO attempts({','.join(ATTEMPT_COLS)}) VALUES (?,?,?,?,?)",
              (v.listing_id, *v.attempt, v.attempted_at))
