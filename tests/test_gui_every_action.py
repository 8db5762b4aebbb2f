"""Every menu action and every shortcut, used the way a user uses it (issue 31).

Shortcuts are pressed as keys on the focused window (``qtbot.keyClick`` with each of the
action's own key sequences, so a shortcut that changes is still pressed); actions without a key
are triggered through the window's own ``QAction`` (what a menu click does). Each test checks
what the user sees change. File dialogs are answered by patching ``QFileDialog``'s static
getters (the one thing a test cannot click); the other dialogs are not modal and are closed by
the test. ``test_every_action_and_key_has_a_test_here`` fails when an action is added to the
window without a test in this file."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("torch")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QToolBar, QWidget  # noqa: E402

from carvalue_gui.box_history import SETTLE_MS  # noqa: E402
from carvalue_gui.crop_view import NUDGE_FRACTION  # noqa: E402
from carvalue_gui.help_dialogs import HtmlDialog  # noqa: E402
from carvalue_gui.main_window import MainWindow  # noqa: E402
from carvalue_gui.model_dialog import ModelDialog  # noqa: E402
from core.geometry import Box  # noqa: E402
from tests.gui_support import WAIT_MS, load, make_photo, open_window, wait_shown  # noqa: E402

FOUND = (0.25, 0.5, 0.75, 1.0)  # where the test model "finds" the car (fractions of the photo)
PHOTO_SIZE = (400, 300)
FOUND_BOX = Box(100, 150, 200, 150)  # FOUND on a 400x300 photo

# Each of the window's actions and its test below (the audit at the end checks this is all).
TESTS = {
    "act_open": "test_ctrl_o_opens_the_photos_chosen",
    "act_open_folder": "test_ctrl_shift_o_opens_a_folder",
    "act_paste": "test_paste_keys_add_the_clipboard_image",
    "act_model": "test_ctrl_m_opens_the_model_chosen_and_cancel_keeps_the_model",
    "act_model_info": "test_model_details_opens_the_model_card",
    "act_export": "test_ctrl_e_exports_every_photo",
    "act_charts": "test_save_charts_writes_a_png",
    "act_quit": "test_quit_closes_the_window_and_saves_the_settings",
    "act_copy": "test_ctrl_c_copies_the_result_as_text",
    "act_reset": "test_ctrl_r_puts_the_box_back_on_the_found_car",
    "act_whole": "test_ctrl_shift_r_puts_the_box_on_the_whole_photo",
    "act_sweep": "test_ctrl_p_pans_across",
    "act_drivers": "test_ctrl_d_shows_and_hides_what_drives_the_estimate",
    "act_undo": "test_undo_and_redo_keys_move_the_box_back_and_forth",
    "act_redo": "test_undo_and_redo_keys_move_the_box_back_and_forth",
    "act_remove": "test_delete_removes_the_selected_photo",
    "act_about": "test_about_shows_the_version_and_the_model",
    "act_shortcuts": "test_f1_lists_the_keyboard_shortcuts",
}


@pytest.fixture(scope="module")
def framed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight model that always finds the car at ``FOUND``."""
    from training.testmodels import make_framed_model_file, make_model_file

    d = tmp_path_factory.mktemp("every_action")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    return make_framed_model_file(base, d / "framed.onnx", FOUND, 3.0)


@pytest.fixture
def win(qtbot: Any, framed_model: Path) -> MainWindow:
    return open_window(qtbot, framed_model)


def photo(tmp_path: Path, name: str = "car.jpg", seed: int = 1) -> Path:
    return make_photo(tmp_path / name, PHOTO_SIZE, seed)


def focus(qtbot: Any, window: MainWindow, widget: QWidget) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT_MS)
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=WAIT_MS)


