"""Which score tells a car the catalogue lacks from one it knows (issue 29's ``known_car``)?

The shipped rule is the top make/model probability (maximum softmax probability, MSP). Measured
here on a leave-family-out model file (families never trained on) against alternatives that read
the same forward pass: the energy (log-sum-exp of the logits), the maximum logit, the Mahalanobis
distance of the pooled features to the nearest class mean (one shared covariance; Lee et al.
2018), and the cosine distance to the k-th nearest training photo (Sun et al. 2022). Each
threshold is set so that ``--share`` of the split's *validation* photos of known classes are
called unknown; the figures are on its *test* photos of known classes and on every photo of the
held-out families. Whole photos (tight crops), one view each.

  python -m training.studies.unknown_scores --model runs/lfo6/make/carvalue.onnx \\
      --data ../shared/data/stanford-cars-train --split runs/lfo6/stage1/split.json \\
      --families-from training/reports/make-leave-family-out/make_report.json --out runs/lfo6/unknown_scores.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from training.data.dataset import in_family
from training.framing.make_head import Photo, _open, family_photos, features, photos_by_part

Scores = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (features, logits) -> how known (higher: known)


def tight_views(photos: Sequence[Photo]) -> Iterator[tuple[object, Photo]]:
    for ph in photos:
        yield _open(ph.path), ph


def logits_of(feat: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return feat @ w.T + b


def classifier(model: Path) -> tuple[np.ndarray, np.ndarray]:
    """The make/model Gemm's weight (classes, D) and bias, as the file holds them."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model))
    inits = {i.name: i for i in m.graph.initializer}
    node = next(n for n in m.graph.node if n.op_type == "Gemm" and "make_model_logits" in n.output)
    attrs = {a.name: a for a in node.attribute}
    w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
    if "transB" not in attrs or attrs["transB"].i == 0:
        w = w.T
    return w, numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)


def fit_scores(train_feat: np.ndarray, train_class: np.ndarray, k: int = 10) -> dict[str, Scores]:
    """The scores compared; Mahalanobis and kNN are fitted on the training photos' features."""
    classes = np.unique(train_class)
    means = np.stack([train_feat[train_class == c].mean(0) for c in classes])
    centred = train_feat - means[np.searchsorted(classes, train_class)]
    cov = centred.T @ centred / len(centred) + 1e-3 * np.eye(train_feat.shape[1])
    prec = np.linalg.inv(cov)
    bank = train_feat / np.linalg.norm(train_feat, axis=1, keepdims=True)

    def msp(f: np.ndarray, z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).max(1)

    def energy(f: np.ndarray, z: np.ndarray) -> np.ndarray:
        m = z.max(1, keepdims=True)
        return (m + np.log(np.exp(z - m).sum(1, keepdims=True))).ravel()

    def max_logit(f: np.ndarray, z: np.ndarray) -> np.ndarray:
        return z.max(1)

    mp = means @ prec  # (C, D)
    mpm = np.einsum("cd,cd->c", mp, means)

    def mahalanobis(f: np.ndarray, z: np.ndarray) -> np.ndarray:
        # (f - mu)' P (f - mu) = f'Pf - 2 f'P mu + mu'P mu, for every class mean at once
        fpf = np.einsum("nd,de,ne->n", f, prec, f)
        return -(fpf[:, None] - 2 * f @ mp.T + mpm[None]).min(1)

    def knn(f: np.ndarray, z: np.ndarray) -> np.ndarray:
        q = f / np.linalg.norm(f, axis=1, keepdims=True)
        sims = q @ bank.T
        return np.sort(sims, axis=1)[:, -k]

    return {"top probability (shipped)": msp, "energy": energy, "max logit": max_logit,
            "Mahalanobis (nearest class mean)": mahalanobis, f"cosine to the {k}th nearest training photo": knn}


def lfo_study_parser(module: str, doc: str | None, model_help: str) -> argparse.ArgumentParser:
    """The arguments every leave-family-out study takes: the run's model file, data, split and
    make report (which names the held-out families), and where to write."""
    ap = argparse.ArgumentParser(prog=f"python -m training.studies.{module}", description=(doc or "").split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help=model_help)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True, help="that run's split.json")
    ap.add_argument("--families-from", type=Path, required=True, help="its make report (names the held-out families)")
    ap.add_argument("--out", type=Path, required=True)
    return ap


def family_index(photos: Sequence[Photo], families: Sequence[str]) -> np.ndarray:
    """For each photo of the held-out families, the index in ``families`` of the family it is of
    (the studies cut the families in halves by it: even against odd)."""
    out = []
    for ph in photos:
        name = f"{ph.row.make} {ph.row.model}"
        i = next((i for i, f in enumerate(families) if in_family(name, f)), None)
        if i is None:
            raise ValueError(f"{name} is not of any held-out family ({', '.join(families)})")
        out.append(i)
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    ap = lfo_study_parser("unknown_scores", __doc__, "a leave-family-out run's model file")
    ap.add_argument("--share", type=float, default=0.10, help="known validation photos called unknown")
    a = ap.parse_args(argv)
    families = json.loads(a.families_from.read_text())["families"]
    parts = photos_by_part(a.data, a.split)
    sets = {"train": parts["train"], "val": parts["val"], "test": parts["test"],
            "families": family_photos(a.data, families)}
    feats = {}
    for name, photos in sets.items():
        print(f"{name}: {len(photos)} photos", flush=True)
        feats[name] = features(a.model, tight_views(photos))[0].astype(np.float64)
    w, b = classifier(a.model)
    classes = sorted({ph.row.class_name for ph in sets["train"]})
    train_class = np.array([classes.index(ph.row.class_name) for ph in sets["train"]])
    report: dict[str, object] = {"model": str(a.model), "families": families, "share": a.share,
                                 "photos": {k: len(v) for k, v in sets.items()}, "scores": {}}
    for name, score in fit_scores(feats["train"], train_class).items():
        s = {part: score(feats[part], logits_of(feats[part], w, b)) for part in ("val", "test", "families")}
        th = float(np.quantile(s["val"], a.share))
        row = {"threshold": th, "known test called unknown": float(np.mean(s["test"] < th)),
               "held-out families called unknown": float(np.mean(s["families"] < th))}
        report["scores"][name] = row  # type: ignore[index]
        print(f"{name}: known test {row['known test called unknown']:.1%}, "
              f"families {row['held-out families called unknown']:.1%}", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
