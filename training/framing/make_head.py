"""Make and body type as outputs of their own, and ``known_car`` (issue 29).

The classifier knows 196 classes (make, model, body, model year).  A car whose model or
generation is not one of them (a 2016 Camry, a Kia) still has a make the photo shows (badge,
grille, lamps), and the classifier's own probability says how much it looks like a class.  So a
model file gets:

- ``make_logits``: a softmax regression on the pooled trunk features (the vector the classifier
  reads) over the makes of its training photos; ``body_logits``: the same over body types
  (sedan, SUV, pickup...: from the class name's words, else the catalogue's body);
- ``known_threshold``: ``known_car`` is true when the top make/model probability is at least
  this; chosen on held-out photos of known classes so that a set share of them (10% by
  default) is called unknown, and never on the photos it is measured on.

Both heads are one matrix product each on a 1280-vector (the trunk, the classifier, the box and
whole-car heads are untouched: the graft adds outputs and nothing else).  Trained on the frozen
trunk's features, so a head can be added to a finished model file; a leave-family-out run
(``training/recipe.sh`` with ``HOLD_OUT_FAMILIES``) measures it honestly: its trunk never saw
the held-out families, and ``--families`` reports make top-1 and known_car on their photos.

  python -m training.framing.make_head build --model runs/lfo/framing/carvalue.onnx \\
      --data ../shared/data/stanford-cars-train --split runs/lfo/stage3/split.json \\
      --families "Toyota Camry,BMW 3 Series" --out runs/lfo/make --report training/reports/make-lfo
"""
# Over 400 lines: one study (issue 29): fit make/body heads, graft, measure, write the card

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from core.catalogue import Catalogue, body_in_name, load_catalogue
from core.framing import CropMode
from core.geometry import Box
from core.modelfile import MakeSpec, open_session, write_model_file
from core.predictor import Predictor
from core.preprocess import ImageLoadError, photo_from_image
from training.data import compositing as comp
from training.data.dataset import in_family, parse_families
from training.data.labels_csv import LabelRow, read_labels_csv
from training.framing.heads import BackgroundPool, split_files, to_input, training_backgrounds
from training.framing.onnx_features import in_batches, session_with_tensor
from training.framing.record import record_metrics

BODIES = ("sedan", "coupe", "convertible", "hatchback", "wagon", "suv", "pickup", "minivan", "van")
MAKE_OUTPUT, BODY_OUTPUT = "make_logits", "body_logits"
UNKNOWN_SHARE = 0.10  # known photos called unknown at the threshold (the bar: <= 15%)


def body_of(class_name: str, catalogue: Catalogue | None = None) -> str | None:
    """The body type a class name says ("... Crew Cab" -> pickup; the last such word wins:
    "E-Series Wagon Van" is a van), else the catalogue's, else None."""
    hit = body_in_name(class_name)
    if hit is None and catalogue is not None:
        car = catalogue.class_car(class_name, 2100)
        hit = car.body if car is not None and car.body in BODIES else None
    return hit


@dataclasses.dataclass(frozen=True)
class Photo:
    path: Path
    row: LabelRow

    @property
    def make(self) -> str:
        return self.row.make


def photos_by_part(data: Path, split_json: Path) -> dict[str, list[Photo]]:
    rows = {Path(r.file).name: r for r in read_labels_csv(data)}
    return {part: [Photo(p, rows[p.name]) for p in paths if p.name in rows]
            for part, paths in split_files(split_json, data).items()}


def family_photos(data: Path, families: Sequence[str]) -> list[Photo]:
    """Every photo of the held-out families (never in a leave-family-out run's split)."""
    return [Photo(data / r.file, r) for r in read_labels_csv(data)
            if any(in_family(f"{r.make} {r.model}", f) for f in families)]


