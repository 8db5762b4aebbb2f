"""A sharper copy of the shown photo, decoded off the GUI thread at the size the view shows it.

A photo's working copy is only as large as the network needs (a 24-MP JPEG decodes at 1/8
scale, 750 px), which looks soft in a large window.  The photo view asks for one extra decode of
the photo it shows, at its on-screen size in device pixels, and swaps it in when it arrives.
The network keeps using the working copy, so estimates never depend on the window's size.
Only the newest request is decoded: flicking through photos leaves no queue behind.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from carvalue_gui.newest import Newest
from core.preprocess import ImageLoadError, Photo, load_photo

log = logging.getLogger(__name__)

MAX_SHARP_SIDE = 4096  # a 4K screen's width; larger would only cost memory
MIN_GAIN = 1.15  # decode again only when the view is this much larger than the shown copy


def wanted_side(photo: Photo, shown_side: int, view_side: float) -> int | None:
    """The long side to decode ``photo`` at for a view ``view_side`` device pixels long, or None
    when the copy shown (``shown_side``) is already sharp enough or the file can't give more."""
    original = max(photo.original_size)
    want = min(int(view_side + 0.5), original, MAX_SHARP_SIDE)
    if want < shown_side * MIN_GAIN or not os.path.isfile(photo.source):
        return None
    return want


class SharpCopies(QObject):
    """Decodes one photo at a time at a given long side; emits ``ready(token, rgb_array)``."""

    ready = Signal(object, object)  # token given to request(), HxWx3 uint8 array

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._latest: Newest[object] = Newest()  # the token of the one decode still wanted

    def request(self, token: object, photo: Photo, long_side: int) -> None:
        self._latest.put(token)
        self._pool.start(_Decode(self, token, photo, long_side))

    def cancel(self) -> None:
        self._latest.clear()

    def wait(self, msecs: int = 10_000) -> bool:
        """Block until queued decodes are done (shutdown, tests)."""
        return self._pool.waitForDone(msecs)

    def is_latest(self, token: object) -> bool:
        return self._latest.is_current(token)

    def decode(self, token: object, photo: Photo, long_side: int) -> None:
        """Runs on the pool's thread."""
        if not self.is_latest(token):
            return
        try:
            sharp = load_photo(photo.source, max_side=long_side, draft_min_fraction=1.0)
        except ImageLoadError as e:  # the file changed or went away since it was loaded
            log.info("no sharper copy: %s", e)
            return
        except MemoryError:
            log.warning("no sharper copy of %s: not enough memory", photo.source)
            return
        if sharp.original_size != photo.original_size:
            log.info("no sharper copy: %s changed on disk since it was loaded", photo.source)
            return
        if self.is_latest(token):
            self.ready.emit(token, np.asarray(sharp.image))


class _Decode(QRunnable):
    def __init__(self, owner: SharpCopies, token: object, photo: Photo, long_side: int) -> None:
        super().__init__()
        self._args = (owner, token, photo, long_side)

    def run(self) -> None:
        owner, token, photo, long_side = self._args
        owner.decode(token, photo, long_side)
