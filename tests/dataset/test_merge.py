"""``carvalue-data merge``: three machines' sharded scrapes merged equal one unsharded scrape;
conflicting versions of a listing are resolved by one rule, reported, and never lost; a merge
killed with SIGKILL and rerun equals an unbroken one."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fakesite import car_photo
from core.dataset import database
from core.dataset.cli import main
from core.dataset.image_store import ImageStore, sha256_hex
from core.dataset.merge import Part, merge
from core.dataset.merge_versions import Version, rank, read_versions
from tests.dataset.merge_helpers import scrape_all, snapshot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[Path, Path]], tuple[Path, Path]]:
    return scrape_all(tmp_path_factory.mktemp("machines"))


def merge_cli(out: Path, parts: list[tuple[Path, Path]], *extra: str) -> tuple[int, dict[str, object]]:
    args = ["merge", "--db", str(out / "merged.sqlite"), "--images", str(out / "merged-images"),
            "--jobs", "1", "--no-progress", *extra]
    for d, i in parts:
        args += ["--part", str(d), str(i)]
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(args)
    return rc, (json.loads(buf.getvalue()) if rc == 0 else {})


def test_three_sharded_machines_merged_equal_one_unsharded_scrape(scrapes, tmp_path: Path) -> None:
    parts, whole = scrapes
    counts = [sqlite3.connect(d).execute("SELECT COUNT(*) FROM attempts").fetchone()[0] for d, _ in parts]
    assert all(n > 5 for n in counts) and sum(counts) == 36  # a real split, nothing twice
    rc, report = merge_cli(tmp_path, parts)
    assert rc == 0
    merged = snapshot(tmp_path / "merged.sqlite", tmp_path / "merged-images")
    expected = snapshot(*whole)
    for key in expected:
        assert merged[key] == expected[key], key
    assert len(merged["duplicate_groups"]) >= 1  # the dealer's stock photo, seen on every machine
    assert report["conflicts_new"] == 0 and report["listings_new"] == 36 and report["parts"] == 3
    assert report["files_copied"] == len(merged["files"])  # type: ignore[arg-type]
    assert report["dedup"]["duplicate_groups"] == len(expected["duplicate_groups"])  # type: ignore[index, arg-type]
    # Machine 0 was deduplicated: its hashes came with its files; the rest were hashed after the merge.
    assert 0 < report["dedup"]["hashed_now"] < len(merged["phashes"])  # type: ignore[index, operator, arg-type]

    # Again, and with the parts in another order and hard links: nothing changes.
    rc, again = merge_cli(tmp_path, parts[::-1], "--files", "hardlink")
    assert rc == 0 and again["parts_already_merged"] == 3 and again["conflicts_total"] == 0
    assert snapshot(tmp_path / "merged.sqlite", tmp_path / "merged-images") == merged
    linked = tmp_path / "linked"
    linked.mkdir()
    rc, report = merge_cli(linked, parts[::-1], "--files", "hardlink", "--batch", "5")
    assert rc == 0 and report["files_linked"] == len(merged["files"])  # type: ignore[arg-type]
    assert snapshot(linked / "merged.sqlite", linked / "merged-images") == merged


def test_a_part_that_is_not_a_database_is_refused_before_anything_is_made(scrapes, tmp_path: Path) -> None:
    parts, _ = scrapes
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"not a database at all" * 10)
    rc, _ = merge_cli(tmp_path, [parts[0], (bogus, tmp_path / "x")])
    assert rc == 5 and not (tmp_path / "merged.sqlite").exists() and not (tmp_path / "merged-images").exists()


# ---- conflicts ------------------------------------------------------------------------------

OUTCOMES = ("ok", "missing", "error")


def make_part(base: Path, name: str, versions: dict[int, tuple[str, int, tuple[int, ...], float]]) -> Part:
    """A machine's database written directly: listing id -> (outcome, price, photo seeds, attempted_at)."""
    part = Part(base / f"{name}.sqlite", base / f"{name}-images")
    conn = database.connect(part.db)
    store = ImageStore(part.images)
    with database.Transaction(conn) as c:
        for lid, (outcome, price, seeds, at) in versions.items():
            if outcome == "ok":
                c.execute("INSERT INTO listings(listing_id, source_url, title, price, make, model, year) "
                          "VALUES (?,?,?,?,?,?,?)", (lid, f"http://x/{lid}", "t", price, "Honda", "Civic", 2010))
                for k, seed in enumerate(seeds):
                    sha = store.put(car_photo(seed, (64, 48)))
                    c.execute("INSERT INTO photos(listing_id, photo_index, url, status, sha256, width, height) "
                              "VALUES (?,?,?,?,?,?,?)", (lid, k, f"http://x/p{seed}.jpg", "stored", sha, 64, 48))
            c.execute("INSERT INTO attempts(listing_id, outcome, http_status, error, attempted_at) VALUES (?,?,?,?,?)",
                      (lid, outcome, 200 if outcome == "ok" else 500, None if outcome == "ok" else "HTTP 500", at))
    conn.close()
    return part


