"""``carvalue [--model FILE] [PHOTO_OR_FOLDER ...]``: open the desktop app."""

from __future__ import annotations

import argparse
import sys

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from carvalue_gui import startup_probe
from carvalue_gui.main_window import MainWindow


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="carvalue", description="Estimate a used car's price, "
                                     "make/model and year from photos (opens the desktop app).")
    parser.add_argument("paths", nargs="*", help="photos or folders of photos to open")
    parser.add_argument("--model", help="a CarValue model file (.onnx) instead of the bundled one")
    return parser.parse_args(args)


def main(args: list[str]) -> int:
    try:
        opts = parse_args(args)
    except SystemExit as e:  # argparse: --help or a usage error
        return int(e.code or 0)
    pg.setConfigOptions(antialias=True)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "carvalue"])
    app.setApplicationName("CarValue")
    app.setOrganizationName("CarValue")
    window = MainWindow(model_path=opts.model)
    startup_probe.install(app, window)  # no-op unless $CARVALUE_STARTUP_PROBE (benchmarks)
    window.show()
    if opts.paths:
        window.open_paths(opts.paths)
    return int(app.exec())
