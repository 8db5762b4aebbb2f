""""Which car is it?": the user names the car in the photo and its price follows (issue 28).

A line edit with a completer over the catalogue's cars (core/catalogue.py: every make/model/year
the price model can price, up to the year of sale), pre-filled with the photo's top answer.
Naming another car (Enter, or picking from the list) prices that car at once: no new pass
through the network, since the price of a named car needs only the catalogue and the
depreciation (core/carprice.py); the photo's own make/model/year answer stays beside it.  Each
photo keeps its own choices in the photo session (carvalue_gui/photo_session.py), *Undo* steps
back through them to the photo's own answer, and an export says whose car each price is of
(``car_source``: "user" or "photo").
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.carprice import named_car, price_data
from core.catalogue import NotInCatalogue
from core.predictor import Prediction
from core.pricing import current_year

PLACEHOLDER = "Which car is it? e.g. Toyota Camry 2016"


# What the label beside the field can say (its width is the widest of them).
SOURCE_WORDS = ("your car", "the photo's answer", "the photo's make")

class CarPicker(QWidget):
    """``named`` carries a catalogue car the user named for the shown photo; ``undone`` asks to
    go back to the car named before. What is shown comes from ``show_choice``."""

    named = Signal(str)
    undone = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.year_of_sale: Callable[[], int] = current_year
        self._current: str | None = None  # the car the user named for the shown photo
        self._suggestion = ""
        self._make_only = False  # the suggestion is only the make (a car the classes lack)
        self._names_year = 0
        self.field = QLineEdit()
        self.field.setPlaceholderText(PLACEHOLDER)
        self.field.setToolTip("The make, model and year of the car in the photo. Name another car to price "
                              "that car instead of the photo's answer (no new pass through the network).")
        self._model = QStringListModel()
        self.completer = QCompleter(self._model, self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setMaxVisibleItems(12)
        self.field.setCompleter(self.completer)
        self.undo = QToolButton()
        self.undo.setText("Undo")
        self.undo.setToolTip("Back to the car named before (in the end: the photo's own answer)")
        self.source = QLabel("")
        self.source.setStyleSheet("QLabel { color: #555; }")
        # As wide as its widest words, always: a new photo's words never move the field.
        metrics = self.source.fontMetrics()
        self.source.setFixedWidth(max(metrics.horizontalAdvance(t) for t in SOURCE_WORDS) + 4)
        self.error = QLabel("")
        self.error.setStyleSheet("QLabel { color: #a01010; }")
        self.error.setWordWrap(True)
        self.error.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.field, 1)
        row.addWidget(self.undo)
        row.addWidget(self.source)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        col.addLayout(row)
        col.addWidget(self.error)
        self.field.returnPressed.connect(self.commit)
        self.completer.activated.connect(lambda _text: self.commit())
        self.undo.clicked.connect(self.undo_choice)
        self._show()

    # -- what the rest of the app asks -------------------------------------------------------
    def show_choice(self, car: str | None) -> None:
        """Show the car the user named for the photo now shown (None: none yet); no signal."""
        self._current = car
        self._suggestion = ""
        self._make_only = False
        self._show()

    def suggest_from(self, pred: Prediction | None) -> None:
        """Pre-fill with the photo's top answer, as a catalogue car (when the catalogue has it)."""
        self._suggestion = ""
        self._make_only = False
        if pred is not None and pred.unknown_car and pred.makes:  # a car the classes lack: its make
            self._suggestion, self._make_only = pred.makes[0].label, True
        elif pred is not None and pred.whole_car.priced and pred.make_models:
            car = price_data().catalogue.class_car(pred.make_models[0].label, self.year_of_sale())
            self._suggestion = car.name if car is not None else ""
        self._show()

    # -- the user's actions ------------------------------------------------------------------
    def commit(self) -> None:
        """Price the car typed in the field, if it is a catalogue car other than what is shown."""
        text = " ".join(self.field.text().split())
        current = self._current
        if not text or text == (current or self._suggestion):
            self.error.hide()
            return
        try:
            car = named_car(text, self.year_of_sale())
        except NotInCatalogue as e:
            self.error.setText(str(e))
            self.error.show()
            return
        self.error.hide()
        if car.name == (current or self._suggestion) and current is not None:
            self._show()
            return
        self.named.emit(car.name)

    def undo_choice(self) -> None:
        if self._current is None:
            return
        self.error.hide()
        self.undone.emit()

    # -- display -------------------------------------------------------------------------------
    def _show(self) -> None:
        self._fill_names()
        current = self._current
        self.field.blockSignals(True)
        self.field.setText(current or self._suggestion)
        self.field.blockSignals(False)
        self.undo.setEnabled(current is not None)
        self.source.setText("your car" if current else ("the photo's make" if self._make_only
                                                        else "the photo's answer" if self._suggestion else ""))
        self.source.setToolTip("Add the model and year to the make, then press Enter" if self._make_only and not current
                               else "")

    def _fill_names(self) -> None:
        year = self.year_of_sale()
        if year != self._names_year:  # the catalogue's cars up to the year of sale
            self._names_year = year
            self._model.setStringList(price_data().catalogue.names(year))
