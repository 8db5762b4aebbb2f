"""The pipeline's SQLite database: the index of everything scraped, hashed and filtered.

One row per visited listing ID (``attempts``: its outcome), per listing (``listings``), per
photo URL (``photos``: its status and, when stored, the SHA-256 of the stored file), per
stored file (``phashes``: the perceptual hash; ``junk_scores``: the filter's verdict).
WAL mode lets readers (the labeller, training) work while a scrape writes.  Every listing is
written in one transaction with all its photo rows, so a killed run leaves each listing either
complete or absent.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from core.atomic import atomic_path
from core.dataset.text import one_line

SCHEMA_VERSION = 1

# Listing outcomes. "error" (network trouble after all retries) is retried by the next run;
# the others are final ("failed" is retried only when asked: `scrape --retry-failed`).
OUTCOME_OK = "ok"
OUTCOME_MISSING = "missing"  # 404/410 or the site's "no longer available" page
OUTCOME_INVALID = "invalid"  # a page we could not read (malformed JSON, no data script)
OUTCOME_ERROR = "error"
OUTCOME_FAILED = "failed"  # retrying cannot help: a redirect loop, an unusable URL, data that broke the reader
FINAL_OUTCOMES = (OUTCOME_OK, OUTCOME_MISSING, OUTCOME_INVALID, OUTCOME_FAILED)

# Photo statuses.
PHOTO_STORED = "stored"
PHOTO_MISSING = "missing"  # 404/410
PHOTO_ERROR = "error"  # network trouble after all retries (retried by the next run)
PHOTO_FAILED = "failed"  # retrying cannot help (redirect loop, unusable URL, a reader failure); final
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


class DatabaseNotWritable(DatabaseError):
    """The database cannot be written (a read-only file or folder, a full disk); stages that only
    read it open it with ``connect(..., readonly=True)`` and still work."""


# sqlite3 error names meaning the file or its folder cannot be written (or the disk failed),
# not that the database is damaged.
_WRITE_CODES = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")


def cannot_write(e: sqlite3.Error) -> bool:
    """Whether ``e`` says the database cannot be written (rather than that it is damaged)."""
    return str(getattr(e, "sqlite_errorname", "")).startswith(_WRITE_CODES)


class UnusableDatabase(DatabaseError):
    """The file at the database path cannot be used as this pipeline's database: empty,
    truncated, overwritten, or another program's.  It is refused before anything is written."""


SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_BYTES = 100
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # sqlite3 error names meaning "not a readable database"
_TABLES = ("meta", "attempts", "listings", "photos", "phashes", "junk_scores")
_LEAVE_IT = ("nothing was changed; restore it from a backup, or move it aside and run `carvalue-data scrape` "
             "to start a new one")


def connect(path: str | Path, create: bool = True, readonly: bool = False) -> sqlite3.Connection:
    """Open the pipeline database in WAL mode; with ``create``, make a new one if ``path`` does
    not exist.  With ``readonly`` (stages that only read: ``stats``, ``shards``), a read-only
    connection, which also works on a read-only file or in a read-only folder; otherwise a file
    or folder that cannot be written is refused with :class:`DatabaseNotWritable` before any work.

    An existing file is checked before anything is written to it: SQLite's header, the size the
    header promises, ``PRAGMA quick_check`` (reads every page once: ~15 ms per 2 MB) and the
    schema.  A file that fails is refused with :class:`UnusableDatabase` and left byte-identical
    (an empty file is never taken for a new database: a later scrape would silently start over).
    """
    path = Path(path)
    if path.exists():
        return _open_read_only(path) if readonly else _open_existing(path)
    if not create or readonly:
        raise DatabaseError(f"{path}: no such database (run `carvalue-data scrape` first)")
    _create(path)
    return _open_existing(path)


