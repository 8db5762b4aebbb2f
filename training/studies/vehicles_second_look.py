"""Does the second look pass other vehicles of a kind the head never saw? (issue 27: "other
vehicles >= 80%")

vehicles_cv measures other vehicles by leave-category-out on the pooled features of the whole
photo: the first pass's verdict.  The second look (framing.second_look) then predicts on the box
found where that verdict is not a whole car, and lets a whole-car verdict there stand, so a
vehicle the first pass flagged can be passed.  Here each fold's head (vehicles_cv.fold_heads:
trained without the fold's categories, thresholds on validation) is grafted into the model file
(its part rule and second look kept), and the fold's vehicle photos go through ``Predictor``
(crop auto) with the second look off and on.  The validation and test categories' vehicles are
scored by the shipped file itself (never trained on them).

  python -m training.studies.vehicles_second_look --model resources/models/carvalue.onnx \\
      --features runs/whole-car --natural ../shared/data/natural-photos --layout inner \\
      --natural-backgrounds --out training/reports/whole-car/inner/vehicles_second_look.json [--record]

(``--layout`` and ``--natural-backgrounds`` as the file's head was trained: the bundled one's since
2026-12-08 05:05; features from ``whole_car features --inner --natural-backgrounds``.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.predictor import Predictor
from training.framing import whole_car_data as wd
from training.framing.record import record_metrics
from training.framing.second_look import cases_of, rates
from training.framing.vehicles_cv import fold_heads, folds
from training.framing.whole_car_graft import graft
from training.framing.whole_car_head import LAYOUTS, load_part
from training.studies.common import write_json_report


def flagged(model: Path, photos: list[wd.NaturalPhoto]) -> dict[str, float]:
    """Share of ``photos`` not shown as a whole car, without and with the second look (at the
    file's own probability cut): second_look.cases_of, the cases the recipe step decides on."""
    cut = Predictor.load(model).second_look_min_top
    cases = cases_of(model, (("vehicle", wd._open_rgb(p.path)) for p in photos))
    return {"n": len(photos), "without": rates(cases, False)["vehicle"], "with": rates(cases, True, cut)["vehicle"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.studies.vehicles_second_look", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="the shipped file (part rule, second look)")
    ap.add_argument("--features", type=Path, required=True, help="whole_car features of that file's recipe")
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--record", action="store_true", help="write the figures into the model file's metrics")
    ap.add_argument("--layout", choices=LAYOUTS, default="pooled", help="what the file's head reads (its recipe's)")
    ap.add_argument("--natural-backgrounds", action="store_true",
                    help="the file's head also trained on cars framed on natural photos (its recipe's)")
    a = ap.parse_args(argv)
    train, val = load_part(a.features, "train"), load_part(a.features, "val")
    if not a.natural_backgrounds:  # the head never had these samples
        train = {k: v[train["kind"] != "framed-natural"] for k, v in train.items()}
        val = {k: v[val["kind"] != "framed-natural"] for k, v in val.items()}
    parts = wd.split_by_category(wd.read_natural(a.natural))
    vehicles = {part: [p for p in ps if p.kind == "vehicle_not_car"] for part, ps in parts.items()}
    groups = folds(train)
    report: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, head, th, _ in fold_heads(train, val, layout=a.layout):
            model = Path(tmp) / "fold.onnx"
            graft(a.model, head, th, model, "leave-category-out fold")
            report[f"held out of training: {name}"] = flagged(model, [p for p in vehicles["train"]
                                                                     if p.group in groups[name]])
    for part in ("val", "test"):
        report[f"{part} categories (never trained on)"] = flagged(a.model, vehicles[part])
    n = sum(int(v["n"]) for v in report.values())
    report["all"] = {"n": n, **{k: sum(v["n"] * v[k] for v in report.values()) / max(n, 1) for k in ("without", "with")}}
    if a.record:  # for the file's model card
        record_metrics(a.model, "vehicles_leave_category_out", report)
        a.model.chmod(0o644)
    return write_json_report(a.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
