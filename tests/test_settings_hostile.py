"""settings.json in states the app cannot fix by itself (issue 30 item 12, repro gui_settings.sh):
reading never fails and never blocks, every value read is one the window can use, and the real
app starts with each of them; an unreadable model file is one line, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carvalue_gui.settings import (
    MAX_RECENT,
    MAX_SPLITTER_SIZE,
    MAX_TEXT,
    Settings,
    load_settings,
    save_settings,
)

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "resources" / "models" / "carvalue.onnx"
SAMPLE = ROOT / "resources" / "samples" / "synthetic-sedan.jpg"

CASES: dict[str, str | bytes] = {
    "bigint": '{"year_of_sale": ' + "1" * 5000 + "}",
    "deep": "[" * 100000 + "]" * 100000,
    "deep_obj": '{"splitters": ' + '{"a":' * 50000 + "1" + "}" * 50000 + "}",
    "split_huge": json.dumps({"splitters": {"main": [2**40, 1, 1], "left": [1, 1]}}),
    "split_neg": json.dumps({"splitters": {"main": [-5, -5, -5], "left": [-1, -1]}}),
    "split_bool": json.dumps({"splitters": {"main": [True, False, True]}}),
    "geometry_garbage": json.dumps({"geometry": "!!!!not base64" * 1000, "window_state": "AAAA" * 100000}),
    "recent_nul": json.dumps({"recent_files": ["/tmp/a\u0000b.jpg"], "last_folder": "\u0000",
                              "model_path": "/dev/zero"}),
    "surrogate": '{"model_path": "/tmp/\\ud800.onnx", "last_folder": "\\udcff"}',
    "nan": '{"year_of_sale": NaN, "splitters": {"main": [NaN, Infinity, 1]}}',
    "year_float": '{"year_of_sale": 2030.0}',
    "bad_utf8": b'{"last_folder": "\xff\xfe"}',
    "not_object": "[1,2,3]",
    "huge_file": '{"geometry": "' + "A" * (2 << 20) + '"}',
}


def _write_case(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "settings.json"
    if name == "fifo":
        os.mkfifo(p)
    elif name == "isdir":
        p.mkdir()
    elif name == "model_fifo":
        os.mkfifo(folder / "model.onnx")
        p.write_text(json.dumps({"model_path": str(folder / "model.onnx")}))
    else:
        text = CASES[name]
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _usable(s: Settings) -> None:
    """What the window does with each value cannot fail."""
    for sizes in s.splitters.values():
        assert sizes and all(type(x) is int and 0 <= x <= MAX_SPLITTER_SIZE for x in sizes)
    for text in (s.geometry, s.window_state, s.last_folder, s.model_path, *s.recent_files):
        assert isinstance(text, str) and len(text) <= MAX_TEXT and "\x00" not in text
        os.fsencode(text)
    assert len(s.recent_files) <= MAX_RECENT
    assert type(s.year_of_sale) is int and (s.year_of_sale == 0 or 1950 <= s.year_of_sale <= 2100)


@pytest.mark.parametrize("name", [*CASES, "fifo", "isdir", "model_fifo"])
def test_load_never_fails_nor_blocks(tmp_path: Path, name: str) -> None:
    p = _write_case(tmp_path / name, name)
    start = time.monotonic()
    s, problem = load_settings(p)
    assert time.monotonic() - start < 5
    _usable(s)
    assert "\n" not in problem
    if name in ("bigint", "deep", "deep_obj", "nan", "bad_utf8", "not_object", "fifo", "isdir", "huge_file"):
        assert str(p) in problem and "using defaults" in problem, problem
    assert s.splitters.get("main") in (None, [])  # every stored main split above is unusable


def test_good_values_survive(tmp_path: Path) -> None:
    good = Settings(geometry="AAAA", splitters={"main": [220, 640, 440], "left": [520, 220]},
                    last_folder="/tmp", recent_files=["/tmp/a.jpg"], model_path="/tmp/m.onnx", year_of_sale=2030)
    save_settings(good, tmp_path / "settings.json")
    assert load_settings(tmp_path / "settings.json") == (good, "")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25)
FIELDS = st.sampled_from(["geometry", "window_state", "splitters", "last_folder", "recent_files",
                          "model_path", "year_of_sale"])
SPLITTERS = st.dictionaries(st.sampled_from(["main", "left", "x"]),
                            st.lists(st.integers(-(2**64), 2**64) | st.booleans() | st.floats(), max_size=20)
                            | JSON_VALUES, max_size=3)
DOCUMENTS = (st.dictionaries(FIELDS, JSON_VALUES, max_size=7)
             | st.fixed_dictionaries({"splitters": SPLITTERS})
             | JSON_VALUES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=DOCUMENTS)
def test_generated_documents(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "settings.json"
    p.write_text(json.dumps(doc))
    s, problem = load_settings(p)
    _usable(s)
    assert "\n" not in problem


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_generated_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "settings.json"
    p.write_bytes(data)
    s, problem = load_settings(p)
    _usable(s)
    assert "\n" not in problem


def _start_app(config: Path, *args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """The real app (offscreen) until its first paint (startup_probe), then it quits."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CARVALUE_CONFIG_DIR": str(config),
           "CARVALUE_STARTUP_PROBE": "window", "CARVALUE_STARTUP_PROBE_TIMEOUT": "50"}
    if user is not None:
        env.update(HOME="/tmp", XDG_RUNTIME_DIR="/tmp")
    return subprocess.run([*_as(user), sys.executable, "-m", "carvalue_gui.launcher", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _as(user: int | None) -> list[str]:
    """setpriv, as the repro runs it (the interpreter lies under a folder subprocess's own
    user switch cannot reach)."""
    return [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]


@pytest.mark.parametrize("name", ["bigint", "deep", "split_huge", "fifo", "recent_nul", "model_fifo"])
def test_app_starts(tmp_path: Path, name: str) -> None:
    _write_case(tmp_path / name, name)
    r = _start_app(tmp_path / name)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert '"event": "window"' in r.stdout


NOBODY = 65534


def _unreadable_model() -> tuple[Path, Path]:
    """A world-reachable folder holding a mode-000 copy of the bundled model."""
    folder = Path(tempfile.mkdtemp(prefix="cv-noperm-"))
    folder.chmod(0o755)
    model = folder / "noperm.onnx"
    model.write_bytes(BUNDLED.read_bytes())
    model.chmod(0)
    return folder, model


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="runs a process as nobody with setpriv (root reads mode-000 files)")


@needs_root
def test_app_starts_with_unreadable_remembered_model() -> None:
    folder, model = _unreadable_model()
    (folder / "settings.json").write_text(json.dumps({"model_path": str(model)}))
    (folder / "settings.json").chmod(0o666)
    os.chown(folder, NOBODY, NOBODY)
    r = _start_app(folder, user=NOBODY)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]


@needs_root
@pytest.mark.parametrize("frontend", ["predict", "app"])
def test_unreadable_model_flag(frontend: str) -> None:
    folder, model = _unreadable_model()
    if frontend == "app":
        os.chown(folder, NOBODY, NOBODY)
        r = _start_app(folder, "--model", str(model), user=NOBODY)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        return
    r = subprocess.run([*_as(NOBODY), sys.executable, "-m", "carvalue_gui.launcher", "predict", str(SAMPLE),
                        "--model", str(model)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "HOME": "/tmp"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"carvalue: cannot load model: {model}: cannot read the model file (Permission denied)"
