"""Which listing IDs a scrape visits, and in what order.

IDs are visited in a seeded shuffled order so a partial run is a uniform sample of the range
(listing IDs are roughly chronological: in order, a half-finished run would only hold old cars).
``--shard i/n`` takes every n-th ID of that order, so n machines with the same range and seed
split it exactly, with no overlap and nothing left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_RANGE = 1_000_000_000  # 8 GB of int64 beyond this; split the range across runs instead


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


def visit_order(ids: IdRange, seed: int, shard: Shard = Shard(0, 1)) -> np.ndarray:
    """This shard's IDs (int64) in the seeded shuffled order; the same for the same arguments."""
    order = np.random.default_rng(seed).permutation(len(ids)).astype(np.int64) + ids.start
    return order[shard.index::shard.count]
