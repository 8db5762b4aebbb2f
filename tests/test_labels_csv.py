"""One owner for labels.csv and for the price edges.

- ``training.data.labels_csv`` is the only code that opens a folder's labels.csv; every other reader
  (trainer, Stanford labels, probe, studies, framing report) goes through it and agrees with it.
- Bad input: any file of text cells gives rows or one ``path:line`` error, never another crash.
- The price-range cutoffs are written once, as ``core.modelfile.PriceSpec``'s default.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.modelfile import PriceSpec
from training.data.labels_csv import (
    LabelsCsvError,
    has_labels_csv,
    is_stanford_layout,
    labels_columns,
    read_labels_csv,
)

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("core", "training", "carvalue_gui", "benchmarks", "packaging")
STANFORD_HEADER = ["file", "make", "model", "year", "class_id", "class_name", "width", "height"]


def _write(folder: Path, header: list[str], rows: list[list[object]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return folder


def _stanford_folder(folder: Path) -> Path:
    return _write(folder, STANFORD_HEADER, [
        ["images/1.jpg", "Audi", "TT RS Coupe", 2012, 1, "Audi TT RS Coupe 2012", 300, 200],
        ["images/2.jpg", " Acura ", "TL Sedan", "2012.0", 2, "Acura TL Sedan 2012", 452, 256],
        ["images/3.jpg", "Geo", "Metro Convertible", 1993, 3, "Geo Metro Convertible 1993", 76, 23],
    ])


def _python_files() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py"))


# -- the one reader --------------------------------------------------------------------------------
def test_only_labels_csv_module_names_the_file() -> None:
    """No module but training/data/labels_csv.py builds a path to labels.csv (docs and help may name it)."""
    owners = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == "labels.csv":
                owners.add(path.relative_to(REPO).as_posix())
    assert owners == {"training/data/labels_csv.py"}


def test_every_reader_agrees_with_the_one_reader(tmp_path: Path) -> None:
    from training.data.dataset import records_from_folder
    from training.data.stanford import read_stanford_labels, stanford_records
    from training.framing.heads import stanford_classes
    from training.studies.common import read_labels as study_labels
    from training.studies.probe import read_labels as probe_labels

    folder = _stanford_folder(tmp_path)
    rows = read_labels_csv(folder)
    assert [r.file for r in rows] == ["images/1.jpg", "images/2.jpg", "images/3.jpg"]
    assert rows[1].make == "Acura" and rows[1].year == 2012 and rows[2].too_small
    assert is_stanford_layout(folder) and has_labels_csv(folder) and labels_columns(folder)[0] == "file"

    photos = read_stanford_labels(folder)
    assert [(p.file, p.make, p.model, p.year, p.class_name, p.too_small) for p in photos] == \
        [(r.file, r.make, r.model, r.year, r.class_name, r.too_small) for r in rows]
    paths, names = probe_labels(folder)
    assert paths == [folder / r.file for r in rows if not r.too_small]
    assert names == [r.class_name for r in rows if not r.too_small]
    cars = study_labels(folder)
    assert [(c.file, c.class_name, c.year, c.width, c.height) for c in cars] == \
        [(r.file, r.class_name, str(r.year), r.width, r.height) for r in rows]
    assert stanford_classes(folder) == {r.file: (r.class_name, r.year) for r in rows}
    recs = records_from_folder(folder)
    assert [(x.image_path, x.group, x.make, x.model, x.year) for x in recs] == \
        [(folder / r.file, r.file, r.make, r.model, r.year) for r in rows]
    assert [x.image_path for x in stanford_records(folder, {})] == paths


@pytest.mark.needs_data
def test_real_stanford_folder(stanford_dir: Path) -> None:
    rows = read_labels_csv(stanford_dir)
    assert len(rows) == 7164 and is_stanford_layout(stanford_dir)
    assert all(r.class_name == f"{r.make} {r.model} {r.year}" for r in rows)
    assert len({r.class_name for r in rows}) == 196
    assert sum(r.too_small for r in rows) == 1  # the 76x23 photo the app's loader refuses
    assert all(r.group == r.file and r.price is None for r in rows)


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cells", "why"), [
    (["a.jpg", "Audi", "TT", "inf", ""], "year 'inf' is not a whole number"),
    (["a.jpg", "Audi", "TT", "nan", ""], "year 'nan' is not a whole number"),
    (["a.jpg", "Audi", "TT", "2012.5", ""], "year '2012.5' is not a whole number"),
    (["a.jpg", "Audi", "TT", "2012", "cheap"], "price 'cheap' is not a number"),
    (["a.jpg", "Audi"], None),  # a short row: make/model empty, nothing else wrong
    (["", "Audi", "TT", "2012", ""], "empty 'file'"),
])
def test_records_from_folder_bad_cells_give_one_line(tmp_path: Path, cells: list[str], why: str | None) -> None:
    """Before: year 'inf' raised OverflowError, a short row AttributeError (neither a DataError)."""
    from training.data.dataset import DataError, records_from_folder

    folder = _write(tmp_path, ["file", "make", "model", "year", "price"], [cells])
    if why is None:
        (rec,) = records_from_folder(folder)
        assert (rec.make, rec.model, rec.year, rec.price) == ("Audi", "", None, None)
        return
    with pytest.raises(DataError) as e:
        records_from_folder(folder)
    assert str(e.value) == f"{folder / 'labels.csv'}:2: {why}"


def test_missing_file_and_columns(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="labels.csv: not found"):
        read_labels_csv(tmp_path)
    _write(tmp_path, ["file", "make"], [["a.jpg", "Audi"]])
    with pytest.raises(LabelsCsvError, match=r"needs columns \['class_name', 'file'\]"):
        read_labels_csv(tmp_path, ("file", "class_name"))
    with pytest.raises(SystemExit, match="needs columns"):
        from training.studies.common import read_labels

        read_labels(tmp_path)


def test_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_bytes(b"file,make,model\n\xff\xfe.jpg,A,B\n")
    with pytest.raises(LabelsCsvError, match="not a readable CSV"):
        read_labels_csv(tmp_path)


CELL = st.one_of(st.text(max_size=8), st.sampled_from(["", "2012", "2012.0", "-1", "nan", "inf", "1e309", "12,5",
                                                         "30000", " 7 ", '"', "\n"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=10), max_size=4))
def test_any_cells_give_rows_or_one_error(tmp_path: Path, rows: list[list[str]]) -> None:
    header = ["file", "make", "model", "year", "price", "mileage", "group", "width", "height"]
    try:
        _write(tmp_path, header, rows)
    except UnicodeEncodeError:  # lone surrogates cannot be written as UTF-8 at all
        return
    try:
        out = read_labels_csv(tmp_path)
    except LabelsCsvError as e:
        assert str(e).startswith(str(tmp_path / "labels.csv"))
        assert "\n" not in str(e)
        return
    for r in out:
        assert r.file and r.group
        assert r.year is None or r.year >= 0
        assert r.width >= 0 and r.height >= 0
        assert r.price is None or r.price == r.price  # never NaN


# -- price edges -----------------------------------------------------------------------------------
def test_price_edges_come_from_the_model_file_contract() -> None:
    import training.data.dataset
    import training.data.labels.build
    import training.data.price_scale

    edges = PriceSpec().edges
    assert training.data.dataset.DEFAULT_EDGES == edges
    assert training.data.price_scale.DEFAULT_EDGES == edges
    assert training.data.labels.build.DEFAULT_EDGES == edges


def test_price_edges_are_written_once() -> None:
    """No tuple or list of numbers equal to PriceSpec's default edges outside core/modelfile.py."""
    edges = tuple(float(e) for e in PriceSpec().edges)
    where = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == len(edges) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, int | float) for e in node.elts):
                if tuple(float(e.value) for e in node.elts) == edges:  # type: ignore[attr-defined]
                    where.add(path.relative_to(REPO).as_posix())
    assert where == {"core/modelfile.py"}
