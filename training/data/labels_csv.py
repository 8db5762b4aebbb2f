"""The one reader of a photo folder's ``labels.csv``.

A training folder is ``labels.csv`` plus the photos it names.  Two layouts share the file:

- Stanford Cars (``../shared/data/stanford-cars-train``): ``file, make, model, year, class_id,
  class_name, width, height`` (no price: :mod:`training.data.stanford` derives one);
- a generic folder: ``file, make, model`` and optionally ``year, price, mileage, group``.

Every caller (the trainer, the Stanford label derivation, the probe, the studies, the framing
report) reads rows through :func:`read_labels_csv` and names the columns it needs; what a cell
means and how a bad one is reported lives here only.  A missing file raises
:class:`FileNotFoundError`; anything else wrong (columns, a cell, the encoding) raises
:class:`LabelsCsvError` whose one-line message starts with ``path:line``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from core.preprocess import MIN_SIDE

LABELS_CSV = "labels.csv"
BASE_COLUMNS = ("file", "make", "model")
STANFORD_COLUMNS = ("file", "make", "model", "year", "class_name")


class LabelsCsvError(ValueError):
    """A ``labels.csv`` that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class LabelRow:
    """One row of ``labels.csv``; cells are stripped, empty or absent ones mean "not given"."""

    file: str  # relative to the folder, as written
    make: str
    model: str
    year: int | None
    class_name: str  # as written, else "make model year"
    width: int = 0  # 0 = not given
    height: int = 0
    price: float | None = None  # dollars
    mileage: float | None = None
    group: str = ""  # a car or listing id, else the file name (one photo = one car)

    @property
    def too_small(self) -> bool:
        """The app refuses photos with a side under ``core.preprocess.MIN_SIDE`` px, so training
        and every report leave them out (unknown sizes are not too small)."""
        return too_small(self.width, self.height)

    def path(self, folder: Path) -> Path:
        return folder / self.file


def too_small(width: int, height: int) -> bool:
    """A photo the app's loader refuses (a side under ``MIN_SIDE`` px); 0 = size not given."""
    return 0 < min(width, height) < MIN_SIDE


def labels_path(folder: str | Path) -> Path:
    return Path(folder) / LABELS_CSV


def has_labels_csv(folder: str | Path) -> bool:
    return labels_path(folder).is_file()


def labels_columns(folder: str | Path) -> tuple[str, ...]:
    """The header of ``folder/labels.csv`` (empty for an empty file)."""
    path = labels_path(folder)
    _must_exist(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return tuple(c.strip() for c in next(csv.reader(f), []))
    except (UnicodeDecodeError, csv.Error) as e:
        raise LabelsCsvError(f"{path}: not a readable CSV ({e})") from e


def is_stanford_layout(folder: str | Path) -> bool:
    """True for Stanford Cars' own layout (it has a ``class_id`` column)."""
    return "class_id" in labels_columns(folder)


def read_labels_csv(folder: str | Path, required: Collection[str] = BASE_COLUMNS) -> list[LabelRow]:
    """Every row of ``folder/labels.csv``, in file order.

    ``required``: the columns the caller needs (``file`` always is).  Rows with an empty
    ``file`` cell, a ``year``/``width``/``height`` that is not a non-negative whole number, or a
    ``price``/``mileage`` that is not a number are errors; a NaN or infinite price or mileage
    counts as "not given" (its loss is masked), never as a made-up number.
    """
    path = labels_path(folder)
    _must_exist(path)
    need = {"file", *required}
    rows: list[LabelRow] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = {c.strip() for c in reader.fieldnames or ()}
            if not need <= header:
                raise LabelsCsvError(f"{path}: needs columns {sorted(need)}, has {sorted(header)}")
            for line, raw in enumerate(reader, start=2):
                cells = {(k or "").strip(): v.strip() for k, v in raw.items() if isinstance(v, str)}
                try:
                    rows.append(_row(cells, need))
                except ValueError as e:
                    raise LabelsCsvError(f"{path}:{line}: {e}") from e
    except (UnicodeDecodeError, csv.Error) as e:
        raise LabelsCsvError(f"{path}: not a readable CSV ({e})") from e
    return rows


def _must_exist(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (a photo folder needs {LABELS_CSV} beside its images)")


def _row(cells: dict[str, str], need: set[str]) -> LabelRow:
    for col in need & {"file", "year", "class_name"}:
        if not cells.get(col):
            raise ValueError(f"empty {col!r}")
    file, make, model = cells["file"], cells.get("make", ""), cells.get("model", "")
    year = _whole(cells.get("year"), "year")
    name = cells.get("class_name") or " ".join(s for s in (make, model, "" if year is None else str(year)) if s)
    return LabelRow(file, make, model, year, name, _whole(cells.get("width"), "width") or 0,
                    _whole(cells.get("height"), "height") or 0,
                    _number(cells.get("price"), "price"), _number(cells.get("mileage"), "mileage"),
                    cells.get("group") or file)


def _number(s: str | None, what: str) -> float | None:
    """A float, or None for an empty cell or a non-finite value (NaN/inf: "unknown")."""
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        raise ValueError(f"{what} {s!r} is not a number") from None
    return v if math.isfinite(v) else None


def _whole(s: str | None, what: str) -> int | None:
    """A non-negative whole number (``2012`` or ``2012.0``), or None for an empty cell."""
    if not s:
        return None
    try:
        v = float(s)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0 or v != int(v):
        raise ValueError(f"{what} {s!r} is not a whole number")
    return int(v)
