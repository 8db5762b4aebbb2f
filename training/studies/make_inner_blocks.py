"""Does a make head that also reads the trunk's inner blocks name the make of an unseen family
better? (issue 29: "make top-1 >= 70% on held-out-family photos")

The whole-car head gained on other vehicles of unseen kinds from the means of five inner blocks
(training/framing/whole_car.py INNER_TENSORS): there a motorbike looks less like a car.  A badge or
a grille is a mid-level pattern too, so the same might carry a make across families.  Here, on a
leave-family-out model file (its trunk never saw the held-out families), softmax regressions over
the makes (make_head.fit_softmax) on the pooled vector, on the pooled vector and the inner blocks'
means, and on the inner means alone, each at two L2 weights, fitted on make_head's two training
views of every training photo and scored on the same two views (tight, framed and cropped) of
every held-out-family photo and of the split's known test photos.  Features, not Predictor.

  python -m training.studies.make_inner_blocks --model runs/lfo/stage1/model/carvalue.onnx \\
      --data ../shared/data/stanford-cars-train --split runs/lfo/stage1/split.json \\
      --families "Toyota Camry,BMW 3 Series,..." --out training/reports/make-inner-blocks/report.json
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from training.framing import make_head as mh
from training.framing.heads import to_input
from training.framing.onnx_features import in_batches, session_with_tensor
from training.framing.whole_car import INNER_PREFIX, INNER_TENSORS, add_inner_outputs
from training.studies.common import write_json_report


def features(model: Path, views: Iterator[tuple[Image.Image, mh.Photo]]) -> tuple[np.ndarray, np.ndarray, list[mh.Photo]]:
    """(pooled vectors, inner blocks' means, photos) of ``views``, in order."""
    def tensor(m: Any) -> str:
        add_inner_outputs(m)
        return mh.pooled_of(m)

    sess, meta = session_with_tensor(model, tensor)
    names = [o.name for o in sess.get_outputs()]
    inner = [f"{INNER_PREFIX}mean{i}" for i in range(len(INNER_TENSORS))]
    pooled, means, who = [], [], []
    for chunk in in_batches(views, 32, "views", 50):
        x = np.stack([to_input(im, meta.input) for im, _ in chunk])
        outs = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
        pooled.append(outs[names[-1]].reshape(len(chunk), -1))
        means.append(np.concatenate([outs[n].reshape(len(chunk), -1) for n in inner], 1))
        who.extend(ph for _, ph in chunk)
    return np.concatenate(pooled), np.concatenate(means), who


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.studies.make_inner_blocks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a leave-family-out run's model file")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True, help="that run's split.json")
    ap.add_argument("--families", required=True, help="the run's HOLD_OUT_FAMILIES")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    parts = mh.photos_by_part(a.data, a.split)
    fams = mh.family_photos(a.data, [f.strip() for f in a.families.split(",")])
    if not fams:
        raise SystemExit(f"no photos of the families {a.families!r}")
    sets = {"train": features(a.model, mh.training_views(parts["train"], 0)),
            "held-out families": features(a.model, mh.training_views(fams, 3)),
            "known test photos": features(a.model, mh.training_views(parts.get("test") or parts["val"], 4))}
    makes = sorted({ph.make for ph in sets["train"][2]})
    y = np.array([makes.index(ph.make) for ph in sets["train"][2]])
    reads = {"pooled": lambda p, i: p, "pooled + inner means": lambda p, i: np.hstack([p, i]),
             "inner means": lambda p, i: i}
    report: dict[str, Any] = {"families": a.families, "photos": {k: len(v[2]) // 2 for k, v in sets.items()}}
    for name, x_of in reads.items():
        for l2 in (1e-3, 1e-2):
            lin = mh.fit_softmax(x_of(*sets["train"][:2]), y, len(makes), l2=l2)
            row = {}
            for k in ("held-out families", "known test photos"):
                p, i, who = sets[k]
                ok = np.array([makes[j] == ph.make for j, ph in zip((x_of(p, i) @ lin.w.T + lin.b).argmax(1), who,
                                                                    strict=True)])
                row[k] = {"make_top1_tight": float(ok[0::2].mean()), "make_top1_framed": float(ok[1::2].mean())}
            report[f"{name}, l2 {l2:g}"] = row
    return write_json_report(a.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
