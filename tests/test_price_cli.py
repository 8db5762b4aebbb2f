"""`carvalue predict` prices with --year-of-sale, --mileage/--km and --condition (issue 17)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from tests.pricefactory import make_priced_model_file


@pytest.fixture(scope="module")
def priced_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_priced_model_file(tmp_path_factory.mktemp("priced") / "priced.onnx")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "car.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 400, 3), dtype=np.uint8)).save(path)
    return path


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(args, out, err)
    return rc, out.getvalue(), err.getvalue()


def price(model: Path, photo: Path, *extra: str) -> dict[str, object]:
    rc, out, err = run([str(photo), "--json", "--crop", "full", "--model", str(model), *extra])
    assert rc == 0, err
    return json.loads(out)["photos"][0]["prediction"]["price"]


def test_high_mileage_and_fair_condition_price_lower(priced_model: Path, photo: Path) -> None:
    low = price(priced_model, photo, "--mileage", "20000")
    high = price(priced_model, photo, "--mileage", "150000")
    assert high["median"] < low["median"]
    fair = price(priced_model, photo, "--condition", "fair")
    excellent = price(priced_model, photo, "--condition", "excellent")
    assert fair["median"] < excellent["median"]
    assert fair["inputs"]["condition"] == "fair" and "condition fair" in fair["inputs_used"]


def test_json_says_what_the_price_is(priced_model: Path, photo: Path) -> None:
    p = price(priced_model, photo, "--year-of-sale", "2024")
    assert p["source"] == "catalogue" and p["year_of_sale"] == 2024  # Stanford class names (issue 28)
    assert p["car_source"] == "photo"
    assert p["likely_low"] <= p["median"] <= p["likely_high"]
    assert p["range80_low"] <= p["likely_low"] and p["likely_high"] <= p["range80_high"]
    assert "2024" in p["what"] and "middle half" in p["ranges"] and "Not seen" in p["not_seen"]
    assert sum(r["probability"] for r in p["histogram"]) == pytest.approx(1.0)


def test_kilometres(priced_model: Path, photo: Path) -> None:
    km = price(priced_model, photo, "--mileage", "160934.4", "--km")
    mi = price(priced_model, photo, "--mileage", "100000")
    assert km["median"] == pytest.approx(mi["median"])


def test_table_shows_both_ranges_and_the_inputs(priced_model: Path, photo: Path) -> None:
    rc, out, _ = run([str(photo), "--model", str(priced_model), "--mileage", "150000", "--condition", "fair"])
    assert rc == 0
    assert "likely $" in out and "80% range $" in out and "mileage 150,000 mi, condition fair" in out


@pytest.mark.parametrize("args, message", [
    (["--mileage", "-3"], "mileage must be a number"),
    (["--km"], "--km needs --mileage"),
    (["--year-of-sale", "1800"], "year of sale must be between"),
])
def test_bad_price_inputs_are_usage_errors(priced_model: Path, photo: Path, args: list[str], message: str) -> None:
    rc, out, err = run([str(photo), "--model", str(priced_model), *args])
    assert rc == 2 and out == "" and message in err and err.count("\n") == 1


def test_unknown_condition_is_a_usage_error(priced_model: Path, photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run([str(photo), "--model", str(priced_model), "--condition", "mint"])
    assert rc == 2 and "invalid choice: 'mint'" in err + capsys.readouterr().err  # argparse's own line


def test_model_file_without_price_model_says_so(model_file: Path, photo: Path) -> None:
    p = price(model_file, photo, "--mileage", "150000")
    assert p["source"] == "price_head" and "no price model" in p["what"]
