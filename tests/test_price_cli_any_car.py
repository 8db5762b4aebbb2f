"""`carvalue price` (no photo) and `carvalue predict --car` (issue 28)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.price_cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def run(args: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(args, out, err, io.StringIO(stdin) if stdin is not None else None)
    return rc, out.getvalue(), err.getvalue()


def test_one_car_text_and_json() -> None:
    rc, out, err = run(["Toyota Camry 2016", "--mileage", "120000", "--condition", "good", "--year-of-sale", "2026"])
    assert rc == 0 and err == ""
    assert "Toyota Camry 2016" in out and "likely $" in out and "80% range $" in out
    assert "mileage 120,000 mi, condition good" in out and "US dollars of 2026" in out
    rc, out, _ = run(["toyota CAMRY 2016", "--json", "--year-of-sale", "2026"])
    doc = json.loads(out)
    assert rc == 0 and doc["car"]["model"] == "Camry" and doc["car"]["new_price_how"] == "table"
    p = doc["price"]
    assert p["source"] == "catalogue" and p["car_source"] == "user" and p["car"] == "Toyota Camry 2016"
    assert p["range80_low"] <= p["likely_low"] <= p["median"] <= p["likely_high"] <= p["range80_high"]
    # the same price block as `carvalue predict --json`
    assert {"median", "histogram", "what", "ranges", "inputs_used", "not_seen", "notes", "inputs"} <= set(p)


def test_kilometres_equal_miles() -> None:
    km = json.loads(run(["Honda Civic 2015", "--json", "--mileage", "160934.4", "--km"])[1])["price"]
    mi = json.loads(run(["Honda Civic 2015", "--json", "--mileage", "100000"])[1])["price"]
    assert km["median"] == pytest.approx(mi["median"])


@pytest.mark.parametrize("args, msg", [
    ([], "give one car"), (["Toyota Camry 2016", "--csv", "x.csv"], "give one car"),
    (["Toyota Camry 2016", "--km"], "--km needs --mileage"), (["Toyota Camry 2016", "--mileage", "-5"], "mileage"),
    (["Toyota Camry 2016", "--mileage", "inf"], "mileage"),
    (["--csv", "/nonexistent/x.csv"], "cannot read"),
])
def test_bad_usage_exits_2(args: list[str], msg: str) -> None:
    rc, out, err = run(args)
    assert rc == 2 and msg in err and out == ""


def test_csv_one_result_per_row_in_order_and_exit_1_when_one_fails(tmp_path: Path) -> None:
    f = tmp_path / "cars.csv"
    f.write_text("Make,Model,Year,Mileage,km,Condition,Year_of_sale\n"
                 "FORD,F-150,2014,,,,\n"
                 "jeep,wrangler,2015,,,,\n"
                 "MERCEDES-BENZ,ECLASS,2012,100000,,Like New,2025\n"
                 "honda,CR-V,20x,,,,\n"
                 "honda,civic,2015,160934.4,yes,fair,\n")
    rc, out, _ = run(["--csv", str(f), "--json"])
    docs = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and [d["input"] for d in docs] == [f"row {i}" for i in range(1, 6)]
    assert ["error" in d for d in docs] == [False, True, False, True, False]
    assert "make not in the catalogue" in docs[1]["error"] and "year must be a number" in docs[3]["error"]
    assert docs[2]["price"]["inputs"] == {"year_of_sale": 2025, "mileage_mi": 100000.0, "condition": "like-new",
                                          "car": None}
    assert docs[4]["price"]["inputs"]["mileage_mi"] == pytest.approx(100000.0)
    rc, text, _ = run(["--csv", str(f)])
    assert rc == 1 and "row 2: not priced:" in text and text.index("(row 1)") < text.index("row 2:") < text.index("(row 3)")


def test_csv_needs_its_columns(tmp_path: Path) -> None:
    f = tmp_path / "cars.csv"
    f.write_text("make,year\nford,2014\n")
    rc, _, err = run(["--csv", str(f)])
    assert rc == 2 and "lacks model" in err


def test_listing_spellings_priced_and_the_others_said() -> None:
    rc, out, _ = run(["--csv", str(FIXTURES / "listing_names.csv"), "--json"])
    docs = [json.loads(line) for line in out.splitlines()]
    with open(FIXTURES / "listing_names.csv", newline="") as f:
        assert len(docs) == len(list(csv.DictReader(f)))
    assert sum("price" in d for d in docs) / len(docs) >= 0.95
    rc, out, _ = run(["--csv", str(FIXTURES / "listing_names_outside.csv"), "--json"])
    assert rc == 1 and all("error" in json.loads(line) for line in out.splitlines())


CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["Toyota", "FORD", "mercedes-benz", "jeep", ""]),
                               st.sampled_from(["Camry", "F-150", "ECLASS", "x"]) | CELL,
                               st.integers(1980, 2030).map(str) | CELL, CELL, st.sampled_from(["", "yes", "no"]) | CELL,
                               st.sampled_from(["", "good", "Like New", "salvage"]) | CELL), min_size=1, max_size=6))
def test_any_csv_row_is_priced_or_said_never_crashes(rows: list[tuple[str, ...]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["make", "model", "year", "mileage", "km", "condition"])
    w.writerows(rows)
    rc, out, err = run(["--csv", "-", "--json"], stdin=buf.getvalue())
    assert rc in (0, 1) and err == ""
    docs = [json.loads(line) for line in out.splitlines()]
    expected = [r for r in csv.reader(io.StringIO(buf.getvalue()))][1:]
    assert len(docs) == sum(1 for r in expected if any(c.strip() for c in r))
    assert rc == (1 if any("error" in d for d in docs) else 0)
    for d in docs:
        if "price" in d:
            assert d["price"]["likely_low"] <= d["price"]["median"] <= d["price"]["likely_high"]


def test_carvalue_price_imports_no_network_session_no_image_decoder_no_qt() -> None:
    code = ("import sys, io; from carvalue_gui.launcher import main; "
            "rc = main(['price', 'Toyota Camry 2016', '--json']); "
            "bad = [m for m in ('onnxruntime', 'PIL', 'PySide6', 'torch', 'core.predictor') if m in sys.modules]; "
            "print(rc, bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0 []"


def test_predict_with_a_named_car(tmp_path: Path) -> None:
    from core import cli

    photo = ROOT / "resources" / "samples" / "synthetic-sedan.jpg"
    model = ROOT / "resources" / "models" / "carvalue.onnx"
    if not model.exists():
        pytest.skip("no bundled model file")
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main([str(photo), "--json", "--model", str(model), "--car", "toyota camry 2016"], out, err)
    assert rc == 0, err.getvalue()
    pred = json.loads(out.getvalue())["photos"][0]["prediction"]
    assert pred["price"]["car_source"] == "user" and pred["price"]["car"] == "Toyota Camry 2016"
    assert pred["median_price"] == pytest.approx(pred["price"]["median"])
    out = io.StringIO()
    assert cli.main([str(photo), "--json", "--model", str(model)], out, io.StringIO()) == 0
    assert json.loads(out.getvalue())["photos"][0]["prediction"]["price"]["car_source"] == "photo"
    err = io.StringIO()
    assert cli.main([str(photo), "--model", str(model), "--car", "jeep wrangler 2015"], io.StringIO(), err) == 2
    assert "not in the catalogue" in err.getvalue()


@pytest.mark.parametrize("cells, msg", [("inf", "year must be a finite number"), ("nan", "year must be a finite number"),
                                        ("2016.5", "whole year"), ("", "year is empty")])
def test_a_bad_year_cell_is_that_rows_error(tmp_path: Path, cells: str, msg: str) -> None:
    f = tmp_path / "cars.csv"
    f.write_text(f"make,model,year\ntoyota,camry,{cells}\ntoyota,camry,2016\n")
    rc, out, _ = run(["--csv", str(f), "--json"])
    docs = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and msg in docs[0]["error"] and "price" in docs[1]


def test_hostile_text_in_a_row_is_escaped(tmp_path: Path) -> None:
    f = tmp_path / "cars.csv"
    f.write_bytes(b"make,model,year\n\x1b[2Jjeep,wr\xffangler,2015\n")
    with open(f, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        text = fh.read()
    rc, out, _ = run(["--csv", "-", "--json"], stdin=text)
    doc = json.loads(out)
    assert rc == 1 and "\\xff" in doc["query"] and out.encode("utf-8")
    rc, out, _ = run(["--csv", "-"], stdin=text)
    assert rc == 1 and "\x1b" not in out and "\\x1b" in out
