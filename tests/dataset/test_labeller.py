"""The Qt labeller: one key per verdict, undo, skip, saved on every key press."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from benchmarks.fakesite import car_photo
from carvalue_gui.labeller import LabellerWindow
from core.dataset.image_store import ImageStore
from core.dataset.labels import LabelFile, LabelFileError


@pytest.fixture
def photos(tmp_path: Path) -> tuple[ImageStore, list[str]]:
    store = ImageStore(tmp_path / "images")
    return store, [store.put(car_photo(i, (320, 240))) for i in range(5)]


def saved(path: Path) -> list[tuple[str, str]]:
    return [(x["sha256"], x["label"]) for x in json.loads(path.read_text())["labels"]]


def test_keys_label_skip_and_undo(qtbot, photos: tuple[ImageStore, list[str]], tmp_path: Path) -> None:  # noqa: ANN001
    store, hashes = photos
    path = tmp_path / "labels.json"
    w = LabellerWindow(hashes, store, LabelFile(path))
    qtbot.addWidget(w)
    w.show()
    assert w.current() == hashes[0] and w._pixmap is not None
    qtbot.keyClick(w, Qt.Key.Key_G)
    assert saved(path) == [(hashes[0], "good")]  # saved at once
    qtbot.keyClick(w, Qt.Key.Key_Left)  # bad
    qtbot.keyClick(w, Qt.Key.Key_S)  # skip
    assert saved(path) == [(hashes[0], "good"), (hashes[1], "bad")] and w.current() == hashes[3]
    qtbot.keyClick(w, Qt.Key.Key_U)  # undo the skip
    assert w.current() == hashes[2]
    qtbot.keyClick(w, Qt.Key.Key_Backspace)  # undo "bad"
    assert w.current() == hashes[1] and saved(path) == [(hashes[0], "good")]
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert saved(path)[-1] == (hashes[1], "good")
    for _ in range(3):
        qtbot.keyClick(w, Qt.Key.Key_B)
    assert w.current() is None and "All photos are labelled" in w.photo.text()
    qtbot.keyClick(w, Qt.Key.Key_G)  # nothing left: no-op
    assert len(saved(path)) == 5


def test_a_new_session_resumes_and_can_undo_the_last_one(qtbot, photos: tuple[ImageStore, list[str]],  # noqa: ANN001
                                                         tmp_path: Path) -> None:
    store, hashes = photos
    path = tmp_path / "labels.json"
    labels = LabelFile(path)
    labels.set(hashes[0], "good")
    labels.set(hashes[1], "bad")
    w = LabellerWindow(hashes, store, LabelFile(path))
    qtbot.addWidget(w)
    assert w.current() == hashes[2]  # already-labelled photos are not asked again
    qtbot.keyClick(w, Qt.Key.Key_U)  # takes back the last label of the earlier session
    assert w.current() == hashes[1] and saved(path) == [(hashes[0], "good")]


def test_unreadable_photo_is_shown_as_a_message(qtbot, photos: tuple[ImageStore, list[str]],  # noqa: ANN001
                                                tmp_path: Path) -> None:
    store, hashes = photos
    store.path_for(hashes[0]).write_bytes(b"not a jpeg")
    w = LabellerWindow(hashes, store, LabelFile(tmp_path / "l.json"))
    qtbot.addWidget(w)
    assert "Cannot show this photo" in w.photo.text()
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert w.current() == hashes[1]


def test_label_file_validation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "labels": [{"sha256": "../../x", "label": "good"}]}))
    with pytest.raises(LabelFileError, match="malformed"):
        LabelFile(bad)
    bad.write_text(json.dumps({"version": 1, "labels": [{"sha256": "0" * 64, "label": "meh"}]}))
    with pytest.raises(LabelFileError, match="'good' or 'bad'"):
        LabelFile(bad)
    bad.write_text("{")
    with pytest.raises(LabelFileError, match="not a readable"):
        LabelFile(bad)


def test_label_stage_runs_the_labeller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`carvalue-data label` runs carvalue_gui.labeller's main with its arguments (the one import
    of the app's package from core, allowed by name in pyproject.toml's contract)."""
    from carvalue_gui import labeller
    from core.dataset import cli, database

    database.connect(tmp_path / "db.sqlite").close()
    calls: list[list[str]] = []
    monkeypatch.setattr(labeller, "main", lambda argv: calls.append(argv) or 0)
    assert cli.main(["label", "--db", str(tmp_path / "db.sqlite"), "--images", str(tmp_path),
                     "--labels", str(tmp_path / "l.json")]) == 0
    assert calls == [["--db", str(tmp_path / "db.sqlite"), "--images", str(tmp_path),
                      "--labels", str(tmp_path / "l.json"), "--seed", "0"]]
