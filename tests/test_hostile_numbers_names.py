"""Issue 30 item 18: a price model coefficient of 1e308 is refused at load; a median head of
+inf fails the photo instead of printing a clamped $862M range; file names never put escape
sequences on the terminal, and a name that is not UTF-8 is written as \\xNN, not a surrogate."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.modelfile import ModelFileError, ModelMetadata, PriceSpec, open_session
from core.names import json_text, printable

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "resources" / "models" / "carvalue.onnx"
SAMPLE = ROOT / "resources" / "samples" / "synthetic-sedan.jpg"


def _predict(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable.encode(), b"-m", b"carvalue_gui.launcher", b"predict",
                           *(a if isinstance(a, bytes) else a.encode() for a in args)],
                          cwd=ROOT, capture_output=True, timeout=120)


def _with_metadata(tmp_path: Path, change: dict[str, object] | None = None,
                   coef: tuple[str, str, int, float] | None = None) -> Path:
    m = onnx.load(str(BUNDLED))
    meta = json.loads(m.metadata_props[0].value)
    if coef is not None:
        variant, key, i, value = coef
        meta["price_model"]["variants"][variant][key][i] = value
    meta.update(change or {})
    m.metadata_props[0].value = json.dumps(meta)
    out = tmp_path / "m.onnx"
    onnx.save(m, str(out))
    return out


# -- price model magnitudes --------------------------------------------------------------------------
@pytest.mark.parametrize("coef", [("none", "age_coefs", 0, 1e308), ("mileage", "age_coefs", 2, -1e30),
                                  ("condition", "residual_quantiles", 0, -1e5)])
def test_huge_price_model_coefficient_refused_at_load(tmp_path: Path, coef: tuple[str, str, int, float]) -> None:
    path = _with_metadata(tmp_path, coef=coef)
    with pytest.raises(ModelFileError, match=f"variant {coef[0]}: its coefficients can move a price"):
        open_session(path)
    r = _predict(str(SAMPLE), "--model", str(path))
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    assert r.stderr.decode().count("\n") == 1


def test_huge_typical_miles_and_msrp_refused(tmp_path: Path) -> None:
    meta = json.loads(onnx.load(str(BUNDLED)).metadata_props[0].value)
    pm = meta["price_model"]
    with pytest.raises(ModelFileError, match="typical_miles"):
        ModelMetadata.from_json(json.dumps({**meta, "price_model": {**pm, "typical_miles": [1e300, 0, 0, 0]}}))
    classes = [dict(c) for c in pm["classes"]]
    classes[1]["log_msrp"] = 1e6
    with pytest.raises(ModelFileError, match="log_msrp"):
        ModelMetadata.from_json(json.dumps({**meta, "price_model": {**pm, "classes": classes}}))


def test_real_price_models_pass() -> None:
    ModelMetadata.from_json(onnx.load(str(BUNDLED)).metadata_props[0].value)


# -- a median head that is not finite -----------------------------------------------------------------
def test_to_dollars_of_a_non_finite_head_is_nan() -> None:
    spec = PriceSpec()
    assert math.isnan(spec.to_dollars(math.inf)) and math.isnan(spec.to_dollars(math.nan))
    assert spec.to_dollars(1e6) == pytest.approx(1e9)  # a finite wild value is still capped


def test_infinite_median_head_fails_the_photo(tmp_path: Path) -> None:
    m = onnx.load(str(BUNDLED))
    g = m.graph
    for n in g.node:
        n.output[:] = ["median_orig" if o == "median" else o for o in n.output]
    g.initializer.append(numpy_helper.from_array(__import__("numpy").array(float("inf"), "float32"), "poison"))
    g.node.append(helper.make_node("Add", ["median_orig", "poison"], ["median"]))
    path = tmp_path / "inf.onnx"
    onnx.save(m, str(path))
    for args in ((str(SAMPLE),), (str(SAMPLE), "--json")):
        r = _predict(*args, "--model", str(path))
        assert r.returncode == 1, r.stderr
        assert b"not finite" in r.stderr and b"Traceback" not in r.stderr
        assert b"862" not in r.stdout and b"$" not in r.stdout


# -- names ---------------------------------------------------------------------------------------------
def test_printable_and_json_text() -> None:
    assert printable("a\x1b[2Jb\u202ec\udcffd\x7f\t é") == "a\\x1b[2Jb\\u202ec\\xffd\\x7f\\x09 é"
    assert json_text("x\udcffy\x1b") == "x\\xffy\x1b" and json_text("plain é") == "plain é"


@pytest.fixture
def odd_photo(tmp_path: Path) -> bytes:
    """A real photo whose name holds an escape sequence and a byte that is not UTF-8."""
    name = os.fsencode(tmp_path) + b"/car\x1b[2J\x1b]0;owned\x07\xff.jpg"
    with open(name, "wb") as f:
        f.write(SAMPLE.read_bytes())
    return name


def test_table_mode_escapes_names(odd_photo: bytes) -> None:
    r = _predict(odd_photo, odd_photo + b".missing")
    assert r.returncode == 1
    for stream in (r.stdout, r.stderr):
        assert b"\x1b" not in stream and b"\x07" not in stream and b"\xff" not in stream
        stream.decode("utf-8")  # strict
    assert b"car\\x1b[2J\\x1b]0;owned\\x07\\xff.jpg" in r.stdout
    assert b"car\\x1b[2J" in r.stderr


def test_json_source_is_utf8_without_surrogates(odd_photo: bytes) -> None:
    r = _predict(odd_photo, b"--json")
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode("utf-8")
    assert "\\udc" not in text.lower()
    doc = json.loads(text)
    sources = [doc.get("source")] + [p.get("source") for p in doc.get("photos", [])]
    assert any(s is not None and s.endswith("car\x1b[2J\x1b]0;owned\x07\\xff.jpg") for s in sources), sources
