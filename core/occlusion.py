"""What drives an estimate: how much hiding each region of the crop moves it (occlusion).

The crop's network input is built once; copies of it get a mid-grey square (the normalised value
of RGB 128 for the model's InputSpec) over each cell of a sliding GRID x GRID grid, and all of
them, plus the untouched input, run through the network in a few batches.  Per cell the result
holds the drop in the top make/model's probability (positive: hiding that region makes the
model less sure of its answer) and the change in the shown median price.

The grid follows the occlusion study (training/studies/occlusion.py, docs/studies/occlusion.md):
7 x 7 positions of a square a quarter of each side, so neighbouring squares overlap by half and
every point is covered by one to four of them.  The work is split into steps of one batch each
(:class:`DriversJob`), so the app's inference thread can serve a moved crop box between two of
them, or drop the job when the box moves.

The inputs are the plain crop: with a model run with flip test-time augmentation the map is of
the unmirrored crop (its "clean" probability and price come from the same batch, so the changes
are consistent with each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.geometry import Box, input_region
from core.modelfile import InputSpec
from core.predictor import Predictor, reprice
from core.preprocess import NEUTRAL_BACKGROUND, Photo, crop_to_input, normalise
from core.pricing import PriceInputs
from core.scores import softmax

GRID = 7  # positions per side (the study's)
PATCH = 0.25  # the grey square's side as a fraction of the input's side (the study's)
BATCH = 25  # inputs per forward pass: the untouched crop + 49 cells = two passes


@dataclass(frozen=True)
class DriversMap:
    """Per grid cell (row-major, ``grid`` x ``grid``), what hiding it did to the estimate.

    ``region``: the part of the photo the network saw (original pixels): the crop box, or its
    central square for a ``center_crop`` model.  ``cells``: each grey square as fractions
    (x0, y0, x1, y1) of the region.  ``prob_drop``: the top make/model's clean probability minus
    its probability with the cell hidden; ``price_change``: the shown median price with the cell
    hidden minus the clean one (dollars)."""

    box: Box
    region: Box
    grid: int
    patch: float
    label: str
    probability: float
    median_price: float
    cells: tuple[tuple[float, float, float, float], ...]
    prob_drop: np.ndarray = field(compare=False, repr=False)
    price_change: np.ndarray = field(compare=False, repr=False)
    source: str = ""

    def spread(self, values: np.ndarray, res: int = 56) -> np.ndarray:
        """A ``res`` x ``res`` map over the region: at each point the mean of ``values`` (one per
        cell, as ``prob_drop``) over the cells whose square covers it (0 where none does)."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        if flat.size != len(self.cells):
            raise ValueError(f"need one value per cell ({len(self.cells)}), got {flat.size}")
        total = np.zeros((res, res))
        count = np.zeros((res, res))
        for v, (x0, y0, x1, y1) in zip(flat, self.cells, strict=True):
            ys = slice(round(y0 * res), round(y1 * res))
            xs = slice(round(x0 * res), round(x1 * res))
            total[ys, xs] += v
            count[ys, xs] += 1
        return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def grid_cells(grid: int = GRID, patch: float = PATCH) -> tuple[tuple[float, float, float, float], ...]:
    """Row-major squares of side ``patch`` whose corners span 0..1-patch evenly."""
    if grid < 1:
        raise ValueError(f"the grid needs at least one cell a side, got {grid}")
    if not 0 < patch <= 1:
        raise ValueError(f"the patch is a fraction of the side in (0, 1], got {patch}")
    starts = np.linspace(0.0, 1.0 - patch, grid) if grid > 1 else np.array([(1.0 - patch) / 2])
    return tuple((float(x), float(y), float(x) + patch, float(y) + patch) for y in starts for x in starts)


def grey_value(spec: InputSpec) -> np.ndarray:
    """Mid-grey (RGB 128) as the network sees it: one normalised value per channel, (3, 1, 1)."""
    return normalise(Image.new("RGB", (1, 1), NEUTRAL_BACKGROUND), spec)


