"""Labels and filter files that crashed or hung `carvalue-data filter train|apply` (issue 30 item 17,
repro labels_filter.sh): deep nesting, a FIFO, `"threshold": null`; generated documents are
either accepted or refused with one line naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.dataset import database
from core.dataset.junk_filter import FilterFileError, JunkFilter, train_junk_filter
from core.dataset.labels import LabelFile, LabelFileError

REPO = Path(__file__).resolve().parents[1]
SHA = "a" * 64
DEEP = "[" * 100000 + "]" * 100000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`carvalue-data`, bounded: a hang fails the test after 30 s."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "core.dataset.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def db_and_store(tmp_path: Path) -> tuple[Path, Path]:
    db, store = tmp_path / "db.sqlite", tmp_path / "store"
    store.mkdir()
    database.connect(db, create=True).close()
    return db, store


@pytest.fixture
def saved_filter(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1, 1, (60, 8)), rng.normal(-1, 1, (40, 8))])
    good = np.array([True] * 60 + [False] * 40)
    train_junk_filter(x, good, "f").filter.save(tmp_path / "f")
    return tmp_path / "f"


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# -- labels -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ['{"version": 1, "labels": ' + DEEP + "}", DEEP, '{"version": ' + "9" * 5000 + "}",
                                  '{"version": 1, "labels": [NaN]}', '{"version": 1, "labels": [' + "[" * 900
                                  + "]" * 900 + "]}"])
def test_labels_unreadable_json_is_one_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "labels.json"
    p.write_text(text)
    with pytest.raises(LabelFileError) as info:
        LabelFile(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 600


def test_labels_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    p = tmp_path / "labels.json"
    os.mkfifo(p)
    with pytest.raises(LabelFileError, match="not a regular file"):
        LabelFile(p)


@pytest.mark.parametrize("case", ["deep", "fifo"])
def test_filter_train_cli(db_and_store: tuple[Path, Path], tmp_path: Path, case: str) -> None:
    db, store = db_and_store
    labels = tmp_path / "labels.json"
    if case == "fifo":
        os.mkfifo(labels)
    else:
        labels.write_text('{"version": 1, "labels": ' + DEEP + "}")
    r = _cli("filter", "train", "--db", str(db), "--images", str(store), "--labels", str(labels),
             "--out", str(tmp_path / "out"), "--trunk", str(tmp_path / "no-trunk.safetensors"))
    assert r.returncode == 2
    assert str(labels) in _one_line(r.stderr)


LABEL_ITEMS = st.one_of(st.fixed_dictionaries({"sha256": st.sampled_from([SHA, "b" * 64, "x", 5, None]),
                                               "label": st.sampled_from(["good", "bad", "ugly", None, 1, []])}),
                        st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats(allow_nan=False)
                    | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20)
LABEL_DOCS = (st.fixed_dictionaries({"version": st.sampled_from([1, 2, "1", None, True]),
                                     "labels": st.lists(LABEL_ITEMS, max_size=6) | JSON}) | JSON)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=LABEL_DOCS)
def test_generated_labels_documents(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "labels.json"
    p.write_text(json.dumps(doc))
    try:
        labels = LabelFile(p)
    except LabelFileError as e:
        assert str(p) in str(e) and "\n" not in str(e) and len(str(e)) < 600
        return
    assert all(label in ("good", "bad") for _, label in labels.items())


# -- filter.json ------------------------------------------------------------------------------------
@pytest.mark.parametrize("change", [{"threshold": None}, {"threshold": "0.5"}, {"threshold": True},
                                    {"dim": None}, {"dim": 8.0}, {"dim": True}, {"features": None},
                                    {"features": ["f"]}, {"metrics": [1]}, {"threshold": 10**400}])
def test_filter_json_wrong_types(saved_filter: Path, change: dict[str, object]) -> None:
    meta = json.loads((saved_filter / "filter.json").read_text())
    (saved_filter / "filter.json").write_text(json.dumps({**meta, **change}))
    with pytest.raises(FilterFileError) as info:
        JunkFilter.load(saved_filter)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["deep", "fifo", "fifo_arrays"])
def test_filter_files_unreadable(saved_filter: Path, case: str) -> None:
    if case == "deep":
        (saved_filter / "filter.json").write_text(DEEP)
    elif case == "fifo":
        (saved_filter / "filter.json").unlink()
        os.mkfifo(saved_filter / "filter.json")
    else:
        (saved_filter / "filter.safetensors").unlink()
        os.mkfifo(saved_filter / "filter.safetensors")
    with pytest.raises(FilterFileError):
        JunkFilter.load(saved_filter)


def test_filter_apply_threshold_null_cli(saved_filter: Path, db_and_store: tuple[Path, Path]) -> None:
    db, store = db_and_store
    meta = json.loads((saved_filter / "filter.json").read_text())
    (saved_filter / "filter.json").write_text(json.dumps({**meta, "threshold": None}))
    r = _cli("filter", "apply", "--db", str(db), "--images", str(store), "--filter", str(saved_filter),
             "--trunk", str(saved_filter / "none.safetensors"), "--no-progress")
    assert r.returncode == 2
    assert "'threshold' must be a number, got None" in _one_line(r.stderr)


FILTER_CHANGES = st.dictionaries(st.sampled_from(["version", "kind", "features", "dim", "threshold", "metrics",
                                                  "score"]), JSON, max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=FILTER_CHANGES, drop=st.sets(st.sampled_from(["features", "dim", "threshold", "version"])))
def test_generated_filter_json(saved_filter: Path, change: dict[str, object], drop: set[str]) -> None:
    path = saved_filter / "filter.json"
    original = path.read_text()
    meta = {k: v for k, v in {**json.loads(original), **change}.items() if k not in drop}
    path.write_text(json.dumps(meta))
    try:
        jf = JunkFilter.load(saved_filter)
    except FilterFileError as e:
        assert "\n" not in str(e) and len(str(e)) < 1000
    else:
        assert np.isfinite(jf.threshold) and isinstance(jf.features, str)
    finally:
        path.write_text(original)


def test_a_malformed_label_is_quoted_briefly(tmp_path: Path) -> None:
    """reprlib alone left a nested dict of long keys at 700 characters (hypothesis found it)."""
    item = {f"{'k' * 60}{i}": {f"{'j' * 60}{j}": [None, 1e16, "é" * 40] for j in range(6)} for i in range(6)}
    p = tmp_path / "labels.json"
    p.write_text(json.dumps({"version": 1, "labels": [item]}))
    with pytest.raises(LabelFileError) as e:
        LabelFile(p)
    msg = str(e.value)
    assert "label #0 is malformed" in msg and len(msg) < len(str(p)) + 220 and "\n" not in msg
