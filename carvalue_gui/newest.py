"""Newest wins: one pending item that a newer one replaces (it never queues behind it).

The inference worker keeps one of these per request kind (crop, sweep, "what drives this
estimate" map) and the sharp-copy decoder one for the photo it should decode; both drop work
that a newer request made pointless instead of running it.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class Newest(Generic[T]):
    """The newest item put, until it is taken or cleared. Thread-safe; items are compared by
    identity (two equal requests are still two requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None

    def put(self, item: T) -> None:
        """Replace whatever is pending with ``item``."""
        with self._lock:
            self._item = item

    def take(self) -> T | None:
        """The pending item, now no longer pending (None: nothing is)."""
        with self._lock:
            item, self._item = self._item, None
            return item

    def peek(self) -> T | None:
        with self._lock:
            return self._item

    def clear(self) -> None:
        with self._lock:
            self._item = None

    def is_current(self, item: object) -> bool:
        """Whether ``item`` is still the newest (a newer one has not replaced it)."""
        with self._lock:
            return item is self._item

    def done(self, item: object) -> bool:
        """Forget ``item`` if it is still the newest; whether it was (a finished job whose
        result should go out only if nothing newer came meanwhile)."""
        with self._lock:
            current = item is self._item
            if current:
                self._item = None
            return current
