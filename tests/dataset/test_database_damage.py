"""A damaged database (empty, truncated, header or a page overwritten) through every stage that
opens one: each refuses with one clear line and a non-zero exit, and leaves the file as it was."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fakesite import FakeSite
from core.dataset import database
from core.dataset.cli import EXIT_UNUSABLE_DATABASE, main

SQLITE_HEADER = 100


@pytest.fixture(scope="module")
def template_file(_scraped_once: tuple[Path, Path, FakeSite], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bytes of a real scraped database, compacted: no free pages, so every page is in use
    and overwriting any one of them really damages the database."""
    out = tmp_path_factory.mktemp("template") / "db.sqlite"
    conn = sqlite3.connect(_scraped_once[0])
    conn.execute("VACUUM INTO ?", (str(out),))
    conn.close()
    data = out.read_bytes()
    assert int.from_bytes(data[36:40], "big") == 0, "the template must have no free pages"
    assert len(data) // page_size(data) >= 8
    return out


@pytest.fixture
def template(template_file: Path) -> bytes:
    return template_file.read_bytes()


def page_size(data: bytes) -> int:
    size = int.from_bytes(data[16:18], "big")
    return 65536 if size == 1 else size


# Every stage that opens the database, as argv after `carvalue-data` (DB, IMAGES, OUT filled in).
STAGES: dict[str, list[str]] = {
    "scrape": ["scrape", "--db", "DB", "--images", "IMAGES", "--ids", "1:3", "--listing-url",
               "http://127.0.0.1:9/l?id={id}", "--no-progress", "--retries", "0"],
    "verify": ["verify", "--db", "DB", "--images", "IMAGES", "--no-refetch"],
    "dedup": ["dedup", "--db", "DB", "--images", "IMAGES", "--jobs", "1", "--no-progress"],
    "label": ["label", "--db", "DB", "--images", "IMAGES", "--labels", "OUT/labels.json"],
    "filter apply": ["filter", "apply", "--db", "DB", "--images", "IMAGES", "--filter", "OUT/filter",
                     "--no-progress"],
    "shards": ["shards", "--db", "DB", "--images", "IMAGES", "--out", "OUT/shards"],
    "stats": ["stats", "--db", "DB"],
}


