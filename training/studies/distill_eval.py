"""The distillation study's measurement: two runs (without and with a teacher) on the same
held-out photos, split by whether the teacher trained on them.

    python -m training.studies.distill_eval --runs runs/distill/base runs/distill/distill \\
        --teacher resources/models/carvalue.onnx --out runs/distill/distill-eval

The teacher's training photos are found by rebuilding its split from its recorded settings
(validation and test fractions, seed) and checking the rebuilt split's sha256 against the one in
its model file: a teacher trained with no test part on every photo but its validation part has
seen the students' validation photos, and only its own validation photos are unseen by both.
Each run is measured at its model file's input (the whole photo stretched to its size); the
paired counts (photos one run gets right and the other wrong) come with McNemar's exact p-value.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.geometry import Box
from core.modelfile import ModelMetadata, open_session
from core.preprocess import crop_resize, load_photo, normalise
from training.data.dataset import IGNORE, CarPhotos, split_by_group
from training.data.records import class_key_of
from training.loop.metrics import collect, topk, year_within
from training.loop.trained import Trained, load_trained


def teacher_unseen(t: Trained, meta: ModelMetadata) -> set[int] | None:
    """Indices (into ``t.records``) of the photos the teacher never trained on: its validation and
    test parts; None when its split cannot be rebuilt from these records."""
    prov = meta.provenance if isinstance(meta.provenance, dict) else {}
    cfg = prov.get("training", {}).get("config", {})
    recorded = prov.get("split", {}).get("sha256")
    try:
        split = split_by_group(t.records, float(cfg["val_fraction"]), float(cfg["test_fraction"]),
                               int(cfg["seed"]), class_key_of(t.records))
    except (KeyError, TypeError, ValueError):
        return None
    return set(split.val) | set(split.test) if split.digest() == recorded else None


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar test: the binomial probability of a split of the discordant photos
    at least this uneven when either run is as likely to be the one right."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def _teacher_top1(session: Any, meta: ModelMetadata, t: Trained, indices: Sequence[int]) -> np.ndarray:
    """Whether the teacher (one view, as the app runs it) gets each photo's make/model right."""
    spec, name = meta.input, session.get_inputs()[0].name
    right: list[bool] = []
    for start in range(0, len(indices), 32):
        chunk = indices[start:start + 32]
        x = np.stack([normalise(crop_resize(im, Box.full(im.size), spec), spec)
                      for im in (load_photo(t.records[i].image_path).image for i in chunk)])
        logits = session.run(["make_model_logits"], {name: x})[0]
        for i, row in zip(chunk, logits, strict=True):
            r = t.records[i]
            right.append(meta.make_models[int(np.argmax(row))] == t.labels.make_models[_label(t, r)])
    return np.array(right)


def _label(t: Trained, record: Any) -> int:
    return int(t.labels.encode_all([record])[0].make_model)


def measure(runs: Sequence[Path], teacher: Path, batch: int = 64) -> dict[str, Any]:
    trained = [load_trained(r) for r in runs]
    first = trained[0]
    for t in trained[1:]:
        if t.split.digest() != first.split.digest() or t.labels.make_models != first.labels.make_models:
            raise ValueError(f"{t.ckpt.path}: another split or vocabulary than {first.ckpt.path}")
    session, meta = open_session(teacher, threads=1)
    unseen = teacher_unseen(first, meta)
    sets: dict[str, list[int]] = {"val": list(first.split.val), "test": list(first.split.test)}
    if unseen is not None:
        sets["test_teacher_unseen"] = [i for i in first.split.test if i in unseen]
        sets["test_teacher_trained_on"] = [i for i in first.split.test if i not in unseen]
        sets["val_teacher_unseen"] = [i for i in first.split.val if i in unseen]
    device = torch.device("cpu")
    every = sorted(set(first.split.val) | set(first.split.test))  # each photo run once, then sliced
    where = {i: k for k, i in enumerate(every)}
    right: dict[str, np.ndarray] = {}
    scores: dict[str, dict[str, Any]] = {}
    for run, t in zip(runs, trained, strict=True):
        c = collect(t.model, CarPhotos(first.records, t.labels, t.spec("stretch")), every, batch, device, True)
        right[str(run)] = (c.make_model_logits.argmax(axis=1) == c.cls_targets[:, 1]) & (c.cls_targets[:, 1] != IGNORE)
        scores[str(run)] = {"logits": c.make_model_logits, "years": c.year_logits, "y": c.cls_targets}
    teacher_right = _teacher_top1(session, meta, first, every)
    report: dict[str, Any] = {"runs": [str(r) for r in runs], "teacher": str(teacher),
                              "teacher_split_rebuilt": unseen is not None, "sets": {}}
    for name, idx in sets.items():
        if not idx:
            continue
        rows = np.array([where[i] for i in idx])
        row: dict[str, Any] = {"n": len(idx)}
        for run, t in zip(runs, trained, strict=True):
            sc = scores[str(run)]
            y = sc["y"][rows]
            row[str(run)] = {"make_model_top1": topk(sc["logits"][rows], y[:, 1], 1),
                             "make_model_top5": topk(sc["logits"][rows], y[:, 1], 5),
                             "year_within1": year_within(sc["years"][rows], y[:, 2], t.labels.years, 1),
                             "right": int(right[str(run)][rows].sum())}
        row["teacher_make_model_top1"] = float(teacher_right[rows].mean())
        if len(runs) == 2:
            a, b = (right[str(r)][rows] for r in runs)
            only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
            row["paired"] = {"only_first_right": only_a, "only_second_right": only_b,
                             "mcnemar_p": mcnemar_p(only_a, only_b)}
        report["sets"][name] = row
    return report


def markdown(report: dict[str, Any]) -> str:
    runs = report["runs"]
    lines = ["| photos | n | " + " | ".join(f"{Path(r).name} top-1" for r in runs) + " | difference | "
             "paired (only first / only second right, McNemar p) | teacher top-1 |",
             "|---|---|" + "---|" * (len(runs) + 3)]
    for name, row in report["sets"].items():
        tops = [row[r]["make_model_top1"] for r in runs]
        diff = f"{100 * (tops[-1] - tops[0]):+.1f} pt" if len(tops) == 2 else ""
        paired = row.get("paired", {})
        pair = (f"{paired['only_first_right']} / {paired['only_second_right']}, p={paired['mcnemar_p']:.3f}"
                if paired else "")
        lines.append(f"| {name} | {row['n']} | " + " | ".join(f"{100 * v:.1f}%" for v in tops)
                     + f" | {diff} | {pair} | {100 * row['teacher_make_model_top1']:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="run folders (the first is the baseline)")
    p.add_argument("--teacher", required=True, help="the teacher's model file")
    p.add_argument("--out", required=True, help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    report = measure([Path(r) for r in args.runs], Path(args.teacher))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    md = markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
