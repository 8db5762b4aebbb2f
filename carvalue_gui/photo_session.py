"""The window's photos as plain data, and every price the window, the list and the exports show.

Per photo the session holds what the user set (crop box, mileage and condition as typed, the
cars they named) and what the model said (the whole-photo estimate, the crop's, the sweep); for
all photos, the year of sale and the model's metadata. Every displayed or exported price comes
from ``priced`` here, with the photo's own inputs, so the window, its list row, the sweep plot,
the clipboard and the CSV/JSON cannot disagree.

No Qt: the widgets observe the session (``row_changed`` for a list row, ``repriced`` for the
photo on screen) and the window only wires widgets to it. The tests in tests/test_photo_session.py
drive it without a window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from carvalue_gui.photo_collection import MAX_RESIDENT, PhotoCollection, PhotoEntry, PhotoFields
from core.framing import WholeCar
from core.geometry import Box
from core.modelfile import ModelMetadata
from core.predictor import Prediction, Sweep, reprice
from core.preprocess import Photo
from core.pricing import PriceInputs, current_year
from core.report import PhotoResults

T = TypeVar("T")


class Listeners(Generic[T]):
    """Callbacks run in order with one value (a Qt-free signal)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], object]] = []

    def connect(self, callback: Callable[[T], object]) -> None:
        self._callbacks.append(callback)

    def emit(self, value: T) -> None:
        for callback in list(self._callbacks):
            callback(value)


def parse_inputs(fields: PhotoFields, year_of_sale: int, car: str | None = None) -> PriceInputs:
    """The fields as PriceInputs; ValueError with a one-line message for a mileage that cannot
    be right (the caller keeps the other fields)."""
    text = fields.mileage.replace(",", "").replace("_", "").strip()
    miles: float | None = None
    if text:
        try:
            miles = float(text)
        except ValueError:
            raise ValueError(f"mileage must be a number, got {fields.mileage!r}") from None
    return PriceInputs.from_user(year_of_sale, miles, fields.unit == "km", fields.condition or None, car)


def fields_problem(fields: PhotoFields) -> str:
    """Why the typed fields cannot price the car ("" when they can)."""
    try:
        parse_inputs(fields, current_year())
    except ValueError as e:
        return str(e)
    return ""


@dataclass(frozen=True)
class Row:
    """A photo's list row: its estimate priced with its inputs, or why there is none."""

    prediction: Prediction | None
    note: str = ""
    crop: bool = False  # the estimate is the user's crop's, not the whole photo's


class RequestIds:
    """Newest request wins: each estimate asked for the screen (a crop, a sweep) gets the next
    id, and a result whose id is no longer ``latest`` arrives too late and is dropped."""

    def __init__(self) -> None:
        self.latest = 0

    def next(self) -> int:
        self.latest += 1
        return self.latest


