"""Newest wins, in one helper (carvalue_gui.newest) shared by the inference worker and the
sharp-copy decoder; the worker's jobs are typed and counted by JobKind."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("PySide6")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from carvalue_gui.newest import Newest  # noqa: E402
from carvalue_gui.worker import (  # noqa: E402
    BatchJob,
    CropRequest,
    InferenceWorker,
    JobKind,
    SweepRequest,
    WarmUpJob,
    kind_of,
)
from core.geometry import Box  # noqa: E402
from core.preprocess import photo_from_image  # noqa: E402


@given(st.lists(st.one_of(st.integers(0, 9).map(lambda i: ("put", i)), st.just(("take", None)),
                          st.just(("clear", None))), max_size=30))
@settings(max_examples=60, deadline=None)
def test_take_gives_the_newest_put_once(ops: list[tuple[str, int | None]]) -> None:
    slot: Newest[object] = Newest()
    expected: object = None
    for op, _value in ops:
        if op == "put":
            expected = object()
            slot.put(expected)
            assert slot.is_current(expected) and slot.peek() is expected
        elif op == "take":
            assert slot.take() is expected
            expected = None
        else:
            slot.clear()
            expected = None
        assert slot.peek() is expected


def test_done_forgets_only_the_current_item() -> None:
    slot: Newest[object] = Newest()
    old, new = object(), object()
    slot.put(old)
    slot.put(new)
    assert not slot.done(old) and slot.peek() is new  # a replaced job's result is not sent
    assert slot.done(new) and slot.peek() is None


def test_jobs_are_typed() -> None:
    photo = photo_from_image(Image.new("RGB", (64, 48)), "p.jpg")
    assert kind_of(CropRequest(1, photo, Box(0, 0, 8, 8))) is JobKind.CROP
    assert kind_of(SweepRequest(1, photo, 4, 0.5)) is JobKind.SWEEP
    assert kind_of(BatchJob(0, ())) is JobKind.BATCH and kind_of(WarmUpJob(1)) is JobKind.WARM_UP
    with pytest.raises(TypeError):
        kind_of("crop")  # type: ignore[arg-type]


class Failing:
    def predict(self, photo: object, crop: object = None, top_k: int = 5) -> object:
        raise ValueError("no")


def test_a_failed_job_is_reported_by_its_kind() -> None:
    photo = photo_from_image(Image.new("RGB", (64, 48)), "p.jpg")
    w = InferenceWorker()
    got: list[tuple[str, int, str]] = []
    done = threading.Event()

    def on_failed(kind: str, ident: int, message: str) -> None:
        got.append((kind, ident, message))
        done.set()

    w.failed.connect(on_failed, Qt.ConnectionType.DirectConnection)
    try:
        w.set_predictor(Failing(), warm_up=False)  # type: ignore[arg-type]
        w.submit_crop(CropRequest(7, photo, Box(0, 0, 8, 8)))
        assert done.wait(5)
    finally:
        w.stop()
    assert got == [("crop", 7, "ValueError: no")]
    assert w.runs[JobKind.CROP] == w.runs["crop"] == 1
