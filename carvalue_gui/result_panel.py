"""The estimate for the crop on screen: price in large type, its likely range, the price
histogram, top make/models and years with probability bars, the not-a-whole-car notice and a
line saying what the price means and which model made it."""

from __future__ import annotations

from collections.abc import Callable
from html import escape as _escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from carvalue_gui.car_picker import CarPicker
from carvalue_gui.elide import elide_keep_year
from carvalue_gui.help_dialogs import HtmlDialog
from carvalue_gui.price_chart import PriceChart
from carvalue_gui.price_inputs import PriceInputsWidget
from carvalue_gui.probability_bar import ProbabilityBar
from core.framing import WholeCar, whole_car_message
from core.modelfile import ModelMetadata
from core.money import dollar_range, format_dollars
from core.photo_price import describe, display_bounds
from core.predictor import LabelProb, Prediction
from core.report import unknown_car_words

TOP_K = 5
PANEL_MIN_WIDTH = 340
PRICE_WIDEST = "$000,000"  # the big price's width: a six-figure price fits (the top range is open)
RANGES_HINT = "Likely: 1 in 2 cars like this sell in that range; 80%: 8 in 10 do."
HINT_HTML = f"{_escape(RANGES_HINT)} <a href='#what'>What is this price?</a>"
# In place of the ranges' words when there is no car: about as long, so nothing below moves.
# The unknown-car line at its longest (a long make and the longest class name): the status line
# is sized for it.
LONGEST_UNKNOWN = ("? Mercedes-Benz, a model or year this app does not know (closest it knows: Chevrolet "
                   "Silverado 1500 Classic Extended Cab 2007). Which car is it? Name it above.")
NO_CAR_HINT = "No price: nothing here looks like a car. Name the car in the field below to price one."
RANGES_PLAIN = ("The price is the middle (median) of what cars like this one sell for.\n"
                "likely: half of them sell inside this range (1 in 2), a quarter below and a quarter above;\n"
                "80%: 8 in 10 sell inside this wider range.")


def steady_label(text: str = "") -> QLabel:
    """A label whose text does not move the layout: its width comes from the layout, never
    from the text (a text too long for it is clipped).

    While a crop box moves, every result changes these texts; if their widths fed the layout,
    each result would resize the panel, the splitter and the photo and sweep views, and
    repaint every plot: several times the cost of the forward pass.
    """
    label = QLabel(text)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


