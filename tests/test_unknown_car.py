"""A car it doesn't know (issue 29) below the GUI: the make and body outputs grafted on a model
file, ``known_car`` against its threshold, "2012 or later", the CLI's words and the files, the
make section's checks, and the leave-family-out data rules."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.cli import main
from core.modelfile import MakeSpec, ModelFileError, ModelMetadata, open_session
from training.data.dataset import in_family, parse_families, without_families

MAKES = ("Acura", "Audi", "Ford", "Geo", "Hyundai")


def _grafted(tmp: Path, threshold: float, name: str) -> Path:
    pytest.importorskip("torch")
    from tests.pricefactory import make_priced_model_file
    from training.framing.make_head import BODIES, BODY_OUTPUT, MAKE_OUTPUT, Linear, graft

    base = make_priced_model_file(tmp / f"{name}-base.onnx")
    rng = np.random.default_rng(1)
    heads = {MAKE_OUTPUT: Linear(rng.normal(0, 0.1, (len(MAKES), 1280)).astype(np.float32),
                                 np.zeros(len(MAKES), np.float32)),
             BODY_OUTPUT: Linear(rng.normal(0, 0.1, (len(BODIES), 1280)).astype(np.float32),
                                 np.zeros(len(BODIES), np.float32))}
    spec = MakeSpec(makes=MAKES, make_output=MAKE_OUTPUT, bodies=BODIES, body_output=BODY_OUTPUT,
                    known_threshold=threshold)
    out = tmp / f"{name}.onnx"
    graft(base, heads, spec, out)
    return out


@pytest.fixture(scope="module")
def unknown_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every photo is a car the classes lack (a threshold no top probability reaches)."""
    return _grafted(tmp_path_factory.mktemp("unknown"), 1.0, "unknown")


@pytest.fixture(scope="module")
def known_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _grafted(tmp_path_factory.mktemp("known"), 0.0, "known")


def _photo(tmp: Path) -> Path:
    p = tmp / "car.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (240, 400, 3), dtype=np.uint8)).save(p)
    return p


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(args, out, err), out.getvalue(), err.getvalue()


def test_the_graft_adds_make_and_body_and_changes_nothing_else(unknown_model: Path, tmp_path: Path) -> None:
    sa, meta = open_session(unknown_model, threads=1)
    base = unknown_model.with_name("unknown-base.onnx")
    sb, _ = open_session(base, threads=1)
    x = np.random.default_rng(3).normal(0, 1, (3, 3, meta.input.size, meta.input.size)).astype(np.float32)
    names = [o.name for o in sb.get_outputs()]
    for a, b in zip(sa.run(names, {sa.get_inputs()[0].name: x}), sb.run(names, {sb.get_inputs()[0].name: x}),
                    strict=True):
        assert np.array_equal(a, b)
    assert meta.make is not None and meta.make.makes == MAKES
    assert meta.output_sizes()["make_logits"] == len(MAKES)


def test_an_unknown_car_gets_its_make_and_no_price_as_its_own(unknown_model: Path, tmp_path: Path) -> None:
    from core.predictor import Predictor

    pred = Predictor.load(unknown_model).predict(_photo(tmp_path))
    assert pred.known_car is False and pred.unknown_car
    assert pred.makes and pred.makes[0].label in MAKES and len(pred.bodies) == 5
    assert sum(m.probability for m in pred.makes) <= 1 + 1e-9
    top_year = pred.years[0].label
    assert pred.year_or_later == (top_year == "2012")  # the classes' last model year
    assert pred.year_words == (f"{top_year} or later" if pred.year_or_later else top_year)

    photo = str(_photo(tmp_path))
    rc, out, err = run([photo, "--model", str(unknown_model)])
    assert rc == 0 and err == ""
    assert f"{pred.makes[0].label}, a model or year this app does not know (closest it knows: " \
           f"{pred.make_models[0].label})" in out
    assert f"if it were {pred.make_models[0].label}: not this car's price" in out
    rc, out, _ = run([photo, "--model", str(unknown_model), "--json"])
    d = json.loads(out)["photos"][0]["prediction"]
    assert d["known_car"] is False and d["makes"][0]["label"] == pred.makes[0].label and len(d["makes"]) == 5
    assert d["year_or_later"] == pred.year_or_later

    # naming the car makes it the answer
    rc, out, _ = run([photo, "--model", str(unknown_model), "--car", "Toyota Camry 2016"])
    assert rc == 0 and "does not know" not in out and "Toyota Camry 2016" in out


def test_a_known_car_says_nothing_of_the_kind(known_model: Path, tmp_path: Path) -> None:
    from core.predictor import Predictor

    pred = Predictor.load(known_model).predict(_photo(tmp_path))
    assert pred.known_car is True and not pred.unknown_car and not pred.year_or_later
    rc, out, _ = run([str(_photo(tmp_path)), "--model", str(known_model)])
    assert rc == 0 and "does not know" not in out and "if it were" not in out
    assert "  make " in out


