"""The real window's layout holds from 900x600 to 2560x1440 (issue 18, item 4): rendered
offscreen at three sizes with a priced estimate and a pan-across sweep on screen, no label is
cut short past reading and no widget overlaps another or is squeezed below what its layout
needs. Geometry, not pixels."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QRect  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractScrollArea,
    QApplication,
    QLabel,
    QMainWindow,
    QSplitterHandle,
    QWidget,
)

from carvalue_gui.result_panel import ElidedLabel  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402
from tests.pricefactory import make_priced_model_file  # noqa: E402

SIZES = ((900, 600), (1920, 1080), (2560, 1440))
MIN_SHOWN_CHARS = 12  # an elided label still shows this much of its text (or all of it)


@pytest.fixture(scope="module")
def priced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_priced_model_file(tmp_path_factory.mktemp("priced") / "priced.onnx")


def visible_widgets(root: QWidget) -> list[QWidget]:
    return [w for w in root.findChildren(QWidget) if w.isVisible() and not w.isWindow()]


def in_window(w: QWidget, window: QWidget) -> QRect:
    return QRect(w.mapTo(window, w.rect().topLeft()), w.size())


def layout_problems(window: QMainWindow) -> list[str]:
    """What a user would see as broken, from widget geometry alone."""
    problems: list[str] = []
    widgets = visible_widgets(window)
    for w in widgets:
        name = f"{type(w).__name__}({w.objectName() or getattr(w, 'text', lambda: '')()!s:.30})"
        parent = w.parentWidget()
        # inside its parent (a scroll area's viewport contents may scroll: not checked)
        if parent is not None and not isinstance(parent.parentWidget(), QAbstractScrollArea):
            if not parent.rect().contains(w.geometry()):
                problems.append(f"{name} sticks out of its parent: {w.geometry()} in {parent.rect()}")
        # not squeezed below what its layout needs
        lay = w.layout()
        if lay is not None:
            need = lay.minimumSize()
            if w.width() < need.width() or w.height() < need.height():
                problems.append(f"{name} is {w.width()}x{w.height()}, its layout needs "
                                f"{need.width()}x{need.height()}")
        if isinstance(w, pg.PlotWidget):  # a plot wider than its widget is cut off on the right
            item = w.getPlotItem()
            if item.width() > w.width() + 1 or item.height() > w.height() + 1:
                problems.append(f"{name}: the plot is {item.width():.0f}x{item.height():.0f} in a "
                                f"{w.width()}x{w.height()} widget (cut off)")
        if isinstance(w, QLabel) and w.text():
            problems += label_problems(w, name)
    # siblings never overlap
    by_parent: dict[int, list[QWidget]] = {}
    for w in widgets:
        if w.parentWidget() is not None:
            by_parent.setdefault(id(w.parentWidget()), []).append(w)
    for siblings in by_parent.values():
        boxes = [w for w in siblings if not isinstance(w, QSplitterHandle) and w.width() > 0 and w.height() > 0]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if a.geometry().intersects(b.geometry()):
                    problems.append(f"{type(a).__name__} {a.geometry()} overlaps {type(b).__name__} {b.geometry()}")
    return problems


def label_problems(label: QLabel, name: str) -> list[str]:
    text = label.text()
    if "<" in text and ">" in text:  # rich text: checked by height only
        text = ""
    rect = label.contentsRect()
    fm = label.fontMetrics()
    if isinstance(label, ElidedLabel):
        shown = label.shown_text()  # what it paints (a make/model keeps its year)
        if shown != text and len(shown) - 1 < MIN_SHOWN_CHARS:
            return [f"{name} shows only {shown!r} of {text!r}"]
        return []
    if label.wordWrap():
        need = label.heightForWidth(rect.width() + label.contentsMargins().left() + label.contentsMargins().right())
        if need > label.height() + 1:
            return [f"{name} needs {need} px height for its text, has {label.height()}"]
        return []
    if text and "\n" not in text and fm.horizontalAdvance(text) > rect.width() + 1:
        return [f"{name} cuts off {text!r}: needs {fm.horizontalAdvance(text)} px, has {rect.width()}"]
    return []


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_layout_holds_at_size(qtbot: object, priced_model: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    window = open_window(qtbot, priced_model)
    load(qtbot, window, [make_photo(tmp_path / "wide.jpg", (640, 360), 1),
                         make_photo(tmp_path / "tall.jpg", (300, 420), 2)])
    window.panel.price_inputs.mileage.setText("150000")
    wait_shown(qtbot, window)
    with qtbot.waitSignal(window.sweep_animation_finished, timeout=WAIT_MS):  # type: ignore[attr-defined]
        window.act_sweep.trigger()
    window.resize(*size)
    for _ in range(5):
        QApplication.processEvents()
    assert (window.width(), window.height()) == size, f"the window cannot be {size}: minimum {window.minimumSizeHint()}"
    problems = layout_problems(window)
    assert not problems, "\n".join(problems)
