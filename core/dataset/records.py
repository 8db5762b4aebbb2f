"""The unit training reads: one photo with its listing's labels.

Both sources produce these: a folder + labels CSV (training/data/dataset.py) and the data pipeline's
SQLite database + image store (core/dataset/export.py).  ``group`` is the car/listing the photo
belongs to; splits are made over groups, never over photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImageRecord:
    image_path: Path
    group: str  # listing / car id: the unit of the train/val/test split
    make: str
    model: str
    year: int | None  # model year; None = unknown
    price: float | None  # dollars; None = unknown (its loss is masked)
    mileage: float | None = None

    @property
    def make_model(self) -> str:
        return f"{self.make} {self.model}".strip()