def test_files_carry_known_car_and_make(unknown_model: Path, tmp_path: Path) -> None:
    from core.predictor import Predictor
    from core.report import PhotoResults, csv_header, csv_row

    predictor = Predictor.load(unknown_model)
    pred = predictor.predict(_photo(tmp_path))
    header, row = csv_header(predictor.metadata), csv_row(pred, "photo", None)
    assert len(header) == len(row)
    d = dict(zip(header, row, strict=True))
    assert d["known_car"] == 0 and d["make_1"] == pred.makes[0].label and d["year_or_later"] == int(pred.year_or_later)
    assert PhotoResults  # the JSON path is covered through the CLI above
    with (tmp_path / "x.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, row])


def test_a_file_without_make_outputs_cannot_tell(tmp_path: Path) -> None:
    from core.predictor import Predictor
    from tests.pricefactory import make_priced_model_file

    pred = Predictor.load(make_priced_model_file(tmp_path / "plain.onnx")).predict(_photo(tmp_path))
    assert pred.known_car is None and pred.makes == () and not pred.unknown_car
    assert pred.to_dict()["known_car"] is None


def _meta_with(make: MakeSpec) -> ModelMetadata:
    from training.testmodels import random_metadata

    return dataclasses.replace(random_metadata(), make=make, format_version=2)


@settings(max_examples=60, deadline=None)
@given(makes=st.lists(st.text(min_size=1, max_size=8), max_size=5), threshold=st.floats(allow_nan=True),
       out=st.sampled_from(["make_logits", "median", "make_model_logits", ""]))
def test_the_make_section_is_checked(makes: list[str], threshold: float, out: str) -> None:
    spec = MakeSpec(makes=tuple(makes), make_output=out, known_threshold=threshold)
    ok = len(makes) >= 2 and len(set(makes)) == len(makes) and out == "make_logits" and 0 <= threshold <= 1
    meta = _meta_with(spec)
    if ok:
        meta.validate()
        again = ModelMetadata.from_json(meta.to_json())
        assert again.make == spec
    else:
        with pytest.raises(ModelFileError, match="make"):
            meta.validate()


@given(st.one_of(st.integers(), st.text(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_a_malformed_make_section_is_one_line(junk: object) -> None:
    d = json.loads(_meta_with(MakeSpec(makes=("A", "B"))).to_json())
    d["make"] = junk if not isinstance(junk, dict) else {"makes": junk}
    try:
        ModelMetadata.from_json(json.dumps(d))
    except ModelFileError as e:
        assert "\n" not in str(e)


# -- leave-family-out data ---------------------------------------------------------------------
def test_families_match_whole_words() -> None:
    assert in_family("Toyota Camry Sedan", "Toyota Camry")
    assert in_family("BMW 3 Series Wagon", "bmw 3 series")
    assert in_family("Chevrolet Silverado 1500 Regular Cab", "Chevrolet Silverado")
    assert not in_family("Audi TTS Coupe", "Audi TT")
    assert not in_family("Toyota Camry Sedan", "")
    assert parse_families(" Toyota Camry, ,BMW 3 Series ") == ("Toyota Camry", "BMW 3 Series")


@given(st.lists(st.sampled_from(["Toyota Camry Sedan", "Toyota Corolla Sedan", "BMW 3 Series Wagon", "BMW X5 SUV"]),
                max_size=20))
def test_without_families_drops_exactly_the_family(names: list[str]) -> None:
    from core.dataset.records import ImageRecord

    recs = [ImageRecord(Path(f"{i}.jpg"), str(i), n.split(" ")[0], n.split(" ", 1)[1], 2012, None)
            for i, n in enumerate(names)]
    kept = without_families(recs, ("Toyota Camry", "BMW 3 Series"))
    assert [r.make_model for r in kept] == [n for n in names if n in ("Toyota Corolla Sedan", "BMW X5 SUV")]


def test_body_words() -> None:
    pytest.importorskip("torch")
    from training.framing.make_head import body_of

    assert body_of("Chevrolet Silverado 1500 Hybrid Crew Cab 2012") == "pickup"
    assert body_of("Ford E-Series Wagon Van 2012") == "van"
    assert body_of("Toyota Camry Sedan 2012") == "sedan"
    assert body_of("Rolls-Royce Phantom Drophead Coupe Convertible 2012") == "convertible"
    assert body_of("Chevrolet Cobalt SS 2010") is None


def test_the_card_says_what_was_measured_and_what_was_not() -> None:
    pytest.importorskip("torch")
    from training.framing.make_head import card_section

    view = {"photos": 10, "make_top1": 0.9, "make_top1_summed_classes": 0.8, "make_model_top1": 0.7,
            "body_top1": 0.6, "unknown": 0.1}
    own = {"threshold": 0.5, "threshold_photos": 10, "unknown_share_target": 0.1, "known": {"tight": view}}
    text = card_section(own)
    assert "| known classes | tight | 10 | 90.0% | 80.0% | 70.0% | 60.0% | 10.0% |" in text
    assert "not measured here" in text
    lfo = {**own, "families": ["Toyota Camry"], "family_photos": 39, "held_out_families": {"tight": view}}
    text = card_section(own, lfo)
    assert "Toyota Camry" in text and "| held-out families | tight |" in text and "not measured" not in text


def test_part_of_a_car_keeps_its_own_warning(unknown_model: Path, tmp_path: Path) -> None:
    """A wheel looks like no class either: only a whole car is called a car the app does not know."""
    from core.framing import WholeCar
    from core.predictor import Predictor

    pred = Predictor.load(unknown_model).predict(_photo(tmp_path))
    part = dataclasses.replace(pred, looks_like_car=False, unsure=False)
    assert part.whole_car is WholeCar.NO and part.known_car is False and not part.unknown_car
    assert dataclasses.replace(pred, looks_like_car=True, unsure=True).unknown_car
