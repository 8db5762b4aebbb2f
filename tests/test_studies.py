"""The four model studies (training/studies) on a random-weight model and a few drawn car photos.

Each study's numbers are checked against direct Predictor calls on the same inputs, so a study
that mis-wires an input, a crop, an aggregate or the report fails here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.geometry import Box
from core.predictor import Predictor
from core.preprocess import load_photo
from training.formatting import pct, usd
from training.studies import background_swap, backgrounds, crop_pan, occlusion, ood, run_all
from training.studies.backgrounds import all_backgrounds, photo_backgrounds
from training.studies.common import StudyArgs, held_out_files, pick_cars, truth_label
from training.studies.report import MAX_PNG_BYTES
from training.testmodels import MAKE_MODELS

# (file, make, model, year, size): two photos wide enough for the crop-pan study.
PHOTOS = (
    ("images/a.jpg", "Acura", "TL Sedan", "2012", (300, 120)),
    ("images/b.jpg", "Audi", "TTS Coupe", "2012", (280, 110)),
    ("images/c.jpg", "Geo", "Metro Convertible", "1993", (200, 140)),
    ("images/d.jpg", "Hyundai", "Sonata Hybrid Sedan", "2012", (180, 120)),
    ("images/e.jpg", "Tesla", "Model S Sedan", "2012", (240, 150)),  # not in the vocabulary
)


def draw_car(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(120, 230, 3)))
    d = ImageDraw.Draw(img)
    body = tuple(int(v) for v in rng.integers(0, 255, 3))
    d.rectangle((0.05 * w, 0.35 * h, 0.95 * w, 0.8 * h), fill=body)
    d.rectangle((0.25 * w, 0.1 * h, 0.7 * w, 0.4 * h), fill=body)
    for cx in (0.22 * w, 0.78 * w):
        d.ellipse((cx - 0.1 * h * 1.5, 0.65 * h, cx + 0.1 * h * 1.5, h - 1), fill=(20, 20, 20))
    return img


@pytest.fixture(scope="module")
def car_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cars")
    (root / "images").mkdir()
    with (root / "labels.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["file", "make", "model", "year", "class_id", "class_name", "width", "height"])
        for i, (file, make, model, year, size) in enumerate(PHOTOS):
            draw_car(size, i).save(root / file, quality=90)
            wr.writerow([file, make, model, year, i + 1, f"{make} {model} {year}", *size])
    return root


@pytest.fixture(scope="module")
def studies_out(model_file: Path, car_data: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """All four studies through the runner, once for this module, at a reduced size: the
    wallpaper folder holds one drawn photo (whatever the machine has installed), a 4x4
    occlusion grid on one photo, two random crops per background."""
    out = tmp_path_factory.mktemp("studies")
    walls = tmp_path_factory.mktemp("wallpapers")
    (walls / "mate" / "nature").mkdir(parents=True)
    draw_car((320, 200), 99).transpose(Image.Transpose.ROTATE_180).save(walls / "mate/nature/Storm.jpg")
    args = StudyArgs(model_file, car_data, out, limit=3, seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backgrounds, "WALLPAPER_DIR", walls)
        mp.setattr(occlusion, "GRID", 4)
        mp.setattr(occlusion, "HEATMAPS", 1)
        mp.setattr(ood, "CROPS_PER_BACKGROUND", 2)
        yield {"args": args, "results": run_all.run_all(args, log=lambda _: None)}


@pytest.fixture(scope="module")
def predictor(model_file: Path) -> Predictor:
    return Predictor.load(model_file)


def outputs_ok(out: Path, name: str) -> tuple[str, dict[str, Any]]:
    md = (out / f"{name}.md").read_text()
    data = json.loads((out / f"{name}.json").read_text())
    pngs = sorted(out.glob(f"{name}_*.png"))
    assert pngs, f"{name} wrote no figure"
    for png in pngs:
        assert png.stat().st_size < MAX_PNG_BYTES
        assert f"]({png.name})" in md, f"{png.name} not linked from {name}.md"
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width > 100
    return md, data


def test_runner_writes_an_index_of_all_four(studies_out: dict[str, Any]) -> None:
    out = studies_out["args"].out
    index = (out / "README.md").read_text()
    for name in ("crop_pan", "background_swap", "occlusion", "ood"):
        assert f"]({name}.md)" in index
        assert (out / f"{name}.md").exists()


def test_crop_pan_matches_direct_sweeps(studies_out: dict[str, Any], predictor: Predictor) -> None:
    args = studies_out["args"]
    md, data = outputs_ok(args.out, crop_pan.NAME)
    photos = data["photos"]
    assert {p["file"] for p in photos} == {"images/a.jpg", "images/b.jpg"}  # the wide ones only
    agree = []
    for ph in photos:
        photo = load_photo(args.data / ph["file"])
        full = predictor.predict(photo)
        sweep = predictor.sweep(photo, n=crop_pan.POSITIONS, width=crop_pan.WIDTH)
        assert ph["full"]["price"] == pytest.approx(full.median_price, rel=1e-4)
        assert ph["price"] == pytest.approx([p.median_price for p in sweep.predictions], rel=1e-4)
        assert ph["top1"] == [p.top_make_model.label for p in sweep.predictions]
        assert ph["positions"] == pytest.approx(list(sweep.positions), abs=1e-6)
        agree.append([p.top_make_model.label == full.top_make_model.label for p in sweep.predictions])
        assert ph["truth"] in MAKE_MODELS
    s = data["summary"]
    assert s["per_position"]["top1_agreement"] == pytest.approx(np.mean(agree, axis=0).tolist())
    ratio0 = np.median([ph["price"][0] / ph["full"]["price"] for ph in photos])
    assert s["per_position"]["median_price_ratio"][0] == pytest.approx(ratio0)
    assert f"| 1 | {ratio0:.3f} |" in md
    assert f"Photos: {len(photos)} " in md


def test_background_swap_matches_direct_composites(studies_out: dict[str, Any], predictor: Predictor) -> None:
    args = studies_out["args"]
    md, data = outputs_ok(args.out, background_swap.NAME)
    bgs = {b.name: b for b in all_backgrounds(args.seed)}
    photo_names = [b.name for b in photo_backgrounds()]
    assert set(bgs) == {"china", "flower", "Storm", "plain grey", "uniform noise"}
    for fname, fill in background_swap.FRAMINGS:
        abs_changes, agree, correct = [], [], []
        for car in data["cars"]:
            view = car["framings"][fname]
            with Image.open(args.data / car["file"]) as im:
                img = im.convert("RGB")
            ref = predictor.predict(background_swap.composite(img, bgs["plain grey"].image, fill))
            assert view["price"]["plain grey"] == pytest.approx(ref.median_price, rel=1e-4)
            for name in photo_names:
                p = predictor.predict(background_swap.composite(img, bgs[name].image, fill))
                assert view["price"][name] == pytest.approx(p.median_price, rel=1e-4)
                abs_changes.append(abs(p.median_price - ref.median_price))
                agree.append(p.top_make_model.label == ref.top_make_model.label)
                if car["truth"] is not None:
                    correct.append(p.top_make_model.label == car["truth"])
        s = data["summary"][fname]
        pb = s["photo_backgrounds"]
        assert pb["mean_abs_change"] == pytest.approx(np.mean(abs_changes), rel=1e-3)
        assert pb["median_abs_change"] == pytest.approx(np.median(abs_changes), rel=1e-3)
        assert pb["top1_agreement"] == pytest.approx(np.mean(agree))
        assert s["accuracy"]["photo_backgrounds"] == pytest.approx(np.mean(correct))
        flagged = [c["framings"][fname]["flagged"][n] for c in data["cars"] for n in photo_names]
        confs = [c["framings"][fname]["confidence"][n] for c in data["cars"] for n in photo_names]
        assert flagged == [c < predictor.metadata.confidence.threshold for c in confs]
        assert s["flagged"]["photo_backgrounds"] == pytest.approx(np.mean(flagged))
        assert f"| {fname} | {len(data['cars'])} | {usd(pb['mean_abs_change'])} |" in md
        logp = np.log([[c["framings"][fname]["price"][n] for n in photo_names] for c in data["cars"]])
        ratio = logp.var(axis=1).mean() / logp.mean(axis=1).var()
        assert s["background_to_car_variance_ratio"] == pytest.approx(ratio)
        assert f"= {ratio:.2f}; mean price on grey" in md
    assert "CC BY 2.0" in md and "mate-backgrounds (GPL-2+): Storm" in md  # licences recorded


def test_composite_keeps_the_car_pixels() -> None:
    car = draw_car((200, 100), 7)
    bg = Image.new("RGB", (640, 480), (0, 255, 0))
    w, h = background_swap.CANVAS
    for _, fill in background_swap.FRAMINGS:
        out = np.asarray(background_swap.composite(car, bg, fill))
        assert out.shape == (h, w, 3)
        assert (out[0, 0] == [0, 255, 0]).all()  # background around the car
        cw = round(200 * min(fill * w / 200, fill * h / 100))
        bottom = round(background_swap.car_bottom(fill) * h)
        assert not (out[bottom - 2, w // 2] == [0, 255, 0]).all()  # the car sits there
        car_px = (out != [0, 255, 0]).any(axis=2)
        assert car_px.sum() == pytest.approx(cw * round(cw / 2), rel=0.03)


def test_occlusion_matches_direct_predictions(studies_out: dict[str, Any], predictor: Predictor) -> None:
    args = studies_out["args"]
    md, data = outputs_ok(args.out, occlusion.NAME)
    k = len(predictor.metadata.make_models)
    agree = {v: [] for v in occlusion.VARIANTS}
    for ph in data["photos"]:
        with Image.open(args.data / ph["file"]) as im:
            img = im.convert("RGB")
        clean = predictor.predict(img, top_k=k)
        assert ph["clean"]["top1"] == clean.top_make_model.label
        for v in occlusion.VARIANTS:
            rects = [tuple(r) for r in ph["variants"][v]["rects"]]
            if v != "random":
                assert rects == list(occlusion.FIXED_OCCLUDERS[v])
            p = predictor.predict(occlusion.occlude(img, rects), top_k=k)
            assert ph["variants"][v]["top1"] == p.top_make_model.label
            probs = {lp.label: lp.probability for lp in p.make_models}
            assert ph["variants"][v]["clean_top1_prob"] == pytest.approx(probs[clean.top_make_model.label], rel=1e-4)
            agree[v].append(p.top_make_model.label == clean.top_make_model.label)
    for v in occlusion.VARIANTS:
        assert data["summary"]["all"][v]["top1_agreement"] == pytest.approx(np.mean(agree[v]))
        assert f"`{v}` {pct(np.mean(agree[v]))}" in md
    # One heat-map cell against a direct call.
    hm = data["heatmaps"][0]
    with Image.open(args.data / hm["file"]) as im:
        img = im.convert("RGB")
    rect = occlusion.grid_rects()[occlusion.GRID + 2]  # row 1, column 2
    p = predictor.predict(occlusion.occlude(img, [rect]), top_k=k)
    probs = {lp.label: lp.probability for lp in p.make_models}
    assert hm["drop"][1][2] == pytest.approx(hm["top1_prob"] - probs[hm["top1"]], abs=1e-5)


def test_occluder_paints_grey_where_asked() -> None:
    img = Image.new("RGB", (100, 50), (255, 0, 0))
    out = np.asarray(occlusion.occlude(img, occlusion.FIXED_OCCLUDERS["ends"]))
    assert (out[25, 5] == 128).all() and (out[25, 95] == 128).all()
    assert (out[25, 50] == [255, 0, 0]).all() and (out[2, 5] == [255, 0, 0]).all()
    grey = (out == 128).all(axis=2).mean()
    assert grey == pytest.approx(0.15, abs=0.01)


def test_ood_matches_direct_predictions(studies_out: dict[str, Any], predictor: Predictor) -> None:
    from sklearn.metrics import roc_auc_score

    args = studies_out["args"]
    md, data = outputs_ok(args.out, ood.NAME)
    res = data["results"]
    car_conf = [predictor.predict(load_photo(args.data / r["name"])).confidence for r in res[ood.CAR]]
    assert [r["confidence"] for r in res[ood.CAR]] == pytest.approx(car_conf, rel=1e-4)
    bg_conf = [predictor.predict(b.image).confidence for b in photo_backgrounds()]
    assert [r["confidence"] for r in res["background photo"]] == pytest.approx(bg_conf, rel=1e-4)
    noncar = [r["confidence"] for g in ood.NONCAR_GROUPS for r in res[g]]
    assert len(res["background crop"]) == ood.CROPS_PER_BACKGROUND * len(bg_conf)
    expected = roc_auc_score([1] * len(car_conf) + [0] * len(noncar), car_conf + noncar)
    s = data["summary"]
    assert s["auroc_car_vs_noncar"] == pytest.approx(expected)
    assert f"{s['auroc_car_vs_noncar']:.3f}" in md
    threshold = predictor.metadata.confidence.threshold
    flagged = np.mean([c < threshold for c in noncar])
    assert s["flagged_noncar"] == pytest.approx(flagged)
    assert len(res["car part: wheel region"]) == 2  # the two wide photos
    for row in res["car part: 20% crop"] + res["background crop"][:2]:
        assert row["box"] is not None
    part = res["car part: 20% crop"][0]
    photo = load_photo(args.data / part["name"].split("#")[0])
    direct = predictor.predict(photo, crop=Box(*part["box"]))
    assert part["confidence"] == pytest.approx(direct.confidence, rel=1e-4)
    w, h = photo.original_size
    assert part["box"][2] * part["box"][3] == pytest.approx(ood.PART_AREA * w * h)


def test_auroc_against_known_values() -> None:
    assert ood.auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert ood.auroc([0.1], [0.9]) == 0.0
    assert ood.auroc([0.5, 0.5], [0.5]) == 0.5
    assert ood.auroc([0.9, 0.4], [0.5, 0.1]) == 0.75


def test_held_out_split_in_provenance_restricts_the_photos(car_data: Path, tmp_path: Path) -> None:
    prov = {"split": {"test_files": ["/somewhere/images/b.jpg", "images/d.jpg"]}}
    assert held_out_files(prov) == {"images/b.jpg", "images/d.jpg"}
    args = StudyArgs(Path("unused.onnx"), car_data, tmp_path, None, 0)
    fake = SimpleNamespace(metadata=SimpleNamespace(provenance=prov))
    sel = pick_cars(args, fake)  # type: ignore[arg-type]
    assert sel.held_out and {c.file for c in sel.cars} == {"images/b.jpg", "images/d.jpg"}
    assert "held-out" in sel.note
    no_split = SimpleNamespace(metadata=SimpleNamespace(provenance={"data": "x", "split": {"seed": 0}}))
    sel = pick_cars(StudyArgs(args.model, car_data, tmp_path, 2, 0), no_split)  # type: ignore[arg-type]
    assert not sel.held_out and len(sel.cars) == 2 and "may have been used" in sel.note


def test_held_out_split_from_the_trainers_split_json(car_data: Path, tmp_path: Path) -> None:
    split = {"seed": 0, "parts": {"train": {"groups": ["a"], "files": ["images/a.jpg", "images/c.jpg"]},
                                  "test": {"groups": ["e"], "files": ["images/e.jpg"]}}}
    assert held_out_files({"run": split}) == {"images/e.jpg"}
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    args = StudyArgs(Path("unused.onnx"), car_data, tmp_path, None, 0, split=path)
    sel = pick_cars(args, SimpleNamespace(metadata=SimpleNamespace(provenance={})))  # type: ignore[arg-type]
    assert sel.held_out and [c.file for c in sel.cars] == ["images/e.jpg"]
    assert "split.json" in sel.note
    split["sha256"] = "ab" * 32
    path.write_text(json.dumps(split))
    same = SimpleNamespace(metadata=SimpleNamespace(provenance={"split": {"sha256": "ab" * 32}}))
    assert "matches the model's" in pick_cars(args, same).note  # type: ignore[arg-type]
    other = SimpleNamespace(metadata=SimpleNamespace(provenance={"split": {"sha256": "cd" * 32}}))
    with pytest.raises(SystemExit, match="another training run"):
        pick_cars(args, other)  # type: ignore[arg-type]
    path.write_text(json.dumps({"parts": {"train": {"files": ["images/a.jpg"]}}}))
    with pytest.raises(SystemExit, match="no held-out"):
        pick_cars(args, SimpleNamespace(metadata=SimpleNamespace(provenance={})))  # type: ignore[arg-type]


def test_truth_label_accepts_either_vocabulary_style(car_data: Path) -> None:
    from training.studies.common import read_labels

    car = read_labels(car_data)[0]
    assert truth_label(car, ["Acura TL Sedan 2012", "Unknown"]) == "Acura TL Sedan 2012"
    assert truth_label(car, ["Acura TL Sedan", "Unknown"]) == "Acura TL Sedan"
    assert truth_label(car, ["Audi TTS Coupe", "Unknown"]) is None


def test_study_cli_on_real_photos(model_file: Path, stanford_dir: Path, tmp_path: Path) -> None:
    assert crop_pan.main(["--model", str(model_file), "--data", str(stanford_dir),
                          "--out", str(tmp_path), "--limit", "2"]) == 0
    md, data = outputs_ok(tmp_path, crop_pan.NAME)
    assert len(data["photos"]) == 2
    assert all(ph["positions"][0] < ph["positions"][-1] for ph in data["photos"])
    with pytest.raises(SystemExit):
        crop_pan.main(["--model", str(model_file), "--data", str(tmp_path), "--out", str(tmp_path)])
