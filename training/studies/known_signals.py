"""Does a rule on several of the first pass's numbers tell an unseen car from a known one better
than the top make/model probability alone (issue 29's ``known_car``)?

The shipped rule reads one number: the top make/model probability (MSP).  A leave-family-out
model file also has a make head, so each prediction carries more: how much of the class
probability one make collects, how sure the make head is, whether the make head agrees with the
top class's make, and the entropy of the class probabilities.  A car of a family the catalogue
lacks should look like its make (the make head sure) but like no one class of it.

Measured honestly needs unseen cars to fit on *and* unseen cars to test on, so the held-out
families are cross-fitted: the families are cut in two halves; a logistic regression is fitted
on the validation photos of known classes (known) and one half's photos (unknown), and measured
on the test photos of known classes and the *other* half's photos; then the halves swap.  Each
fold's cut calls ``--share`` of the validation photos unknown, as the shipped rule's does, and
the shipped rule (MSP alone, the same cut) is measured on the same photos.  Tight crops, one
view each, predicted as the app does (``Predictor``, the whole crop).

  python -m training.studies.known_signals --model runs/lfo-full-make/make/carvalue.onnx \\
      --data ../shared/data/stanford-cars-train --split runs/lfo-full-make/stage3/split.json \\
      --families-from runs/lfo-full-make/make-report/make_report.json --out runs/lfo-full-make/known_signals.json
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from core.geometry import Box
from core.predictor import Predictor
from core.preprocess import photo_from_image
from training.data.labels_csv import read_labels_csv
from training.framing.make_head import Photo, _open, family_photos, photos_by_part
from training.studies.unknown_scores import family_index, lfo_study_parser

SIGNALS = ("log top make/model probability", "log top make (classes summed by make)", "log top make (make head)",
           "make head agrees with the classes' make", "log make head probability of the top class's make",
           "class entropy")


def signals(pred: Predictor, photos: Sequence[Photo], class_make: dict[str, str]) -> np.ndarray:
    """One row of :data:`SIGNALS` per photo."""
    n = len(pred.metadata.make_models)
    rows = []
    for i, ph in enumerate(photos):
        image = _open(ph.path)
        p = pred.predict(photo_from_image(image), Box(0, 0, image.width, image.height), top_k=n)
        probs = np.array([lp.probability for lp in p.make_models])
        summed: dict[str, float] = {}
        for lp in p.make_models:
            k = class_make.get(lp.label, "")
            summed[k] = summed.get(k, 0.0) + lp.probability
        class_top_make = class_make.get(p.make_models[0].label, "")
        heads = {lp.label: lp.probability for lp in p.makes}
        rows.append([np.log(probs[0] + 1e-9), np.log(max(summed.values()) + 1e-9),
                     np.log(p.makes[0].probability + 1e-9) if p.makes else 0.0,
                     float(bool(p.makes) and p.makes[0].label == max(summed, key=summed.__getitem__)),
                     np.log(heads.get(class_top_make, 1e-4) + 1e-9),
                     float(-(probs * np.log(probs + 1e-12)).sum())])
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(photos)}", flush=True)
    return np.array(rows)


def fold_result(s: dict[str, np.ndarray], fit_fam: np.ndarray, test_fam: np.ndarray, share: float) -> dict[str, float]:
    """Fit on validation (known) + ``fit_fam`` rows of the families (unknown); measure on test
    (known) + ``test_fam`` rows.  Higher score: more like a known car."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([s["val"], s["families"][fit_fam]])
    y = np.concatenate([np.ones(len(s["val"])), np.zeros(int(fit_fam.sum()))])
    scale = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(scale.transform(x), y)

    def score(v: np.ndarray) -> np.ndarray:
        return clf.decision_function(scale.transform(v))

    out: dict[str, float] = {}
    for name, f in (("rule", score), ("top probability alone", lambda v: v[:, 0])):
        th = float(np.quantile(f(s["val"]), share))
        out[f"{name}: known test called unknown"] = float(np.mean(f(s["test"]) < th))
        out[f"{name}: unseen families called unknown"] = float(np.mean(f(s["families"][test_fam]) < th))
    out["weights"] = dict(zip(SIGNALS, clf.coef_[0].round(3).tolist(), strict=True))  # type: ignore[assignment]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = lfo_study_parser("known_signals", __doc__, "a leave-family-out run's model file with make heads")
    ap.add_argument("--share", type=float, default=0.10, help="known validation photos called unknown")
    a = ap.parse_args(argv)
    families = json.loads(a.families_from.read_text())["families"]
    parts = photos_by_part(a.data, a.split)
    class_make = {r.class_name: r.make for r in read_labels_csv(a.data)}
    pred = Predictor.load(a.model)
    fam_photos = family_photos(a.data, families)
    sets = {"val": parts["val"], "test": parts["test"], "families": fam_photos}
    s = {}
    for name, photos in sets.items():
        print(f"{name}: {len(photos)} photos", flush=True)
        s[name] = signals(pred, photos, class_make)
    half = family_index(fam_photos, families) % 2 == 0  # families 1, 3, 5... against 2, 4, 6...
    folds = {"fit on even families, test on odd": fold_result(s, half, ~half, a.share),
             "fit on odd families, test on even": fold_result(s, ~half, half, a.share)}
    report = {"model": str(a.model), "families": families, "share": a.share, "signals": list(SIGNALS),
              "photos": {k: len(v) for k, v in sets.items()}, "folds": folds}
    for name, r in folds.items():
        print(name, json.dumps(r, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
