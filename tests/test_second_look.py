"""The second look (FramingSpec.second_look): where the first pass on the whole photo sees no
whole car, the box the box head found is predicted on, and its verdict stands when it is a whole
car.  Through the CLI, as a user runs it: a car small in a busy scene gets its price."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from core.cli import main
from core.modelfile import open_session, write_model_file

BOX = (0.3, 0.3, 0.7, 0.7)  # where the test file's box head always finds the car


@pytest.fixture(scope="module")
def looking(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files whose whole-car logit is the brightness of the crop and whose car output says "no
    car" for any crop judged not whole: without and with the second look."""
    pytest.importorskip("torch")
    from training.testmodels import (
        make_framed_model_file,
        make_model_file,
        whole_car_from_brightness,
    )

    d = tmp_path_factory.mktemp("second-look")
    base, _ = make_model_file(d / "base.onnx", size=64, padding="same")
    off = whole_car_from_brightness(make_framed_model_file(base, d / "off.onnx", BOX, 0.0, threshold=0.3,
                                                           unsure_below=0.6, car_logit=-5.0))
    _, meta = open_session(off, threads=1)
    assert meta.framing is not None and not meta.framing.second_look
    out = {"off": off}
    for name, min_top in (("on", 0.0), ("on, sure only", 0.9)):
        out[name] = d / f"{name}.onnx"
        framing = dataclasses.replace(meta.framing, second_look=True, second_look_min_top=min_top)
        write_model_file(off, dataclasses.replace(meta, framing=framing), out[name])
    return out


def _photo(tmp_path: Path, bright_box: bool) -> Path:
    """A dark 600x400 photo; with ``bright_box``, a bright car-sized patch where BOX is."""
    img = Image.new("RGB", (600, 400), (10, 10, 10))
    if bright_box:
        img.paste((250, 250, 250), (round(BOX[0] * 600), round(BOX[1] * 400), round(BOX[2] * 600), round(BOX[3] * 400)))
    path = tmp_path / f"scene-{bright_box}.png"
    img.save(path)
    return path


def _predict(model: Path, photo: Path) -> dict[str, object]:
    out, err = io.StringIO(), io.StringIO()
    assert main([str(photo), "--model", str(model), "--json"], out, err) == 0, err.getvalue()
    return json.loads(out.getvalue())["photos"][0]["prediction"]


def test_a_car_small_in_a_dark_scene_is_found_by_the_second_look(looking: dict[str, Path], tmp_path: Path) -> None:
    photo = _photo(tmp_path, bright_box=True)
    before = _predict(looking["off"], photo)
    assert before["whole_car"] == "no car" and before["found_box"] is None  # the whole photo reads dark
    after = _predict(looking["on"], photo)
    assert after["whole_car"] == "whole car" and after["looks_like_car"] is True and after["no_car"] is False
    box = after["found_box"]
    assert isinstance(box, dict)
    assert box["x"] == pytest.approx(180, abs=2) and box["w"] == pytest.approx(240, abs=2)
    assert after["crop"] == box  # the estimate is made on the box found, as for any car found


def test_a_file_can_ask_the_second_look_to_be_sure_of_the_car(looking: dict[str, Path], tmp_path: Path) -> None:
    """With ``second_look_min_top`` above the crop's top make/model probability (this random
    network's is far below 0.9), the first pass's verdict stays."""
    after = _predict(looking["on, sure only"], _photo(tmp_path, bright_box=True))
    assert after["whole_car"] == "no car" and after["found_box"] is None
    top = _predict(looking["on"], _photo(tmp_path, bright_box=True))["make_models"]
    assert isinstance(top, list) and top[0]["probability"] < 0.9


def test_the_second_look_never_makes_a_whole_car_of_nothing(looking: dict[str, Path], tmp_path: Path) -> None:
    """A crop that is not a whole car either keeps the first pass's verdict, and no found box."""
    after = _predict(looking["on"], _photo(tmp_path, bright_box=False))
    assert after["whole_car"] == "no car" and after["found_box"] is None
    assert after["crop"] == {"x": 0.0, "y": 0.0, "w": 600.0, "h": 400.0}


