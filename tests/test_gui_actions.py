"""Every menu item and shortcut does what it says when a user uses it (issue 30, item 1).

``QAction.triggered`` passes its ``checked`` flag to the slot: a slot with a defaulted first
parameter (``remove_photo(key=None)``) then got ``False`` and removed nothing, while tests that
called the method directly passed. These tests go through ``action.trigger()`` and real key
presses only; file dialogs are answered by patching ``QFileDialog`` (the one thing a test cannot
click)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog  # noqa: E402

from carvalue_gui.box_history import SETTLE_MS  # noqa: E402
from carvalue_gui.main_window import MainWindow  # noqa: E402
from carvalue_gui.model_dialog import ModelDialog  # noqa: E402
from core.geometry import Box  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, wait_shown  # noqa: E402


def three_photos(tmp_path: Path) -> list[Path]:
    return [make_photo(tmp_path / f"p{i}.jpg", (320, 200), i) for i in range(3)]


def focus(qtbot: Any, window: MainWindow, widget: Any) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=WAIT_MS)


def test_edit_remove_photo_removes_the_selected_photo(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    load(qtbot, window, three_photos(tmp_path))
    wait_shown(qtbot, window)
    first, second, third = window.entries.values()
    window.strip.select(second.key)
    window.act_remove.trigger()  # Edit > Remove photo
    assert list(window.entries) == [first.key, third.key]
    assert window.strip.keys() == [first.key, third.key] and window.current_entry() is third


def test_the_delete_key_removes_the_selected_photo(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    load(qtbot, window, three_photos(tmp_path))
    wait_shown(qtbot, window)
    first, second, third = window.entries.values()
    window.strip.select(first.key)
    focus(qtbot, window, window.strip)
    qtbot.keyClick(window.strip, Qt.Key.Key_Delete)
    assert list(window.entries) == [second.key, third.key] and window.current_entry() is second
    focus(qtbot, window, window.crop_view)  # from the photo view too
    qtbot.keyClick(window.crop_view, Qt.Key.Key_Delete)
    assert list(window.entries) == [third.key]


def test_delete_in_the_mileage_field_edits_the_text_and_keeps_the_photo(qtbot: Any, window: MainWindow,
                                                                        tmp_path: Path) -> None:
    load(qtbot, window, three_photos(tmp_path)[:1])
    wait_shown(qtbot, window)
    field = window.panel.price_inputs.mileage
    field.setText("12345")
    focus(qtbot, window, field)
    field.setCursorPosition(0)
    qtbot.keyClick(field, Qt.Key.Key_Delete)
    assert field.text() == "2345" and len(window.entries) == 1


def test_every_action_works_when_triggered(qtbot: Any, window: MainWindow, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit: each of the window's actions, through ``trigger()``, has its effect (any slot
    handed ``checked`` where it expects something else fails here)."""
    photos = three_photos(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    in_folder = make_photo(folder / "f.jpg", (300, 200), 7)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(p) for p in photos[:2]], ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))

    with qtbot.waitSignal(window.loading_finished, timeout=WAIT_MS):
        window.act_open.trigger()
    qtbot.waitUntil(lambda: window.session.batch_pending() == 0, timeout=WAIT_MS)
    assert [Path(e.path).name for e in window.entries.values()] == ["p0.jpg", "p1.jpg"]
    with qtbot.waitSignal(window.loading_finished, timeout=WAIT_MS):
        window.act_open_folder.trigger()
    qtbot.waitUntil(lambda: window.session.batch_pending() == 0, timeout=WAIT_MS)
    assert any(e.path == str(in_folder) for e in window.entries.values())

    QGuiApplication.clipboard().setImage(QImage(str(photos[2])))
    n = len(window.entries)
    window.act_paste.trigger()
    assert len(window.entries) == n + 1

    wait_shown(qtbot, window)
    QGuiApplication.clipboard().setText("")
    window.act_copy.trigger()
    assert QGuiApplication.clipboard().text().startswith("Photo:")

    entry = window.current_entry()
    assert entry is not None
    found = entry.found_box() or Box.full(entry.size)
    moved = Box(10, 10, entry.size[0] / 3, entry.size[1] / 3)
    window.crop_view.set_box(moved)
    window.act_reset.trigger()
    assert window.crop_view.box() == found
    window.crop_view.set_box(moved)
    qtbot.wait(SETTLE_MS + 100)  # one undo step per move
    window.act_whole.trigger()
    assert window.crop_view.box() == Box.full(entry.size)
    qtbot.wait(SETTLE_MS + 100)
    window.act_undo.trigger()
    assert window.crop_view.box() == moved
    window.act_redo.trigger()
    assert window.crop_view.box() == Box.full(entry.size)

    with qtbot.waitSignal(window.sweep_animation_finished, timeout=WAIT_MS):
        window.act_sweep.trigger()
    assert window.current_entry() is not None and window.current_entry().sweep is not None  # type: ignore[union-attr]

    window.act_drivers.trigger()
    assert window.act_drivers.isChecked() and window.drivers.legend.isVisible()
    window.act_drivers.trigger()
    assert not window.act_drivers.isChecked()

    def dialogs() -> list[QDialog]:
        return [w for w in window.findChildren(QDialog) if w.isVisible()]

    for action, title in ((window.act_shortcuts, "Keyboard shortcuts"), (window.act_about, "About CarValue")):
        action.trigger()
        assert [d.windowTitle() for d in dialogs()] == [title]
        dialogs()[0].close()
    window.act_model_info.trigger()
    shown = dialogs()
    assert len(shown) == 1 and isinstance(shown[0], ModelDialog)
    shown[0].close()

    csv_out = tmp_path / "out.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(csv_out), ""))
    window.act_export.trigger()
    assert len(json.loads(csv_out.read_text())["photos"]) == len(window.entries)
    png_out = tmp_path / "charts.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(png_out), ""))
    window.act_charts.trigger()
    assert png_out.stat().st_size > 0

    model_copy = tmp_path / "again.onnx"
    model_copy.write_bytes(Path(window.predictor.path).read_bytes())  # type: ignore[union-attr]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(model_copy), ""))
    window.act_model.trigger()
    assert window.predictor is not None and window.predictor.path == model_copy

    n = len(window.entries)
    window.act_remove.trigger()
    assert len(window.entries) == n - 1

    window.recent_menu.aboutToShow.emit()  # File > Open recent > a folder
    recent = next(a for a in window.recent_menu.actions() if a.text() == str(folder))
    with qtbot.waitSignal(window.loading_finished, timeout=WAIT_MS):
        recent.trigger()
    clear = next(a for a in window.recent_menu.actions() if a.text() == "&Clear recent files")
    clear.trigger()
    assert window.settings.recent_files == []

    window.act_quit.trigger()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)

