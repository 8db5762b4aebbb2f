"""The window fits the screen it opens on (issue 30, item 4): on a 1280x800 laptop the first start
opened 1360x860 and the price panel was cut off at the right. Each start here is the real app
(``carvalue_gui.app.main``) in its own process, on an offscreen screen of the size asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

REPO = Path(__file__).resolve().parent.parent
# Starts the app as `carvalue` does; once its window is up, prints the window's frame and the
# screen's free area, optionally resizes it, and closes it (which saves the settings).
START = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from carvalue_gui.app import main
from carvalue_gui.main_window import MainWindow

app = QApplication(sys.argv[:1])
resize = json.loads(sys.argv[1])

def report():
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
    f, free = window.frameGeometry(), window.screen().availableGeometry()
    print(json.dumps({"frame": [f.x(), f.y(), f.width(), f.height()],
                      "free": [free.x(), free.y(), free.width(), free.height()],
                      "panel_right": window.panel.mapTo(window, window.panel.rect().topRight()).x() + window.x()}))
    if resize:
        window.resize(*resize)
        app.processEvents()
    window.close()

QTimer.singleShot(300, report)
sys.exit(main(sys.argv[2:]))
"""


def start(tmp_path: Path, model: Path, screen: tuple[int, int], resize: tuple[int, int] | None = None) -> dict:
    config = tmp_path / f"screen-{screen[0]}x{screen[1]}.json"
    config.write_text(json.dumps({"synchronousWindowSystem": True, "windowFrameMargins": True, "screens": [
        {"name": "screen", "x": 0, "y": 0, "width": screen[0], "height": screen[1], "logicalDpi": 96,
         "logicalBaseDpi": 96, "dpr": 1}]}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}"}
    done = subprocess.run([sys.executable, "-c", START, json.dumps(resize), "--model", str(model)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def inside(frame: list[int], free: list[int]) -> bool:
    x, y, w, h = frame
    fx, fy, fw, fh = free
    return fx <= x and fy <= y and x + w <= fx + fw and y + h <= fy + fh


def test_first_start_on_a_1280x800_screen_fits_it(tmp_path: Path, model_file: Path) -> None:
    shown = start(tmp_path, model_file, (1280, 800))
    assert inside(shown["frame"], shown["free"]), shown
    assert shown["panel_right"] <= 1280, "the price panel runs off the screen"


def test_a_window_saved_on_a_larger_screen_fits_a_smaller_one(tmp_path: Path, model_file: Path) -> None:
    big = start(tmp_path, model_file, (2560, 1440), resize=(2200, 1300))
    assert inside(big["frame"], big["free"]) and big["frame"][2] >= 1360  # the default where it fits
    shown = start(tmp_path, model_file, (1280, 800))  # the same settings, now on a laptop
    assert inside(shown["frame"], shown["free"]), shown
