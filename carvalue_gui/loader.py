"""Turns dropped/opened paths into decoded photos on a background thread.

Folders are walked recursively (their image files only), each file is decoded once by
``core.preprocess.load_photo`` (which applies the size limits), and a small thumbnail is made
there too, all off the GUI thread: on one decoding thread per physical core (Pillow and libheif
release the GIL; two threads loaded 12-MP JPEGs and HEICs ~1.9x faster than one here), a few
files ahead, in file order. Results come back in chunks so that a folder of thousands of files
costs the GUI a few dozen signal deliveries, not thousands.

Backpressure: every decoded photo handed to the window holds one of ``max_waiting`` slots until
the window calls ``release`` (once it has the photo's estimate, or needs none). When all slots
are held the loader waits, so memory holds what the window keeps plus at most ``max_waiting``
decoded photos in between, whatever the folder's size (without it, a folder of 7,164 small
photos peaked at 2.45 GB: the loader ran ahead of the estimator and every decoded photo waited
in between). A photo the user asks for again (``reload``) is decoded at once, even in the middle
of a long job.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, Signal

from core.modelfile import physical_cores
from core.preprocess import ImageLoadError, Photo, is_image_path, load_photo

THUMB_SIZE = (96, 72)
CHUNK_SIZE = 16  # photos per delivery to the GUI
CHUNK_SECONDS = 0.15  # ... or sooner, so the first photo appears at once
# Decoded photos that may wait for the window's release (see the module docstring): four of the
# estimator's batches, so it never starves (~80 MB of 1024-px working copies at most).
MAX_WAITING = 32


@dataclass(frozen=True)
class LoadedPhoto:
    path: str
    photo: Photo
    thumbnail: bytes  # JPEG (see make_thumbnail)


def decode_file(path: str) -> LoadedPhoto | str:
    """The decoded photo with its thumbnail, or a one-line message naming the file."""
    try:
        photo = load_photo(path)
        return LoadedPhoto(path, photo, make_thumbnail(photo))
    except ImageLoadError as e:
        return str(e)
    except MemoryError:
        return f"{path}: not enough memory to decode it"
    except Exception as e:  # noqa: BLE001 - a decoder's bug must not stop the loader: report it
        return f"{path}: cannot decode image ({type(e).__name__}: {e})"


def make_thumbnail(photo: Photo, size: tuple[int, int] = THUMB_SIZE) -> bytes:
    """A small JPEG of the photo, made off the GUI thread. The list keeps one per photo and
    decodes only the rows it paints: ~2-4 KB a photo where a 96x72 pixmap takes 27 KB (270 MB
    for a folder of 10,000 photos)."""
    thumb = photo.image.copy()
    thumb.thumbnail(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85)
    return out.getvalue()


def expand_paths(paths: list[str]) -> tuple[list[str], list[str]]:
    """Files to decode (folders walked recursively, sorted) and problems found on the way.

    A file named explicitly is always tried (so a text file named .jpg gets its own message);
    inside folders only files with image suffixes are taken.
    """
    files: list[str] = []
    problems: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            def on_error(e: OSError) -> None:
                problems.append(f"{e.filename}: cannot read folder ({e.strerror})")

            for root, dirs, names in os.walk(p, onerror=on_error):
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names) if is_image_path(n))
        elif p.exists() and not is_image_path(p):
            problems.append(f"{p}: not a supported image type ({p.suffix or 'no suffix'})")
        else:
            files.append(str(p))
    return files, problems


class PhotoLoader(QObject):
    """Queue of load jobs served by one thread; see the module docstring."""

    loaded = Signal(int, object)  # job id, list[LoadedPhoto]
    reloaded = Signal(int, object)  # job id, list[tuple[key, LoadedPhoto]] (see ``reload``)
    failed = Signal(int, object)  # job id, list[str] one-line messages naming each file
    progress = Signal(int, int, int)  # job id, files done, files in the job
    finished = Signal(int)  # job id: every file of the job has been reported

    def __init__(self, parent: QObject | None = None, threads: int | None = None,
                 max_waiting: int = MAX_WAITING) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._jobs: deque[tuple[int, list[str] | list[tuple[int, str]]]] = deque()
        self._urgent: deque[tuple[int, list[tuple[int, str]]]] = deque()  # reloads asked for now
        self._next_id = 1
        self._cancelled = False
        self._stopping = False
        self._threads = max(1, threads if threads is not None else physical_cores())
        self.max_waiting = max(1, max_waiting)
        self._held = 0  # slots held: decodes running, photos decoded and not yet released
        self._thread = threading.Thread(target=self._loop, name="carvalue-loader", daemon=True)
        self._thread.start()

    def load(self, paths: list[str]) -> int:
        """Queue paths (files and/or folders); returns the job id used in the signals."""
        return self._queue(list(paths))

    def reload(self, items: list[tuple[int, str]], urgent: bool = True) -> int:
        """Decode files again whose working copies were let go; results come as ``reloaded``
        with the caller's keys. Urgent ones (a photo the user selected) are decoded at once,
        even in the middle of a long job; others queue behind the jobs already queued."""
        if not urgent:
            return self._queue(list(items))
        with self._cond:
            job = self._next_id
            self._next_id += 1
            self._urgent.append((job, list(items)))
            self._cond.notify_all()
        return job

    def release(self, count: int = 1) -> None:
        """The window is done with ``count`` delivered photos (``loaded`` or ``reloaded``): it
        has their estimates, or needs none. Each delivered photo is released exactly once."""
        if count <= 0:
            return
        with self._cond:
            self._held = max(0, self._held - count)
            self._cond.notify_all()

    def waiting(self) -> int:
        """Slots held now: decodes running and photos decoded but not yet released."""
        with self._cond:
            return self._held

    def _queue(self, payload: list[str] | list[tuple[int, str]]) -> int:
        with self._cond:
            job = self._next_id
            self._next_id += 1
            self._jobs.append((job, payload))
            self._cancelled = False
            self._cond.notify_all()
        return job

    def cancel(self) -> None:
        """Stop the running job after the file in hand and drop queued ones."""
        with self._cond:
            self._jobs.clear()
            self._cancelled = True
            self._cond.notify_all()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._jobs.clear()
            self._urgent.clear()
            self._cancelled = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take(self) -> tuple[int, list[str] | list[tuple[int, str]], bool] | None:
        with self._cond:
            while not self._stopping and not self._jobs and not self._urgent:
                self._cond.wait()
            if self._stopping:
                return None
            if self._urgent:
                job, items = self._urgent.popleft()
                return job, items, True
            self._cancelled = False
            job, payload = self._jobs.popleft()
            return job, payload, False

    def _is_cancelled(self) -> bool:
        with self._cond:
            return self._cancelled or self._stopping

    def _loop(self) -> None:
        while (job := self._take()) is not None:
            job_id, payload, urgent = job
            if urgent:
                self._reload_now(job_id, payload)  # type: ignore[arg-type]
                continue
            if payload and isinstance(payload[0], tuple):
                self._deliver(job_id, [p for _, p in payload], [k for k, _ in payload])  # type: ignore[misc]
            else:
                self._deliver(job_id, *expand_paths(payload), keys=None)  # type: ignore[arg-type]
            self.finished.emit(job_id)

    def _serve_urgent(self) -> None:
        """Reloads asked for while a job runs: decoded now, on this thread."""
        while True:
            with self._cond:
                if not self._urgent or self._stopping:
                    return
                job_id, items = self._urgent.popleft()
            self._reload_now(job_id, items)

    def _reload_now(self, job_id: int, items: list[tuple[int, str]]) -> None:
        done: list[tuple[int, LoadedPhoto]] = []
        errors: list[str] = []
        for key, path in items:
            result = decode_file(path)
            if isinstance(result, str):
                errors.append(f"could not read the photo again: {result}")
            else:
                done.append((key, result))
        with self._cond:  # a slot each, over the limit: the user is waiting for these
            self._held += len(done)
        if done:
            self.reloaded.emit(job_id, done)
        if errors:
            self.failed.emit(job_id, errors)
        self.finished.emit(job_id)

    def _deliver(self, job_id: int, files: list[str], problems: list[str] | None = None,
                 keys: list[int] | None = None) -> None:
        """Decode ``files`` and emit them in chunks: as ``loaded`` with progress, or, given the
        window's ``keys``, as ``reloaded``."""
        if problems:
            self.failed.emit(job_id, problems)
        total = len(files)
        if keys is None:
            self.progress.emit(job_id, 0, total)
        done: list[LoadedPhoto] = []
        done_keys: list[int] = []
        errors: list[str] = []
        count = 0
        last = time.monotonic()

        def flush() -> None:
            nonlocal done, done_keys, errors, last
            if done:
                if keys is None:
                    self.loaded.emit(job_id, done)
                else:
                    self.reloaded.emit(job_id, list(zip(done_keys, done, strict=True)))
            if errors:
                self.failed.emit(job_id, errors)
            if keys is None and (done or errors):
                self.progress.emit(job_id, count, total)
            done, done_keys, errors, last = [], [], [], time.monotonic()

        for i, result in self._decoded_in_order(files, flush):
            count += 1
            if isinstance(result, str):
                errors.append(result if keys is None else f"could not read the photo again: {result}")
            else:
                done.append(result)
                if keys is not None:
                    done_keys.append(keys[i])
            if len(done) + len(errors) >= CHUNK_SIZE or time.monotonic() - last >= CHUNK_SECONDS \
                    or count == total:
                flush()
        self.release(len(done))  # cancelled with photos not yet handed over

    def _try_acquire(self) -> bool:
        """Take a free slot for one more decode, without waiting."""
        with self._cond:
            if self._held < self.max_waiting and not (self._cancelled or self._stopping):
                self._held += 1
                return True
            return False

    def _wait_for_slot(self, flush: Callable[[], None]) -> bool:
        """Hand over what is decoded (so that the window can release some), then wait for a
        slot, serving urgent reloads meanwhile; False when cancelled."""
        flush()
        while True:
            self._serve_urgent()
            with self._cond:
                while (self._held >= self.max_waiting and not self._urgent
                       and not (self._cancelled or self._stopping)):
                    self._cond.wait()
                if self._cancelled or self._stopping:
                    return False
                if self._held < self.max_waiting:
                    self._held += 1
                    return True

    def _decoded_in_order(self, files: list[str], flush: Callable[[], None]
                          ) -> Iterator[tuple[int, LoadedPhoto | str]]:
        """(index, ``decode_file`` of the file), in order, decoded ``threads`` at a time, at
        most two per thread ahead and only on a free slot; stops early when the job is
        cancelled. A failed file's slot is released here; a decoded photo's by the window."""
        ahead = 2 * self._threads
        nxt = 0
        with ThreadPoolExecutor(self._threads, thread_name_prefix="carvalue-decode") as pool:
            pending: deque[tuple[int, Future[LoadedPhoto | str]]] = deque()
            while True:
                while nxt < len(files) and len(pending) < ahead and self._try_acquire():
                    pending.append((nxt, pool.submit(decode_file, files[nxt])))
                    nxt += 1
                if not pending:
                    if nxt >= len(files) or not self._wait_for_slot(flush):
                        return
                    pending.append((nxt, pool.submit(decode_file, files[nxt])))
                    nxt += 1
                if self._is_cancelled():
                    for _, f in pending:
                        f.cancel()
                    self.release(len(pending))
                    return
                index, future = pending.popleft()
                result = future.result()
                if isinstance(result, str):
                    self.release()
                yield index, result
                self._serve_urgent()
