"""What the user knows about the car and the photo cannot show: mileage (miles or km), condition
and the year of sale.  Each photo remembers its own mileage and condition; the year of sale is
one setting for all photos.  Changing a field reprices the estimate on screen at once (no new
forward pass: core.predictor.reprice), and an export prices each photo with its own fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.modelfile import ModelMetadata
from core.predictor import Prediction, Sweep, reprice
from core.pricing import CONDITIONS, PriceInputs, current_year
from core.report import PhotoResults

NOT_GIVEN = "condition?"
UNITS = ("mi", "km")


@dataclass(frozen=True)
class PhotoFields:
    """One photo's fields as typed (kept as text, so a half-typed number is not lost)."""

    mileage: str = ""
    unit: str = "mi"
    condition: str = ""


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


class PriceInputsWidget(QWidget):
    """Mileage + unit, condition and year of sale; ``changed`` carries the new PriceInputs."""

    changed = Signal(object)
    photo_shown = Signal(str)  # show_photo's key (the car picker follows the photo)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The car the user named for a photo ("Which car is it?", carvalue_gui/car_picker.py).
        self.car_for: Callable[[str], str | None] = lambda _key: None
        self._fields: dict[str, PhotoFields] = {}
        self._photo = ""
        self._valid = PriceInputs()
        self.mileage = QLineEdit()
        self.mileage.setPlaceholderText("mileage")
        self.mileage.setToolTip("Odometer reading (leave empty if unknown): high mileage for the car's age "
                                "lowers the price")
        self.mileage.setMaximumWidth(110)
        self.unit = QComboBox()
        self.unit.addItems(UNITS)
        self.condition = QComboBox()
        self.condition.addItem(NOT_GIVEN, "")
        for c in CONDITIONS:
            self.condition.addItem(c, c)
        self.condition.setToolTip("Condition as a seller would state it (leave as 'condition?' if unknown)")
        self.year = QSpinBox()
        self.year.setRange(1950, 2100)
        self.year.setValue(current_year())
        self.year.setPrefix("sold ")
        self.year.setToolTip("Year of sale: the car's age counts to it (all photos)")
        self.error = QLabel("")
        self.error.setStyleSheet("QLabel { color: #a01010; }")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.mileage, self.unit, self.condition, self.year):
            row.addWidget(w)
        row.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        col.addLayout(row)
        col.addWidget(self.error)
        self.error.hide()
        self.mileage.textChanged.connect(self._edited)
        self.unit.currentTextChanged.connect(self._edited)
        self.condition.currentIndexChanged.connect(self._edited)
        self.year.valueChanged.connect(self._edited)

    # -- per photo ---------------------------------------------------------------------------
    def fields(self) -> PhotoFields:
        return PhotoFields(self.mileage.text(), self.unit.currentText(), str(self.condition.currentData() or ""))

    def show_photo(self, key: str) -> None:
        """Show ``key``'s fields (empty for a photo not seen before); no ``changed`` signal."""
        self._photo = key
        f = self._fields.get(key, PhotoFields())
        for w in (self.mileage, self.unit, self.condition):
            w.blockSignals(True)
        self.mileage.setText(f.mileage)
        self.unit.setCurrentText(f.unit)
        self.condition.setCurrentIndex(max(0, self.condition.findData(f.condition)))
        for w in (self.mileage, self.unit, self.condition):
            w.blockSignals(False)
        self.photo_shown.emit(key)
        self._check()

    def inputs(self) -> PriceInputs:
        """The inputs on screen (the last valid ones while the mileage field holds a typo)."""
        return self._valid

    def inputs_for(self, key: str) -> PriceInputs:
        """A photo's inputs (what an export prices it with); a photo whose mileage does not
        parse keeps its condition and goes without mileage."""
        f = self._fields.get(key, PhotoFields())
        try:
            return parse_inputs(f, self.year.value(), self.car_for(key))
        except ValueError:
            return parse_inputs(dataclasses.replace(f, mileage=""), self.year.value(), self.car_for(key))

    def refresh(self) -> None:
        """The shown photo's named car changed: reprice with it (``changed``)."""
        if self._check():
            self.changed.emit(self._valid)

    def _edited(self) -> None:
        self._fields[self._photo] = self.fields()
        if self._check():
            self.changed.emit(self._valid)

    def _check(self) -> bool:
        try:
            self._valid = parse_inputs(self.fields(), self.year.value(), self.car_for(self._photo))
        except ValueError as e:
            self.error.setText(str(e))
            self.error.show()
            return False
        self.error.hide()
        return True

    # -- export ------------------------------------------------------------------------------
    def priced(self, results: Sequence[PhotoResults], meta: ModelMetadata) -> list[PhotoResults]:
        """Every photo's results priced with its own fields."""
        def one(p: Prediction | None, inputs: PriceInputs) -> Prediction | None:
            return None if p is None else reprice(p, meta, inputs)

        out = []
        for r in results:
            inputs = self.inputs_for(r.source)
            sweep = None if r.sweep is None else self.priced_sweep(r.sweep, meta, r.source)
            out.append(dataclasses.replace(r, prediction=one(r.prediction, inputs),
                                           crop_prediction=one(r.crop_prediction, inputs), sweep=sweep))
        return out

    def priced_sweep(self, sweep: Sweep, meta: ModelMetadata, key: str) -> Sweep:
        """A photo's sweep priced with its own fields (unchanged when they are the defaults)."""
        inputs = self.inputs_for(key)
        preds = tuple(reprice(p, meta, inputs) for p in sweep.predictions)
        if all(a is b for a, b in zip(preds, sweep.predictions, strict=True)):
            return sweep
        return dataclasses.replace(sweep, predictions=preds)