def occluded_inputs(clean: np.ndarray, cells: tuple[tuple[float, float, float, float], ...],
                    grey: np.ndarray) -> np.ndarray:
    """(len(cells), 3, S, S): ``clean`` with each cell's square set to ``grey`` in turn."""
    s = clean.shape[-1]
    out = np.repeat(clean[None], len(cells), axis=0)
    for i, (x0, y0, x1, y1) in enumerate(cells):
        out[i, :, round(y0 * s):round(y1 * s), round(x0 * s):round(x1 * s)] = grey
    return out


class DriversJob:
    """The occlusion map of one crop, computed one batch per :meth:`step` (see the module
    docstring).  Not thread-safe: one thread steps it."""

    def __init__(self, predictor: Predictor, photo: Photo, box: Box | None, grid: int = GRID,
                 patch: float = PATCH, batch: int = BATCH, price_inputs: PriceInputs | None = None) -> None:
        if batch < 1:
            raise ValueError(f"batch size must be at least 1, got {batch}")
        self.predictor = predictor
        self.photo = photo
        self.box = (box or photo.full_box()).clamp(photo.original_size)
        self.grid, self.patch, self.batch = grid, patch, batch
        self.price_inputs = price_inputs
        self.cells = grid_cells(grid, patch)
        spec = predictor.metadata.input
        self._clean = crop_to_input(photo, self.box, spec)
        self._grey = grey_value(spec)
        self._count = len(self.cells) + 1  # the clean input first, then one per cell
        self._probs: list[np.ndarray] = []  # make/model probabilities, one row per input
        self._prices: list[float] = []
        self._next = 0

    @property
    def total_steps(self) -> int:
        return -(-self._count // self.batch)

    @property
    def done(self) -> bool:
        return self._next >= self._count

    def step(self) -> bool:
        """Run the next batch; True once every input has run."""
        if self.done:
            return True
        # Built per batch, so at most one batch of copies is in memory (49 copies: 30 MB).
        start, stop = self._next, min(self._next + self.batch, self._count)
        cells = self.cells[max(start - 1, 0):stop - 1]
        chunk = occluded_inputs(self._clean, cells, self._grey)
        if start == 0:
            chunk = np.concatenate([self._clean[None], chunk])
        outs = self.predictor.run_batch(chunk)
        meta = self.predictor.metadata
        self._probs.append(softmax(outs["make_model_logits"], meta.temperatures.get("make_model", 1.0)))
        for pred in self.predictor.decode(outs, self.box, self.photo, top_k=1):
            if self.price_inputs is not None:
                pred = reprice(pred, meta, self.price_inputs)
            self._prices.append(pred.median_price)
        self._next = stop
        return self.done

    def result(self) -> DriversMap:
        """The map (every step run first if some are left)."""
        while not self.step():
            pass
        probs = np.concatenate(self._probs)
        top = int(np.argmax(probs[0]))
        prices = np.asarray(self._prices)
        shape = (self.grid, self.grid)
        return DriversMap(
            box=self.box,
            region=input_region(self.box, self.predictor.metadata.input),
            grid=self.grid,
            patch=self.patch,
            label=self.predictor.metadata.make_models[top],
            probability=float(probs[0, top]),
            median_price=float(prices[0]),
            cells=self.cells,
            prob_drop=(probs[0, top] - probs[1:, top]).reshape(shape),
            price_change=(prices[1:] - prices[0]).reshape(shape),
            source=self.photo.source,
        )


def drivers_map(predictor: Predictor, photo: Photo, box: Box | None, grid: int = GRID, patch: float = PATCH,
                batch: int = BATCH, price_inputs: PriceInputs | None = None) -> DriversMap:
    """The occlusion map of ``box`` (None: the whole photo) of ``photo``, all steps at once."""
    return DriversJob(predictor, photo, box, grid, patch, batch, price_inputs).result()
