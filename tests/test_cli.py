"""`carvalue predict`: tables, JSON, per-file errors, exit codes, no Qt."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    good = tmp_path / "car.jpg"
    Image.fromarray(rng.integers(0, 255, (200, 400, 3), dtype=np.uint8)).save(good)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    return {"good": good, "empty": empty, "text": text}


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(args, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_table_output(model_file: Path, photos: dict[str, Path]) -> None:
    rc, out, err = run([str(photos["good"]), "--model", str(model_file), "--top", "2"])
    assert rc == 0 and err == ""
    assert str(photos["good"]) in out and "price" in out and "make/model" in out and "confidence" in out


def test_json_lines_with_crop_and_sweep(model_file: Path, photos: dict[str, Path]) -> None:
    rc, out, _ = run([str(photos["good"]), str(photos["good"]), "--json", "--model", str(model_file),
                      "--crop", "10,20,100,80", "--sweep", "4", "--top", "3"])
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    obj = json.loads(lines[0])
    assert obj["file"] == str(photos["good"])
    assert obj["crop"] == {"x": 10, "y": 20, "w": 100, "h": 80}
    assert len(obj["make_models"]) == 3 and len(obj["sweep"]) == 4
    assert [p["position"] for p in obj["sweep"]] == sorted(p["position"] for p in obj["sweep"])
    assert sum(b["probability"] for b in obj["price_bins"]) == pytest.approx(1.0)


def test_bad_files_get_one_line_each_and_the_rest_still_run(model_file: Path, photos: dict[str, Path]) -> None:
    args = [str(photos["empty"]), str(photos["good"]), str(photos["text"]), "--json", "--model", str(model_file)]
    rc, out, err = run(args)
    assert rc == 1
    assert len(out.strip().splitlines()) == 1
    errs = err.strip().splitlines()
    assert len(errs) == 2
    assert str(photos["empty"]) in errs[0] and "empty" in errs[0]
    assert str(photos["text"]) in errs[1] and "not an image" in errs[1]


def test_bad_usage_exits_2(model_file: Path, photos: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([])[0] == 2
    assert run([str(photos["good"]), "--crop", "1,2,3"])[0] == 2
    assert run([str(photos["good"]), "--top", "0"])[0] == 2
    rc, _, err = run([str(photos["good"]), "--model", str(photos["text"])])
    assert rc == 2 and "cannot load model" in err and str(photos["text"]) in err


def test_launcher_predict_never_imports_qt(model_file: Path, photos: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "from carvalue_gui.launcher import main\n"
        f"rc = main(['predict', {str(photos['good'])!r}, '--model', {str(model_file)!r}])\n"
        "assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules, 'Qt was imported'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "make/model" in r.stdout


def test_real_car_photo(model_file: Path, car_photo: Path) -> None:
    rc, out, _ = run([str(car_photo), "--json", "--model", str(model_file)])
    with Image.open(car_photo) as im:
        width = im.width
    assert rc == 0 and json.loads(out)["crop"]["w"] == width
