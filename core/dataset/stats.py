"""``carvalue-data stats``: what the database holds, stage by stage."""

from __future__ import annotations

import sqlite3


def database_stats(conn: sqlite3.Connection) -> dict[str, object]:
    def counts(sql: str) -> dict[str, int]:
        return {str(k): int(n) for k, n in conn.execute(sql)}

    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    out: dict[str, object] = {
        "listings_by_outcome": counts("SELECT outcome, COUNT(*) FROM attempts GROUP BY outcome ORDER BY outcome"),
        "photos_by_status": counts("SELECT status, COUNT(*) FROM photos GROUP BY status ORDER BY status"),
        "stored_files": one("SELECT COUNT(DISTINCT sha256) FROM photos WHERE status = 'stored'"),
        "perceptual_hashes": one("SELECT COUNT(*) FROM phashes WHERE phash IS NOT NULL"),
        "hash_failures": one("SELECT COUNT(*) FROM phashes WHERE phash IS NULL"),
        "duplicate_photos": one("SELECT COALESCE(SUM(n), 0) FROM duplicate_phashes"),
        "junk_scored": one("SELECT COUNT(*) FROM junk_scores"),
        "junk": one("SELECT COUNT(*) FROM junk_scores WHERE is_junk = 1"),
    }
    if one("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'merge_conflicts'"):
        # a merged database (`carvalue-data merge`): versions of a listing ID that were not kept
        out["merge_conflicts"] = one("SELECT COUNT(*) FROM merge_conflicts")
        out["merged_parts"] = one("SELECT COUNT(*) FROM merge_parts")
    return out
