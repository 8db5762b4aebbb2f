"""Resident memory of the app while a big folder of photos loads, printed as JSON.

    .venv/bin/python -m benchmarks.bench_memory [--model FILE] [--small 1000,10000] [--camera 1000]

Each run opens the real window (offscreen) in its own process, drops one folder on it and waits
until every photo is decoded and estimated. It reports the process's resident memory before the
drop, its peak while loading (the kernel's high-water mark, VmHWM, and the peak of samples taken
every 50 ms) and after, and how many decoded working copies stay resident. The folders are made
in a temp dir as symbolic links (each a distinct path, so the app decodes every one):
- small: the Stanford Cars training photos (~340x256), cycled when more are asked for;
- camera: ten 12-MP JPEGs made from a real photo (4000x3000), cycled.
Expected (issue 16): the peak grows with what the app keeps per photo (thumbnail, estimate),
not with the decoded photos: the loader waits while a bounded number of decoded photos wait for
the estimator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_gui import camera_photo, model_path  # noqa: E402
from benchmarks.common import STANFORD_IMAGES as STANFORD  # noqa: E402


def proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def linked_folder(folder: Path, sources: list[Path], count: int) -> Path:
    """``count`` distinct symbolic links to ``sources``, cycled."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        link = folder / f"photo-{i:05d}{sources[i % len(sources)].suffix}"
        if not link.is_symlink():
            link.symlink_to(sources[i % len(sources)].resolve())
    return folder


def child(folder: str, count: int, model: str) -> dict[str, object]:
    """One drop in this process (see the module docstring); returns what it measured."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from carvalue_gui.app import configure_process
    from carvalue_gui.main_window import MainWindow

    configure_process()
    window = MainWindow(model_path=model)
    window.show()

    def wait(predicate: object, timeout: float) -> None:
        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: loop.quit() if predicate() else None)  # type: ignore[operator]
        poll.start(50)
        expire = QTimer()
        expire.setSingleShot(True)
        expire.timeout.connect(loop.quit)
        expire.start(int(timeout * 1000))
        if not predicate():  # type: ignore[operator]
            loop.exec()
        poll.stop()
        if not expire.isActive():
            raise TimeoutError("timed out")

    deadline = time.monotonic() + 1.5  # let the worker's warm-ups finish first
    wait(lambda: time.monotonic() > deadline, 10)
    before = proc_status_mb("VmRSS")
    peak_sampled = before
    samples = QTimer()

    def sample() -> None:
        nonlocal peak_sampled
        peak_sampled = max(peak_sampled, proc_status_mb("VmRSS"))

    samples.timeout.connect(sample)
    samples.start(50)
    finished: list[int] = []
    window.loading_finished.connect(finished.append)
    t = time.perf_counter()
    job = window.intake.open_paths([folder])
    wait(lambda: job in finished and window.session.batch_pending() == 0, timeout=3600)
    seconds = time.perf_counter() - t
    samples.stop()
    app.processEvents()
    after = proc_status_mb("VmRSS")
    resident = sum(e.photo is not None for e in window.entries.values())
    estimated = sum(e.prediction is not None for e in window.entries.values())
    window.close()
    return {"photos": len(window.entries), "estimated": estimated,
            "notices": len(window.notices.messages), "rss_before_mb": round(before, 1),
            "peak_hwm_mb": round(proc_status_mb("VmHWM"), 1), "peak_sampled_mb": round(peak_sampled, 1),
            "rss_after_mb": round(after, 1), "peak_added_mb": round(proc_status_mb("VmHWM") - before, 1),
            "after_added_mb": round(after - before, 1), "working_copies_resident": resident,
            "load_and_estimate_s": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--small", default="1000,10000", help="counts of ~340x256 photos (comma-separated)")
    ap.add_argument("--camera", default="1000", help="counts of 12-MP photos (comma-separated)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "carvalue-bench-memory"))
    ap.add_argument("--child", nargs=2, metavar=("FOLDER", "COUNT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["CARVALUE_CONFIG_DIR"] = str(work / "config")
    model, model_kind = model_path(args.model, work)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), model)))
        return 0

    def counts(text: str) -> list[int]:
        return [int(c) for c in text.split(",") if c.strip()]

    small_sources = sorted(STANFORD.glob("*.jpg"))
    if not small_sources:
        raise SystemExit(f"no photos in {STANFORD}")
    camera_sources = [camera_photo(work / f"camera-12mp-{i}.jpg", (4000, 3000), i + 1) for i in range(10)] \
        if counts(args.camera) else []
    runs = []
    for kind, sources, size in (("small", small_sources, "Stanford Cars photos, ~340x256 JPEG"),
                                ("camera", camera_sources, "4000x3000 JPEG")):
        for n in counts(getattr(args, kind)):
            folder = linked_folder(work / f"{kind}-{n}", sources, n)
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--work", str(work),
                                  "--model", model, "--child", str(folder), str(n)],
                                 capture_output=True, text=True, cwd=REPO, check=False)
            if out.returncode != 0:
                raise SystemExit(f"{kind} {n}: {out.stderr[-2000:]}")
            runs.append({"kind": kind, "count": n, "size": size, "distinct_files": len(sources),
                         **json.loads(out.stdout.strip().splitlines()[-1])})
    print(json.dumps({"device": "this machine's CPU (see load_average)", "load_average": os.getloadavg(),
                      "model": {"file": model, "kind": model_kind}, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
