"""Which listing IDs a scrape visits, and in what order.

IDs are visited in a seeded shuffled order so a partial run is a uniform sample of the range
(listing IDs are roughly chronological: in order, a half-finished run would only hold old cars).
``--shard i/n`` takes every n-th ID of that order, so n machines with the same range and seed
split it exactly, with no overlap and nothing left out.

The order is computed, never stored: position p of the order is a keyed permutation of p (a
Feistel network over the next even power of two, walked until it lands inside the range), so a
range of a billion IDs costs a chunk of IDs at a time, and whether an ID belongs to a shard is
one inverse permutation away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

MAX_RANGE = 1_000_000_000  # IDs in one run; split a larger range across runs
CHUNK = 65_536  # IDs computed at a time (0.5 MB of int64)
_ROUNDS = 6
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # splitmix64's multipliers


@dataclass(frozen=True)
class IdRange:
    start: int  # inclusive
    stop: int  # exclusive

    @classmethod
    def parse(cls, text: str) -> IdRange:
        """From ``"A:B"`` (A inclusive, B exclusive)."""
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(f"--ids must be A:B (start inclusive, stop exclusive), got {text!r}")
        try:
            start, stop = int(parts[0]), int(parts[1])
        except ValueError:
            raise ValueError(f"--ids must be two integers A:B, got {text!r}") from None
        if start < 0 or stop <= start:
            raise ValueError(f"--ids needs 0 <= A < B, got {text!r}")
        if stop - start > MAX_RANGE:
            raise ValueError(f"--ids range of {stop - start:,} IDs is too large (at most {MAX_RANGE:,}); "
                             "split it into several runs")
        return cls(start, stop)

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """From ``"i/n"`` with 0 <= i < n."""
        parts = text.split("/")
        try:
            index, count = int(parts[0]), int(parts[1])
            if len(parts) != 2:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"--shard must be i/n, e.g. 0/4, got {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--shard needs 0 <= i < n, got {text!r}")
        return cls(index, count)


class VisitOrder:
    """One shard's IDs of a range in the seeded shuffled order, computed a chunk at a time."""

    def __init__(self, ids: IdRange, seed: int, shard: Shard = Shard(0, 1)) -> None:
        self.ids, self.seed, self.shard = ids, seed, shard
        n = len(ids)
        bits = max(2, (n - 1).bit_length())
        self._half = np.uint64((bits + 1) // 2)  # the domain is 4**half >= n, under 4n
        self._mask = np.uint64((1 << int(self._half)) - 1)
        self._keys = [np.uint64(int.from_bytes(hashlib.sha256(f"carvalue-ids:{seed}:{r}".encode()).digest()[:8],
                                               "little")) for r in range(_ROUNDS)]

    def __len__(self) -> int:
        n, i, k = len(self.ids), self.shard.index, self.shard.count
        return 0 if i >= n else (n - i + k - 1) // k

    def chunks(self, size: int = CHUNK) -> Iterator[np.ndarray]:
        """The IDs (int64) in order, ``size`` at a time."""
        i, k = self.shard.index, self.shard.count
        for first in range(0, len(self), size):
            positions = np.arange(first, min(len(self), first + size), dtype=np.uint64) * np.uint64(k) + np.uint64(i)
            yield self._walk(positions, self._encrypt).astype(np.int64) + self.ids.start

    def __iter__(self) -> Iterator[int]:
        for chunk in self.chunks():
            yield from chunk.tolist()

    def to_array(self) -> np.ndarray:
        """All of them at once (small ranges: tests, inspection)."""
        parts = list(self.chunks())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` this shard visits (a boolean mask)."""
        ids = np.asarray(ids, dtype=np.int64)
        inside = (ids >= self.ids.start) & (ids < self.ids.stop)
        positions = self._walk((ids[inside] - self.ids.start).astype(np.uint64), self._decrypt)
        mask = np.zeros(len(ids), dtype=bool)
        mask[inside] = positions % np.uint64(self.shard.count) == np.uint64(self.shard.index)
        return mask

    def _walk(self, x: np.ndarray, step: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Cycle walking: apply the permutation of the power-of-two domain until each value lies
        in the range, which makes it a permutation of the range."""
        n = np.uint64(len(self.ids))
        y = step(x)
        out = y >= n
        while out.any():
            y[out] = step(y[out])
            out = y >= n
        return y

    def _round(self, r: np.ndarray, key: np.uint64) -> np.ndarray:
        z = (r ^ key) * _M1
        z = (z ^ (z >> np.uint64(31))) * _M2
        return (z ^ (z >> np.uint64(29))) & self._mask

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self._half, x & self._mask
        for key in self._keys:
            left, right = right, left ^ self._round(right, key)
        return (left << self._half) | right

    def _decrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self._half, x & self._mask
        for key in reversed(self._keys):
            left, right = right ^ self._round(left, key), left
        return (left << self._half) | right


def visit_order(ids: IdRange, seed: int, shard: Shard = Shard(0, 1)) -> VisitOrder:
    """This shard's IDs in the seeded shuffled order; the same for the same arguments."""
    return VisitOrder(ids, seed, shard)
