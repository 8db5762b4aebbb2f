"""Dedup on a scraped store, then what training gets: records and WebDataset shards."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from benchmarks.fakesite import FakeSite
from core.dataset import database
from core.dataset.dedup import dedup
from core.dataset.export import NotDeduplicated, records_from_db, split_of
from core.dataset.image_store import ImageStore
from core.dataset.shards import write_shards


def test_stock_photos_are_dropped_and_the_rest_exported(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, _ = scraped
    with pytest.raises(NotDeduplicated, match="carvalue-data dedup"):
        records_from_db(db_path, root)
    conn = database.connect(db_path)
    report = dedup(conn, ImageStore(root), jobs=2, progress=False, min_for_pool=0)  # the process-pool path
    stock_rows = conn.execute("SELECT COUNT(*) FROM photos WHERE url LIKE '%stock-dealer%' AND status='stored'").fetchone()[0]
    assert report.failed == 0 and report.hashed == len(database.stored_hashes(conn))
    assert report.duplicate_groups == 1 and report.duplicate_photos == stock_rows >= 5
    again = dedup(conn, ImageStore(root), jobs=1, progress=False)  # resumable: nothing left to hash
    assert again.hashed == 0 and again.duplicate_photos == report.duplicate_photos

    records = records_from_db(db_path, root)
    assert records_from_db(db_path) == records  # the store's root is recorded in the database
    stored = conn.execute("SELECT COUNT(*) FROM photos WHERE status='stored'").fetchone()[0]
    assert len(records) == stored - stock_rows
    (stock_sha,) = {s for (s,) in conn.execute("SELECT sha256 FROM photos WHERE url LIKE '%stock-dealer%'")}
    assert not any(r.image_path.name == stock_sha for r in records)
    by_group = {r.group for r in records}
    ok_listings = {str(i) for (i,) in conn.execute("SELECT listing_id FROM attempts WHERE outcome='ok'")}
    assert by_group <= ok_listings and len(by_group) >= len(ok_listings) - 1
    r = next(x for x in records if x.group == "1001")
    assert (r.make, r.model, r.year, r.price) == ("Toyota", "Camry", 2016, float(5000 + 1001 * 7919 % 45000))
    assert r.mileage == float(1001 * 3371 % 150000) and r.image_path.is_file()
    assert r.image_path.parent.parent == root

    # Junk verdicts remove photos too.
    junk_sha = r.image_path.name
    conn.execute("INSERT INTO junk_scores(sha256, score, is_junk, filter_id) VALUES (?, -3.0, 1, 'test')", (junk_sha,))
    assert all(x.image_path.name != junk_sha for x in records_from_db(db_path, root))
    assert len(records_from_db(db_path, root)) == len(records) - sum(x.image_path.name == junk_sha for x in records)


def test_a_new_copy_of_a_photo_makes_both_duplicates(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, _ = scraped
    conn = database.connect(db_path)
    dedup(conn, ImageStore(root), progress=False)
    n = len(records_from_db(db_path, root))
    sha = conn.execute("SELECT sha256 FROM photos WHERE listing_id = 1001 AND photo_index = 0").fetchone()[0]
    conn.execute("INSERT INTO photos(listing_id, photo_index, url, status, sha256) VALUES (1002, 99, 'http://x/y.jpg', "
                 "'stored', ?)", (sha,))
    assert len(records_from_db(db_path, root)) == n - 1  # the original is dropped as well


def test_shards_hold_jpg_and_json_per_sample(scraped: tuple[Path, Path, FakeSite], tmp_path: Path) -> None:
    db_path, root, _ = scraped
    conn = database.connect(db_path)
    dedup(conn, ImageStore(root), progress=False)
    records = records_from_db(db_path, root)
    out = tmp_path / "shards"
    report = write_shards(db_path, root, out, shard_size=25)
    assert report.samples == len(records) and len(report.shards) == -(-len(records) // 25)
    index = json.loads((out / "index.json").read_text())
    assert index["shards"] == report.shards and index["samples"] == len(records)
    seen = []
    for name in report.shards:
        with tarfile.open(out / name) as tar:
            members = tar.getnames()
            assert len(members) % 2 == 0
            for jpg, js in zip(members[::2], members[1::2], strict=True):
                key = jpg.removesuffix(".jpg")
                assert js == f"{key}.json" and "." not in key
                meta = json.loads(tar.extractfile(js).read())  # type: ignore[union-attr]
                data = tar.extractfile(jpg).read()  # type: ignore[union-attr]
                assert data == ImageStore(root).read(meta["sha256"])
                assert meta["split"] == split_of(str(meta["listing_id"]))
                seen.append((str(meta["listing_id"]), meta["sha256"]))
    assert sorted(seen) == sorted((r.group, r.image_path.name) for r in records)
    # Same inputs, same bytes (fixed mtimes, fixed order); a smaller rerun drops stale shards.
    first = (out / report.shards[0]).read_bytes()
    write_shards(db_path, root, out, shard_size=25)
    assert (out / report.shards[0]).read_bytes() == first
    write_shards(db_path, root, out, shard_size=10_000)
    assert sorted(p.name for p in out.glob("shard-*.tar")) == ["shard-000000.tar"]


def test_split_is_by_listing_and_roughly_proportional() -> None:
    splits = [split_of(str(i)) for i in range(5000)]
    assert split_of("123") == split_of("123")
    assert 0.07 < splits.count("val") / 5000 < 0.13 and 0.07 < splits.count("test") / 5000 < 0.13


def test_paging_visits_every_hash_once_while_writing(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, _ = scraped
    conn = database.connect(db_path)
    everything = database.stored_hashes(conn)
    pages = list(database.hash_pages(conn, database.STORED_HASHES_AFTER, page=7))
    assert [s for p in pages for s in p] == everything and max(len(p) for p in pages) == 7
    # dedup pages too, and writes between pages; with a tiny page the result is the same
    import core.dataset.dedup as dedup_module

    old = dedup_module.BATCH
    dedup_module.BATCH = 5
    try:
        report = dedup(conn, ImageStore(root), progress=False)
    finally:
        dedup_module.BATCH = old
    assert report.hashed == len(everything)


def test_labelling_queue_is_a_seeded_sample_without_duplicates(scraped: tuple[Path, Path, FakeSite]) -> None:
    from core.dataset.labels import labelling_queue

    db_path, root, _ = scraped
    conn = database.connect(db_path)
    dedup(conn, ImageStore(root), progress=False)
    stock = {s for (s,) in conn.execute("SELECT sha256 FROM photos WHERE url LIKE '%stock-dealer%'")}
    full = labelling_queue(conn, seed=1)
    assert set(full) == set(database.stored_hashes(conn)) - stock and len(full) == len(set(full))
    assert labelling_queue(conn, seed=1) == full and labelling_queue(conn, seed=2) != full
    few = labelling_queue(conn, seed=3, limit=10)
    assert len(few) == 10 and set(few) <= set(full)


def test_dedup_interrupted_midway_resumes_where_it_stopped(scraped: tuple[Path, Path, FakeSite],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import core.dataset.dedup as dedup_module

    db_path, root, _ = scraped
    conn = database.connect(db_path)
    real = dedup_module._hash_one
    calls = {"n": 0}

    def flaky(job: tuple[str, str]) -> tuple[str, str | None, str | None]:
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third page of 8
        return real(job)

    monkeypatch.setattr(dedup_module, "BATCH", 8)
    monkeypatch.setattr(dedup_module, "_hash_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        dedup(conn, ImageStore(root), progress=False)
    assert conn.execute("SELECT COUNT(*) FROM phashes").fetchone()[0] == 16  # two whole pages committed
    monkeypatch.setattr(dedup_module, "_hash_one", real)
    resumed = dedup(conn, ImageStore(root), progress=False)
    assert resumed.hashed == len(database.stored_hashes(conn)) - 16
    fresh = dedup(database.connect(db_path), ImageStore(root), progress=False)
    assert fresh.hashed == 0 and fresh.duplicate_photos == resumed.duplicate_photos
