"""core.atomic: the one atomic-write helper every writer of the project goes through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.atomic import (
    PendingFile,
    atomic_link,
    atomic_open,
    atomic_path,
    atomic_write,
    current_umask,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@settings(max_examples=40, deadline=None)
@given(data=st.one_of(st.binary(max_size=4096), st.text(max_size=2048)))
def test_what_is_written_reads_back(tmp_path_factory: pytest.TempPathFactory, data: bytes | str) -> None:
    folder = tmp_path_factory.mktemp("w")
    target = folder / "sub" / "file.bin"
    atomic_write(target, data, newline="")
    got = target.read_bytes()
    assert got == (data if isinstance(data, bytes) else data.encode("utf-8"))
    assert _leftovers(target.parent) == []


def test_an_error_mid_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_open(target) as f:
        f.write("half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    new = tmp_path / "new.txt"
    atomic_write(new, "x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~current_umask()
    kept = tmp_path / "kept.txt"
    kept.write_text("a")
    os.chmod(kept, 0o640)
    atomic_write(kept, "b")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "b"


def test_replace_false_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "db.sqlite"
    with atomic_path(target, replace=False) as tmp:
        tmp.write_bytes(b"first")
    with atomic_path(target, replace=False) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"first"
    assert _leftovers(tmp_path) == []


def test_two_pending_writes_never_share_a_temp_file(tmp_path: Path) -> None:
    a, b = PendingFile(tmp_path / "x"), PendingFile(tmp_path / "x")
    assert a.tmp != b.tmp
    a.tmp.write_text("a")
    b.tmp.write_text("b")
    assert a.commit() and b.commit()
    assert (tmp_path / "x").read_text() == "b" and _leftovers(tmp_path) == []


def test_a_temp_dir_elsewhere_on_the_file_system(tmp_path: Path) -> None:
    (tmp_path / ".tmp").mkdir()
    atomic_write(tmp_path / "ab" / "cdef.jpg", b"jpeg", temp_dir=tmp_path / ".tmp")
    assert (tmp_path / "ab" / "cdef.jpg").read_bytes() == b"jpeg"
    assert list((tmp_path / ".tmp").iterdir()) == []


def test_only_whole_file_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whole file"), atomic_open(tmp_path / "x", "a"):
        pass


def test_a_hard_link_is_published_over_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    (tmp_path / ".tmp").mkdir()
    source, target = tmp_path / "source", tmp_path / "ab" / "target"
    source.write_bytes(b"new")
    target.parent.mkdir()
    target.write_bytes(b"old")
    atomic_link(source, target, temp_dir=tmp_path / ".tmp")
    assert target.read_bytes() == b"new" and os.path.samefile(source, target)
    assert list((tmp_path / ".tmp").iterdir()) == []
    with pytest.raises(FileNotFoundError):  # os.link's own error, nothing left behind
        atomic_link(tmp_path / "missing", target, temp_dir=tmp_path / ".tmp")
    assert list((tmp_path / ".tmp").iterdir()) == [] and target.read_bytes() == b"new"