class ElidedLabel(QLabel):
    """A one-line steady label that shortens a text too long for it with "…", keeping a make/model's
    year (``text()`` is whole, ``shown_text()`` what is painted)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def shown_text(self) -> str:
        return elide_keep_year(self.text(), self.fontMetrics(), self.contentsRect().width())

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        """The text, and as its tooltip the whole of it (what "…" leaves out)."""
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         self.shown_text())
        painter.end()


class ProbabilityList(QGroupBox):
    """Up to TOP_K labels, each with a probability bar."""

    def __init__(self, title: str, parent: QWidget | None = None, name_share: tuple[int, int] = (3, 2)) -> None:
        super().__init__(title, parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setVerticalSpacing(2)
        grid.setColumnStretch(0, name_share[0])  # names : bars
        grid.setColumnStretch(1, name_share[1])
        self._names: list[QLabel] = []
        self._bars: list[ProbabilityBar] = []
        for row in range(TOP_K):
            name = ElidedLabel()
            bar = ProbabilityBar()
            grid.addWidget(name, row, 0)
            grid.addWidget(bar, row, 1)
            self._names.append(name)
            self._bars.append(bar)
        self.set_items(())

    def set_items(self, items: tuple[LabelProb, ...]) -> None:
        for row, (name, bar) in enumerate(zip(self._names, self._bars, strict=True)):
            if row < len(items):
                it = items[row]
                name.setText(it.label)
                name.setToolTip(it.label)
                bar.set_probability(it.probability)
            else:
                name.setText("")
                name.setToolTip("")
                bar.set_probability(None)

    def texts(self) -> list[str]:
        return [n.text() for n in self._names if n.text()]


class ResultPanel(QWidget):
    """``show_prediction(request_id, pred)`` updates every part, then emits ``result_shown``."""

    result_shown = Signal(int, object)  # request id, Prediction: emitted after chart + text update
    model_details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shown: Prediction | None = None
        self.shown_request = 0
        self._has_model = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.setMinimumWidth(PANEL_MIN_WIDTH)

        # What the big number is, in a few words: the year it is a price for and the inputs used;
        # the long meaning is one click away ("What is this price?").
        self.caption = ElidedLabel("Estimated price")  # a caption too long for the panel ends with "…"
        self.caption.setStyleSheet("QLabel { color: #555; }")
        layout.addWidget(self.caption)
        self.price_label = QLabel("—")
        font = QFont()
        font.setPointSize(22)
        font.setBold(True)
        self.price_label.setFont(font)
        self.price_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.price_label.setFixedWidth(self.price_label.fontMetrics().horizontalAdvance(PRICE_WIDEST) + 12)
        # Fixed price width, the range label takes the rest: neither text moves the layout.
        self.range_label = QLabel()
        self.range_label.setMinimumWidth(1)  # its text never sets the panel's minimum width
        self.range_label.setWordWrap(True)  # a narrow panel gets more lines, within the price's height
        self.range_label.setToolTip(RANGES_PLAIN)
        head = QHBoxLayout()
        head.addWidget(self.price_label)
        head.addWidget(self.range_label, 1)
        layout.addLayout(head)
        # The ranges in plain words, and the way to the long meaning.
        self.hint = QLabel(HINT_HTML)
        self.hint.setTextFormat(Qt.TextFormat.RichText)
        self.hint.setWordWrap(True)
        self.hint.setMinimumWidth(1)
        self.hint.setStyleSheet("QLabel { color: #555; }")
        self.hint.setToolTip(RANGES_PLAIN)
        self.hint.linkActivated.connect(lambda _: self.show_price_help())
        layout.addWidget(self.hint)
        self._help: HtmlDialog | None = None
        # Mileage, condition, year of sale, and "Which car is it?": what they price is the photo
        # session's (``pricer`` prices an estimate with the shown photo's inputs, no forward pass).
        self._meta: ModelMetadata | None = None
        self.pricer: Callable[[Prediction], Prediction] = lambda pred: pred
        self.price_inputs = PriceInputsWidget()
        layout.addWidget(self.price_inputs)
        self.car_picker = CarPicker()
        self.car_picker.year_of_sale = self.price_inputs.year.value
        layout.addWidget(self.car_picker)

        # The whole-car verdict: one line that is always there (so the chart below never moves),
        # showing either the confidence or the warning; switching pages resizes nothing.
        self.confidence_label = status_label("QLabel { background: #e8f1e4; color: #2d4a22; padding: 4px 6px; }")
        self.notice = status_label("QLabel { background: #fff3cd; color: #664d03; padding: 4px 6px; }")
        self.status = QStackedWidget()
        self.status.addWidget(self.confidence_label)
        self.status.addWidget(self.notice)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._fit_status_height(PANEL_MIN_WIDTH)
        layout.addWidget(self.status)

        self.chart = PriceChart()
        layout.addWidget(self.chart, 3)
        lists = QHBoxLayout()
        # Make/model names are long, years four digits: the names get the room.
        self.make_models = ProbabilityList("Make / model", name_share=(2, 1))
        self.years = ProbabilityList("Model year", name_share=(1, 1))
        lists.addWidget(self.make_models, 2)
        lists.addWidget(self.years, 1)
        layout.addLayout(lists)

        self.model_line = QLabel("")
        self.model_line.setWordWrap(True)
        self.model_line.setStyleSheet("QLabel { color: #555; }")
        self.model_line.setTextFormat(Qt.TextFormat.RichText)
        self.model_line.linkActivated.connect(lambda _: self.model_details_requested.emit())
        layout.addWidget(self.model_line)
        self.set_model(None, "")

    def _fit_status_height(self, width: int) -> None:
        """Tall enough for the warning at this width (at least two lines), so the line's height
        changes when the panel is resized, never when a result comes in."""
        text_width = max(50, width - 2 * 6 - 2 * 6)  # panel and label padding
        flags = int(Qt.TextFlag.TextWordWrap)
        fm = self.notice.fontMetrics()
        need = max(fm.boundingRect(0, 0, text_width, 10_000, flags, f"⚠ {t}").height() for t in longest_status_texts())
        height = max(need, 2 * fm.lineSpacing()) + 2 * 4 + 2
        if self.status.minimumHeight() != height:  # fixed: minimum == maximum == height
            self.status.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_status_height(event.size().width())

    def set_model(self, meta: ModelMetadata | None, problem: str) -> None:
        """Which model makes the estimates; ``problem`` says why none is loaded."""
        self._has_model = meta is not None  # before the empty prediction: it reads this
        self._meta = meta
        self.chart.set_price_spec(meta.price if meta else None, display_bounds(meta) if meta else None)
        self.show_prediction(0, None)
        if meta is None:
            self.model_line.setText(
                "<b>No model is loaded</b>, so nothing can be estimated. Use File &gt; Open model… "
                f"to choose a CarValue model file.<br>{_escape(problem)}")
            self.price_label.setText("No model")
            self.caption.setText("Estimated price")
            self.hint.setToolTip(RANGES_PLAIN)
            return
        self.set_model_line_year(self.price_inputs.year.value())

    def reprice(self) -> None:
        """The shown photo's inputs or the year of sale changed: show the estimate priced anew."""
        if self._meta is not None:
            self.set_model_line_year(self.price_inputs.year.value())
        if self.shown is not None:
            self.show_prediction(self.shown_request, self.shown)

    def set_model_line_year(self, year: int) -> None:
        """The caption and the price's meaning name the year of sale; the model line names the model."""
        if self._meta is None:
            return
        created = f", {self._meta.created[:10]}" if self._meta.created else ""
        self.model_line.setText(f"Model: <b>{_escape(self._meta.name)}</b>{_escape(created)} · "
                                "<a href='#model'>details…</a>")
        self.hint.setToolTip(f"{self.price_meaning()}\n\n{RANGES_PLAIN}")
        if self.shown is None:
            self.caption.setText(f"Estimated price, {year}")

    def price_meaning(self) -> str:
        """What the prices are (core.pricing's sentence for this model and year of sale)."""
        if self._meta is None:
            return ""
        return describe(self._meta, self.price_inputs.year.value()) or "a price estimate"

    def price_help_html(self) -> str:
        """Everything the price says about itself, for "What is this price?"."""
        pred = self.shown
        parts = [f"<p><b>What the price is.</b> {_escape(self.price_meaning() or 'No model is loaded.')}</p>",
                 "<p><b>The ranges.</b> " + _escape(RANGES_PLAIN).replace("\n", "<br>") + "</p>"]
        if pred is not None and pred.price is not None:
            w = pred.price.words()
            parts.append(f"<p><b>Used for this estimate:</b> {_escape(w['inputs_used'])}</p>")
            parts += [f"<p>{_escape(n)}</p>" for n in w["notes"]]
            parts.append(f"<p>{_escape(w['not_seen'])}</p>")
        return "".join(parts)

    def show_price_help(self) -> HtmlDialog:
        if self._help is None:
            self._help = HtmlDialog("What is this price?", "", self)
            self._help.resize(560, 360)
        self._help.text.setHtml(self.price_help_html())
        self._help.show()
        self._help.raise_()
        return self._help

    @property
    def price_greyed(self) -> bool:
        """The big price is shown greyed (not bold): it is not an answer for a whole car."""
        return not self.price_label.font().bold()

    def _grey_price(self, greyed: bool) -> None:
        font = self.price_label.font()
        if font.bold() == greyed:
            font.setBold(not greyed)
            self.price_label.setFont(font)
            self.price_label.setStyleSheet("QLabel { color: #8a8a8a; }" if greyed else "")

    def show_prediction(self, request_id: int, pred: Prediction | None) -> None:
        if pred is not None:  # priced with this photo's inputs
            pred = self.pricer(pred)
        self.shown = pred
        self.shown_request = request_id
        self.car_picker.suggest_from(pred)
        self.chart.show_prediction(pred if pred is None or pred.priced else None)
        if pred is None or pred.priced:
            self.hint.setText(HINT_HTML)
        if pred is None:
            self._grey_price(False)
            self.price_label.setText("—" if self._has_model else "No model")
            self.range_label.setText("")
            self.caption.setText(f"Estimated price, {self.price_inputs.year.value()}")
            self.confidence_label.setText("")
            self.status.setCurrentWidget(self.confidence_label)
            self.make_models.set_items(())
            self.years.set_items(())
        elif not pred.priced:  # no car: no price, no histogram, no make/model bars
            self._grey_price(False)
            self.hint.setText(_escape(NO_CAR_HINT))
            self.price_label.setText("No car")
            self.price_label.setToolTip("")
            self.range_label.setText("")
            self.caption.setText("No car found in this photo" if pred.covers_photo else "No car in this box")
            self.make_models.set_items(())
            self.years.set_items(())
            self.notice.setText(f"⚠ {whole_car_message(pred.whole_car, pred.covers_photo)}")
            self.status.setCurrentWidget(self.notice)
        else:
            judged = pred.whole_car
            named = pred.price is not None and pred.price.car_source == "user"
            # Part of a car: the price is what the network says, not an answer: shown greyed.
            # A car the classes lack: the closest class's price is not this car's, shown greyed.
            self._grey_price((judged is WholeCar.NO and not named) or pred.unknown_car)
            self.price_label.setText(format_dollars(pred.median_price))
            self.range_label.setText(price_range_text(pred))
            self.caption.setText(f"If it were {pred.make_models[0].label}" if pred.unknown_car else
                                 caption_text(pred, self.price_inputs.year.value()))
            self.price_label.setToolTip(price_tooltip(pred))
            self.make_models.set_items(pred.make_models[:TOP_K])
            years = pred.years[:TOP_K]
            self.years.set_items((LabelProb(pred.year_words, years[0].probability), *years[1:]) if years else ())
            text = whole_car_message(judged, pred.covers_photo)
            if judged is WholeCar.NO_CAR:  # the user named the car: its price, the photo's verdict beside it
                text = "No car found in the photo: the price is for the car you named."
            if pred.unknown_car:
                self.notice.setText(f"? {unknown_car_words(pred)}. Which car is it? Name it above.")
                self.status.setCurrentWidget(self.notice)
            elif judged is WholeCar.YES:
                self.confidence_label.setText(f"✓ {text}")
                self.status.setCurrentWidget(self.confidence_label)
            else:
                self.notice.setText(f"{'?' if judged is WholeCar.UNSURE else '⚠'} {text}")
                self.status.setCurrentWidget(self.notice)
        self.result_shown.emit(request_id, pred)


