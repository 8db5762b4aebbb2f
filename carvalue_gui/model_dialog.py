"""Model details from the model file's metadata: what the price means, where the training data
came from (and its licence), how the model scored."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from core.modelfile import ModelMetadata
from core.predictor import PriceBin


def metadata_html(meta: ModelMetadata, path: str) -> str:
    def row(k: str, v: Any) -> str:
        return f"<tr><th align='left' valign='top'>{escape(k)}</th><td>{v}</td></tr>"

    def block(d: dict[str, Any]) -> str:
        if not d:
            return "<i>none recorded in the model file</i>"
        return "<br>".join(f"<b>{escape(str(k))}</b>: {escape(_short(v))}" for k, v in d.items())

    licence = next((meta.provenance[k] for k in ("licence", "license", "data_licence", "data_license")
                    if k in meta.provenance), None)
    ranges = ", ".join(PriceBin(lo, hi, 0.0).label() for lo, hi in meta.price.bounds())
    rows = [
        row("Name", escape(meta.name)),
        row("File", escape(path)),
        row("Created", escape(meta.created or "unknown")),
        row("Architecture", escape(meta.architecture)),
        row("Price", escape(meta.price.meaning or "no description in the model file")),
        row("Price ranges", escape(f"{ranges} ({meta.price.currency})")),
        row("Make/models", f"{len(meta.make_models) - 1} classes + Unknown"),
        row("Years", escape(f"{len(meta.years) - 1} years + Unknown ({_span(meta.years)})")),
        row("Input", escape(f"{meta.input.size}px, {meta.input.resize}, mean {meta.input.mean}, "
                            f"std {meta.input.std}")),
        row("'Whole car' check", escape(f"{meta.confidence.method}, threshold {meta.confidence.threshold}"
                                        + (f": {meta.confidence.note}" if meta.confidence.note else ""))),
        row("Licence", escape(str(licence)) if licence else "<i>not stated in the model file</i>"),
        row("Training data", block(meta.provenance)),
        row("Evaluation", block(meta.metrics)),
    ]
    return "<table cellspacing='4'>" + "".join(rows) + "</table>"


def _span(years: tuple[str, ...]) -> str:
    known = [y for y in years[:-1]]
    return f"{known[0]}–{known[-1]}" if known else "none"


def _short(v: Any, limit: int = 400) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"


class ModelDialog(QDialog):
    def __init__(self, meta: ModelMetadata, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model: {meta.name}")
        self.resize(640, 520)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setHtml(metadata_html(meta, path))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