def _create(path: Path) -> None:
    """Build a new database under a temp name, then publish it under ``path`` (never over an
    existing file), so a killed run never leaves an empty or half-made database behind."""
    with atomic_path(path, replace=False) as tmp:  # another process created it first: open theirs
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # kept in the file's header
            conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}"
                               f"INSERT INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');COMMIT;")
        finally:
            conn.close()


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection.  In a folder nobody can write, SQLite cannot make the WAL's
    shared-memory file and refuses even to read; the file is then opened as immutable (nothing
    can change it while the folder is read-only)."""
    _check_file(path)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError as e:
        conn.close()
        if not cannot_write(e) or os.access(path.parent, os.W_OK):
            raise DatabaseError(f"{path}: cannot read the database ({e})") from None
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=60.0, isolation_level=None)
    try:
        _check_contents(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_writable(path: Path) -> None:
    """Refuse, before any work, a database the process cannot write: a read-only (or immutable)
    file, or a read-only folder (SQLite writes its WAL and shared-memory files beside it)."""
    for target, what in ((path, "file"), (path.parent, "folder")):
        if not os.access(target, os.W_OK):
            raise DatabaseNotWritable(f"{path}: cannot write the database (its {what} is read-only); nothing "
                                      "was changed; stages that only read it (stats, shards) still work")


def _open_existing(path: Path) -> sqlite3.Connection:
    _check_file(path)
    _check_writable(path)
    hot_wal = _has_hot_wal(path)
    if hot_wal:
        # A killed writer left pages in the write-ahead log.  Closing a read-write connection
        # would copy them into the file (a checkpoint), so the checks read through a read-only
        # one, which never writes the database file.
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
        try:
            _check_contents(probe, path)
        finally:
            probe.close()
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        if not hot_wal:
            _check_contents(conn, path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses at most the last commits, never corrupts
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_file(path: Path) -> None:
    """Cheap checks of the raw bytes, before SQLite sees the file (SQLite takes an empty file for
    a new database and would write a fresh schema into it)."""
    if not path.is_file():
        raise UnusableDatabase(f"{path} is not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(_HEADER_BYTES)
    except OSError as e:
        raise DatabaseError(f"{path}: cannot read ({e.strerror or e})") from None
    if size == 0:
        raise UnusableDatabase(f"{path} is empty (0 bytes), not a carvalue-data database (truncated?); {_LEAVE_IT}")
    if len(head) < _HEADER_BYTES or not head.startswith(SQLITE_MAGIC):
        raise UnusableDatabase(f"{path} does not start with SQLite's header: not a database, or its first page "
                               f"was overwritten; {_LEAVE_IT}")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise UnusableDatabase(f"{path}: SQLite header names an impossible page size ({page_size}); {_LEAVE_IT}")
    # The page count in the header is valid when the change counter matches "version-valid-for"
    # (file format spec, offsets 24, 28, 92).  A write-ahead log may still hold pages not yet
    # copied into the file, so the count is only compared with the size when there is none.
    pages = int.from_bytes(head[28:32], "big")
    if pages and head[24:28] == head[92:96] and not _has_hot_wal(path) and size < pages * page_size:
        raise UnusableDatabase(f"{path} is truncated: its header counts {pages} pages of {page_size} bytes, "
                               f"the file holds {size / page_size:.1f}; {_LEAVE_IT}")


def _has_hot_wal(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    try:
        return wal.stat().st_size > 0
    except FileNotFoundError:
        return False


def _check_contents(conn: sqlite3.Connection, path: Path) -> None:
    """quick_check and the schema, read-only."""
    try:
        problems = [one_line(str(r[0]), 200) for r in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise UnusableDatabase(f"{path} is damaged (SQLite's quick_check: {'; '.join(problems)}); {_LEAVE_IT}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorname", "").startswith(_DAMAGE_CODES):
            raise UnusableDatabase(f"{path} is damaged ({e}); {_LEAVE_IT}") from None
        raise DatabaseError(f"{path}: cannot read the database ({e})") from None
    if "meta" not in tables:
        raise UnusableDatabase(f"{path} is an SQLite database but not a carvalue-data database (no meta table); "
                               "nothing was changed; pass the pipeline's database, or a new path to start one")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise UnusableDatabase(f"{path}: its meta table has no schema_version: not a carvalue-data database; "
                               f"{_LEAVE_IT}")
    if row[0] != str(SCHEMA_VERSION):
        raise DatabaseError(f"{path}: schema version {row[0]}, this code reads version {SCHEMA_VERSION}")
    missing = [t for t in _TABLES if t not in tables]
    if missing:
        raise UnusableDatabase(f"{path} lacks the table(s) {', '.join(missing)}; {_LEAVE_IT}")


class Transaction:
    """``with Transaction(conn):`` runs the block in BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # SQLite ends it itself on some errors (a full disk)
            self.conn.execute("ROLLBACK")


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
