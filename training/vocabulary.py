"""Class and year vocabularies of a set of records (most frequent first; ``Unknown`` last)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from core.dataset.records import ImageRecord
from core.modelfile import UNKNOWN


def make_model_vocabulary(records: Iterable[ImageRecord], with_year: bool = True, top_n: int = 0) -> tuple[str, ...]:
    """Class names (most frequent first, ties alphabetical), ``Unknown`` last.

    ``with_year``: Stanford's classes are make/model/year ("Audi S4 Sedan 2012"), so that is the
    default; listings data would use make/model and leave the year to the year head.
    """
    counts = Counter(make_model_name(r, with_year) for r in records)
    counts.pop(UNKNOWN, None)
    names = sorted(counts, key=lambda n: (-counts[n], n))
    return (*(names[:top_n] if top_n > 0 else names), UNKNOWN)


def make_model_name(r: ImageRecord, with_year: bool = True) -> str:
    return f"{r.make_model} {r.year}" if with_year and r.year is not None else r.make_model


def year_vocabulary(records: Iterable[ImageRecord]) -> tuple[str, ...]:
    """Model years present, ascending, as strings; ``Unknown`` last."""
    return (*(str(y) for y in sorted({r.year for r in records if r.year is not None})), UNKNOWN)