class PhotoSession:
    """The photos, their state and their prices; see the module docstring."""

    def __init__(self, max_resident: int = MAX_RESIDENT) -> None:
        self.photos = PhotoCollection(max_resident)
        self.meta: ModelMetadata | None = None
        self.model_path = ""  # the model file ``meta`` came from
        self.requests = RequestIds()
        self.year_of_sale = current_year()
        self.current: PhotoEntry | None = None  # the photo on screen
        self.generation = 0  # bumps when the model changes: older batch results are dropped
        self.batch_total = 0  # whole-photo estimates asked for since the model was set
        self.batch_done = 0
        self.row_changed: Listeners[PhotoEntry] = Listeners()  # its list row is out of date
        self.repriced: Listeners[PhotoEntry] = Listeners()  # the photo on screen has new prices

    def __iter__(self) -> Iterator[PhotoEntry]:
        return iter(self.photos)

    # == prices: the one place =================================================================
    def inputs_for(self, entry: PhotoEntry | None) -> PriceInputs:
        """A photo's inputs: its last mileage and condition that parsed, the year of sale and
        the car the user named (if any)."""
        if entry is None:
            return PriceInputs(self.year_of_sale)
        return parse_inputs(entry.valid_fields, self.year_of_sale, entry.cars[-1] if entry.cars else None)

    def priced(self, entry: PhotoEntry | None, pred: Prediction) -> Prediction:
        """``pred`` priced with ``entry``'s inputs (no forward pass)."""
        return pred if self.meta is None else reprice(pred, self.meta, self.inputs_for(entry))

    def priced_current(self, pred: Prediction) -> Prediction:
        return self.priced(self.current, pred)

    def row(self, entry: PhotoEntry) -> Row:
        pred = entry.shown_prediction()
        if pred is not None:
            return Row(self.priced(entry, pred), crop=pred is not entry.prediction)
        if self.meta is None:
            return Row(None, "no model loaded")
        return Row(None, f"estimate failed: {entry.error}" if entry.error else "")

    def priced_sweep(self, entry: PhotoEntry) -> Sweep | None:
        """The photo's sweep with every position priced with its inputs (the plot's medians)."""
        sweep = entry.sweep
        if sweep is None or self.meta is None:
            return sweep
        preds = tuple(self.priced(entry, p) for p in sweep.predictions)
        if all(a is b for a, b in zip(preds, sweep.predictions, strict=True)):
            return sweep
        return dataclasses.replace(sweep, predictions=preds)

    def priced_results(self) -> list[PhotoResults]:
        """Every photo's results priced with its own inputs (what an export writes)."""
        def one(entry: PhotoEntry, p: Prediction | None) -> Prediction | None:
            return None if p is None else self.priced(entry, p)

        return [dataclasses.replace(e.results(), prediction=one(e, e.prediction),
                                    crop_prediction=one(e, e.crop_prediction), sweep=self.priced_sweep(e))
                for e in self.photos]

    # == what the user tells about a photo =====================================================
    def set_fields(self, entry: PhotoEntry, fields: PhotoFields) -> str:
        """The photo's fields as typed; returns the problem with them ("" when they parse). A
        mileage that does not parse keeps the last good inputs (and their price)."""
        entry.fields = fields
        problem = fields_problem(fields)
        if problem:
            return problem
        if fields != entry.valid_fields:
            entry.valid_fields = fields
            self._repriced(entry)
        return ""

    def name_car(self, entry: PhotoEntry, car: str) -> None:
        """The user says which car it is (a catalogue name): its price replaces the photo's."""
        if entry.cars[-1:] != [car]:
            entry.cars.append(car)
            self._repriced(entry)

    def undo_car(self, entry: PhotoEntry) -> None:
        """Back to the car named before (in the end, the photo's own answer)."""
        if entry.cars:
            entry.cars.pop()
            self._repriced(entry)

    def set_year_of_sale(self, year: int) -> None:
        """One setting for all photos: every row is repriced."""
        if year == self.year_of_sale:
            return
        self.year_of_sale = year
        for entry in self.photos:
            self.row_changed.emit(entry)
        if self.current is not None:
            self.repriced.emit(self.current)

    def _repriced(self, entry: PhotoEntry) -> None:
        self.row_changed.emit(entry)
        if entry is self.current:
            self.repriced.emit(entry)

    # == photos and the model ==================================================================
    def add(self, path: str, photo: Photo) -> PhotoEntry:
        return self.photos.add(path, photo)

    def remove(self, entry: PhotoEntry) -> bool:
        """Forget a photo; True when it held a loader slot (the caller releases it)."""
        if entry is self.current:
            self.current = None
        return self.photos.remove(entry.key)

    def select(self, key: int) -> PhotoEntry | None:
        self.current = self.photos.get(key)
        if self.current is not None:
            self.photos.touch(key)
        return self.current

    def set_model(self, meta: ModelMetadata | None, path: str = "") -> None:
        """Another model: every estimate came from the old one and is dropped (rows redrawn)."""
        self.meta, self.model_path = meta, path
        self.generation += 1
        self.batch_total = self.batch_done = 0
        if meta is None:
            return
        for entry in self.photos:
            entry.prediction = entry.crop_prediction = entry.sweep = None
            entry.error = ""
            self.row_changed.emit(entry)

    # == estimates in ==========================================================================
    def queued(self, n: int) -> None:
        self.batch_total += n

    def batch_pending(self) -> int:
        return max(0, self.batch_total - self.batch_done)

    def take_batch(self, results: Sequence[tuple[int, Prediction | str]]) -> tuple[list[PhotoEntry], list[str]]:
        """Whole-photo estimates (or why one failed) in: the photos estimated and the problems."""
        estimated: list[PhotoEntry] = []
        problems: list[str] = []
        for key, outcome in results:
            entry = self.photos.get(key)
            if entry is None:
                continue
            if isinstance(outcome, str):  # this photo failed; the others in its batch did not
                entry.prediction, entry.error = None, outcome
                problems.append(f"{entry.path}: estimate failed: {outcome}")
            else:
                entry.prediction, entry.error = outcome, ""
                estimated.append(entry)
            self.row_changed.emit(entry)
        self.batch_done += len(results)
        return estimated, problems

    def take_crop(self, entry: PhotoEntry, pred: Prediction) -> bool:
        """The estimate for the box on screen; True when it is the photo's own estimate (the
        automatic one of a photo not yet estimated, on the car it found)."""
        own = pred.found_box is not None and entry.box is None and entry.prediction is None
        if own:
            entry.prediction, entry.error = pred, ""
        if entry.box is not None:
            entry.crop_prediction = pred
        if own or entry.box is not None:
            self.row_changed.emit(entry)
        return own

    def set_box(self, entry: PhotoEntry, box: Box) -> None:
        """The user's box; the automatic one (the car found, else the whole photo) is kept as
        None, which the batch estimates use, and then no crop estimate is kept."""
        entry.box = None if box == (entry.found_box() or Box.full(entry.size)) else box
        if entry.box is None and entry.crop_prediction is not None:
            entry.crop_prediction = None
            self.row_changed.emit(entry)

    def take_sweep_position(self, entry: PhotoEntry, index: int) -> tuple[Box, Prediction]:
        """Sweep position ``index`` becomes the photo's box and crop estimate."""
        assert entry.sweep is not None
        box, pred = entry.sweep.boxes[index], entry.sweep.predictions[index]
        entry.box, entry.crop_prediction = box, pred
        self.row_changed.emit(entry)
        return box, pred


def sweep_car(entry: PhotoEntry) -> Box | None:
    """The car the sweep's window is sized to: the one found, the whole photo when the photo is
    the car; None (half-width strips) when no car was seen."""
    found = entry.found_box()
    if found is not None:
        return found
    pred = entry.prediction
    return Box.full(entry.size) if pred is not None and pred.looks_like_car else None


def best_sweep_position(sweep: Sweep) -> int | None:
    """The sweep position judged a whole car with the highest whole-car score, if any."""
    whole = [i for i, p in enumerate(sweep.predictions) if p.whole_car is WholeCar.YES]
    return max(whole, key=lambda i: sweep.predictions[i].confidence) if whole else None
