"""core.occlusion: the "What drives this estimate" map, on a random-weight model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.geometry import Box, input_region
from core.modelfile import InputSpec
from core.occlusion import (
    GRID,
    DriversJob,
    DriversMap,
    drivers_map,
    grey_value,
    grid_cells,
)
from core.predictor import Predictor, reprice
from core.preprocess import Photo, crop_to_input, photo_from_image
from core.pricing import PriceInputs
from core.scores import softmax


@pytest.fixture(scope="module")
def predictor(model_file: Path) -> Predictor:
    return Predictor.load(model_file, threads=1)


def noisy(w: int = 320, h: int = 240, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def half_grey(w: int = 320, h: int = 240) -> Photo:
    """Noise on the left half, plain mid-grey (what the patches are) on the right half."""
    arr = np.asarray(noisy(w, h)).copy()
    arr[:, w // 2:] = 128
    return photo_from_image(Image.fromarray(arr, "RGB"), "half-grey")


def test_map_shapes_and_clean_values_match_predict(predictor: Predictor) -> None:
    photo = photo_from_image(noisy(), "noise")
    box = Box(20, 10, 250, 200)
    m = drivers_map(predictor, photo, box)
    assert isinstance(m, DriversMap)
    assert m.prob_drop.shape == m.price_change.shape == (GRID, GRID)
    assert len(m.cells) == GRID * GRID
    assert m.box == box and m.region == box and m.source == "noise"
    pred = predictor.predict(photo, box)
    assert m.label == pred.top_make_model.label
    assert m.probability == pytest.approx(pred.top_make_model.probability, abs=1e-5)
    assert m.median_price == pytest.approx(pred.median_price, rel=1e-4)
    assert np.all(np.isfinite(m.prob_drop)) and np.all(np.isfinite(m.price_change))


def test_map_is_deterministic_and_independent_of_batch_size(predictor: Predictor) -> None:
    photo = photo_from_image(noisy(seed=3))
    box = Box(0, 0, 300, 240)
    a = drivers_map(predictor, photo, box)
    b = drivers_map(predictor, photo, box)
    np.testing.assert_array_equal(a.prob_drop, b.prob_drop)
    np.testing.assert_array_equal(a.price_change, b.price_change)
    c = drivers_map(predictor, photo, box, batch=7)
    np.testing.assert_allclose(c.prob_drop, a.prob_drop, atol=1e-5)
    np.testing.assert_allclose(c.price_change, a.price_change, atol=1e-2 * max(1.0, a.median_price) * 1e-3)


def test_one_cell_equals_occlusion_by_hand(predictor: Predictor) -> None:
    """Cell (row 2, column 5) of the map: the crop's input with a grey square written by hand
    over that cell, run through Predictor.run_batch next to the clean input."""
    photo = photo_from_image(noisy(seed=5))
    box = Box(30, 20, 240, 180)
    m = drivers_map(predictor, photo, box)
    spec = predictor.metadata.input
    clean = crop_to_input(photo, box, spec)
    hidden = clean.copy()
    s = spec.size
    step = (s - s // 4) // (GRID - 1)  # 224 px: squares of 56 px every 28 px
    row, col = 2, 5
    grey = (128 / 255 - np.asarray(spec.mean)) / np.asarray(spec.std)
    for c in range(3):
        hidden[c, row * step:row * step + s // 4, col * step:col * step + s // 4] = grey[c]
    outs = predictor.run_batch(np.stack([clean, hidden]))
    p = softmax(outs["make_model_logits"], predictor.metadata.temperatures.get("make_model", 1.0))
    top = predictor.metadata.make_models.index(m.label)
    assert m.prob_drop[row, col] == pytest.approx(p[0, top] - p[1, top], abs=1e-5)
    clean_pred, hidden_pred = predictor.decode(outs, box, photo)
    assert m.price_change[row, col] == pytest.approx(hidden_pred.median_price - clean_pred.median_price,
                                                     abs=1e-3 * clean_pred.median_price)


def test_hiding_what_is_already_grey_changes_nothing_hiding_detail_does(predictor: Predictor) -> None:
    photo = half_grey()
    m = drivers_map(predictor, photo, None)
    # Columns whose square lies wholly in the right (grey) half: x0 >= 0.5 plus the bilinear
    # resize's one-pixel blur at the seam.
    grey_cols = [j for j in range(GRID) if m.cells[j][0] >= 0.5 + 1 / 112]
    detail_cols = [j for j in range(GRID) if m.cells[j][2] <= 0.5]
    assert grey_cols and detail_cols
    assert np.abs(m.prob_drop[:, grey_cols]).max() < 1e-5
    assert np.abs(m.price_change[:, grey_cols]).max() < 1e-3 * m.median_price
    assert np.abs(m.prob_drop[:, detail_cols]).max() > 100 * max(np.abs(m.prob_drop[:, grey_cols]).max(), 1e-7)


def test_job_runs_one_batch_per_step(predictor: Predictor) -> None:
    job = DriversJob(predictor, photo_from_image(noisy()), None, batch=25)
    assert job.total_steps == 2 and not job.done
    assert job.step() is False
    assert job.step() is True and job.done
    assert job.step() is True  # nothing left to run
    assert job.result().prob_drop.shape == (GRID, GRID)


def test_price_inputs_price_the_map_like_the_estimate(tmp_path: Path) -> None:
    from tests.pricefactory import make_priced_model_file

    predictor = Predictor.load(make_priced_model_file(tmp_path / "priced.onnx"), threads=1)
    photo = photo_from_image(noisy(seed=9))
    inputs = PriceInputs(mileage_mi=150_000, condition="fair")
    m = drivers_map(predictor, photo, None, grid=2, patch=0.5, price_inputs=inputs)
    plain = drivers_map(predictor, photo, None, grid=2, patch=0.5)
    expected = reprice(predictor.predict(photo), predictor.metadata, inputs).median_price
    assert m.median_price == pytest.approx(expected, rel=1e-4)
    assert m.median_price < 0.9 * plain.median_price  # the inputs count
    np.testing.assert_allclose(m.prob_drop, plain.prob_drop, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(x=st.floats(-1e4, 1e4), y=st.floats(-1e4, 1e4), w=st.floats(-10, 1e5), h=st.floats(-10, 1e5),
       grid=st.integers(1, 3))
def test_any_finite_box_gives_a_map_inside_the_photo(predictor: Predictor, x: float, y: float, w: float,
                                                     h: float, grid: int) -> None:
    photo = photo_from_image(noisy(96, 64), "small")
    m = drivers_map(predictor, photo, Box(x, y, w, h), grid=grid, patch=0.5)
    assert m.prob_drop.shape == (grid, grid)
    b = m.box
    assert 0 <= b.x and 0 <= b.y and b.x + b.w <= 96 + 1e-6 and b.y + b.h <= 64 + 1e-6
    assert np.all(np.isfinite(m.prob_drop)) and np.all(np.isfinite(m.price_change))


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-1, 1), min_size=GRID * GRID, max_size=GRID * GRID))
def test_spread_stays_within_the_cell_values(values: list[float]) -> None:
    m = DriversMap(Box(0, 0, 1, 1), Box(0, 0, 1, 1), GRID, 0.25, "x", 0.5, 1.0, grid_cells(),
                   np.zeros((GRID, GRID)), np.zeros((GRID, GRID)))
    heat = m.spread(np.asarray(values), res=56)
    assert heat.shape == (56, 56)
    assert heat.min() >= min(values) - 1e-12 and heat.max() <= max(values) + 1e-12


def test_spread_of_a_constant_is_that_constant_everywhere() -> None:
    m = DriversMap(Box(0, 0, 1, 1), Box(0, 0, 1, 1), GRID, 0.25, "x", 0.5, 1.0, grid_cells(),
                   np.zeros((GRID, GRID)), np.zeros((GRID, GRID)))
    np.testing.assert_allclose(m.spread(np.full(GRID * GRID, 0.3)), 0.3)
    with pytest.raises(ValueError, match="one value per cell"):
        m.spread(np.zeros(3))


def test_grid_cells_cover_the_input_and_bad_grids_are_refused() -> None:
    cells = grid_cells(7, 0.25)
    assert cells[0] == (0.0, 0.0, 0.25, 0.25) and cells[-1] == (0.75, 0.75, 1.0, 1.0)
    assert grid_cells(1, 0.5) == ((0.25, 0.25, 0.75, 0.75),)
    for grid, patch in ((0, 0.25), (3, 0.0), (3, 1.5)):
        with pytest.raises(ValueError):
            grid_cells(grid, patch)


def test_grey_value_and_center_crop_region() -> None:
    spec = InputSpec(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), resize="center_crop",
                     crop_fraction=0.875)
    g = grey_value(spec)
    assert g.shape == (3, 1, 1)
    np.testing.assert_allclose(g[:, 0, 0], (128 / 255 - np.asarray(spec.mean)) / np.asarray(spec.std), atol=1e-6)
    r = input_region(Box(100, 50, 400, 200), spec)
    assert r == Box(100 + (400 - 175) / 2, 50 + (200 - 175) / 2, 175, 175)
    assert input_region(Box(1, 2, 3, 4), InputSpec()) == Box(1, 2, 3, 4)
