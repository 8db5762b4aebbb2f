"""Turns dropped/opened paths into decoded photos on a background thread.

Folders are walked recursively (their image files only), each file is decoded once by
``core.preprocess.load_photo`` (which applies the size limits), and a small thumbnail is made
there too, all off the GUI thread: on one decoding thread per physical core (Pillow and libheif
release the GIL; two threads loaded 12-MP JPEGs and HEICs ~1.9x faster than one here), a few
files ahead, in file order. Results come back in chunks so that a folder of thousands of files
costs the GUI a few dozen signal deliveries, not thousands.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPainter

from core.modelfile import physical_cores
from core.preprocess import ImageLoadError, Photo, is_image_path, load_photo

THUMB_SIZE = (96, 72)
CHUNK_SIZE = 16  # photos per delivery to the GUI
CHUNK_SECONDS = 0.15  # ... or sooner, so the first photo appears at once


@dataclass(frozen=True)
class LoadedPhoto:
    path: str
    photo: Photo
    thumbnail: QImage


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


def make_thumbnail(photo: Photo, size: tuple[int, int] = THUMB_SIZE) -> QImage:
    """A small QImage of the photo (QImage, unlike QPixmap, may be made off the GUI thread)."""
    thumb = photo.image.copy()
    thumb.thumbnail(size, Image.Resampling.BILINEAR)
    data = thumb.tobytes("raw", "RGB")
    img = QImage(data, thumb.width, thumb.height, 3 * thumb.width, QImage.Format.Format_RGB888)
    # Centred on a transparent canvas of the full size, so every row's text lines up.
    canvas = QImage(size[0], size[1], QImage.Format.Format_ARGB32_Premultiplied)
    canvas.fill(0)
    painter = QPainter(canvas)
    painter.drawImage((size[0] - thumb.width) // 2, (size[1] - thumb.height) // 2, img)
    painter.end()
    return canvas


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

    def __init__(self, parent: QObject | None = None, threads: int | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._jobs: deque[tuple[int, list[str] | list[tuple[int, str]]]] = deque()
        self._next_id = 1
        self._cancelled = False
        self._stopping = False
        self._threads = max(1, threads if threads is not None else physical_cores())
        self._thread = threading.Thread(target=self._loop, name="carvalue-loader", daemon=True)
        self._thread.start()

    def load(self, paths: list[str]) -> int:
        """Queue paths (files and/or folders); returns the job id used in the signals."""
        return self._queue(list(paths), front=False)

    def reload(self, items: list[tuple[int, str]]) -> int:
        """Decode files again whose working copies were let go, ahead of queued loads;
        results come as ``reloaded`` with the caller's keys."""
        return self._queue(list(items), front=True)

    def _queue(self, payload: list[str] | list[tuple[int, str]], front: bool) -> int:
        with self._cond:
            job = self._next_id
            self._next_id += 1
            if front:
                self._jobs.appendleft((job, payload))
            else:
                self._jobs.append((job, payload))
            self._cancelled = False
            self._cond.notify()
        return job

    def cancel(self) -> None:
        """Stop the running job after the file in hand and drop queued ones."""
        with self._cond:
            self._jobs.clear()
            self._cancelled = True

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._jobs.clear()
            self._cancelled = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take(self) -> tuple[int, list[str] | list[tuple[int, str]]] | None:
        with self._cond:
            while not self._stopping and not self._jobs:
                self._cond.wait()
            if self._stopping:
                return None
            self._cancelled = False
            return self._jobs.popleft()

    def _is_cancelled(self) -> bool:
        with self._cond:
            return self._cancelled or self._stopping

    def _loop(self) -> None:
        while (job := self._take()) is not None:
            job_id, payload = job
            if payload and isinstance(payload[0], tuple):
                self._reload(job_id, payload)  # type: ignore[arg-type]
            else:
                self._run(job_id, payload)  # type: ignore[arg-type]
            self.finished.emit(job_id)

    def _reload(self, job_id: int, items: list[tuple[int, str]]) -> None:
        done: list[tuple[int, LoadedPhoto]] = []
        errors: list[str] = []
        for key, path in items:
            if self._is_cancelled():
                return
            result = decode_file(path)
            if isinstance(result, str):
                errors.append(f"could not read the photo again: {result}")
            else:
                done.append((key, result))
        if done:
            self.reloaded.emit(job_id, done)
        if errors:
            self.failed.emit(job_id, errors)

    def _run(self, job_id: int, paths: list[str]) -> None:
        files, problems = expand_paths(paths)
        if problems:
            self.failed.emit(job_id, problems)
        total = len(files)
        self.progress.emit(job_id, 0, total)
        done: list[LoadedPhoto] = []
        errors: list[str] = []
        last = time.monotonic()
        for i, result in enumerate(self._decoded_in_order(files), 1):
            if isinstance(result, str):
                errors.append(result)
            else:
                done.append(result)
            now = time.monotonic()
            if len(done) + len(errors) >= CHUNK_SIZE or now - last >= CHUNK_SECONDS or i == total:
                if done:
                    self.loaded.emit(job_id, done)
                if errors:
                    self.failed.emit(job_id, errors)
                self.progress.emit(job_id, i, total)
                done, errors, last = [], [], now

    def _decoded_in_order(self, files: list[str]) -> Iterator[LoadedPhoto | str]:
        """``decode_file`` of each file, in order, decoded ``threads`` at a time and at most
        two per thread ahead (bounded memory); stops early when the job is cancelled."""
        ahead = 2 * self._threads
        paths = iter(files)
        with ThreadPoolExecutor(self._threads, thread_name_prefix="carvalue-decode") as pool:
            pending: deque[Future[LoadedPhoto | str]] = deque(
                pool.submit(decode_file, p) for p in islice(paths, ahead))
            while pending:
                if self._is_cancelled():
                    for f in pending:
                        f.cancel()
                    return
                result = pending.popleft().result()
                nxt = next(paths, None)
                if nxt is not None:
                    pending.append(pool.submit(decode_file, nxt))
                yield result
