"""The inference thread's order of work, with a stand-in predictor that records each call."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PySide6")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from carvalue_gui import worker as worker_module  # noqa: E402
from carvalue_gui.worker import (  # noqa: E402
    BATCH_CHUNK,
    SWEEP_POSITIONS,
    BatchItem,
    CropRequest,
    InferenceWorker,
    Synthetic,
)
from core.geometry import Box  # noqa: E402
from core.preprocess import photo_from_image  # noqa: E402


class RecordingPredictor:
    """Records (what, batch size) per call; each call takes ``seconds``."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[tuple[str, int]] = []
        self.seconds = seconds
        self.lock = threading.Lock()

    def predict_crops(self, photo: object, crops: list[object], top_k: int = 5) -> list[str]:
        time.sleep(self.seconds)
        with self.lock:
            self.calls.append(("warm-up" if getattr(photo, "source", "") == Synthetic.WARM_UP else "crop", len(crops)))
        return ["prediction"] * len(crops)

    def predict(self, photo: object, crop: object = None, top_k: int = 5) -> str:
        return self.predict_crops(photo, [crop], top_k)[0]


def wait_until(predicate: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.005)


def test_a_request_runs_first_batch_one_warms_next_and_larger_sizes_wait_until_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "WARM_IDLE_S", 0.6)
    fake = RecordingPredictor(seconds=0.01)
    photo = photo_from_image(Image.new("RGB", (64, 48)), "photo.jpg")
    w = InferenceWorker()
    try:
        w.set_predictor(fake)  # type: ignore[arg-type]
        w.submit_crop(CropRequest(1, photo, Box(0, 0, 64, 48)))  # a photo given at start-up
        wait_until(lambda: len(fake.calls) >= 2)
        time.sleep(0.1)  # well inside the idle delay: nothing larger has run yet
        assert fake.calls == [("crop", 1), ("warm-up", 1)]  # the user's request goes first
        wait_until(lambda: len(fake.calls) >= 4)
        assert fake.calls[2:] == [("warm-up", BATCH_CHUNK), ("warm-up", SWEEP_POSITIONS)]
        time.sleep(0.7)
        assert len(fake.calls) == 4  # each size once
    finally:
        w.stop()


def test_requests_keep_postponing_the_larger_warm_ups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "WARM_IDLE_S", 0.6)
    fake = RecordingPredictor()
    photo = photo_from_image(Image.new("RGB", (64, 48)), "photo.jpg")
    w = InferenceWorker()
    try:
        w.set_predictor(fake)  # type: ignore[arg-type]
        for i in range(8):  # a crop every 0.1 s: never idle for 0.6 s
            w.submit_crop(CropRequest(i, photo, Box(0, 0, 64, 48)))
            time.sleep(0.1)
        assert all(size == 1 for _, size in fake.calls)
        wait_until(lambda: len(fake.calls) >= 11)  # warm-up 1 + 8 crops + 2 larger warm-ups
        assert fake.calls[-2:] == [("warm-up", BATCH_CHUNK), ("warm-up", SWEEP_POSITIONS)]
    finally:
        w.stop()


class FailsOnOnePhoto:
    """``predict_many`` fails for any batch holding the photo named ``bad``."""

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.batches: list[list[str]] = []

    def predict_many(self, photos: list[object], crops: object = None, batch_size: int = 16) -> list[str]:
        names = [getattr(p, "source", "") for p in photos]
        self.batches.append(names)
        if self.bad in names:
            raise ValueError(f"cannot size\n{self.bad}")
        return [f"estimate of {n}" for n in names]

    def predict_crops(self, photo: object, crops: list[object], top_k: int = 5) -> list[str]:
        return ["warm"] * len(crops)


def test_one_failing_photo_does_not_take_its_batchs_estimates_with_it() -> None:
    fake = FailsOnOnePhoto("2.jpg")
    photos = [photo_from_image(Image.new("RGB", (64, 48)), f"{i}.jpg") for i in range(4)]
    w = InferenceWorker()
    got: list[object] = []
    w.batch_done.connect(lambda _gen, results: got.extend(results), Qt.ConnectionType.DirectConnection)
    try:
        w.set_predictor(fake, warm_up=False)  # type: ignore[arg-type]
        w.submit_batch(1, [BatchItem(i, p) for i, p in enumerate(photos)])
        wait_until(lambda: len(got) == 4)
    finally:
        w.stop()
    assert got == [(0, "estimate of 0.jpg"), (1, "estimate of 1.jpg"),
                   (2, "ValueError: cannot size 2.jpg"), (3, "estimate of 3.jpg")]
    assert fake.batches[0] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]  # one batch first