def merged_state(db_path: Path) -> tuple[object, ...]:
    conn = sqlite3.connect(db_path)
    try:
        return (conn.execute("SELECT * FROM attempts ORDER BY 1").fetchall(),
                conn.execute("SELECT * FROM listings ORDER BY 1").fetchall(),
                conn.execute("SELECT * FROM photos ORDER BY 1, 2").fetchall(),
                conn.execute("SELECT listing_id, digest, version FROM merge_conflicts ORDER BY 1, 2").fetchall())
    finally:
        conn.close()


def run_merge(out: Path, parts: list[Part]) -> dict[str, object]:
    conn = database.connect(out / "m.sqlite")
    try:
        return merge(conn, ImageStore(out / "m-images"), parts, batch=2).as_dict()
    finally:
        conn.close()


version_st = st.tuples(st.sampled_from(OUTCOMES), st.sampled_from((9000, 12000)),
                       st.lists(st.integers(1, 4), max_size=3, unique=True).map(tuple), st.sampled_from((1.0, 2.0)))
part_st = st.dictionaries(st.integers(1, 4), version_st, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(part_st, min_size=2, max_size=3), st.randoms(use_true_random=False))
def test_conflicts_one_rule_any_order_nothing_lost(contents, rnd) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        parts = [make_part(base, f"m{i}", c) for i, c in enumerate(contents)]
        (base / "a").mkdir()
        (base / "b").mkdir()
        report = run_merge(base / "a", parts)
        shuffled = parts[:]
        rnd.shuffle(shuffled)
        run_merge(base / "b", shuffled)
        state = merged_state(base / "a" / "m.sqlite")
        assert merged_state(base / "b" / "m.sqlite") == state  # the order of the parts does not matter
        again = run_merge(base / "a", parts)
        assert again["conflicts_new"] == 0 and merged_state(base / "a" / "m.sqlite") == state  # idempotent

        conn = sqlite3.connect(base / "a" / "m.sqlite")
        kept = read_versions(conn, range(1, 5))
        losers = {(lid, d) for lid, d in conn.execute("SELECT listing_id, digest FROM merge_conflicts")}
        conn.close()
        store = ImageStore(base / "a" / "m-images")
        every: dict[int, dict[str, Version]] = {}
        latest: dict[tuple[int, str], float] = {}
        for part in parts:
            src = sqlite3.connect(part.db)
            for lid, v in read_versions(src, range(1, 5)).items():
                every.setdefault(lid, {})[v.digest] = v
                latest[lid, v.digest] = max(latest.get((lid, v.digest), v.attempted_at), v.attempted_at)
                for sha in v.stored_hashes():  # every file of every version, kept or not, is in the store
                    assert sha256_hex(store.read(sha)) == sha
            src.close()
        for lid, versions in every.items():
            best = max(versions.values(), key=lambda v: rank(Version(
                v.listing_id, v.attempt, latest[lid, v.digest], v.listing, v.photos)))
            assert kept[lid].digest == best.digest
            assert kept[lid].attempted_at == latest[lid, best.digest]  # the latest time of the kept data
            assert {d for d in versions if d != best.digest} == {d for i, d in losers if i == lid}  # nothing lost
        assert report["conflicts_total"] == len(losers)


@pytest.mark.parametrize(("first", "second", "kept"), [
    (("ok", 9000, (1,), 1.0), ("error", 0, (), 2.0), "first"),  # a read page beats a later network error
    (("missing", 0, (), 1.0), ("ok", 9000, (1,), 0.5), "second"),
    (("ok", 9000, (1,), 1.0), ("ok", 9000, (1, 2), 0.5), "second"),  # more stored photos
    (("ok", 9000, (1,), 1.0), ("ok", 12000, (1,), 2.0), "second"),  # same photos: the later data
    (("missing", 0, (), 3.0), ("error", 0, (), 1.0), "first"),  # a final outcome beats an error
])
def test_conflict_rule_and_report(first, second, kept, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    parts = [make_part(tmp_path, "a", {7: first}), make_part(tmp_path, "b", {7: second})]
    rc, report = merge_cli(tmp_path, [(p.db, p.images) for p in parts])
    assert rc == 0 and report["conflicts_new"] == 1 and report["conflicts_total"] == 1
    winner, loser = (first, second) if kept == "first" else (second, first)
    assert report["conflict_examples"] == [{"listing_id": 7, "kept": winner[0], "not_kept": loser[0],
                                           "not_kept_from": str(parts[1 if kept == "first" else 0].db.resolve())}]
    assert "merge_conflicts" in str(report["conflict_rule"])
    conn = sqlite3.connect(tmp_path / "merged.sqlite")
    outcome, at = conn.execute("SELECT outcome, attempted_at FROM attempts WHERE listing_id = 7").fetchone()
    lost = json.loads(conn.execute("SELECT version FROM merge_conflicts").fetchone()[0])
    conn.close()
    assert (outcome, at) == (winner[0], winner[3])
    assert lost["attempt"]["outcome"] == loser[0] and len(lost["photos"]) == len(loser[2])
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["stats", "--db", str(tmp_path / "merged.sqlite")]) == 0
    stats = json.loads(buf.getvalue())
    assert stats["merge_conflicts"] == 1 and stats["merged_parts"] == 2