def run_stage(stage: str, db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = [a.replace("DB", str(db)).replace("IMAGES", str(db.parent / "images")).replace("OUT", str(db.parent))
            for a in STAGES[stage]]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def assert_refused(stage: str, damaged: bytes, capsys: pytest.CaptureFixture[str], expect: str = "") -> str:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.sqlite"
        db.write_bytes(damaged)
        before = files_under(Path(tmp))
        code, out, err = run_stage(stage, db, capsys)
        assert code == EXIT_UNUSABLE_DATABASE, (stage, code, err)
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith(f"carvalue-data {stage.split()[0]}: ") and str(db) in lines[0]
        assert expect in lines[0], lines[0]
        assert files_under(Path(tmp)) == before  # the file byte-identical, nothing created beside it
        return lines[0]


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_zero_length_database_is_refused_not_recreated(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = assert_refused(stage, b"", capsys, expect="empty (0 bytes)")
    assert "nothing was changed" in line


def test_a_half_truncated_database_names_the_damage(template: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    line = assert_refused("stats", template[: len(template) // 2], capsys, expect="truncated")
    assert "pages" in line


def test_an_overwritten_header_is_not_an_sqlite_database(template: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused("verify", b"\x00" * SQLITE_HEADER + template[SQLITE_HEADER:], capsys,
                   expect="does not start with SQLite's header")


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes(x)")
    conn.commit()
    conn.close()
    assert_refused("dedup", other.read_bytes(), capsys, expect="not a carvalue-data database")


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


def header_overwritten(data: bytes, garbage: bytes) -> bytes:
    return garbage[:SQLITE_HEADER].ljust(SQLITE_HEADER, b"\xff") + data[SQLITE_HEADER:]


def page_overwritten(data: bytes, page: int, garbage: bytes) -> bytes:
    """Page ``page`` (2-based: page 1 holds the header) replaced by garbage.  The first byte says
    what kind of B-tree page it is; garbage that happens to be a valid kind is made invalid."""
    size = page_size(data)
    n_pages = len(data) // size
    page = 2 + page % (n_pages - 1)
    fill = (garbage * (size // max(1, len(garbage)) + 1))[:size] if garbage else b"\x00" * size
    if fill[0] in (2, 5, 10, 13):
        fill = b"\x00" + fill[1:]
    start = (page - 1) * size
    return data[:start] + fill + data[start + size:]


DAMAGE: dict[str, Callable[..., bytes]] = {
    "zero-length": lambda data, frac, page, garbage: b"",
    "truncated": lambda data, frac, page, garbage: truncated(data, frac),
    "header overwritten": lambda data, frac, page, garbage: header_overwritten(data, garbage),
    "page overwritten": lambda data, frac, page, garbage: page_overwritten(data, page, garbage),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stage=st.sampled_from(list(STAGES)), damage=st.sampled_from(list(DAMAGE)),
       frac=st.floats(0.0, 0.98), page=st.integers(0, 10_000), garbage=st.binary(min_size=0, max_size=64))
def test_every_stage_refuses_any_damaged_database(template_file: Path, capsys: pytest.CaptureFixture[str], stage: str,
                                                  damage: str, frac: float, page: int, garbage: bytes) -> None:
    template = template_file.read_bytes()
    damaged = DAMAGE[damage](template, frac, page, garbage)
    assert damaged != template
    assert_refused(stage, damaged, capsys)


def test_scrape_creates_a_database_only_where_none_exists(tmp_path: Path) -> None:
    db = tmp_path / "new" / "db.sqlite"
    conn = database.connect(db)
    conn.close()
    conn = database.connect(db, create=False)
    assert database.get_meta(conn, "schema_version") == str(database.SCHEMA_VERSION)
    conn.close()
    assert sorted(p.name for p in db.parent.iterdir()) == ["db.sqlite"]  # no temp file left behind
    db.write_bytes(b"")
    with pytest.raises(database.UnusableDatabase, match="empty"):
        database.connect(db)  # create=True still refuses an existing file it cannot read
    assert db.read_bytes() == b""


def test_a_healthy_database_opens_unchanged_by_read_only_stages(scraped: tuple[Path, Path, FakeSite],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    db, _, _ = scraped
    before = db.read_bytes()
    assert main(["stats", "--db", str(db)]) == 0
    assert '"listings_by_outcome"' in capsys.readouterr().out
    assert db.read_bytes() == before



def copy_with_hot_wal(src: Path, dst: Path) -> None:
    """``dst``: a copy of ``src`` taken while a writer's last commit sits only in the write-ahead
    log, as a killed scrape leaves it."""
    work = dst.with_name("work.sqlite")
    for p in dst.parent.glob("*.sqlite*"):
        p.unlink()
    shutil.copy(src, work)
    writer = sqlite3.connect(work, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO meta(key, value) VALUES ('note', 'only in the WAL')")
    for suffix in ("", "-wal"):
        shutil.copy(f"{work}{suffix}", f"{dst}{suffix}")
    writer.close()


def test_a_hot_wal_is_read_and_a_damaged_file_beside_one_is_left_alone(template_file: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db.sqlite"
    copy_with_hot_wal(template_file, db)
    assert (tmp_path / "db.sqlite-wal").stat().st_size > 0
    conn = database.connect(db, create=False)
    assert database.get_meta(conn, "note") == "only in the WAL"
    conn.close()

    copy_with_hot_wal(template_file, db)
    data = bytearray(db.read_bytes())
    size = page_size(bytes(data))
    middle = len(data) // size // 2  # a page the log does not hold (it holds page 1 and meta's pages)
    data[middle * size: (middle + 1) * size] = b"\x00" * size
    db.write_bytes(bytes(data))
    wal = (tmp_path / "db.sqlite-wal").read_bytes()
    assert main(["stats", "--db", str(db)]) == EXIT_UNUSABLE_DATABASE
    assert "is damaged" in capsys.readouterr().err
    # A read-write connection's close would have copied the log into the damaged file.
    assert db.read_bytes() == bytes(data) and (tmp_path / "db.sqlite-wal").read_bytes() == wal
