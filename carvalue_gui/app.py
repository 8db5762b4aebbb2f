"""``carvalue [--model FILE] [PHOTO_OR_FOLDER ...]``: open the desktop app."""

from __future__ import annotations

import argparse
import sys

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from carvalue_gui import startup_probe
from carvalue_gui.bundle import apply_app_identity
from carvalue_gui.main_window import MainWindow
from carvalue_gui.version import app_version


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="carvalue", description="Estimate a used car's price, "
                                     "make/model and year from photos (opens the desktop app).")
    parser.add_argument("paths", nargs="*", help="photos or folders of photos to open")
    parser.add_argument("--model", help="a CarValue model file (.onnx) instead of the bundled one")
    parser.add_argument("--version", "-V", action="version", version=f"carvalue {app_version()}")
    return parser.parse_args(args)


GIL_SWITCH_INTERVAL_S = 0.0005


def configure_process() -> None:
    """Hand the GIL between the GUI and inference threads every 0.5 ms instead of Python's 5 ms.

    A crop request wakes the inference thread while the GUI thread is still running Python
    (the ROI's own updates), and the result wakes the GUI thread while the worker finishes; with
    the default interval each hand-over can wait up to 5 ms. benchmarks/bench_gui.py, three
    interleaved pairs of 100 crop moves on the shared 2-core machine (load average 7-9): p95
    crop-move -> chart 171-194 ms at 5 ms against 103-153 ms at 0.5 ms (4.0-4.7x the single
    forward pass measured beside it, against 5.0-5.4x).
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def main(args: list[str]) -> int:
    try:
        opts = parse_args(args)
    except SystemExit as e:  # argparse: --help or a usage error
        return int(e.code or 0)
    configure_process()
    pg.setConfigOptions(antialias=True)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "carvalue"])
    app.setApplicationName("CarValue")
    app.setOrganizationName("CarValue")
    apply_app_identity(app)  # window icon + .desktop name (packaging)
    window = MainWindow(model_path=opts.model)
    startup_probe.install(app, window)  # no-op unless $CARVALUE_STARTUP_PROBE (benchmarks)
    window.show()
    if opts.paths:
        window.intake.open_paths(opts.paths)
    return int(app.exec())
