"""``carvalue-data merge``: many machines' databases and image stores into one.

Each machine of a sharded scrape (``scrape --shard i/n``, or a cluster worker) writes its own
database and store.  Merging copies (or hard-links) every stored file into the merged store's
256 buckets by its hash, then writes the rows: one *version* per listing ID, chosen by the rule
in :mod:`core.dataset.merge_versions`; every other distinct version of that ID goes to
``merge_conflicts`` (JSON of all its rows, and its files are copied too), so nothing is lost.
Perceptual hashes and junk verdicts already computed on a machine travel with their files, and
``dedup`` then runs over the merged database, so duplicates are found across machines.

Why it is safe to kill and rerun:

* files go in before the rows that name them (atomic temp + rename, like every store write),
  so a committed row never points at a file the merge has not placed;
* a batch of listings is one transaction, with the part's position (``merge_parts``);
* every step is idempotent (a file already present is skipped; a version equal to the kept one,
  or a loser already recorded, changes nothing), so a rerun, or merging a part twice, gives
  the same database.  A part whose contents changed since (more scraping) is read again whole.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import atomic_link
from core.dataset import database as db
from core.dataset.dedup import DedupReport, dedup
from core.dataset.image_store import TEMP_DIR, ImageStore, StoredFileError, sha256_hex
from core.dataset.merge_versions import Version, rank, read_versions, write_version

BATCH = 256  # listing IDs per transaction
FILE_MODES = ("copy", "hardlink")
_EXAMPLES = 5

_MERGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS merge_parts (
    part        TEXT PRIMARY KEY,   -- the part database's resolved path
    fingerprint TEXT NOT NULL,      -- what the part held when this merge read it
    last_id     INTEGER,            -- listing IDs up to this one are merged
    done        INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS merge_conflicts (
    listing_id   INTEGER NOT NULL,
    digest       TEXT NOT NULL,     -- of the version that was not kept
    part         TEXT NOT NULL,     -- where it came from (first seen)
    outcome      TEXT NOT NULL,
    attempted_at REAL NOT NULL,
    version      TEXT NOT NULL,     -- JSON: its attempt, listing and photo rows
    PRIMARY KEY (listing_id, digest)
);
CREATE TABLE IF NOT EXISTS merge_origin (
    listing_id INTEGER PRIMARY KEY,  -- the kept version of this ID came from
    part       TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Part:
    """One machine's output: its database and its image store."""

    db: Path
    images: Path

    @property
    def key(self) -> str:
        return str(self.db.resolve())


@dataclass
class MergeReport:
    parts: int = 0
    parts_skipped_done: int = 0
    listings_read: int = 0
    listings_new: int = 0
    listings_same: int = 0  # the same data already merged (a rerun, or an overlap with equal data)
    conflicts_new: int = 0
    conflict_examples: list[dict[str, object]] = field(default_factory=list)
    files_copied: int = 0
    files_linked: int = 0
    files_present: int = 0
    unreadable_files: dict[str, str] = field(default_factory=dict)  # sha256 -> why (kept out of the store)
    dedup: DedupReport | None = None
    conflicts_total: int = 0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "parts": self.parts, "parts_already_merged": self.parts_skipped_done,
            "listings_read": self.listings_read, "listings_new": self.listings_new,
            "listings_same_as_merged": self.listings_same, "conflicts_new": self.conflicts_new,
            "conflicts_total": self.conflicts_total, "files_copied": self.files_copied,
            "files_linked": self.files_linked, "files_already_present": self.files_present,
        }
        if self.conflict_examples:
            out["conflict_examples"] = self.conflict_examples
            out["conflict_rule"] = ("kept: outcome ok > other final outcome > error, then more stored photos, "
                                    "then the later attempt; the others are in the merge_conflicts table")
        if self.unreadable_files:
            out["unreadable_files"] = len(self.unreadable_files)
            out["unreadable_examples"] = dict(list(self.unreadable_files.items())[:_EXAMPLES])
            out["hint"] = "their rows are merged; run `carvalue-data verify` on the merged database to re-fetch them"
        if self.dedup is not None:
            out["dedup"] = self.dedup.as_dict()
        return out