def press(qtbot: Any, window: MainWindow, keys: QKeySequence, widget: QWidget | None = None) -> None:
    """Press ``keys`` (one key combination) with ``widget`` (the photo view by default) focused."""
    widget = widget or window.crop_view
    focus(qtbot, window, widget)
    combo = keys[0]
    qtbot.keyClick(widget, combo.key(), combo.keyboardModifiers())


def keys_of(action: QAction) -> list[QKeySequence]:
    return [k for k in action.shortcuts() if not k.isEmpty()]


def texts(keys: list[QKeySequence]) -> list[str]:
    return [k.toString() for k in keys]


def shown_dialogs(window: MainWindow) -> list[QDialog]:
    return [d for d in window.findChildren(QDialog) if d.isVisible()]


def with_car(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    load(qtbot, window, [photo(tmp_path)])
    wait_shown(qtbot, window)
    qtbot.waitUntil(lambda: window.crop_view.box() == FOUND_BOX, timeout=WAIT_MS)


# -- File ------------------------------------------------------------------------------------------
def test_ctrl_o_opens_the_photos_chosen(qtbot: Any, win: MainWindow, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Ctrl+O" in texts(keys_of(win.act_open))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([], ""))  # cancelled
    press(qtbot, win, win.act_open.shortcut())
    qtbot.wait(50)
    assert not win.entries
    chosen = [photo(tmp_path, "a.jpg", 1), photo(tmp_path, "b.jpg", 2)]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(p) for p in chosen], ""))
    with qtbot.waitSignal(win.loading_finished, timeout=WAIT_MS):
        press(qtbot, win, win.act_open.shortcut())
    assert [Path(e.path).name for e in win.entries.values()] == ["a.jpg", "b.jpg"]
    assert win.strip.count() == 2 and win.windowTitle() == "CarValue — a.jpg"


def test_ctrl_shift_o_opens_a_folder(qtbot: Any, win: MainWindow, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert texts(keys_of(win.act_open_folder)) == ["Ctrl+Shift+O"]
    folder = tmp_path / "folder"
    folder.mkdir()
    inside = [photo(folder, "c.jpg", 3), photo(folder, "d.jpg", 4)]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(win.loading_finished, timeout=WAIT_MS):
        press(qtbot, win, win.act_open_folder.shortcut())
    assert sorted(e.path for e in win.entries.values()) == sorted(str(p) for p in inside)
    assert win.strip.count() == 2

    # File > Open recent lists the folder; choosing it again adds nothing new; Clear empties it.
    win.recent_menu.aboutToShow.emit()
    recent = next(a for a in win.recent_menu.actions() if a.text() == str(folder))
    with qtbot.waitSignal(win.loading_finished, timeout=WAIT_MS):
        recent.trigger()
    assert win.strip.count() == 2
    clear = next(a for a in win.recent_menu.actions() if a.text().replace("&", "") == "Clear recent files")
    clear.trigger()
    win.recent_menu.aboutToShow.emit()
    assert [a.text() for a in win.recent_menu.actions()] == ["(none)"]


def test_paste_keys_add_the_clipboard_image(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    keys = keys_of(win.act_paste)
    assert "Ctrl+V" in texts(keys)
    QGuiApplication.clipboard().setImage(QImage(str(photo(tmp_path))))
    for n, k in enumerate(keys, start=1):  # Ctrl+V (and Shift+Ins where the platform has it)
        press(qtbot, win, k, win.strip)
        assert len(win.entries) == n and win.strip.count() == n
        assert win.current_entry() is list(win.entries.values())[-1]
    wait_shown(qtbot, win)
    QGuiApplication.clipboard().setText("no image here")
    press(qtbot, win, keys[0], win.strip)
    assert len(win.entries) == len(keys)
    assert "The clipboard holds no image to paste" in win.notices.messages


def test_ctrl_m_opens_the_model_chosen_and_cancel_keeps_the_model(qtbot: Any, win: MainWindow, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert texts(keys_of(win.act_model)) == ["Ctrl+M"]
    assert win.predictor is not None
    before = win.predictor
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))  # cancelled
    press(qtbot, win, win.act_model.shortcut())
    assert win.predictor is before
    copy = tmp_path / "again.onnx"
    copy.write_bytes(Path(before.path).read_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(copy), ""))
    press(qtbot, win, win.act_model.shortcut())
    assert win.predictor is not before and win.predictor.path == copy
    assert win.model_label.text() == f"Model: {win.predictor.metadata.name}"
    assert win.settings.model_path == str(copy.resolve())