def _open(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.draft("RGB", (1024, 1024))
        return im.convert("RGB")


def training_views(photos: Sequence[Photo], seed: int) -> Iterator[tuple[Image.Image, Photo]]:
    """Two views of each training photo: the tight crop (mirrored half the time), and the car
    framed into a training background and cropped around it with a jittered margin, as the
    found box gives it."""
    rng = np.random.default_rng(seed)
    bgs = BackgroundPool(training_backgrounds())
    for ph in photos:
        car = _open(ph.path)
        yield (ImageOps.mirror(car) if rng.random() < 0.5 else car), ph
        c = comp.compose(car, comp.random_recipe(rng, (0.3, 0.8), fills=("photo",), long_side=768), rng,
                         bgs.pick(rng))
        m = rng.uniform(-0.04, 0.12, 4)
        b = c.box
        box = (max(0, b.x - m[0] * b.w), max(0, b.y - m[1] * b.h), min(c.image.width, b.x + b.w * (1 + m[2])),
               min(c.image.height, b.y + b.h * (1 + m[3])))
        yield c.image.crop(tuple(round(v) for v in box)), ph


def pooled_of(model: Any) -> str:
    """The pooled feature vector the make/model classifier reads (its Gemm's input)."""
    for node in model.graph.node:
        if "make_model_logits" in node.output and node.op_type == "Gemm":
            return str(node.input[0])
    raise ValueError("no Gemm makes make_model_logits: not a CarValue model graph")


def feature_session(model_path: Path, threads: int = 2) -> tuple[Any, Any]:
    """A session of the model file that also returns the pooled features (its last output)."""
    return session_with_tensor(model_path, pooled_of, threads)


def features(model: Path, views: Iterator[tuple[Image.Image, Photo]], batch: int = 32) -> tuple[np.ndarray, list[Photo]]:
    sess, meta = feature_session(model)
    names = [o.name for o in sess.get_outputs()]
    feats: list[np.ndarray] = []
    who: list[Photo] = []
    for chunk in in_batches(views, batch, "views", 25):
        x = np.stack([to_input(im, meta.input) for im, _ in chunk])
        outs = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))
        feats.append(outs[names[-1]].reshape(len(chunk), -1).astype(np.float32))
        who.extend(ph for _, ph in chunk)
    return np.concatenate(feats), who


@dataclasses.dataclass
class Linear:
    """Softmax regression folded to act on raw features: logits = x @ w.T + b."""

    w: np.ndarray
    b: np.ndarray


