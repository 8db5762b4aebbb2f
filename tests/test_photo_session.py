"""The photo session without a window: per-photo state and one pricing for rows, screen and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carvalue_gui.photo_collection import PhotoFields
from carvalue_gui.photo_session import PhotoSession
from core.geometry import Box
from core.predictor import Predictor
from core.preprocess import photo_from_image
from tests.pricefactory import make_priced_model_file


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return Predictor.load(make_priced_model_file(tmp_path_factory.mktemp("session") / "priced.onnx"))


def session_with(predictor: Predictor, n: int) -> PhotoSession:
    session = PhotoSession()
    session.set_model(predictor.metadata, str(predictor.path))
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (200, 320, 3), dtype=np.uint8)
        entry = session.add(f"/photos/{i}.jpg", photo_from_image(Image.fromarray(arr), f"/photos/{i}.jpg"))
        assert entry.photo is not None
        entry.prediction = predictor.predict(entry.photo)
    return session


def test_every_shown_price_comes_from_the_photos_own_inputs(predictor: Predictor) -> None:
    session = session_with(predictor, 3)
    a, b, c = session
    rows: list[int] = []
    session.row_changed.connect(lambda e: rows.append(e.key))
    assert session.set_fields(a, PhotoFields("150000", "mi", "fair")) == ""
    assert session.set_fields(b, PhotoFields("20000")) == ""
    assert rows == [a.key, b.key]  # each photo's row follows its own fields
    priced = {r.source: r.prediction for r in session.priced_results()}
    for entry in (a, b, c):
        row = session.row(entry)
        assert row.prediction is not None and priced[entry.path] is not None
        assert row.prediction.price == priced[entry.path].price  # type: ignore[union-attr]  # list == export
        assert row.prediction.price is not None and row.prediction.price.inputs.to_dict() == session.inputs_for(entry).to_dict()
    assert session.inputs_for(a).condition == "fair" and session.inputs_for(c).mileage_mi is None
    assert row_median(session, a) < row_median(session, b)  # high mileage, fair: lower


def row_median(session: PhotoSession, entry: object) -> float:
    pred = session.row(entry).prediction  # type: ignore[arg-type]
    assert pred is not None
    return pred.median_price


def test_a_typo_keeps_the_last_good_inputs_and_says_why(predictor: Predictor) -> None:
    session = session_with(predictor, 1)
    (a,) = session
    session.current = a
    shown: list[int] = []
    session.repriced.connect(lambda e: shown.append(e.key))
    session.set_fields(a, PhotoFields("90000", "km"))
    before = row_median(session, a)
    assert session.set_fields(a, PhotoFields("90k", "km")) == "mileage must be a number, got '90k'"
    assert a.fields.mileage == "90k"  # the text as typed is kept for the field
    assert row_median(session, a) == before and session.inputs_for(a).mileage_mi == pytest.approx(55_923.4, rel=1e-4)
    assert shown == [a.key]  # the typo repriced nothing


def test_a_named_car_prices_that_car_and_undo_steps_back(predictor: Predictor) -> None:
    session = session_with(predictor, 2)
    a, b = session
    own = session.row(a).prediction
    assert own is not None and own.price is not None and own.price.car_source == "photo"
    session.name_car(a, "Toyota Camry 2016")
    named = session.row(a).prediction
    assert named is not None and named.price is not None and named.price.car_source == "user"
    assert session.inputs_for(b).car is None  # b keeps the photo's own answer
    session.name_car(a, "Honda Civic 2015")
    session.undo_car(a)
    assert session.inputs_for(a).car == "Toyota Camry 2016"
    session.undo_car(a)
    session.undo_car(a)  # nothing left to undo: nothing happens
    assert session.inputs_for(a).car is None


def test_the_year_of_sale_reprices_every_row(predictor: Predictor) -> None:
    session = session_with(predictor, 3)
    rows: list[int] = []
    session.row_changed.connect(lambda e: rows.append(e.key))
    session.set_year_of_sale(session.year_of_sale)  # unchanged: nothing
    assert rows == []
    session.set_year_of_sale(2019)
    assert sorted(rows) == [e.key for e in session]
    assert all(session.inputs_for(e).year == 2019 for e in session)


def test_a_box_back_on_the_automatic_one_drops_the_crop_estimate(predictor: Predictor) -> None:
    session = session_with(predictor, 1)
    (a,) = session
    assert a.photo is not None
    session.set_box(a, Box(10, 10, 100, 80))
    assert a.box == Box(10, 10, 100, 80)
    assert not session.take_crop(a, predictor.predict(a.photo, Box(10, 10, 100, 80)))  # the crop's, not its own
    assert session.row(a).crop and a.crop_prediction is not None
    session.set_box(a, a.found_box() or Box.full(a.size))
    assert a.box is None and a.crop_prediction is None and not session.row(a).crop


def test_another_model_drops_every_estimate_and_old_batches(predictor: Predictor) -> None:
    session = session_with(predictor, 2)
    generation = session.generation
    session.queued(2)
    session.set_model(predictor.metadata, str(predictor.path))
    assert session.generation == generation + 1 and session.batch_pending() == 0
    assert all(e.prediction is None for e in session)
    a, b = session
    assert a.photo is not None
    estimated, problems = session.take_batch([(a.key, predictor.predict(a.photo)), (b.key, "decoder broke"),
                                              (999, "a photo removed meanwhile")])
    assert estimated == [a] and problems == ["/photos/1.jpg: estimate failed: decoder broke"]
    assert session.row(b).note == "estimate failed: decoder broke"
    session.set_model(None)
    assert session.row(b).note == "no model loaded" and session.meta is None


def test_removing_the_shown_photo_leaves_none_shown(predictor: Predictor, tmp_path: Path) -> None:
    session = session_with(predictor, 2)
    a, b = session
    assert session.select(a.key) is a and session.current is a
    session.remove(a)
    assert session.current is None and list(session) == [b]
    assert session.select(12345) is None