def merge(conn: sqlite3.Connection, store: ImageStore, parts: list[Part], files: str = "copy",
          batch: int = BATCH, jobs: int = 1, progress: bool = False) -> MergeReport:
    """Merge ``parts`` into the database ``conn`` and the store ``store``, then dedup it all."""
    if files not in FILE_MODES:
        raise ValueError(f"files must be one of {FILE_MODES}, got {files!r}")
    conn.executescript(_MERGE_SCHEMA)
    db.remember_images_root(conn, store.root)
    report = MergeReport()
    own = _database_file(conn)
    seen: set[str] = set()
    for part in parts:
        if part.key in seen:
            continue
        seen.add(part.key)
        if own is not None and part.key == own:
            raise ValueError(f"{part.db} is the merged database itself; pass each machine's database as a part")
        report.parts += 1
        src = db.connect(part.db, create=False, readonly=True)
        try:
            _merge_part(conn, store, part, src, files, batch, report)
        finally:
            src.close()
    report.dedup = dedup(conn, store, jobs=jobs, progress=progress)
    report.conflicts_total = int(conn.execute("SELECT COUNT(*) FROM merge_conflicts").fetchone()[0])
    return report


def _database_file(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(Path(row[2]).resolve()) if row and row[2] else None


def _fingerprint(src: sqlite3.Connection) -> str:
    n, top, latest = src.execute("SELECT COUNT(*), MAX(listing_id), MAX(attempted_at) FROM attempts").fetchone()
    photos = src.execute("SELECT COUNT(*), COUNT(sha256) FROM photos").fetchone()
    return f"{n}:{top}:{latest!r}:{photos[0]}:{photos[1]}"


def _merge_part(conn: sqlite3.Connection, store: ImageStore, part: Part, src: sqlite3.Connection, files: str,
                batch: int, report: MergeReport) -> None:
    fingerprint = _fingerprint(src)
    row = conn.execute("SELECT fingerprint, last_id, done FROM merge_parts WHERE part = ?", (part.key,)).fetchone()
    if row is not None and row[0] == fingerprint and row[2]:
        report.parts_skipped_done += 1
        return
    after = row[1] if row is not None and row[0] == fingerprint and row[1] is not None else -1
    with db.Transaction(conn) as c:
        c.execute("INSERT OR REPLACE INTO merge_parts(part, fingerprint, last_id, done) VALUES (?,?,?,0)",
                  (part.key, fingerprint, after))
    part_store = ImageStore(part.images)
    for ids in _id_pages(src, after, batch):
        theirs = read_versions(src, ids)
        ours = read_versions(conn, ids)
        for v in theirs.values():  # files first: a committed row never names a file not yet placed
            for sha in v.stored_hashes():
                _place_file(part_store, store, sha, files, report)
        with db.Transaction(conn) as c:
            for lid in ids:
                _merge_listing(c, part, theirs[lid], ours.get(lid), report)
            _copy_hash_rows(c, src, theirs.values())
            c.execute("UPDATE merge_parts SET last_id = ? WHERE part = ?", (ids[-1], part.key))
        report.listings_read += len(ids)
    with db.Transaction(conn) as c:
        c.execute("UPDATE merge_parts SET done = 1 WHERE part = ?", (part.key,))


def _id_pages(src: sqlite3.Connection, after: int, batch: int) -> Iterator[list[int]]:
    """The part's listing IDs above ``after``, ``batch`` at a time, ascending (keyset paging)."""
    while True:
        ids = [int(r[0]) for r in src.execute(
            "SELECT listing_id FROM attempts WHERE listing_id > ? ORDER BY listing_id LIMIT ?", (after, batch))]
        if not ids:
            return
        yield ids
        after = ids[-1]


def _merge_listing(c: sqlite3.Connection, part: Part, theirs: Version, ours: Version | None,
                   report: MergeReport) -> None:
    if ours is None:
        write_version(c, theirs)
        _set_origin(c, theirs.listing_id, part.key)
        report.listings_new += 1
        return
    if ours.digest == theirs.digest:
        if theirs.attempted_at > ours.attempted_at:  # the same data: keep the later time, whatever the order
            c.execute("UPDATE attempts SET attempted_at = ? WHERE listing_id = ?", (theirs.attempted_at, theirs.listing_id))
        report.listings_same += 1
        return
    if rank(theirs) > rank(ours):
        keep, lose, lose_part = theirs, ours, _origin(c, ours.listing_id)
        write_version(c, theirs)
        _set_origin(c, theirs.listing_id, part.key)
        # kept now, though an older copy of it may have lost before: it is not a conflict any more
        c.execute("DELETE FROM merge_conflicts WHERE listing_id = ? AND digest = ?", (theirs.listing_id, theirs.digest))
    else:
        keep, lose, lose_part = ours, theirs, part.key
    new = _record_loser(c, lose, lose_part)
    if new:
        report.conflicts_new += 1
        if len(report.conflict_examples) < _EXAMPLES:
            report.conflict_examples.append({"listing_id": keep.listing_id, "kept": keep.outcome,
                                             "not_kept": lose.outcome, "not_kept_from": lose_part})


def _record_loser(c: sqlite3.Connection, v: Version, part: str) -> bool:
    """Keep ``v`` in merge_conflicts (with its latest attempt, whatever the order the parts come
    in); True when it was not there before."""
    known = c.execute("SELECT attempted_at FROM merge_conflicts WHERE listing_id = ? AND digest = ?",
                      (v.listing_id, v.digest)).fetchone()
    if known is None or v.attempted_at > known[0]:
        c.execute("INSERT OR REPLACE INTO merge_conflicts(listing_id, digest, part, outcome, attempted_at, version) "
                  "VALUES (?,?,?,?,?,?)", (v.listing_id, v.digest, part, v.outcome, v.attempted_at, v.as_json()))
    return known is None


def _origin(c: sqlite3.Connection, listing_id: int) -> str:
    row = c.execute("SELECT part FROM merge_origin WHERE listing_id = ?", (listing_id,)).fetchone()
    return str(row[0]) if row else "the merged database's own scrape"


def _set_origin(c: sqlite3.Connection, listing_id: int, part: str) -> None:
    c.execute("INSERT OR REPLACE INTO merge_origin(listing_id, part) VALUES (?, ?)", (listing_id, part))


def _copy_hash_rows(c: sqlite3.Connection, src: sqlite3.Connection, versions: Iterable[Version]) -> None:
    """Perceptual hashes (a pure function of the file) and junk verdicts the part already has for
    its stored files; a hash that failed there is left for the merged ``dedup`` to retry."""
    shas = sorted({sha for v in versions for sha in v.stored_hashes()})
    for k in range(0, len(shas), 500):
        chunk = shas[k:k + 500]
        marks = ",".join("?" * len(chunk))
        c.executemany("INSERT OR IGNORE INTO phashes(sha256, phash, error) VALUES (?,?,NULL)", src.execute(
            f"SELECT sha256, phash FROM phashes WHERE phash IS NOT NULL AND sha256 IN ({marks})", chunk).fetchall())
        c.executemany("INSERT OR IGNORE INTO junk_scores(sha256, score, is_junk, filter_id) VALUES (?,?,?,?)",
                      src.execute(f"SELECT sha256, score, is_junk, filter_id FROM junk_scores WHERE sha256 IN ({marks})",
                                  chunk).fetchall())


def _place_file(src: ImageStore, dst: ImageStore, sha: str, mode: str, report: MergeReport) -> None:
    """Put the part's file for ``sha`` into the merged store, checked against its name.  A file
    that is missing or damaged on the part is left out and reported (verify re-fetches it)."""
    target = dst.path_for(sha)
    if target.is_file():
        report.files_present += 1
        return
    try:
        data = src.read(sha)
    except FileNotFoundError:
        report.unreadable_files[sha] = "file is missing in the part's store"
        return
    except StoredFileError as e:
        report.unreadable_files[sha] = e.reason
        return
    except OSError as e:
        report.unreadable_files[sha] = f"cannot read the part's file ({e.strerror or e})"
        return
    if sha256_hex(data) != sha:
        report.unreadable_files[sha] = "the part's file does not match its hash"
        return
    if mode == "hardlink" and _link(src.path_for(sha), dst, target):
        report.files_linked += 1
        return
    dst.put(data)
    report.files_copied += 1


def _link(source: Path, dst: ImageStore, target: Path) -> bool:
    """Hard-link ``source`` to ``target`` through a temp name (atomic, like ``put``); False when the
    stores are on different file systems or links are not allowed, and the caller copies."""
    try:
        atomic_link(source, target, temp_dir=dst.root / TEMP_DIR)
    except OSError as e:
        if e.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP):  # then copy
            return False
        raise
    return True


