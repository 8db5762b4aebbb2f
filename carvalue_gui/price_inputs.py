"""What the user knows about the car and the photo cannot show: mileage (miles or km), condition
and the year of sale, as fields.  The widget only shows and edits them: each photo's fields, and
what they price, are kept by the photo session (carvalue_gui/photo_session.py), which reprices
the estimate on screen at once (no new forward pass) and prices each export with its own fields.
"""

from __future__ import annotations

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

from carvalue_gui.photo_collection import PhotoFields
from core.pricing import CONDITIONS, current_year

NOT_GIVEN = "condition?"
UNITS = ("mi", "km")


class PriceInputsWidget(QWidget):
    """Mileage + unit, condition and year of sale. ``fields_edited`` carries the shown photo's
    PhotoFields as the user types them; ``year_changed`` the year of sale (all photos)."""

    fields_edited = Signal(object)
    year_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        self.year.valueChanged.connect(self.year_changed)

    def fields(self) -> PhotoFields:
        return PhotoFields(self.mileage.text(), self.unit.currentText(), str(self.condition.currentData() or ""))

    def show_fields(self, fields: PhotoFields, problem: str = "") -> None:
        """Show a photo's fields (and the problem with them); no ``fields_edited``."""
        for w in (self.mileage, self.unit, self.condition):
            w.blockSignals(True)
        self.mileage.setText(fields.mileage)
        self.unit.setCurrentText(fields.unit)
        self.condition.setCurrentIndex(max(0, self.condition.findData(fields.condition)))
        for w in (self.mileage, self.unit, self.condition):
            w.blockSignals(False)
        self.show_problem(problem)

    def show_problem(self, problem: str) -> None:
        """One line under the fields: why the typed mileage is not used ("" hides it)."""
        self.error.setText(problem)
        self.error.setVisible(bool(problem))

    def _edited(self) -> None:
        self.fields_edited.emit(self.fields())
