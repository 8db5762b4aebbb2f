"""Run all four studies with the same arguments and write an index (``<out>/README.md``).

    python -m training.studies.run_all --model resources/models/carvalue.onnx \
        --data ../shared/data/stanford-cars-train --out docs/studies [--limit N]

``--limit`` caps the car photos of every study (each has its own default when it is left out).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.studies import background_swap, crop_pan, occlusion, ood
from training.studies.common import REPO, StudyArgs, parse_args

Study = tuple[str, str, Callable[[StudyArgs], dict[str, Any]], int]
STUDIES: tuple[Study, ...] = (
    (crop_pan.NAME, "Crop panned along side views", crop_pan.run, crop_pan.DEFAULT_LIMIT),
    (background_swap.NAME, "Background intervention", background_swap.run, background_swap.DEFAULT_LIMIT),
    (occlusion.NAME, "Badge/logo occlusion", occlusion.run, occlusion.DEFAULT_LIMIT),
    (ood.NAME, "Out-of-distribution photos", ood.run, ood.DEFAULT_LIMIT),
)


def run_all(args: StudyArgs, log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for name, _, run, default_limit in STUDIES:
        start = time.perf_counter()
        results[name] = run(replace(args, limit=args.limit or default_limit))
        timings[name] = time.perf_counter() - start
        log(f"{name}: {timings[name]:.0f} s -> {args.out / (name + '.md')}")
    write_index(args, timings)
    return results


def write_index(args: StudyArgs, timings: dict[str, float]) -> None:
    digest = hashlib.sha256(args.model.read_bytes()).hexdigest()
    command = (f"nice -n 10 python -m training.studies.run_all --model {_shown(args.model)} "
               f"--data {_shown(args.data)} --out {_shown(args.out)}"
               + (f" --split {_shown(args.split)}" if args.split else "")
               + (f" --limit {args.limit}" if args.limit else "") + (f" --seed {args.seed}" if args.seed else ""))
    lines = ["# CarValue model studies\n",
             f"Model file: `{args.model.name}` (sha256 `{digest}`). Made with\n",
             f"```\n{command}\n```\n",
             "One study: `python -m training.studies.<name>` with the same flags (`--limit N` caps the "
             "car photos, `--seed S` changes which, `--split RUN/split.json` takes the held-out photos "
             "from the training run when the model file does not list them). Each study also writes "
             "`<name>.json` with every number behind its report (the repository keeps only the Markdown "
             "and PNGs).\n",
             "The background and out-of-distribution studies use 12 photographic wallpapers from the "
             "Debian package mate-backgrounds (GPL-2+) when it is installed (`apt-get install -y "
             "mate-backgrounds`); without it they use scikit-learn's two sample photos, grey and "
             "noise only, and their numbers differ.\n",
             "| study | report | run time (s) |", "| --- | --- | --- |"]
    if (args.out / "findings.md").exists():  # written by hand after reading the reports
        lines.insert(1, "What the results say, read by hand: [findings.md](findings.md).\n")
    for name, title, _, _ in STUDIES:
        lines.append(f"| {title} | [{name}.md]({name}.md) | {timings.get(name, float('nan')):.0f} |")
    (args.out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (commands in docs stay portable)."""
    full = path.resolve()
    if full.is_relative_to(REPO):
        return str(full.relative_to(REPO))
    if full.is_relative_to(REPO.parent):
        return str(Path("..") / full.relative_to(REPO.parent))
    return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("run_all", "Run all four model studies.", argv)
    run_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