def price_range_text(pred: Prediction) -> str:
    """Beside the price: the likely (middle-50%) range and, from a price model, the 80% range."""
    likely = f"likely {dollar_range(pred.price_low, pred.price_high)}"
    e = pred.price
    if e is None or e.source == "price_head":
        return likely
    return f"{likely}\n80%: {dollar_range(*e.range80)}"


def caption_text(pred: Prediction, year: int) -> str:
    """Over the price: what it is a price for ("Estimated price, 2026 · 150,000 mi · fair")."""
    e = pred.price
    if e is None:
        return f"Estimated price, {year}"
    if e.source == "price_head":
        return "Estimated price (no price model: year of sale and mileage not used)"
    return " · ".join([f"Estimated price, {e.year_of_sale}", *e.short_inputs().split(" · ")[1:]])


def price_tooltip(pred: Prediction) -> str:
    """Everything the price says about itself (core.pricing's words)."""
    if pred.price is None:
        return ""
    w = pred.price.words()
    return "\n".join([w["what"], w["ranges"], f"Inputs: {w['inputs_used']}", *w["notes"], w["not_seen"]])


def longest_status_texts() -> list[str]:
    """The whole-car line's longest texts: the status line is sized for them."""
    return [*(whole_car_message(j, covers) for j in (WholeCar.UNSURE, WholeCar.NO, WholeCar.NO_CAR)
              for covers in (False, True)), LONGEST_UNKNOWN]


def status_label(style: str) -> QLabel:
    label = steady_label()
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    label.setStyleSheet(style)
    return label

