"""One inference thread for the whole app, where the newest request wins.

The GUI thread never runs the network. It hands requests to :class:`InferenceWorker`, which
keeps at most ONE pending crop request, ONE pending sweep and ONE "what drives this estimate" map:
a new request replaces the pending one (it is never queued behind it).  A map runs one batch at a
time (core.occlusion.DriversJob), so a crop request waits for at most one of its batches, and a
new map request (or ``cancel_drivers``) drops the one being computed. Between crop/sweep requests the thread works through
the batch queue (each photo's estimate on the car found in it, for the photo list) a few photos at a time, so a
moving crop box is served within one small batch even while hundreds of photos are pending.

Results come back as Qt signals (queued to the GUI thread) carrying the request id; the window
drops a result whose id is no longer the newest.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import QObject, Signal

from carvalue_gui.newest import Newest
from core.framing import CropMode
from core.geometry import Box
from core.occlusion import DriversJob
from core.predictor import PhotoError, Prediction, Predictor
from core.preprocess import Photo
from core.pricing import PriceInputs

BATCH_CHUNK = 8  # photos per forward pass for the photo list; bounds a crop request's wait
WARM_IDLE_S = 1.0  # idle time before warming up the larger batch sizes
SWEEP_POSITIONS = 16  # crop positions in one "pan across" sweep (one batch)


@dataclass(frozen=True)
class CropRequest:
    id: int
    photo: Photo
    box: Box
    auto: bool = False  # predict on the car the model finds instead (``box``: until it is found)


@dataclass(frozen=True)
class SweepRequest:
    id: int
    photo: Photo
    n: int
    width: float
    around: Box | None = None  # the car the sweep's window is sized to (Predictor.sweep)


@dataclass(frozen=True)
class DriversRequest:
    """A "what drives this estimate" map of ``box`` of ``photo``, priced with ``price_inputs``."""

    id: int
    photo: Photo
    box: Box
    price_inputs: PriceInputs | None = None


class _DriversState:
    """A map request and, once its first batch has run, its job (touched by the worker thread only)."""

    def __init__(self, request: DriversRequest) -> None:
        self.request = request
        self.job: DriversJob | None = None


@dataclass(frozen=True)
class BatchItem:
    key: int  # the photo's key in the window's photo list
    photo: Photo


@dataclass(frozen=True)
class BatchJob:
    """Photos of one model generation estimated as one forward pass (the photo list)."""

    generation: int
    items: tuple[BatchItem, ...]


@dataclass(frozen=True)
class WarmUpJob:
    """One run of a batch size on a grey photo, so the first real run of it is not the slow one."""

    batch_size: int


Job = CropRequest | SweepRequest | _DriversState | BatchJob | WarmUpJob


class JobKind(StrEnum):
    """What a job is (``runs`` counts by it; ``failed`` names it)."""

    CROP = "crop"
    SWEEP = "sweep"
    DRIVERS = "drivers"
    BATCH = "batch"
    WARM_UP = "warm_up"


def kind_of(job: Job) -> JobKind:
    match job:
        case CropRequest():
            return JobKind.CROP
        case SweepRequest():
            return JobKind.SWEEP
        case _DriversState():
            return JobKind.DRIVERS
        case BatchJob():
            return JobKind.BATCH
        case WarmUpJob():
            return JobKind.WARM_UP
    raise TypeError(f"not a job: {job!r}")


class Synthetic(StrEnum):
    """Names of the photos the app makes up itself (never a user's file)."""

    WARM_UP = "<warm-up>"


class InferenceWorker(QObject):
    """Runs predictions on its own thread; see the module docstring for the policy."""

    crop_done = Signal(int, object)  # request id, Prediction
    sweep_done = Signal(int, object)  # request id, Sweep
    drivers_done = Signal(int, object)  # request id, core.occlusion.DriversMap
    batch_done = Signal(int, object)  # generation, list[tuple[key, Prediction | str (why it failed)]]
    failed = Signal(str, int, str)  # JobKind's value, id/generation, message

    def __init__(self, parent: QObject | None = None, batch_chunk: int = BATCH_CHUNK) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._predictor: Predictor | None = None
        # Newest wins: one pending request of each kind, replaced by a newer one.
        self._crop: Newest[CropRequest] = Newest()
        self._sweep: Newest[SweepRequest] = Newest()
        self._drivers: Newest[_DriversState] = Newest()  # stays while its batches run
        self._batch: deque[tuple[int, BatchItem]] = deque()
        self._warm_first = False  # batch 1 still to warm up
        self._warm_later: list[int] = []  # larger batch sizes, warmed once idle (see set_predictor)
        self._last_busy = 0.0  # time.monotonic() of set_predictor or the last finished job
        self._stopping = False
        self._batch_chunk = batch_chunk
        self.runs: Counter[JobKind] = Counter()  # jobs started, by kind (tests, benchmark; "crop" works too)
        self._thread = threading.Thread(target=self._loop, name="carvalue-inference", daemon=True)
        self._thread.start()

    # -- requests (GUI thread) --------------------------------------------------------------
    def set_predictor(self, predictor: Predictor | None, warm_up: bool = True) -> None:
        """Switch models: everything pending for the old one is dropped."""
        with self._cond:
            self._predictor = predictor
            for slot in (self._crop, self._sweep, self._drivers):
                slot.clear()
            self._batch.clear()
            # Batch 1 (a crop, a single photo) at once; the larger sizes only after WARM_IDLE_S
            # with nothing to do, so a photo given at start-up is not kept waiting (on two cores
            # warming all sizes at once slowed its decoding and delayed its first result ~3x).
            self._warm_first = warm_up and predictor is not None
            self._warm_later = [self._batch_chunk, SWEEP_POSITIONS] if self._warm_first else []
            self._last_busy = time.monotonic()
            self._cond.notify()

    def submit_crop(self, request: CropRequest) -> None:
        """Replace any pending crop request with this one."""
        with self._cond:
            self._crop.put(request)
            self._cond.notify()

    def submit_sweep(self, request: SweepRequest) -> None:
        with self._cond:
            self._sweep.put(request)
            self._cond.notify()

    def submit_drivers(self, request: DriversRequest) -> None:
        """Replace any pending or half-computed map with this one."""
        with self._cond:
            self._drivers.put(_DriversState(request))
            self._cond.notify()

    def cancel_drivers(self) -> None:
        """Drop the pending or half-computed map (the box moved): it is never delivered."""
        self._drivers.clear()

    def submit_batch(self, generation: int, items: list[BatchItem]) -> None:
        with self._cond:
            self._batch.extend((generation, item) for item in items)
            self._cond.notify()

    def cancel_batch(self, keys: set[int] | None = None) -> int:
        """Forget pending batch items (all, or those of the given photo keys); returns how many."""
        with self._cond:
            before = len(self._batch)
            if keys is None:
                self._batch.clear()
            else:
                self._batch = deque(x for x in self._batch if x[1].key not in keys)
            return before - len(self._batch)

    def pending_batch(self) -> int:
        with self._cond:
            return len(self._batch)

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._batch.clear()
            self._cond.notify()
        self._thread.join(timeout)

    # -- the thread -------------------------------------------------------------------------
    def _next_job(self) -> tuple[Predictor, Job] | None:
        """Wait for work; None when stopping. Priority: crop, sweep, one batch of the map,
        warm-up of batch 1, batch; the other warm-ups once idle for WARM_IDLE_S."""
        with self._cond:
            while not self._stopping and not self._has_work():
                if self._warm_later and self._predictor is not None:
                    wait = self._last_busy + WARM_IDLE_S - time.monotonic()
                    if wait <= 0:
                        return self._predictor, WarmUpJob(self._warm_later.pop(0))
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            if self._stopping:
                return None
            predictor = self._predictor
            assert predictor is not None  # _has_work() is False without a predictor
            job: Job | None = self._crop.take() or self._sweep.take() or self._drivers.peek()
            if job is not None:
                return predictor, job
            if self._warm_first:
                self._warm_first = False
                return predictor, WarmUpJob(1)
            generation = self._batch[0][0]
            chunk: list[BatchItem] = []
            while self._batch and len(chunk) < self._batch_chunk and self._batch[0][0] == generation:
                chunk.append(self._batch.popleft()[1])
            return predictor, BatchJob(generation, tuple(chunk))

    def _has_work(self) -> bool:
        if self._predictor is None:
            return False
        return (any(slot.peek() is not None for slot in (self._crop, self._sweep, self._drivers))
                or self._warm_first or bool(self._batch))

    def _loop(self) -> None:
        while (next_job := self._next_job()) is not None:
            predictor, job = next_job
            kind = kind_of(job)
            self.runs[kind] += 1
            ident = 0
            try:
                match job:
                    case CropRequest():
                        ident = job.id
                        pred = predictor.predict(job.photo, CropMode.AUTO if job.auto else job.box)
                        self.crop_done.emit(job.id, pred)
                    case SweepRequest():
                        ident = job.id
                        self.sweep_done.emit(job.id, predictor.sweep(job.photo, job.n, job.width, around=job.around))
                    case _DriversState():
                        ident = job.request.id
                        self._drivers_step(predictor, job)
                    case WarmUpJob():
                        _warm_up(predictor, job.batch_size)
                    case BatchJob():
                        ident = job.generation
                        self.batch_done.emit(job.generation, _estimate_chunk(predictor, list(job.items)))
            except Exception as e:  # noqa: BLE001 - any failure is reported; the thread must live on
                if isinstance(job, _DriversState):
                    self._drivers.done(job)
                self.failed.emit(kind.value, ident, f"{type(e).__name__}: {e}")
            with self._cond:
                self._last_busy = time.monotonic()

    def _drivers_step(self, predictor: Predictor, state: _DriversState) -> None:
        """One batch of a map; the map goes out after its last batch unless it was replaced or
        cancelled meanwhile."""
        r = state.request
        if state.job is None:
            state.job = DriversJob(predictor, r.photo, r.box, price_inputs=r.price_inputs)
        if state.job.step() and self._drivers.done(state):
            self.drivers_done.emit(r.id, state.job.result())


def _estimate_chunk(predictor: Predictor, chunk: list[BatchItem]) -> list[tuple[int, Prediction | str]]:
    """Each photo's estimate on the car found in it (CropMode.AUTO), or the one-line reason it failed.

    The chunk runs as one batch; when that fails, each photo runs on its own, so one photo
    that cannot be estimated never takes the others' estimates with it.
    """
    try:
        preds = predictor.predict_many([it.photo for it in chunk], [CropMode.AUTO] * len(chunk),
                                       batch_size=len(chunk))
        return [(it.key, _outcome(p)) for it, p in zip(chunk, preds, strict=True)]
    except Exception as e:  # noqa: BLE001 - reported per photo below
        if len(chunk) == 1:
            return [(chunk[0].key, _one_line(e))]
    out: list[tuple[int, Prediction | str]] = []
    for it in chunk:
        try:
            out.append((it.key, _outcome(predictor.predict_many([it.photo], [CropMode.AUTO], batch_size=1)[0])))
        except Exception as e:  # noqa: BLE001 - this photo's row shows why; the rest go on
            out.append((it.key, _one_line(e)))
    return out


def _outcome(p: Prediction | PhotoError) -> Prediction | str:
    """predict_many gives a PhotoError in place of a photo it could not estimate."""
    return p.reason if isinstance(p, PhotoError) else p


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _warm_up(predictor: Predictor, batch_size: int) -> None:
    """Run one batch size the app uses once, so the first real request of that size is not the
    slow one (ONNX Runtime sizes its buffers on the first run of each shape)."""
    from PIL import Image

    from core.preprocess import photo_from_image

    grey = photo_from_image(Image.new("RGB", (256, 192), (128, 128, 128)), Synthetic.WARM_UP)
    predictor.predict_crops(grey, [None] * batch_size)
