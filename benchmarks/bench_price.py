"""`carvalue price --csv` on 10,000 rows: the whole command, as a user runs it (issue 28).

Writes a CSV of ``--rows`` cars (names from tests/fixtures/listing_names.csv, as listings spell
them, with random mileages, conditions and years of sale; a few cars the catalogue lacks, which
must still get their line), then runs ``python -m carvalue_gui.launcher price --csv FILE``
(text, then ``--json``) in a fresh process, so the figure includes interpreter start, imports
and loading the catalogue and depreciation.  Target: under 10 s on this 2-core machine.

Prints one JSON object.

    .venv/bin/python -m benchmarks.bench_price [--rows 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT / "tests" / "fixtures" / "listing_names.csv"
OUTSIDE = ROOT / "tests" / "fixtures" / "listing_names_outside.csv"
CONDITIONS = ("", "", "like new", "excellent", "good", "fair", "salvage")


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(NAMES, newline="") as f:
        names = [(r["make"], r["model"], r["year"]) for r in csv.DictReader(f)]
    with open(OUTSIDE, newline="") as f:
        outside = [(r["make"], r["model"], r["year"]) for r in csv.DictReader(f)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["make", "model", "year", "mileage", "km", "condition", "year_of_sale"])
        for i in range(n):
            make, model, year = rng.choice(outside) if i % 100 == 99 else rng.choice(names)
            mileage = "" if rng.random() < 0.2 else str(rng.randint(0, 300_000))
            w.writerow([make, model, year, mileage, rng.choice(["", "", "no", "yes"]) if mileage else "",
                        rng.choice(CONDITIONS), rng.choice(["", "2024", "2025", "2026"])])


def run_once(csv_path: Path, as_json: bool) -> tuple[float, int, int, float]:
    """(wall seconds, results printed, exit code, CPU seconds of the command: user + system; on a
    machine shared with other jobs the CPU time is the steadier figure)."""
    cmd = [sys.executable, "-m", "carvalue_gui.launcher", "price", "--csv", str(csv_path)] + (["--json"] if as_json else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode not in (0, 1):
        raise SystemExit(f"carvalue price failed ({r.returncode}): {r.stderr.strip()}")
    lines = r.stdout.splitlines()
    results = len(lines) if as_json else sum(1 for line in lines if line and not line.startswith(" "))
    return seconds, results, r.returncode, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out: dict[str, object] = {"rows": args.rows, "target_s": 10.0}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cars.csv"
        write_rows(path, args.rows)
        for label, as_json in (("text", False), ("json", True)):
            runs = [run_once(path, as_json) for _ in range(args.repeat)]
            secs = [r[0] for r in runs]
            out[label] = {"median_s": round(statistics.median(secs), 2), "max_s": round(max(secs), 2),
                          "runs_s": [round(s, 2) for s in secs], "results": runs[0][1], "exit_code": runs[0][2],
                          "rows_per_s": round(args.rows / statistics.median(secs)),
                          "cpu_s_median": round(statistics.median(r[3] for r in runs), 2)}
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
