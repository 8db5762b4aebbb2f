"""Sizes of the built app and installers, and start-up time of the built app vs. the venv.

    python benchmarks/bench_package.py [--runs 5] [--out result.json]

Needs a build (``python3 packaging/build.py``).  Prints one JSON object:

* ``sizes``: dist/CarValue/ (sum of file sizes, symlinks not followed), the .deb and .tar.gz.
* ``start``: for each of ``built`` (dist/CarValue/CarValue) and ``venv`` (the same code run by
  the build venv's Python from this checkout): seconds from spawning the process to the main
  window's first paint (``window``, no photo) and to the first prediction shown for the bundled
  sample photo (``prediction``), offscreen (QT_QPA_PLATFORM=offscreen).  Runs alternate
  built/venv so background load hits both alike; ``first`` is each one's first run, ``median``
  and ``min`` are over all runs.  Both use the same model file (the bundled one).
* ``ratio_window``: built median / venv median (target <= 1.2).

"Cold" here means a fresh process each run; the OS page cache is not dropped (that needs root
and would disturb other work on the machine), so disk reads are mostly warm after run one.
The timing hook is carvalue_gui/startup_probe.py ($CARVALUE_STARTUP_PROBE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK = "CARVALUE_STARTUP_PROBE "
SAMPLE = REPO / "resources" / "samples" / "synthetic-sedan.jpg"


class BenchError(Exception):
    pass


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def sizes(dist: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    app = dist / "CarValue"
    exe = app / "CarValue"
    built_at = exe.stat().st_mtime if exe.exists() else 0.0
    if app.is_dir():
        b = tree_bytes(app)
        out["onedir"] = {"path": str(app), "bytes": b, "MB": round(b / 1e6, 1), "MiB": round(b / 2**20, 1)}
    for pattern, key in (("carvalue_*.deb", "deb"), ("CarValue-*.tar.gz", "tar_gz")):
        found = sorted(dist.glob(pattern), key=lambda p: p.stat().st_mtime)
        if found:
            b = found[-1].stat().st_size
            out[key] = {"path": str(found[-1]), "bytes": b, "MB": round(b / 1e6, 1), "MiB": round(b / 2**20, 1),
                        # made from an older dist/CarValue/ than the one there now
                        "stale": found[-1].stat().st_mtime < built_at}
    return out


def one_start(cmd: list[str], env: dict[str, str], mode: str, timeout: float) -> float:
    """Seconds from spawn to the probe's event (window paint or first prediction)."""
    env = dict(env, CARVALUE_STARTUP_PROBE=mode, CARVALUE_STARTUP_PROBE_TIMEOUT=str(timeout))
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        env["CARVALUE_CONFIG_DIR"] = str(Path(tmp) / "config")  # same fresh settings every run
        env["CARVALUE_CACHE_DIR"] = str(Path(tmp) / "cache")
        args = [*cmd, str(SAMPLE)] if mode == "prediction" else cmd
        t0 = time.time()
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout + 30, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{' '.join(args)} (probe {mode}) exited {proc.returncode} without a result:\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    facts = json.loads(lines[-1][len(MARK):])
    if facts.get("event") != mode:
        raise BenchError(f"probe {mode} ended with {facts.get('event')!r}: {facts}")
    return float(facts[f"{mode}_epoch"]) - t0


def summarise(values: list[float]) -> dict[str, object]:
    return {"first": round(values[0], 3), "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "runs": [round(v, 3) for v in values]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", type=Path, default=REPO / "dist")
    ap.add_argument("--venv-python", type=Path, default=REPO / "build" / "pkg-venv" / "bin" / "python",
                    help="Python of the venv to compare with (default: the build venv)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)

    app = args.dist / "CarValue" / "CarValue"
    model = args.dist / "CarValue" / "_internal" / "resources" / "models" / "carvalue.onnx"
    if not app.exists():
        print(f"no built app at {app}: run python3 packaging/build.py first", file=sys.stderr)
        return 2
    if not args.venv_python.exists():
        print(f"no venv Python at {args.venv_python}", file=sys.stderr)
        return 2
    base_env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
                "QT_QPA_PLATFORM": "offscreen", "CARVALUE_MODEL": str(model)}
    venv_env = dict(base_env, PYTHONPATH=str(REPO))
    commands = {"built": ([str(app)], base_env),
                "venv": ([str(args.venv_python), "-m", "carvalue_gui.launcher"], venv_env)}
    times: dict[str, dict[str, list[float]]] = {k: {"window": [], "prediction": []} for k in commands}
    try:
        for _ in range(args.runs):
            for mode in ("window", "prediction"):
                for kind, (cmd, env) in commands.items():
                    times[kind][mode].append(one_start(cmd, env, mode, args.timeout))
    except (BenchError, subprocess.TimeoutExpired) as e:
        print(f"bench FAILED: {e}", file=sys.stderr)
        return 1
    start = {k: {m: summarise(v) for m, v in d.items()} for k, d in times.items()}
    ratio = statistics.median(times["built"]["window"]) / statistics.median(times["venv"]["window"])
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "venv_python": str(args.venv_python),
        "runs": args.runs,
        "sizes": sizes(args.dist),
        "start_s": start,
        "ratio_window": round(ratio, 3),
        "ratio_prediction": round(statistics.median(times["built"]["prediction"])
                                  / statistics.median(times["venv"]["prediction"]), 3),
        "target_ratio_window": 1.2,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
