"""The photo loader: files decoded on several threads come back in file order, bad files are
reported one line each, and a cancelled job stops."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("PySide6")

from PIL import Image  # noqa: E402

from carvalue_gui import loader as loader_module  # noqa: E402
from carvalue_gui.loader import LoadedPhoto, PhotoLoader  # noqa: E402

WAIT_MS = 20_000


def _jpeg(path: Path, size: tuple[int, int], seed: int) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=80)
    return path


def _collect(qtbot: object, loader: PhotoLoader, paths: list[str]) -> tuple[list[str], list[str]]:
    loaded: list[LoadedPhoto] = []
    failed: list[str] = []
    def take(_job: int, items: list[LoadedPhoto]) -> None:
        loaded.extend(items)
        loader.release(len(items))  # as the window does once it needs them no more

    loader.loaded.connect(take)
    loader.failed.connect(lambda _job, msgs: failed.extend(msgs))
    with qtbot.waitSignal(loader.finished, timeout=WAIT_MS):  # type: ignore[attr-defined]
        loader.load(paths)
    return [lp.path for lp in loaded], failed


def test_parallel_decoding_keeps_file_order(qtbot: object, tmp_path: Path) -> None:
    # Slow (large) and fast (small) files interleaved, and a bad one, so that threads finish out
    # of order.
    files = [str(_jpeg(tmp_path / f"{i:02d}.jpg", (2400, 1600) if i % 3 == 0 else (200, 150), i))
             for i in range(14)]
    bad = tmp_path / "07.jpg"
    bad.write_bytes(b"not a photo")
    loader = PhotoLoader(threads=3)
    try:
        loaded, failed = _collect(qtbot, loader, files)
    finally:
        loader.stop()
    assert loaded == [f for f in files if f != str(bad)]
    assert len(failed) == 1 and str(bad) in failed[0]


def test_a_decoder_bug_is_reported_and_loading_goes_on(qtbot: object, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    files = [str(_jpeg(tmp_path / f"{i}.jpg", (120, 90), i)) for i in range(4)]
    real = loader_module.load_photo

    def flaky(path: str, *a: object, **k: object) -> object:
        if path.endswith("2.jpg"):
            raise RuntimeError("decoder exploded")
        return real(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(loader_module, "load_photo", flaky)
    loader = PhotoLoader(threads=2)
    try:
        loaded, failed = _collect(qtbot, loader, files)
    finally:
        loader.stop()
    assert loaded == [files[0], files[1], files[3]]
    assert failed == [f"{files[2]}: cannot decode image (RuntimeError: decoder exploded)"]


def test_cancel_stops_a_long_job(qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [str(_jpeg(tmp_path / f"{i:03d}.jpg", (120, 90), i)) for i in range(60)]
    real = loader_module.load_photo

    def slow(path: str, *a: object, **k: object) -> object:
        time.sleep(0.05)
        return real(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(loader_module, "load_photo", slow)
    loader = PhotoLoader(threads=2)
    loaded: list[LoadedPhoto] = []
    loader.loaded.connect(lambda _job, items: (loaded.extend(items), loader.release(len(items))))
    try:
        with qtbot.waitSignal(loader.finished, timeout=WAIT_MS):  # type: ignore[attr-defined]
            loader.load(files)
            qtbot.waitUntil(lambda: len(loaded) > 0, timeout=WAIT_MS)  # type: ignore[attr-defined]
            loader.cancel()
    finally:
        loader.stop()
    assert 0 < len(loaded) < len(files)
    assert [lp.path for lp in loaded] == files[:len(loaded)]


def test_the_loader_waits_while_its_decoded_photos_are_not_released(qtbot: object, tmp_path: Path) -> None:
    """Backpressure: at most ``max_waiting`` decoded photos are out at a time, however many the
    folder holds; each release lets one more be decoded. A bad file holds no slot."""
    files = [str(_jpeg(tmp_path / f"{i:03d}.jpg", (80, 60), i)) for i in range(40)]
    (tmp_path / "005.jpg").write_bytes(b"not a photo")
    loader = PhotoLoader(threads=2, max_waiting=6)
    held: list[LoadedPhoto] = []
    failed: list[str] = []
    loader.loaded.connect(lambda _job, items: held.extend(items))
    loader.failed.connect(lambda _job, msgs: failed.extend(msgs))
    done: list[int] = []
    loader.finished.connect(done.append)
    try:
        loader.load([str(tmp_path)])
        qtbot.waitUntil(lambda: len(held) == 6, timeout=WAIT_MS)  # type: ignore[attr-defined]
        time.sleep(0.3)
        qtbot.wait(50)  # type: ignore[attr-defined]
        assert len(held) == 6 and loader.waiting() == 6 and not done  # it waits, it does not run ahead
        assert len(failed) == 1  # the bad file did not take a slot
        released = 0
        while not done:
            assert len(held) - released <= 6
            loader.release(2)
            released += 2
            qtbot.wait(20)  # type: ignore[attr-defined]
            qtbot.waitUntil(lambda r=released: len(held) - r == 6 or bool(done), timeout=WAIT_MS)  # type: ignore[attr-defined]
    finally:
        loader.stop()
    assert [lp.path for lp in held] == [f for f in files if not f.endswith("005.jpg")]


def test_a_reload_is_served_while_a_job_waits_for_slots(qtbot: object, tmp_path: Path) -> None:
    files = [str(_jpeg(tmp_path / f"{i:02d}.jpg", (80, 60), i)) for i in range(20)]
    loader = PhotoLoader(threads=1, max_waiting=3)
    held: list[LoadedPhoto] = []
    loader.loaded.connect(lambda _job, items: held.extend(items))
    try:
        loader.load(files)
        qtbot.waitUntil(lambda: len(held) == 3, timeout=WAIT_MS)  # type: ignore[attr-defined]
        with qtbot.waitSignal(loader.reloaded, timeout=WAIT_MS) as blocker:  # type: ignore[attr-defined]
            loader.reload([(42, files[0])])
        assert [(k, lp.path) for k, lp in blocker.args[1]] == [(42, files[0])]
        assert len(held) == 3  # the job still waits for its slots
    finally:
        loader.stop()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["good", "bad", "missing"]), min_size=0, max_size=14),
       max_waiting=st.integers(1, 5), threads=st.integers(1, 3), release_every=st.integers(1, 4))
def test_every_file_is_reported_once_in_order_and_every_slot_comes_back(
        qtbot: object, tmp_path_factory: pytest.TempPathFactory, kinds: list[str], max_waiting: int,
        threads: int, release_every: int) -> None:
    """Whatever the mix of files, slot count and how late the window releases: each good file
    arrives once, in order, never more than ``max_waiting`` unreleased; each bad one has one
    message; the job finishes; no slot is left held."""
    folder = tmp_path_factory.mktemp("mix")
    files = []
    for i, kind in enumerate(kinds):
        path = folder / f"{i:02d}.jpg"
        if kind == "good":
            _jpeg(path, (64, 48), i)
        elif kind == "bad":
            path.write_bytes(b"not a photo")
        files.append(str(path))
    loader = PhotoLoader(threads=threads, max_waiting=max_waiting)
    held: list[str] = []
    failed: list[str] = []
    released = [0]
    most = [0]

    def take(_job: int, items: list[LoadedPhoto]) -> None:
        held.extend(lp.path for lp in items)
        most[0] = max(most[0], len(held) - released[0])
        if len(held) - released[0] >= release_every:  # the window keeps a few, then lets go
            loader.release(len(held) - released[0])
            released[0] = len(held)

    loader.loaded.connect(take)
    loader.failed.connect(lambda _job, msgs: failed.extend(msgs))
    done: list[int] = []
    loader.finished.connect(done.append)
    try:
        loader.load(files)

        def finished_or_stuck() -> bool:
            if not done and len(held) - released[0] >= max_waiting:  # all slots out: let go
                loader.release(len(held) - released[0])
                released[0] = len(held)
            return bool(done)

        qtbot.waitUntil(finished_or_stuck, timeout=WAIT_MS)  # type: ignore[attr-defined]
        loader.release(len(held) - released[0])
        assert loader.waiting() == 0
    finally:
        loader.stop()
    assert held == [f for f, k in zip(files, kinds, strict=True) if k == "good"]
    assert len(failed) == kinds.count("bad") + kinds.count("missing")
    assert most[0] <= max_waiting
