"""The store and database in trouble (issue 30 items 9 and 14): store entries that are not stored
photos (a 3 GB file, a link to /dev/zero, a FIFO), a bucket replaced by a file, a full disk, a
read-only database or folder, ``shards --out`` naming a file.  Each gives the README's exit
code and one line, in bounded time and memory (the stages run in a subprocess under a timeout
and a 1.5 GB address-space limit where the old code could hang or grow without bound)."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.fakesite import FakeSite
from core.dataset import cli, database, image_store, shards
from core.dataset.dedup import dedup
from core.dataset.image_store import ImageStore

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


def _stage(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "core.dataset.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, preexec_fn=_limit_memory,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith(("verify:", "dedup:"))]  # tqdm
    assert len(lines) == 1, stderr
    return lines[0]


def _stored(db: Path) -> list[str]:
    conn = database.connect(db)
    try:
        return database.stored_hashes(conn)
    finally:
        conn.close()


def _deduplicated(db: Path, images: Path) -> None:
    conn = database.connect(db)
    try:
        dedup(conn, ImageStore(images), jobs=1, progress=False)
    finally:
        conn.close()


def _plant(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "3 GB file":
        with open(path, "wb") as f:
            f.truncate(3 << 30)  # sparse: no disk used
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)


# ---- item 9: verify and shards read stored files bounded ----------------------------------------------

@pytest.mark.skipif(not os.path.exists("/dev/zero") or not hasattr(os, "mkfifo"), reason="POSIX")
@pytest.mark.parametrize("kind", ["3 GB file", "link to /dev/zero", "FIFO"])
def test_verify_refuses_store_entries_that_are_not_stored_photos(scraped: tuple[Path, Path, FakeSite],
                                                                 kind: str) -> None:
    db, images, _ = scraped
    sha = _stored(db)[0]
    path = ImageStore(images).path_for(sha)
    _plant(path, kind)
    proc = _stage("verify", "--db", db, "--images", images, "--no-refetch")  # before: 3.2 GB, unbounded, a hang
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["bad"] == 1
    expected = {"3 GB file": "more than a stored photo can be", "link to /dev/zero": "not a regular file",
                "FIFO": "not a regular file"}[kind]
    assert expected in report["problems"][sha]
    assert not os.path.lexists(path)  # removed; its rows are marked lost


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
@pytest.mark.parametrize("kind", ["3 GB file", "FIFO"])
def test_shards_leave_out_store_entries_that_are_not_stored_photos(scraped: tuple[Path, Path, FakeSite],
                                                                   tmp_path: Path, kind: str) -> None:
    db, images, _ = scraped
    _deduplicated(db, images)
    good = _stage("shards", "--db", db, "--images", images, "--out", tmp_path / "before")
    samples = json.loads(good.stdout)["samples"]
    sha = _stored(db)[0]
    _plant(ImageStore(images).path_for(sha), kind)
    proc = _stage("shards", "--db", db, "--images", images, "--out", tmp_path / "sh")  # before: a hang
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["unreadable_left_out"] == 1 and sha in report["unreadable_examples"]
    assert 0 < report["samples"] < samples
    assert not list((tmp_path / "sh").glob(".*tmp"))


def test_the_stored_size_budget_refuses_without_reading(scraped: tuple[Path, Path, FakeSite],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db, images, _ = scraped
    store = ImageStore(images)
    sha = _stored(db)[0]
    assert store.problem(sha) is None
    monkeypatch.setattr(image_store, "MAX_STORED_BYTES", 100)
    assert "more than a stored photo can be (100)" in (store.problem(sha) or "")
    with pytest.raises(image_store.StoredFileError, match="more than a stored photo"):
        store.read(sha)


# ---- item 14: exit codes and one line for store, database and output trouble ------------------------

def test_verify_with_a_bucket_replaced_by_a_file(scraped: tuple[Path, Path, FakeSite],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db, images, site = scraped
    sha = _stored(db)[0]
    bucket = images / sha[:2]
    shutil.rmtree(bucket)
    bucket.write_text("x")
    assert cli.main(["verify", "--db", str(db), "--images", str(images), "--no-refetch"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"][sha] == f"its bucket {bucket} is not a folder" and report["lost_rows"] >= 1
    # Re-fetching must put the photo back under that bucket: the store cannot be written.
    conn = database.connect(db)
    conn.execute("UPDATE photos SET status = 'stored' WHERE sha256 = ?", (sha,))
    conn.close()
    assert cli.main(["verify", "--db", str(db), "--images", str(images), "--rate", "0", "--retries", "0"]) == 4
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("carvalue-data verify: error: cannot write")


def test_shards_out_naming_a_file(scraped: tuple[Path, Path, FakeSite], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    db, images, _ = scraped
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["shards", "--db", str(db), "--images", str(images), "--out", str(afile)]) == 2
    assert _one_line(capsys.readouterr().err) == f"carvalue-data shards: error: --out {afile} exists and is not a folder"
    assert afile.read_text() == "x"


def test_shards_on_a_full_disk_stop_with_one_line_and_no_temp_file(
        scraped: tuple[Path, Path, FakeSite], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db, images, _ = scraped
    _deduplicated(db, images)
    real_add, calls = shards._add, []

    def add_until_full(tar: object, name: str, data: bytes) -> None:
        calls.append(name)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_add(tar, name, data)  # type: ignore[arg-type]

    monkeypatch.setattr(shards, "_add", add_until_full)
    out = tmp_path / "sh"
    assert cli.main(["shards", "--db", str(db), "--images", str(images), "--out", str(out), "--shard-size", "2"]) == 4
    err = _one_line(capsys.readouterr().err)
    assert "No space left on device" in err and "removed" in err
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.tar"]  # finished shards stay; no .tmp


@contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.mark.skipif(not IS_ROOT or shutil.which("mount") is None, reason="mounts a small tmpfs (root)")
def test_real_full_disks_exit_4_without_a_traceback_or_temp_file(scraped: tuple[Path, Path, FakeSite],
                                                                 tmp_path: Path) -> None:
    db, images, site = scraped
    _deduplicated(db, images)
    with _tmpfs(tmp_path / "tiny", "600k") as tiny:
        proc = _stage("shards", "--db", db, "--images", images, "--out", tiny / "sh")
        assert proc.returncode == 4 and "No space left on device" in _one_line(proc.stderr)
        assert not [p for p in (tiny / "sh").iterdir() if p.name.endswith(".tmp")]
    with _tmpfs(tmp_path / "tinydb", "300k") as tinydb:
        proc = _stage("scrape", "--db", tinydb / "db.sqlite", "--images", tmp_path / "store_b", "--ids", "1000:1400",
                      "--listing-url", site.listing_url_template(), "--no-progress", "--rate", "0", "--workers", "2",
                      timeout=120)
        assert proc.returncode == 4, proc.stderr[-2000:]
        assert "cannot write the database (database or disk is full)" in _one_line(proc.stderr)


def test_a_database_that_fills_up_is_exit_4_not_5(scraped: tuple[Path, Path, FakeSite], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """SQLITE_FULL (here: a page limit at the database's size) means the disk, not damage."""
    db, images, site = scraped
    real_connect = database.connect

    def full(*args: object, **kw: object) -> sqlite3.Connection:
        conn = real_connect(*args, **kw)  # type: ignore[arg-type]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(database, "connect", full)
    rc = cli.main(["scrape", "--db", str(db), "--images", str(images), "--ids", "1036:1100", "--no-progress",
                   "--listing-url", site.listing_url_template(), "--rate", "0", "--retries", "0"])
    assert rc == 4
    assert "cannot write the database (database or disk is full)" in _one_line(capsys.readouterr().err)


def test_a_read_only_database_is_refused_by_writers_and_read_by_stats(
        scraped: tuple[Path, Path, FakeSite], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db, images, _ = scraped
    before = db.read_bytes()
    real_access = os.access
    monkeypatch.setattr(database.os, "access",
                        lambda p, mode, **kw: False if Path(p) == db and mode == os.W_OK else real_access(p, mode, **kw))
    for argv in (["scrape", "--ids", "1000:1010", "--images", str(images)], ["dedup", "--images", str(images)],
                 ["verify", "--images", str(images), "--no-refetch"]):
        assert cli.main([*argv, "--db", str(db)]) == 4, argv
        assert "cannot write the database (its file is read-only)" in _one_line(capsys.readouterr().err)
    assert db.read_bytes() == before
    assert cli.main(["stats", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out)["listings_by_outcome"]


def test_sqlite_errors_are_told_apart(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    database.connect(db).close()
    ro = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as readonly:
        ro.execute("INSERT INTO meta VALUES ('a', 'b')")
    ro.close()
    assert database.cannot_write(readonly.value)
    with pytest.raises(sqlite3.DatabaseError) as damaged:
        sqlite3.connect(tmp_path / "x").execute("SELECT * FROM nothing")
    assert not database.cannot_write(damaged.value)


@contextmanager
def _read_only_folder(src: Path, where: Path) -> Iterator[Path]:
    """``src`` seen through a read-only bind mount (root) or made read-only (others)."""
    if not IS_ROOT:
        src.chmod(0o555)
        try:
            yield src
        finally:
            src.chmod(0o755)
        return
    where.mkdir()
    if subprocess.run(["mount", "--bind", str(src), str(where)]).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.mark.skipif(IS_ROOT and shutil.which("mount") is None, reason="needs mount as root")
def test_a_database_in_a_read_only_folder(scraped: tuple[Path, Path, FakeSite], tmp_path: Path) -> None:
    """Before: every stage, stats too, exit 2 ('cannot read'); now stats reads it and writers exit 4."""
    db, images, _ = scraped
    src = tmp_path / "rosrc"
    src.mkdir()
    conn = database.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copy(db, src / "db.sqlite")
    with _read_only_folder(src, tmp_path / "romnt") as folder:
        proc = _stage("stats", "--db", folder / "db.sqlite")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["stored_files"] > 0
        proc = _stage("dedup", "--db", folder / "db.sqlite", "--images", images, "--no-progress")
        assert proc.returncode == 4
        assert "cannot write the database (its " in _one_line(proc.stderr)
