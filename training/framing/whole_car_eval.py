"""Measure the whole-car check as the app runs it: held-out photos through ``Predictor`` with
the crop box on the car found (``CropMode.AUTO``, what ``carvalue predict`` does by default).

Held out from the check's training and its thresholds: natural photos of the *test* categories
(training/framing/whole_car_data.py), the installed negatives' test split, and the half of the model's
validation car photos kept for the report (the bundled model trained on none of them).  Each
figure is given for the model file before (``--baseline``) and after, on the same photos.

  python -m training.framing.whole_car_eval --model runs/whole-car/carvalue.onnx --baseline OLD.onnx \
      --data ../shared/data/stanford-cars-train --split training/reports/bundled-model-160/split.json \
      --natural ../shared/data/natural-photos --out training/reports/whole-car
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.framing import CropMode, WholeCar
from core.predictor import Predictor
from core.preprocess import ImageLoadError, photo_from_image
from training.data import compositing as comp
from training.framing import whole_car_data as wd
from training.framing.heads import BackgroundPool, split_files, stanford_classes


def held_out_cars(data: Path, split_json: Path) -> list[Path]:
    """The reported car photos (whole_car.sample_streams' ``test`` cars)."""
    return wd.held_out_cars(split_files(split_json, data))[1]


def car_cases(photos: list[Path], seed: int, bgs: BackgroundPool | None = None) -> Iterator[tuple[str, Any, str | None]]:
    """(kind, image, true class or None) for each held-out car photo: the tight crop, framed at
    35% and 60% of the frame on held-out backgrounds (``bgs``; by default the test ones), and
    three parts of it (< 50% of the car)."""
    from training.data.negatives import background_files

    rng = np.random.default_rng(seed)
    bgs = bgs or BackgroundPool(background_files("test"))
    for path in photos:
        car = wd._open_rgb(path)
        yield "whole: tight crop", car, path.name
        for cov in (0.35, 0.6):
            r = comp.random_recipe(rng, (cov, cov), fills=("photo",), long_side=1024)
            c = comp.compose(car, r, rng, bgs.pick(rng))
            yield f"whole: framed, car at {cov:.0%} of the frame", c.image, path.name
            if cov == 0.6:
                yield "part: half a side view (pan sweep)", wd.sweep_part(c.image, c.box, rng), None
        yield "part: bumper or wheel", wd.corner_part(car, rng), None
        yield "part: 8-40% of the car", comp.partial_view(car, rng), None


def natural_backgrounds(natural: Path) -> list[Path]:
    """Natural photos of the *test* categories with no car in them (a panda, a kitchen, a field):
    hundreds of held-out backgrounds, where the installed test split has a handful."""
    return [p.path for p in wd.split_by_category(wd.read_natural(natural))["test"] if p.kind == "not_car"]


def framed_cases(photos: list[Path], seed: int, bgs: BackgroundPool, where: str) -> Iterator[tuple[str, Any, str | None]]:
    """Each held-out car photo framed at 35% and 60% of the frame on a background of ``bgs``
    (kinds named ``where``): car_cases' composites on another pool, their own random stream."""
    rng = np.random.default_rng(seed)
    for path in photos:
        car = wd._open_rgb(path)
        for cov in (0.35, 0.6):
            r = comp.random_recipe(rng, (cov, cov), fills=("photo",), long_side=1024)
            yield f"whole: framed {where}, car at {cov:.0%} of the frame", comp.compose(car, r, rng, bgs.pick(rng)).image, path.name


# The kinds of case each natural photo's kind is reported as.
NATURAL_KIND_NAMES = {"not_car": "no car: natural photo", "vehicle_not_car": "no car: other vehicle",
                      "car_part": "part: natural car part", "car": "whole: natural car photo"}


def natural_cases(natural: Path) -> Iterator[tuple[str, Any, str | None]]:
    for p in wd.split_by_category(wd.read_natural(natural))["test"]:
        yield NATURAL_KIND_NAMES[p.kind], wd._open_rgb(p.path), None


def installed_cases(limit: int) -> Iterator[tuple[str, Any, str | None]]:
    from training.framing.heads import non_car_samples

    for s in non_car_samples("test", 150, 7, max_per_source=limit):
        if s.kind in ("non-car", "synthetic"):
            yield f"no car: installed {'graphic or photo' if s.kind == 'non-car' else 'drawn graphic'}", s.image, None


def evaluate(models: dict[str, Path], cases: Iterator[tuple[str, Any, str | None]],
             labels: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per kind of case and model: photos, flagged (not shown as a whole car), called no car,
    make/model top-1 (whole cars with a known class)."""
    predictors = {k: Predictor.load(p) for k, p in models.items()}
    out: dict[str, dict[str, Any]] = {}
    skipped: dict[str, int] = {}
    for kind, image, name in cases:
        try:
            photo = photo_from_image(image)
        except ImageLoadError:  # a part cut from a small photo can be under the app's 32 px
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        for key, pred in predictors.items():
            p = pred.predict(photo, CropMode.AUTO)
            d = out.setdefault(kind, {}).setdefault(key, {"photos": 0, "flagged": 0, "no_car": 0, "top1": 0,
                                                          "classed": 0})
            d["photos"] += 1
            d["flagged"] += p.whole_car not in (WholeCar.YES, WholeCar.UNSURE)
            d["no_car"] += p.whole_car is WholeCar.NO_CAR
            truth = labels.get(name) if name else None
            if truth is not None:
                d["classed"] += 1
                d["top1"] += p.make_models[0].label == truth
    for per_model in out.values():
        for d in per_model.values():
            n, c = d.pop("photos"), d.pop("classed")
            hits = d.pop("top1")
            d.update({"photos": n, "flagged": d["flagged"] / n, "no_car": d["no_car"] / n})
            if c:
                d["make_model_top1"] = hits / c
    for kind, n in skipped.items():
        print(f"{kind}: {n} images under the app's smallest photo size left out")
    return out


def markdown(r: dict[str, dict[str, Any]], names: dict[str, str]) -> str:
    keys = list(names)
    head = "| photos (held out) | n | " + " | ".join(f"flagged, {names[k]}" for k in keys) + \
           f" | called no car, {names[keys[-1]]} | top-1, " + " | top-1, ".join(names[k] for k in keys) + " |"
    rows = [head, "|" + " --- |" * (3 + 2 * len(keys))]
    for kind in sorted(r):
        d = r[kind]
        last = d[keys[-1]]
        top = [f"{100 * d[k]['make_model_top1']:.1f}%" if "make_model_top1" in d[k] else "" for k in keys]
        rows.append(f"| {kind} | {last['photos']} | " + " | ".join(f"{100 * d[k]['flagged']:.1f}%" for k in keys)
                    + f" | {100 * last['no_car']:.1f}% | " + " | ".join(top) + " |")
    return "\n".join(rows) + "\n"


def head_reads(model: Path) -> str:
    """What the file's whole-car head reads, in words (for its model card)."""
    import onnx

    from training.framing.whole_car import INNER_INPUT, whole_branch_gemm

    first = whole_branch_gemm(onnx.load(str(model))).input[0]
    if first == INNER_INPUT:
        return "the pooled trunk features and the means of five inner blocks of the trunk"
    return "the trunk's features pooled in a 3x3 grid" if "grid" in first else "the pooled trunk features"


def record(model: Path, r: dict[str, dict[str, Any]], categories: list[str]) -> None:
    """Write this file's figures (``after``) into its metrics (``whole_car``); weights unchanged."""
    from training.framing.record import record_metrics

    record_metrics(model, "whole_car", {
        "by_kind": {k: v["after"] for k, v in r.items() if "after" in v},
        "before": {k: v["before"] for k, v in r.items() if "before" in v},
        "natural_test_categories": categories, "reads": head_reads(model),
        "how": "training/framing/whole_car_eval.py: held-out photos through Predictor, crop auto"})
    model.chmod(0o644)


def card_section(w: dict[str, Any], sources: Sequence[dict[str, str]] = (), rule: dict[str, Any] | None = None,
                 look: dict[str, Any] | None = None, vehicles: dict[str, Any] | None = None) -> str:
    """The model card's section on the whole-car check (from ``metrics.whole_car``), with the
    licences of the photos and graphics it learnt from (the framing section's ``sources``) and
    other vehicles by leave-category-out (``metrics.vehicles_leave_category_out``)."""
    rows = ["| held-out photos | photos | flagged (not shown as a whole car) | called \"no car\" | make/model top-1 |",
            "| --- | --- | --- | --- | --- |"]
    for kind, d in sorted(w["by_kind"].items()):
        top = f"{100 * d['make_model_top1']:.1f}%" if "make_model_top1" in d else ""
        rows.append(f"| {kind} | {d['photos']} | {100 * d['flagged']:.1f}% | {100 * d['no_car']:.1f}% | {top} |")
    cats = w.get("natural_test_categories", [])
    return "\n".join(["## Whole-car check: no car, part of a car, a whole car", "",
                      f"Two logits on {w.get('reads', 'the pooled trunk features')} (training/framing/whole_car.py): "
                      "a whole car, and a car or part "
                      "of one; trained on natural photos split by category (ImageNet and Caltech 101 samples, random "
                      "web photos), partial views as the pan sweep and careless boxes cut them, and the installed and "
                      "drawn negatives; thresholds on validation categories and photos. Measured through `carvalue "
                      "predict` as it runs by default (`--crop auto`) on photos and categories used neither to train "
                      "it nor to set its thresholds"
                      + (f" ({len(cats)} natural-photo categories)" if cats else "") + ":", "", *rows, "",
                      *([f"A crop the head passes is called part of a car when a logistic rule on "
                         f"{', '.join(rule.get('signals', []))} says so (training/framing/part_rule.py; fitted on "
                         f"{rule.get('photos', '?')} validation cars' whole and partial views, no kind of whole car "
                         f"flagged more than {100 * float(rule.get('allow', 0)):.0f} point more often there); the "
                         "figures above include it.", ""] if isinstance(rule, dict) else []),
                      *([("Where the first pass on the whole photo sees no whole car, the box found is predicted on "
                          "and its verdict stands when it is a whole car or unsure"
                          + (f" and its top make/model probability is at least {float(look.get('min_top', 0)):g}"
                             if float(look.get("min_top", 0) or 0) > 0 else "")
                          + " (`framing.second_look`, decided on validation photos by training/framing/second_look.py); "
                          "the figures above include it.")
                         if look.get("second_look") else
                         "The second look at the box found (training/framing/second_look.py) is off in this file: "
                         "it did not pass its rule on validation photos.", ""] if isinstance(look, dict) else []),
                      *([vehicles_sentence(vehicles), ""] if isinstance(vehicles, dict) and "all" in vehicles else []),
                      *(["Sources of natural photos, backgrounds and negatives, with their licences:", "",
                         *(f"- {d.get('name', '?')}: {d.get('licence', '?')}" for d in sources), ""]
                        if sources else [])])


def vehicles_sentence(v: dict[str, Any]) -> str:
    """Other vehicles of kinds the head never trained on (training/studies/vehicles_second_look.py)."""
    folds = "; ".join(f"{k.removeprefix('held out of training: ').removeprefix('caltech101/')} "
                      f"{100 * float(d['with']):.1f}% of {d['n']}" for k, d in v.items() if k != "all")
    return (f"Other vehicles (motorbikes, aeroplanes, trucks, trains: natural photos) of a kind the head never "
            f"trained on, by leave-category-out through Predictor (each fold's head grafted into this file): "
            f"{100 * float(v['all']['with']):.1f}% of {v['all']['n']} flagged ({folds}).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.whole_car_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, help="the model file before (same photos)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--natural", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--installed", type=int, default=150, help="installed negatives per source")
    ap.add_argument("--limit", type=int, default=0, help="car and natural photos, at most (smoke runs)")
    ap.add_argument("--record", action="store_true", help="write the figures into the model file's metrics")
    ap.add_argument("--natural-backgrounds", action="store_true",
                    help="also frame each held-out car on natural photos of the test categories (many backgrounds)")
    a = ap.parse_args(argv)
    models = {"before": a.baseline, "after": a.model} if a.baseline else {"after": a.model}
    labels = {Path(f).name: name for f, (name, _) in stanford_classes(a.data).items()}

    def cases() -> Iterator[tuple[str, Any, str | None]]:
        import itertools

        cars = held_out_cars(a.data, a.split)
        yield from car_cases(cars[:a.limit] if a.limit else cars, a.seed)
        if a.natural_backgrounds:
            yield from framed_cases(cars[:a.limit] if a.limit else cars, a.seed + 1,
                                    BackgroundPool(natural_backgrounds(a.natural)), "on a held-out natural photo")
        natural = natural_cases(a.natural)
        yield from itertools.islice(natural, a.limit) if a.limit else natural
        yield from installed_cases(a.installed)

    r = evaluate({k: v for k, v in models.items() if v is not None}, cases(), labels)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "whole_car_eval.json").write_text(json.dumps(r, indent=1))
    names = {"before": "before", "after": "this model"} if a.baseline else {"after": "this model"}
    (a.out / "whole_car_eval.md").write_text(markdown(r, names))
    print(markdown(r, names))
    if a.record:
        test = wd.split_by_category(wd.read_natural(a.natural))["test"]
        record(a.model, r, sorted({p.group for p in test}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
