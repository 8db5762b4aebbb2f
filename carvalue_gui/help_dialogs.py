"""Help > About (version, model, licences) and Help > Keyboard shortcuts (made from the window's
actions, so the list cannot drift from what the keys do)."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from html import escape

from PySide6 import __version__ as pyside_version
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from carvalue_gui.model_dialog import licences
from carvalue_gui.version import app_version
from core.modelfile import ModelMetadata


def action_name(a: QAction) -> str:
    """An action's menu text as a sentence part: "Reset crop box to the car"."""
    return a.text().replace("&", "").rstrip("…")


def crop_view_rows(reset: QAction, nudge_fraction: float) -> list[tuple[str, str]]:
    """What the photo view does with the mouse and keys (see CropView): not actions, so made
    here; a double-click does what ``reset`` does (CropView.mouseDoubleClickEvent calls the same
    ``reset_box``), so its row is that action's text."""
    return [
        ("Arrow keys", f"Nudge the crop box by {nudge_fraction:.0%} of the photo (with Shift: {10 * nudge_fraction:.0%})"),
        ("Double-click the photo", action_name(reset)),
        ("Drag outside the box, or Shift+drag", "Draw a new crop box"),
        ("Drag the box or its handles", "Move or resize it"),
    ]


def shortcuts_html(actions: Sequence[QAction], extra: Sequence[tuple[str, str]] = ()) -> str:
    """One row per action with a shortcut (an action in two menus is listed once), then ``extra``."""
    rows: list[tuple[str, str]] = []
    seen: set[int] = set()
    for a in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts() if not k.isEmpty()]
        if keys and id(a) not in seen:
            seen.add(id(a))
            rows.append((" or ".join(keys), action_name(a)))
    rows += list(extra)
    body = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table cellspacing='6'>{body}</table>"


def about_html(meta: ModelMetadata | None, model_path: str) -> str:
    parts = [f"<h2>CarValue {escape(app_version())}</h2>",
             "<p>Estimates a used car's price, make/model and model year from a photo, offline.</p>"]
    if meta is None:
        parts.append("<p><b>Model:</b> none loaded.</p>")
    else:
        created = f", created {escape(meta.created[:10])}" if meta.created else ""
        parts.append(f"<p><b>Model:</b> {escape(meta.name)}{created}<br>{escape(model_path)}</p>")
        found = licences(meta)
        parts.append("<p><b>Model licences</b></p>" + (
            "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in found) + "</ul>" if found
            else "<p><i>No licence is stated in the model file.</i></p>"))
    parts.append("<p><b>Software</b>: CarValue is MIT-licensed. It uses Qt for Python (PySide6 "
                 f"{escape(pyside_version)}, LGPL-3.0), pyqtgraph (MIT), ONNX Runtime (MIT), numpy (BSD), "
                 "Pillow (HPND) and pi-heif with libheif/libde265 (LGPL-3.0) for HEIC photos.</p>")
    parts.append(f"<p>Python {escape(platform.python_version())} on {escape(platform.system())}</p>")
    return "".join(parts)


class HtmlDialog(QDialog):
    def __init__(self, title: str, html: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(560, 480)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setHtml(html)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