def fit_softmax(x: np.ndarray, y: np.ndarray, n: int, l2: float = 1e-3, steps: int = 200, seed: int = 0,
                smoothing: float = 0.1) -> Linear:
    """Multinomial logistic regression on standardised features (L-BFGS, label smoothing),
    returned with the standardisation folded in."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs = torch.from_numpy((x - mean) / std).float()
    yt = torch.from_numpy(y).long()
    lin = torch.nn.Linear(x.shape[1], n)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(lin(xs), yt) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w = lin.weight.detach().numpy().astype(np.float64) / std
    b = lin.bias.detach().numpy().astype(np.float64) - w @ mean
    return Linear(w.astype(np.float32), b.astype(np.float32))


def graft(model: Path, heads: dict[str, Linear], spec: MakeSpec, out: Path) -> None:
    """``model`` with ``heads`` (output name -> Linear) read off the pooled features and ``spec``
    in its metadata; every other output unchanged."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(model))
    pooled = pooled_of(m)
    g = m.graph
    have = {o.name for o in g.output}
    for name, lin in heads.items():
        if name in have:
            raise ValueError(f"{model} already has an output {name!r}")
        w, b = f"make_head/{name}.weight", f"make_head/{name}.bias"
        g.initializer.extend([numpy_helper.from_array(lin.w, w), numpy_helper.from_array(lin.b, b)])
        g.node.append(helper.make_node("Gemm", [pooled, w, b], [name], transB=1, name=f"make_head/{name}"))
        g.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", lin.w.shape[0]]))
    onnx.checker.check_model(m)
    _, meta = open_session(model, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "graph.onnx"
        onnx.save(m, str(raw))
        write_model_file(raw, dataclasses.replace(meta, make=spec), out)


Case = tuple[str, Image.Image, Box, Photo]


def case_images(photos: Sequence[Photo], seed: int) -> Iterator[Case]:
    """Each held-out photo as the tight crop and framed at 35% and 60% of a held-out background,
    with the pasted car's box (used only by a model file that cannot find the car itself)."""
    from training.data.negatives import background_files

    rng = np.random.default_rng(seed)
    bgs = BackgroundPool(background_files("test"))
    for ph in photos:
        car = _open(ph.path)
        yield "tight", car, Box.full(car.size), ph
        for cov in (0.35, 0.6):
            c = comp.compose(car, comp.random_recipe(rng, (cov, cov), fills=("photo",), long_side=1024), rng,
                             bgs.pick(rng))
            yield f"framed {cov:.0%}", c.image, c.box, ph


def measure(model: Path, cases: Iterator[Case], bodies: dict[str, str | None],
            class_make: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per view: photos, make top-1 (the make head; and the classes' probabilities summed by
    make, the baseline), make/model top-1, body top-1, share called unknown (known_car false),
    and each photo's top make/model probability (for thresholds).  Predicted as the app does
    (``--crop auto``); a model file without framing heads gets the pasted car's box instead."""
    pred = Predictor.load(model)
    n_classes = len(pred.metadata.make_models)
    framed = pred.metadata.framing is not None
    out: dict[str, dict[str, Any]] = {}
    for view, image, box, ph in cases:
        try:
            p = pred.predict(photo_from_image(image), CropMode.AUTO if framed else box, top_k=n_classes)
        except ImageLoadError:
            continue
        d = out.setdefault(view, {"photos": 0, "make_head": 0, "make_sum": 0, "make_model": 0, "body": 0,
                                  "bodied": 0, "unknown": 0, "top_probs": []})
        d["photos"] += 1
        marg: dict[str, float] = {}
        for lp in p.make_models:
            k = class_make.get(lp.label, "")  # the Unknown class counts for no make
            marg[k] = marg.get(k, 0.0) + lp.probability
        d["make_head"] += bool(p.makes) and p.makes[0].label == ph.make
        d["make_sum"] += max(marg, key=marg.__getitem__) == ph.make
        d["make_model"] += p.make_models[0].label == ph.row.class_name
        truth = bodies.get(ph.row.class_name)
        if truth is not None and p.bodies:
            d["bodied"] += 1
            d["body"] += p.bodies[0].label == truth
        d["unknown"] += p.known_car is False
        d["top_probs"].append(p.make_models[0].probability)
    res = {}
    for view, d in out.items():
        n = d["photos"]
        res[view] = {"photos": n, "make_top1": d["make_head"] / n, "make_top1_summed_classes": d["make_sum"] / n,
                     "make_model_top1": d["make_model"] / n, "unknown": d["unknown"] / n,
                     "body_top1": d["body"] / d["bodied"] if d["bodied"] else float("nan"),
                     "top_probs": d["top_probs"]}
    return res


def build(model: Path, data: Path, split_json: Path, out: Path, families: Sequence[str] = (),
          unknown_share: float = UNKNOWN_SHARE, seed: int = 0, limit: int = 0,
          natural: Path | None = None) -> dict[str, Any]:
    """Fit, graft, set the threshold, measure; the model file with its ``make`` section and
    ``metrics.make`` is ``out / carvalue.onnx``."""
    out.mkdir(parents=True, exist_ok=True)
    cat = load_catalogue()
    parts = photos_by_part(data, split_json)
    train = parts["train"][:limit] if limit else parts["train"]
    all_rows = read_labels_csv(data)
    bodies = {r.class_name: body_of(r.class_name, cat) for r in all_rows}
    class_make = {r.class_name: r.make for r in all_rows}
    print(f"features of {len(train)} training photos (2 views each)", flush=True)
    x, who = features(model, training_views(train, seed))
    makes = tuple(sorted({ph.make for ph in who}))
    y_make = np.array([makes.index(ph.make) for ph in who])
    body_rows = [i for i, ph in enumerate(who) if bodies.get(ph.row.class_name)]
    y_body = np.array([BODIES.index(bodies[who[i].row.class_name]) for i in body_rows])  # type: ignore[arg-type]
    heads = {MAKE_OUTPUT: fit_softmax(x, y_make, len(makes), seed=seed),
             BODY_OUTPUT: fit_softmax(x[body_rows], y_body, len(BODIES), seed=seed)}
    # The threshold is set on held-out known photos: the validation half kept for it when the
    # split has a test part; else the first half of validation (the report gets the other half).
    val, test = parts["val"], parts.get("test") or []
    if not test:
        half = sorted(val, key=lambda p: p.path.name)
        val, test = half[: len(half) // 2], half[len(half) // 2:]
    if limit:
        val, test = val[:limit], test[:limit]
    first = out / "carvalue-unset.onnx"
    note = ("make and body heads: softmax regressions on the pooled trunk features (training/framing/make_head.py); "
            f"known_car: top make/model probability at or above the threshold that calls {unknown_share:.0%} of "
            "held-out photos of known classes unknown")
    spec = MakeSpec(makes=makes, make_output=MAKE_OUTPUT, bodies=BODIES, body_output=BODY_OUTPUT,
                    known_threshold=0.0, note=note)
    graft(model, heads, spec, first)
    tval = measure(first, case_images(val, seed + 1), bodies, class_make)
    probs = np.concatenate([np.asarray(d["top_probs"]) for d in tval.values()])
    threshold = float(np.quantile(probs, unknown_share))
    final = out / "carvalue.onnx"
    _, meta = open_session(first, threads=1)
    assert meta.make is not None
    write_model_file(first, dataclasses.replace(meta, make=dataclasses.replace(meta.make, known_threshold=threshold)),
                     final)
    first.unlink()
    report: dict[str, Any] = {"threshold": threshold, "threshold_photos": len(val), "unknown_share_target": unknown_share,
                              "makes": len(makes), "training_views": len(who),
                              "crop": "the car found (--crop auto)" if meta.framing is not None else
                                      "the pasted car's box (the file has no framing heads)",
                              "known": _strip(measure(final, case_images(test, seed + 2), bodies, class_make))}
    if natural is not None:
        report["natural_cars"] = natural_cars(final, natural)
    if families:
        fam = family_photos(data, families)
        if limit:
            fam = fam[:limit]
        report["families"] = list(families)
        report["family_photos"] = len(fam)
        report["held_out_families"] = _strip(measure(final, case_images(fam, seed + 3), bodies, class_make))
    return report


def natural_cars(model: Path, natural: Path) -> dict[str, Any]:
    """Share called unknown of the natural-photos folder's whole-car photos (Caltech 101 side
    views, ImageNet cabs, jeeps...: makes and years not labelled, some perhaps classes it knows,
    most probably not), through ``--crop auto``; no make or model is checked."""
    from training.framing import whole_car_data as wd

    pred = Predictor.load(model)
    cars = [p for p in wd.read_natural(natural) if p.kind == "car"]
    unknown, n = 0, 0
    for p in cars:
        try:
            r = pred.predict(photo_from_image(_open(p.path)), CropMode.AUTO)
        except ImageLoadError:
            continue
        n += 1
        unknown += r.known_car is False
    return {"photos": n, "unknown": unknown / n if n else float("nan")}


def _strip(r: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v: {k: x for k, x in d.items() if k != "top_probs"} for v, d in r.items()}


def markdown(r: dict[str, Any]) -> str:
    rows = ["| held-out photos | view | photos | make top-1 (make head) | make top-1 (classes summed by make) | "
            "make/model top-1 | body top-1 | called unknown (known_car false) |", "|" + " --- |" * 8]
    for key, title in (("known", "known classes"), ("held_out_families", "held-out families")):
        for view, d in r.get(key, {}).items():
            rows.append(f"| {title} | {view} | {d['photos']} | {100 * d['make_top1']:.1f}% | "
                        f"{100 * d['make_top1_summed_classes']:.1f}% | {100 * d['make_model_top1']:.1f}% | "
                        f"{100 * d['body_top1']:.1f}% | {100 * d['unknown']:.1f}% |")
    nat = r.get("natural_cars")
    if nat:
        rows.append(f"| natural car photos (makes not labelled: some may be classes it knows) | crop auto | "
                    f"{nat['photos']} | | | | | {100 * nat['unknown']:.1f}% |")
    fams = r.get("families")
    head = (f"known_car threshold {r['threshold']:.3f} (top make/model probability; set on {r['threshold_photos']} "
            f"held-out photos of known classes to call {100 * r['unknown_share_target']:.0f}% of them unknown).")
    head += f" Photos predicted on {r.get('crop', 'the car found')}."
    if fams:
        head += f" Held-out families ({r['family_photos']} photos, never trained on): " + ", ".join(fams) + "."
    return head + "\n\n" + "\n".join(rows) + "\n"


def card_section(own: dict[str, Any], lfo: dict[str, Any] | None = None) -> str:
    """The model card's section: this file's heads on held-out known photos, and the
    leave-family-out run's figures (the only honest measure of a car the classes lack)."""
    parts = ["## Make, body type and a car it does not know", "",
             "Make and body type are softmax regressions on the pooled trunk features (training/framing/make_head.py), "
             "so a car whose model or generation is not a class still gets its make; `known_car` is false when "
             "the top make/model probability is below a threshold. This file:", "", markdown(own)]
    if lfo:
        parts += ["The leave-family-out run (its trunk and heads never saw the held-out families; its own "
                  "threshold set the same way)" + (f", {lfo['model']}" if lfo.get("model") else "") + ":", "",
                  markdown(lfo)]
    else:
        parts += ["No leave-family-out run is recorded for this file: how the make head does on a car "
                  "the classes lack is not measured here.", ""]
    return "\n".join(parts)


def record(model: Path, report: dict[str, Any]) -> None:
    """The report's figures into the model file's metrics (``make``)."""
    record_metrics(model, "make", report)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.framing.make_head", description=__doc__.split("\n\n")[0])
    ap.add_argument("cmd", choices=["build", "record-lfo"],
                    help="build: fit, graft, measure; record-lfo: write a leave-family-out run's "
                         "make_report.json (--report) into --model's metrics")
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--split", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--families", default="", help="held-out families to measure (a leave-family-out run's)")
    ap.add_argument("--report", type=Path, help="folder for make_report.json / .md")
    ap.add_argument("--unknown-share", type=float, default=UNKNOWN_SHARE)
    ap.add_argument("--natural", type=Path, help="natural-photos folder: report the share of its car photos called unknown")
    ap.add_argument("--limit", type=int, default=0, help="photos per part, at most (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == "record-lfo":
        if a.report is None:
            ap.error("record-lfo needs --report (the leave-family-out run's report folder)")
        record_metrics(a.model, "make_leave_family_out", json.loads((a.report / "make_report.json").read_text()))
        return 0
    if a.data is None or a.split is None or a.out is None:
        ap.error("build needs --data, --split and --out")
    r = build(a.model, a.data, a.split, a.out, parse_families(a.families), a.unknown_share, a.seed, a.limit,
              a.natural)
    record(a.out / "carvalue.onnx", r)
    rep = a.report or a.out
    rep.mkdir(parents=True, exist_ok=True)
    (rep / "make_report.json").write_text(json.dumps(r, indent=1))
    (rep / "make_report.md").write_text(markdown(r))
    print(markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
