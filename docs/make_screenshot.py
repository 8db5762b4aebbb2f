"""Take docs/screenshot.png: the real app under Xvfb on real car photos, with a crop box, the
price histogram and a pan-across sweep on screen.

    .venv/bin/python docs/make_screenshot.py [--model FILE] [--out docs/screenshot.png]

Re-runs itself under ``xvfb-run`` when there is no display (apt-get install xvfb). Uses the
bundled model; when there is none yet, a random-weight model from training/testmodels.py (the
window then says "TEST MODEL with random weights" under the price).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
IMAGES = REPO.parent / "shared" / "data" / "stanford-cars-train" / "images"
# Photos of the bundled model's validation part (its split's sha256 is in the model card), the only
# ones it never trained on, so the screenshot shows what a user would see on a new car.
MAIN_PHOTO = "00464.jpg"  # a wide side view (Hyundai Veracruz SUV 2012), good for the sweep
STRIP = ["00269.jpg", "00059.jpg", "00008.jpg", "00031.jpg", "00187.jpg", "00556.jpg"]
SIZE = (1400, 900)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--images", default=str(IMAGES))
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    ap.add_argument("--box", default="0.06,0.08,0.8,0.86",
                    help="crop box as fractions of the photo: x,y,w,h (default: around most of the car)")
    ap.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="window size WxH (default: %(default)s)")
    ap.add_argument("--framed", metavar="BACKGROUND",
                    help="show the main photo composited whole into this background photo (car at ~30%% of "
                         "the frame) with the box the app finds, no sweep")
    ap.add_argument("--photo", metavar="PHOTO",
                    help="show this photo first (for example one with no car in it) instead of the main car "
                         "photo, with the box the app finds, no sweep")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))

    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        if shutil.which("xvfb-run") is None:
            print("no display and no xvfb-run: apt-get install -y xvfb (or set DISPLAY)", file=sys.stderr)
            return 2
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {size[0]}x{size[1]}x24", sys.executable,
               str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])]
        return subprocess.call(cmd)

    images = Path(args.images)
    main_photo = images / MAIN_PHOTO
    if not main_photo.exists():
        print(f"{main_photo} not found (pass --images)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="carvalue-shot-"))
    os.environ["CARVALUE_CONFIG_DIR"] = str(work / "config")  # a fresh window, not the user's
    model = args.model
    if model is None:
        from core.predictor import default_model_path

        if default_model_path().exists():
            model = str(default_model_path())
        else:
            from training.testmodels import make_model_file

            model = str(make_model_file(work / "random.onnx")[0])
            print("no bundled model yet: using a random-weight test model", file=sys.stderr)

    from PySide6.QtCore import QEventLoop, QPointF, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication([sys.argv[0]])
    from carvalue_gui.main_window import MainWindow

    window = MainWindow(model_path=model)
    window.sweeps.animation.step_ms = 0
    window.setGeometry(0, 0, *size)
    window.show()

    def wait_until(predicate: object, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        loop = QEventLoop()
        timer = QTimer()
        timer.timeout.connect(lambda: loop.quit() if predicate() or time.monotonic() > deadline else None)  # type: ignore[operator]
        timer.start(20)
        loop.exec()
        timer.stop()
        if not predicate():  # type: ignore[operator]
            raise TimeoutError("the window did not get there in time")

    if args.framed:
        main_photo = framed_photo(main_photo, Path(args.framed), work / "framed.jpg")
    if args.photo:
        main_photo = Path(args.photo)
    window.intake.open_paths([str(main_photo)] + [str(images / n) for n in STRIP if (images / n).exists()])
    wait_until(lambda: len(window.entries) >= 2 and window.session.batch_pending() == 0)
    window.strip.select(1)
    wait_until(lambda: window.panel.shown is not None and window.panel.shown_request == window.session.requests.latest)
    if not args.framed and not args.photo:
        window.act_sweep.trigger()
        wait_until(lambda: window.sweep_plot.sweep is not None)
        # Then the crop box (by default around most of the car, so the box, the histogram and
        # the sweep all show).
        roi = window.crop_view.roi
        w, h = window.current_entry().photo.original_size  # type: ignore[union-attr]
        fx, fy, fw, fh = (float(v) for v in args.box.split(","))
        roi.setState({"pos": QPointF(fx * w, fy * h), "size": QPointF(fw * w, fh * h), "angle": 0.0})
        wait_until(lambda: window.panel.shown_request == window.session.requests.latest)
    for _ in range(20):  # let layouts and repaints settle (and a sharper copy of a large photo arrive)
        app.processEvents()
        time.sleep(0.05)
    screen = QGuiApplication.primaryScreen()
    geo = window.frameGeometry()
    shot = screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not shot.save(str(out)):
        print(f"could not write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({shot.width()}x{shot.height()}) with model {model}")
    window.close()
    return 0


def framed_photo(car_path: Path, background: Path, out: Path) -> Path:
    """The car photo pasted whole into ``background`` as training/data/compositing.py frames it (a
    held-out background of training/data/negatives.py, so the model never saw it), as a JPEG."""
    import numpy as np
    from PIL import Image

    from training.data.compositing import FrameRecipe, compose

    with Image.open(car_path) as car, Image.open(background) as bg:
        recipe = FrameRecipe(coverage=0.3, aspect=3 / 2, fill="photo", cx=0.6, cy=0.85, long_side=1600,
                             colour_match=0.5, feather=0.04)
        compose(car.convert("RGB"), recipe, np.random.default_rng(3), bg.convert("RGB")).image.save(out, quality=92)
    return out


if __name__ == "__main__":
    sys.exit(main())
