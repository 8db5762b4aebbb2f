"""The pipeline's SQLite database: the index of everything scraped, hashed and filtered.

One row per visited listing ID (``attempts``: its outcome), per listing (``listings``), per
photo URL (``photos``: its status and, when stored, the SHA-256 of the stored file), per
stored file (``phashes``: the perceptual hash; ``junk_scores``: the filter's verdict).
WAL mode lets readers (the labeller, training) work while a scrape writes.  Every listing is
written in one transaction with all its photo rows, so a killed run leaves each listing either
complete or absent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA_VERSION = 1

# Listing outcomes. "error" (network trouble after all retries) is retried by the next run;
# the others are final.
OUTCOME_OK = "ok"
OUTCOME_MISSING = "missing"  # 404/410 or the site's "no longer available" page
OUTCOME_INVALID = "invalid"  # a page we could not read (malformed JSON, no data script)
OUTCOME_ERROR = "error"
FINAL_OUTCOMES = (OUTCOME_OK, OUTCOME_MISSING, OUTCOME_INVALID)

# Photo statuses.
PHOTO_STORED = "stored"
PHOTO_MISSING = "missing"  # 404/410
PHOTO_ERROR = "error"  # network trouble after all retries
PHOTO_BAD_IMAGE = "bad_image"  # downloaded but not a usable image (truncated, not an image, tiny)
PHOTO_BAD_URL = "bad_url"  # not an http(s) URL: never fetched
PHOTO_LOST = "lost"  # was stored, file later found missing/corrupt and could not be re-fetched

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    listing_id   INTEGER PRIMARY KEY,
    outcome      TEXT NOT NULL,
    http_status  INTEGER,
    error        TEXT,
    attempted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS listings (
    listing_id     INTEGER PRIMARY KEY,
    source_url     TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          REAL,
    make           TEXT,
    model          TEXT,
    year           INTEGER,
    mileage        REAL,
    trim           TEXT,
    body_style     TEXT,
    exterior_color TEXT,
    interior_color TEXT,
    drive_type     TEXT,
    fuel_type      TEXT,
    engine         TEXT,
    vin            TEXT,
    stock_number   TEXT,
    dealer_name    TEXT,
    dealer_website TEXT
);
CREATE TABLE IF NOT EXISTS photos (
    listing_id  INTEGER NOT NULL REFERENCES listings(listing_id),
    photo_index INTEGER NOT NULL,
    url         TEXT NOT NULL,
    status      TEXT NOT NULL,
    http_status INTEGER,
    error       TEXT,
    sha256      TEXT,
    width       INTEGER,
    height      INTEGER,
    PRIMARY KEY (listing_id, photo_index)
);
CREATE INDEX IF NOT EXISTS photos_by_sha256 ON photos(sha256);
CREATE INDEX IF NOT EXISTS photos_by_status ON photos(status);
CREATE TABLE IF NOT EXISTS phashes (
    sha256 TEXT PRIMARY KEY,
    phash  TEXT,
    error  TEXT
);
CREATE INDEX IF NOT EXISTS phashes_by_phash ON phashes(phash);
CREATE TABLE IF NOT EXISTS junk_scores (
    sha256    TEXT PRIMARY KEY,
    score     REAL NOT NULL,
    is_junk   INTEGER NOT NULL,
    filter_id TEXT NOT NULL
);
-- Perceptual hashes seen on more than one stored photo row (dealer stock photos and the like).
CREATE VIEW IF NOT EXISTS duplicate_phashes AS
    SELECT h.phash AS phash, COUNT(*) AS n
    FROM photos p JOIN phashes h ON h.sha256 = p.sha256
    WHERE p.status = 'stored' AND h.phash IS NOT NULL
    GROUP BY h.phash HAVING COUNT(*) > 1;
"""


class DatabaseError(RuntimeError):
    pass


def connect(path: str | Path, create: bool = True) -> sqlite3.Connection:
    """Open (and if needed create) the database in WAL mode; checks the schema version."""
    path = Path(path)
    if not create and not path.is_file():
        raise DatabaseError(f"{path}: no such database (run `carvalue-data scrape` first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses at most the last commits, never corrupts
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(_SCHEMA)
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    elif row[0] != str(SCHEMA_VERSION):
        conn.close()
        raise DatabaseError(f"{path}: schema version {row[0]}, this code reads version {SCHEMA_VERSION}")
    return conn


class Transaction:
    """``with Transaction(conn):`` runs the block in BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def remember_images_root(conn: sqlite3.Connection, root: Path) -> None:
    """Record where this database's image store is (the first one used wins; a different
    root later is refused, since the rows would point at files that are not there)."""
    resolved = str(Path(root).resolve())
    known = get_meta(conn, "images_root")
    if known is None:
        conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('images_root', ?)", (resolved,))
    elif known != resolved and Path(known).exists():
        raise DatabaseError(f"this database's image store is {known}, not {resolved}; pass --images {known}")


def stored_hashes(conn: sqlite3.Connection) -> list[str]:
    """Distinct SHA-256s of photos whose status is stored (small databases and tests; stages
    page through them with :func:`hash_pages`)."""
    return [sha for page in hash_pages(conn, STORED_HASHES_AFTER) for sha in page]


# Distinct stored hashes after a given one, in order: the keyset query that hash_pages() runs.
STORED_HASHES_AFTER = ("SELECT DISTINCT sha256 FROM photos WHERE status = 'stored' AND sha256 > ? "
                       "ORDER BY sha256 LIMIT ?")


def hash_pages(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = (),
               page: int = 4096) -> Iterator[list[str]]:
    """Pages of hashes from ``sql``, which ends in ``sha256 > ? ORDER BY sha256 LIMIT ?``.

    Keyset paging keeps memory flat at millions of photos, and each page is a fresh query, so
    the caller may write between pages (e.g. insert the hashes it just computed)."""
    last = ""
    while True:
        rows = [r[0] for r in conn.execute(sql, (*params, last, page))]
        if not rows:
            return
        yield rows
        last = rows[-1]