def test_the_window_prices_the_car_the_second_look_found(qtbot: object, looking: dict[str, Path],
                                                          tmp_path: Path) -> None:
    """Dropped into the window: the price is shown bold and the found box is drawn on the car;
    the same photo with the file's second look off says "No car"."""
    pytest.importorskip("PySide6")
    from core.framing import WholeCar
    from tests.gui_support import load, open_window, wait_shown

    photo = _photo(tmp_path, bright_box=True)
    window = open_window(qtbot, looking["on"])
    load(qtbot, window, [photo])
    shown = wait_shown(qtbot, window)
    assert shown.whole_car is WholeCar.YES
    assert window.panel.price_label.text().startswith("$") and not window.panel.price_greyed
    found = window.crop_view.found_box
    assert found is not None and abs(found.x - 180) <= 2 and abs(found.w - 240) <= 2
    assert "$" in window.strip.item(0).text()
    window.close()
    window = open_window(qtbot, looking["off"])
    load(qtbot, window, [photo])
    assert wait_shown(qtbot, window).whole_car is WholeCar.NO_CAR
    assert window.panel.price_label.text() == "No car" and window.crop_view.found_box is None


def test_the_rule_turns_it_on_only_when_whole_cars_gain_and_the_bars_hold() -> None:
    from training.framing.second_look import decide

    without = {"whole: tight crop": 0.03, "whole: framed on a natural photo, car at 35% of the frame": 0.12,
               "part: half a side view (pan sweep)": 0.97, "no car: natural photo": 0.987}
    better = {**without, "whole: framed on a natural photo, car at 35% of the frame": 0.03,
              "no car: natural photo": 0.98}
    assert decide(without, better)
    assert not decide(without, without)  # no gain on the worst kind
    assert not decide(without, {**better, "no car: natural photo": 0.96})  # non-car photos pass
    assert not decide(without, {**better, "part: half a side view (pan sweep)": 0.90})  # parts pass
    assert not decide(without, {**better, "whole: tight crop": 0.13})  # another kind gets worse than before


def test_the_cut_is_the_highest_that_keeps_whole_cars_within_a_point() -> None:
    from training.framing.second_look import Case, choose_min_top, rates

    # 100 framed cars: 10 flagged by the first pass, 8 of them rescued, named at 0.1..0.8;
    # 100 vehicles: all flagged by the first pass, 20 passed by the second look at 0.2 each.
    cars = [Case("whole: framed", i < 10, (i + 1) / 10 if i < 8 else None) for i in range(100)]
    vehicles = [Case("no car: other vehicle", True, 0.2 if i < 20 else None) for i in range(100)]
    cases = cars + vehicles
    assert rates(cases, False)["whole: framed"] == 0.10
    assert rates(cases, True)["whole: framed"] == pytest.approx(0.02)
    # a cut of 0.1 loses no car; 0.15 loses the one at 0.1 (+1 point, allowed); 0.25 loses two
    assert choose_min_top(cases) == pytest.approx(0.2)
    assert rates(cases, True, 0.2)["whole: framed"] == pytest.approx(0.03)
    assert rates(cases, True, 0.25)["no car: other vehicle"] == 1.0


def test_the_recipe_step_decides_and_writes_the_switch(stanford_dir: Path, tmp_path: Path) -> None:
    """training/framing/second_look.py as the recipe runs it (a few photos): the file it writes
    loads, carries its decision, its cut and the validation figures it rests on."""
    natural = stanford_dir.parent / "natural-photos"
    if not (natural / "labels.csv").exists():
        pytest.skip("natural photos not found beside the Stanford photos")
    pytest.importorskip("torch")
    from core.predictor import default_model_path
    from training.data.dataset import split_by_group
    from training.data.records import stanford_records
    from training.framing.second_look import main as second_look

    records = stanford_records(stanford_dir)
    assert records
    split = tmp_path / "split.json"
    split.write_text(split_by_group(records, 0.05, 0.0, 0).to_json(records, stanford_dir))
    out = tmp_path / "look.onnx"
    assert second_look(["--model", str(default_model_path()), "--data", str(stanford_dir), "--split", str(split),
                        "--natural", str(natural), "--out", str(out), "--limit", "2"]) == 0
    _, meta = open_session(out, threads=1)
    assert meta.framing is not None
    report = meta.metrics["second_look"]
    assert report["second_look"] is meta.framing.second_look and report["min_top"] == meta.framing.second_look_min_top
    assert meta.framing.second_look or meta.framing.second_look_min_top == 0.0
    kinds = report["validation"]
    assert any(k.startswith("whole: framed on a natural photo") for k in kinds)
    assert all(0 <= v["without"] <= 1 and 0 <= v["with"] <= 1 and v["photos"] > 0 for v in kinds.values())
