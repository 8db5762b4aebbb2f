"""Start-up timing for benchmarks/bench_package.py (inactive unless asked for).

With ``CARVALUE_STARTUP_PROBE=window`` the app prints one JSON line when the main window has
painted for the first time and quits; with ``CARVALUE_STARTUP_PROBE=prediction`` it waits for
the first prediction to be shown (open a photo on the command line) and then prints and quits.
The line is ``CARVALUE_STARTUP_PROBE {"event": ..., "window_epoch": ..., ...}``; epochs are
``time.time()`` so the caller can subtract the moment it spawned the process (this covers the
PyInstaller bootloader too, which in-process clocks cannot see).

A probe that never fires (e.g. the model failed to load, so nothing is predicted) gives up
after ``CARVALUE_STARTUP_PROBE_TIMEOUT`` seconds (default 60): it prints the line with
``"event": "timeout"`` and the app exits with status 3.
"""

from __future__ import annotations

import json
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

ENV = "CARVALUE_STARTUP_PROBE"
MARK = "CARVALUE_STARTUP_PROBE"
MODES = ("window", "prediction")
TIMEOUT_EXIT = 3
_ACTIVE: list[_Probe] = []  # keeps the armed probe alive


class _Probe(QObject):
    def __init__(self, app: QApplication, window: QWidget, mode: str, timeout_s: float) -> None:
        super().__init__(window)
        self.app, self.window, self.mode = app, window, mode
        self.facts: dict[str, object] = {"mode": mode, "pid": os.getpid(),
                                         "frozen": bool(getattr(sys, "frozen", False)),
                                         "installed_epoch": time.time()}
        self.done = False
        window.installEventFilter(self)
        if mode == "prediction":
            signal = getattr(window, "result_shown", None)
            if signal is None:
                raise RuntimeError(f"{ENV}=prediction needs a main window with a result_shown signal")
            signal.connect(self._on_result)
        QTimer.singleShot(int(timeout_s * 1000), self._on_timeout)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if watched is self.window and event.type() == QEvent.Type.Paint and "window_epoch" not in self.facts:
            self.facts["window_epoch"] = time.time()
            if self.mode == "window":
                self._finish("window", 0)
        return False

    def _on_result(self, *_args: object) -> None:
        if "prediction_epoch" not in self.facts:
            self.facts["prediction_epoch"] = time.time()
            self._finish("prediction", 0)

    def _on_timeout(self) -> None:
        self._finish("timeout", TIMEOUT_EXIT)

    def _finish(self, event: str, code: int) -> None:
        if self.done:
            return
        self.done = True
        self.facts["event"] = event
        print(f"{MARK} {json.dumps(self.facts)}", flush=True)
        # Once the current event has been handled: close the window (its closeEvent stops the
        # app's worker threads; quitting with them running aborts the process), then quit.
        QTimer.singleShot(0, lambda: self._quit(code))

    def _quit(self, code: int) -> None:
        self.window.close()
        self.app.exit(code)


def install(app: QApplication, window: QWidget) -> None:
    """Arm the probe if $CARVALUE_STARTUP_PROBE asks for it; otherwise do nothing."""
    mode = os.environ.get(ENV, "").strip()
    if not mode:
        return
    if mode not in MODES:
        raise SystemExit(f"{ENV} must be one of {', '.join(MODES)}, not {mode!r}")
    timeout_s = float(os.environ.get(f"{ENV}_TIMEOUT", "60"))
    _ACTIVE.append(_Probe(app, window, mode, timeout_s))
