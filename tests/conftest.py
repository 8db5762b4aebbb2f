"""Shared fixtures. Qt runs offscreen; settings go to a temp dir; a random-weight model file
is made once per session (tests never depend on the bundled model's numbers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CARVALUE_SHARED_DATA", REPO.parent / "shared" / "data"))


# -- slow tests: skipped while working, run by scripts/test.sh (CI) -----------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (scripts/test.sh, what CI runs, passes it)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (over ~20 s here) are skipped unless ``--run-slow`` is given or a
    ``-m`` expression chooses what runs (``-m slow`` runs only them)."""
    if config.getoption("--run-slow") or config.getoption("markexpr", ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (scripts/test.sh does)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("CARVALUE_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("CARVALUE_CACHE_DIR", str(base / "cache"))


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CarValue model file with random weights (224 px input)."""
    from training.testmodels import make_model_file

    path, _ = make_model_file(tmp_path_factory.mktemp("model") / "random.onnx")
    return path


@pytest.fixture(scope="session")
def stanford_dir() -> Path:
    d = SHARED_DATA / "stanford-cars-train"
    if not (d / "labels.csv").exists():
        pytest.skip(f"shared data not found at {d} (set CARVALUE_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def car_photo(stanford_dir: Path) -> Path:
    return stanford_dir / "images" / "00002.jpg"


# -- the app's windows (GUI tests; Qt is imported only when a test asks for them) ---------------
@pytest.fixture
def window(qtbot: object, model_file: Path) -> object:
    """The main window on the random-weight model, shown, with the sweep animation instant."""
    from tests.gui_support import open_window

    return open_window(qtbot, model_file)


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, list[Path]]:
    """Good photos (loose and in a folder tree) and bad files (tests/gui_support.make_photos)."""
    from tests.gui_support import make_photos

    return make_photos(tmp_path)