def test_model_details_opens_the_model_card(qtbot: Any, win: MainWindow) -> None:
    assert win.predictor is not None and win.act_model_info.isEnabled()
    win.act_model_info.trigger()  # File > Model details…
    dialogs = shown_dialogs(win)
    assert len(dialogs) == 1 and isinstance(dialogs[0], ModelDialog)
    dialogs[0].close()


def test_ctrl_e_exports_every_photo(qtbot: Any, win: MainWindow, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert texts(keys_of(win.act_export)) == ["Ctrl+E"]
    load(qtbot, win, [photo(tmp_path, "a.jpg", 1), photo(tmp_path, "b.jpg", 2)])
    wait_shown(qtbot, win)
    out = tmp_path / "out.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    press(qtbot, win, win.act_export.shortcut())
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({Path(r["source"]).name for r in rows}) == ["a.jpg", "b.jpg"]
    assert win.statusBar().currentMessage().startswith(f"Exported 2 photos to {out}")


def test_save_charts_writes_a_png(qtbot: Any, win: MainWindow, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with_car(qtbot, win, tmp_path)
    out = tmp_path / "chart.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    win.act_charts.trigger()  # File > Save charts as PNG…
    assert not QImage(str(out)).isNull()
    assert win.statusBar().currentMessage() == f"Saved the price chart to {out}"


def test_quit_closes_the_window_and_saves_the_settings(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    from carvalue_gui.settings import load_settings

    with_car(qtbot, win, tmp_path)
    keys = keys_of(win.act_quit)  # Ctrl+Q on Linux and macOS; none on Windows (Alt+F4 closes)
    if keys:
        press(qtbot, win, keys[0])
    else:
        win.act_quit.trigger()  # File > Quit
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=WAIT_MS)
    saved, problem = load_settings()
    assert not problem and saved.recent_files == [str(tmp_path / "car.jpg")]


# -- Edit ------------------------------------------------------------------------------------------
def test_ctrl_c_copies_the_result_as_text(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert "Ctrl+C" in texts(keys_of(win.act_copy))
    assert not win.act_copy.isEnabled()  # nothing to copy yet
    with_car(qtbot, win, tmp_path)
    QGuiApplication.clipboard().setText("")
    press(qtbot, win, win.act_copy.shortcut(), win.strip)
    text = QGuiApplication.clipboard().text()
    assert text.startswith(f"Photo: {tmp_path / 'car.jpg'}") and "Make/model:" in text
    assert win.statusBar().currentMessage() == "Result copied"


def test_ctrl_r_puts_the_box_back_on_the_found_car(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert texts(keys_of(win.act_reset)) == ["Ctrl+R"]
    with_car(qtbot, win, tmp_path)
    win.crop_view.set_box(Box(10, 10, 120, 90))
    press(qtbot, win, win.act_reset.shortcut())
    assert win.crop_view.box() == FOUND_BOX
    assert wait_shown(qtbot, win).crop == FOUND_BOX
    assert win.current_entry().box is None  # type: ignore[union-attr]  # the automatic box again


def test_ctrl_shift_r_puts_the_box_on_the_whole_photo(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert texts(keys_of(win.act_whole)) == ["Ctrl+Shift+R"]
    with_car(qtbot, win, tmp_path)
    press(qtbot, win, win.act_whole.shortcut())
    whole = Box(0, 0, *PHOTO_SIZE)
    assert win.crop_view.box() == whole
    assert wait_shown(qtbot, win).crop == whole


def test_undo_and_redo_keys_move_the_box_back_and_forth(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert texts(keys_of(win.act_undo)) == ["Ctrl+Z"]
    redo_keys = keys_of(win.act_redo)
    assert texts(redo_keys) == ["Ctrl+Shift+Z", "Ctrl+Y"]
    with_car(qtbot, win, tmp_path)
    moved = Box(20, 10, 120, 90)
    win.crop_view.set_box(moved)
    qtbot.wait(SETTLE_MS + 100)  # the box's moves become one undo step
    press(qtbot, win, win.act_undo.shortcut())
    assert win.crop_view.box() == FOUND_BOX
    for k in redo_keys:  # each of the redo keys
        press(qtbot, win, k)
        assert win.crop_view.box() == moved
        assert wait_shown(qtbot, win).crop == moved
        press(qtbot, win, win.act_undo.shortcut())
        assert win.crop_view.box() == FOUND_BOX


def test_delete_removes_the_selected_photo(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert texts(keys_of(win.act_remove)) == [QKeySequence(Qt.Key.Key_Delete).toString()]
    load(qtbot, win, [photo(tmp_path, "a.jpg", 1), photo(tmp_path, "b.jpg", 2)])
    wait_shown(qtbot, win)
    first, second = win.entries.values()
    press(qtbot, win, win.act_remove.shortcut(), win.strip)
    assert list(win.entries) == [second.key] and win.strip.keys() == [second.key]
    assert win.current_entry() is second
    win.act_remove.trigger()  # Edit > Remove photo: the last one; an empty window
    assert not win.entries and win.strip.count() == 0
    assert win.windowTitle() == "CarValue" and not win.act_remove.isEnabled()


# -- the photo view's keys -------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "shift", "dx", "dy"), [
    (Qt.Key.Key_Left, False, -1, 0), (Qt.Key.Key_Right, False, 1, 0),
    (Qt.Key.Key_Up, False, 0, -1), (Qt.Key.Key_Down, False, 0, 1),
    (Qt.Key.Key_Right, True, 10, 0), (Qt.Key.Key_Up, True, 0, -10),
])
def test_arrow_keys_nudge_the_box(qtbot: Any, win: MainWindow, tmp_path: Path,
                                  key: Qt.Key, shift: bool, dx: int, dy: int) -> None:
    with_car(qtbot, win, tmp_path)
    start = Box(150, 100, 120, 90)  # room on every side
    win.crop_view.set_box(start)
    focus(qtbot, win, win.crop_view)
    mods = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    qtbot.keyClick(win.crop_view, key, mods)
    w, h = PHOTO_SIZE
    expected = Box(start.x + dx * NUDGE_FRACTION * w, start.y + dy * NUDGE_FRACTION * h, start.w, start.h)
    assert win.crop_view.box() == pytest.approx(expected)
    assert wait_shown(qtbot, win).crop == pytest.approx(expected)


# -- Tools -----------------------------------------------------------------------------------------
def test_ctrl_p_pans_across(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert texts(keys_of(win.act_sweep)) == ["Ctrl+P"]
    assert not win.act_sweep.isEnabled()  # no photo yet
    with_car(qtbot, win, tmp_path)
    with qtbot.waitSignal(win.sweep_animation_finished, timeout=WAIT_MS):
        press(qtbot, win, win.act_sweep.shortcut())
    entry = win.current_entry()
    assert entry is not None and entry.sweep is not None
    assert win.sweep_plot.sweep is not None and len(win.sweep_plot.sweep.boxes) == len(entry.sweep.boxes)


def test_ctrl_d_shows_and_hides_what_drives_the_estimate(qtbot: Any, win: MainWindow, tmp_path: Path) -> None:
    assert texts(keys_of(win.act_drivers)) == ["Ctrl+D"]
    with_car(qtbot, win, tmp_path)
    press(qtbot, win, win.act_drivers.shortcut())
    assert win.act_drivers.isChecked() and win.drivers.legend.isVisible()
    qtbot.waitUntil(lambda: win.drivers.shown is not None, timeout=WAIT_MS)
    press(qtbot, win, win.act_drivers.shortcut())
    assert not win.act_drivers.isChecked() and win.drivers.legend.isHidden()


# -- Help ------------------------------------------------------------------------------------------
def test_f1_lists_the_keyboard_shortcuts(qtbot: Any, win: MainWindow) -> None:
    assert "F1" in texts(keys_of(win.act_shortcuts))
    press(qtbot, win, win.act_shortcuts.shortcut())
    dialogs = shown_dialogs(win)
    assert [d.windowTitle() for d in dialogs] == ["Keyboard shortcuts"]
    assert isinstance(dialogs[0], HtmlDialog)
    listed = dialogs[0].text.toPlainText()
    for name in TESTS:  # every key of every action is listed
        for k in keys_of(getattr(win, name)):
            assert k.toString(QKeySequence.SequenceFormat.NativeText) in listed, (name, k.toString())
    assert "Arrow keys" in listed
    dialogs[0].close()


def test_about_shows_the_version_and_the_model(qtbot: Any, win: MainWindow) -> None:
    from carvalue_gui.version import app_version

    win.act_about.trigger()  # Help > About CarValue
    dialogs = shown_dialogs(win)
    assert [d.windowTitle() for d in dialogs] == ["About CarValue"]
    text = dialogs[0].text.toPlainText()  # type: ignore[attr-defined]
    assert f"CarValue {app_version()}" in text and win.predictor is not None
    assert win.predictor.metadata.name in text
    dialogs[0].close()


# -- the junk-filter labeller's keys (tests/dataset/test_labeller.py presses the others) ----------
@pytest.mark.parametrize("quit_key", [Qt.Key.Key_Q, Qt.Key.Key_Escape])
def test_labeller_space_skips_ctrl_z_undoes_and_q_or_esc_quits(qtbot: Any, tmp_path: Path, quit_key: Qt.Key) -> None:
    from carvalue_gui.labeller import LabellerWindow
    from core.dataset.image_store import ImageStore
    from core.dataset.labels import LabelFile

    store = ImageStore(tmp_path / "images")
    hashes = [store.put(photo(tmp_path, f"{i}.jpg", i).read_bytes()) for i in range(3)]
    labels = tmp_path / "labels.json"
    w = LabellerWindow(hashes, store, LabelFile(labels))
    qtbot.addWidget(w)
    w.show()
    qtbot.keyClick(w, Qt.Key.Key_G)
    qtbot.keyClick(w, Qt.Key.Key_Space)  # skip
    assert w.current() == hashes[2]
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the skip
    assert w.current() == hashes[1]
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo "good"
    assert w.current() == hashes[0] and LabelFile(labels).get(hashes[0]) is None
    qtbot.keyClick(w, quit_key)
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT_MS)


# -- the audit -------------------------------------------------------------------------------------
def test_every_action_and_key_has_a_test_here(qtbot: Any, win: MainWindow) -> None:
    """Each ``act_*`` of the window, and each action in its menus and toolbar, has its test
    above (a new action without one fails here)."""
    named = {name: a for name, a in vars(win).items() if isinstance(a, QAction) and name.startswith("act_")}
    assert set(named) == set(TESTS)
    assert all(callable(globals().get(test)) for test in TESTS.values())
    in_menus = [a for m in win.menuBar().actions() if m.menu() is not None
                for a in m.menu().actions() if not a.isSeparator()]  # type: ignore[union-attr]
    in_toolbars = [a for bar in win.findChildren(QToolBar) for a in bar.actions()]
    known = set(named.values()) | {win.recent_menu.menuAction()}
    assert [a.text() for a in in_menus + in_toolbars if a not in known] == []