# ---- SIGKILL mid-merge ----------------------------------------------------------------------

KILLER = """
import os, signal, sys
import core.dataset.dedup as d
import core.dataset.merge as m
what, n = sys.argv[1], int(sys.argv[2])
module, target = {"file": (m, "_place_file"), "listing": (m, "_merge_listing"), "hashes": (m, "_copy_hash_rows"),
                  "dedup": (d, "_hash_one")}[what]
real, calls = getattr(module, target), [0]
def dying(*a, **k):
    calls[0] += 1
    if calls[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
setattr(module, target, dying)
from core.dataset.cli import main
sys.exit(main(sys.argv[3:]))
"""


def merge_args(out: Path, parts: list[tuple[Path, Path]]) -> list[str]:
    args = ["merge", "--db", str(out / "merged.sqlite"), "--images", str(out / "merged-images"), "--jobs", "1",
            "--no-progress", "--batch", "4"]
    for d, i in parts:
        args += ["--part", str(d), str(i)]
    return args


@pytest.mark.parametrize(("what", "n"), [("file", 1), ("file", 40), ("listing", 17), ("hashes", 3), ("dedup", 5)])
def test_sigkill_mid_merge_then_rerun_equals_an_unbroken_merge(scrapes, tmp_path: Path, what: str, n: int) -> None:
    parts, whole = scrapes
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.run([sys.executable, "-c", KILLER, what, str(n), *merge_args(tmp_path, parts)], cwd=REPO,
                            env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    store = ImageStore(tmp_path / "merged-images")
    for sha in store.iter_hashes():  # nothing half-written under a real name
        assert sha256_hex(store.read(sha)) == sha
    done = subprocess.run([sys.executable, "-m", "core.dataset.cli", *merge_args(tmp_path, parts)], cwd=REPO,
                          env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert snapshot(tmp_path / "merged.sqlite", tmp_path / "merged-images") == snapshot(*whole)
    shutil.rmtree(tmp_path / "merged-images")


def test_versions_compare_data_not_time() -> None:
    from core.dataset.merge_versions import Version

    a = Version(1, ("ok", 200, None), 1.0, ("u",), ())
    assert a.digest == Version(1, ("ok", 200, None), 9.0, ("u",), ()).digest
    assert a.digest != Version(1, ("ok", 200, None), 1.0, ("v",), ()).digest


def test_a_parts_missing_or_damaged_file_is_reported_and_its_rows_kept(scrapes, tmp_path: Path) -> None:
    parts, _ = scrapes
    copies = []
    for k, (d, i) in enumerate(parts):
        shutil.copy(d, tmp_path / f"p{k}.sqlite")
        shutil.copytree(i, tmp_path / f"p{k}-images")
        copies.append((tmp_path / f"p{k}.sqlite", tmp_path / f"p{k}-images"))
    store = ImageStore(copies[1][1])
    gone, bad = sorted(store.iter_hashes())[:2]
    store.path_for(gone).unlink()
    store.path_for(bad).write_bytes(b"not the photo it was")
    out = tmp_path / "out"
    out.mkdir()
    rc, report = merge_cli(out, copies)
    assert rc == 0 and report["unreadable_files"] == 2 and "verify" in str(report["hint"])
    assert set(report["unreadable_examples"]) == {gone, bad}  # type: ignore[arg-type]
    merged = ImageStore(out / "merged-images")
    assert not merged.path_for(gone).exists() and not merged.path_for(bad).exists()
    conn = sqlite3.connect(out / "merged.sqlite")
    rows = conn.execute("SELECT COUNT(*) FROM photos WHERE sha256 IN (?, ?) AND status = 'stored'", (gone, bad)).fetchone()
    conn.close()
    assert rows[0] >= 2  # the rows are merged as they were; `verify` re-fetches their photos
