"""Predictions from a CarValue model file on ONNX Runtime (no torch in this import graph)."""
# Over 400 lines: Predictor and its Prediction/Sweep types; issue 31 is cutting it down

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.framing import (
    CropMode,
    Located,
    WholeCar,
    car_score,
    found_box,
    looks_partial,
    part_signals,
    verdict,
    whole_car_score,
)
from core.geometry import Box
from core.modelfile import ModelMetadata, open_session, physical_cores
from core.photo_price import estimate_price
from core.preprocess import (
    ImageLoadError,
    Photo,
    crop_to_input,
    load_photo,
    photo_from_array,
    photo_from_image,
)
from core.pricing import PriceBasis, PriceBin, PriceEstimate, PriceInputs
from core.scores import confidence, softmax

BUNDLED_MODEL_NAME = "carvalue.onnx"
CONFIDENCE_LOGITS = "_confidence_logits"  # with flip TTA: the photo's own make/model logits
MAX_SWEEP_POSITIONS = 64  # a sweep's predictions all stay in memory; 16 already pans smoothly
SWEEP_BATCH = 16  # crops per forward pass of a sweep, so its memory stays bounded
PhotoLike = Photo | str | os.PathLike[str] | Image.Image | np.ndarray


@dataclass(frozen=True)
class LabelProb:
    label: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    """One crop's estimate.  ``median_price``, ``price_low``/``price_high`` (the likely, middle-50%
    range) and ``price_bins`` repeat ``price`` (core.pricing: the price model's mixture, or for a
    model file without one the price head's histogram); ``median_head``: the median head's own
    value.  ``basis`` lets :func:`reprice` follow new mileage/condition/year without a forward
    pass."""

    median_price: float
    price_low: float
    price_high: float
    price_bins: tuple[PriceBin, ...]
    make_models: tuple[LabelProb, ...]  # top-k, most probable first
    years: tuple[LabelProb, ...]
    confidence: float  # 0..1: how much this looks like a whole car
    looks_like_car: bool
    crop: Box
    source: str = ""
    median_head: float = math.nan
    # Format-2 models: the whole-car check says "unsure" (near its threshold), and where the
    # first pass found the car in the whole photo (None: not located, or no car seen).
    unsure: bool = False
    found_box: Box | None = None
    # Files with a car output (training/framing/whole_car.py): no car at all in the crop (a panda, a
    # room) rather than part of one; its price is kept in the fields but is not an answer.
    no_car: bool = False
    car_score: float = math.nan
    photo_size: tuple[int, int] | None = None  # original pixels of the photo it was made on
    # Files with make outputs (training/framing/make_head.py): the make and body type on their own (so a
    # car whose model the classes lack still gets its make), and whether the car looks like one
    # of the classes (None: the file cannot tell).  ``year_or_later``: a car the classes lack
    # whose year piles up at the classes' last model year ("2012 or later", not "2012").
    makes: tuple[LabelProb, ...] = ()
    bodies: tuple[LabelProb, ...] = ()
    known_car: bool | None = None
    year_or_later: bool = False
    # core.framing.part_signals of the crop the verdict was made on (files with framing heads)
    part_signals: tuple[float, ...] = ()

    @property
    def covers_photo(self) -> bool:
        """The crop is the whole photo (within a pixel): widening it is not possible."""
        if self.photo_size is None:
            return False
        w, h = self.photo_size
        c = self.crop
        return c.x <= 1 and c.y <= 1 and c.x + c.w >= w - 1 and c.y + c.h >= h - 1
    price: PriceEstimate | None = None
    basis: PriceBasis | None = field(default=None, compare=False, repr=False)

    @property
    def whole_car(self) -> WholeCar:
        """The one verdict on this crop that the window, the list, the CLI and the files show."""
        if not self.looks_like_car:
            return WholeCar.NO_CAR if self.no_car else WholeCar.NO
        return WholeCar.UNSURE if self.unsure else WholeCar.YES

    @property
    def priced(self) -> bool:
        """Whether its price is an answer: not when there is no car in the crop, unless the user
        named the car (then the price is that car's, and the photo's verdict stays beside it)."""
        return self.whole_car.priced or (self.price is not None and self.price.car_source == "user")

    @property
    def unknown_car(self) -> bool:
        """A whole car that looks like none of the classes, and the user has not named it: its
        make is the answer, the closest class only a comparison.  (Part of a car keeps its own
        warning: a wheel looks like no class either.)"""
        return self.known_car is False and self.whole_car in (WholeCar.YES, WholeCar.UNSURE) and not (
            self.price is not None and self.price.car_source == "user")

    @property
    def year_words(self) -> str:
        """The top year as shown: "2012", or "2012 or later" for an unknown car at the last year."""
        y = self.years[0].label
        return f"{y} or later" if self.year_or_later else y

    @property
    def top_make_model(self) -> LabelProb:
        return self.make_models[0]

    @property
    def top_year(self) -> LabelProb:
        return self.years[0]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["crop"] = dict(zip("xywh", self.crop.as_tuple(), strict=True))
        d["found_box"] = None if self.found_box is None else dict(zip("xywh", self.found_box.as_tuple(), strict=True))
        d["whole_car"] = self.whole_car.value
        d["car_score"] = None if math.isnan(self.car_score) else self.car_score
        d["price"] = None if self.price is None else self.price.to_dict()
        d["makes"] = [asdict(m) for m in self.makes[:5]]
        d["bodies"] = [asdict(b) for b in self.bodies[:5]]
        d.pop("basis", None)
        return d


@dataclass(frozen=True)
class PhotoError:
    """A photo ``predict_many`` could not estimate, in its place among the others' predictions."""

    source: str
    reason: str  # one line

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class Sweep:
    """Predictions for crops panned left to right across a photo (one batch), plus every
    make/model's probability at every position (so a plot can follow any label without each
    prediction carrying the whole vocabulary)."""

    image_size: tuple[int, int]
    boxes: tuple[Box, ...]
    predictions: tuple[Prediction, ...]
    make_model_labels: tuple[str, ...] = ()
    make_model_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), compare=False, repr=False)

    def probabilities_of(self, label: str) -> np.ndarray:
        """``label``'s make/model probability at each position (0 for a label the model lacks)."""
        try:
            return self.make_model_probs[:, self.make_model_labels.index(label)].copy()
        except ValueError:
            return np.zeros(len(self.boxes))

    @property
    def positions(self) -> tuple[float, ...]:
        """Box centres as a fraction of the image width (0..1)."""
        return tuple(b.center_x / self.image_size[0] for b in self.boxes)


def sweep_boxes(size: tuple[int, int], n: int, width: float = 0.5) -> list[Box]:
    """``n`` boxes of ``width`` x full height, evenly spaced from the left edge to the right."""
    if not 1 <= n <= MAX_SWEEP_POSITIONS:
        raise ValueError(f"a sweep has 1 to {MAX_SWEEP_POSITIONS} positions, got {n}")
    if not 0 < width <= 1:
        raise ValueError("sweep width must be a fraction in (0, 1]")
    iw, ih = size
    bw = iw * width
    if n == 1:
        return [Box((iw - bw) / 2, 0.0, bw, float(ih))]
    step = (iw - bw) / (n - 1)
    return [Box(i * step, 0.0, bw, float(ih)) for i in range(n)]


# A sweep window holding less of the car found than this shows part of it, whatever the network
# says: its features cannot tell 60-75% of a car from all of it (training/RECIPES.md: 31-37% of
# such windows flagged), while the window's geometry can.
SWEEP_WHOLE_SHARE = 0.9


def car_share(window: Box, car: Box) -> float:
    """The share of ``car``'s box inside ``window``."""
    ix = max(0.0, min(window.x + window.w, car.x + car.w) - max(window.x, car.x))
    iy = max(0.0, min(window.y + window.h, car.y + car.h) - max(window.y, car.y))
    return ix * iy / (car.w * car.h) if car.w > 0 and car.h > 0 else 0.0


def as_part_of_car(p: Prediction) -> Prediction:
    """``p`` judged part of a car (a no-car verdict stays)."""
    return p if p.whole_car in (WholeCar.NO, WholeCar.NO_CAR) else replace(p, looks_like_car=False, unsure=False)


def car_sweep_boxes(size: tuple[int, int], n: int, car: Box) -> list[Box]:
    """``n`` windows of the car's size (its length and height) whose left edges run evenly from
    half a car left of it to half a car right of it, each cut to the photo: the car slides
    through the window, half of it in view at either end and all of it in the middle (so each
    position is a real view of the car, not a half-width strip of every photo)."""
    if not 1 <= n <= MAX_SWEEP_POSITIONS:
        raise ValueError(f"a sweep has 1 to {MAX_SWEEP_POSITIONS} positions, got {n}")
    iw, ih = size
    c = car.clamp(size)
    offsets = [0.0] if n == 1 else [c.w * (i / (n - 1) - 0.5) for i in range(n)]
    boxes = []
    for dx in offsets:
        x0, x1 = max(0.0, c.x + dx), min(float(iw), c.x + dx + c.w)
        boxes.append(Box(x0, c.y, max(1.0, x1 - x0), c.h).clamp(size))
    return boxes


def default_model_path() -> Path:
    """The bundled model: under resources/ in a source checkout or inside a PyInstaller bundle."""
    env = os.environ.get("CARVALUE_MODEL")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    roots = [Path(bundle)] if bundle else []
    roots.append(Path(__file__).resolve().parent.parent)
    for root in roots:
        candidate = root / "resources" / "models" / BUNDLED_MODEL_NAME
        if candidate.exists():
            return candidate
    return roots[0] / "resources" / "models" / BUNDLED_MODEL_NAME


class Predictor:
    """Runs a model file.  Thread-safe: ONNX Runtime sessions allow concurrent ``run`` calls."""

    def __init__(self, session: Any, metadata: ModelMetadata, path: Path, flip_tta: bool | None = None) -> None:
        self._session = session
        # Flip test-time augmentation: each crop and its mirror in one batch, their
        # probabilities averaged (see _flip_merged; the model card gives what it gains).  None:
        # as the model file says (chosen on validation photos when the model was built).
        self.flip_tta = metadata.input.flip_tta if flip_tta is None else flip_tta
        self.metadata = metadata
        self.path = path
        self._input_name = session.get_inputs()[0].name
        self._output_names = [o.name for o in session.get_outputs()]
        self._pool: ThreadPoolExecutor | None = None
        self._class_years = class_year_matrix(metadata.make_models, metadata.years)
        years = [int(y) for y in metadata.years if y.isdigit()]
        self._last_year: str | None = str(max(years)) if years else None  # the classes' last model year
        self._pool_lock = threading.Lock()
        # Year of sale, mileage and condition every new estimate is priced with (the CLI sets
        # them; the app reprices per photo with ``reprice``).
        self.price_inputs = PriceInputs()
        # A second look at the box found where the first pass sees no whole car (FramingSpec).
        self.second_look = metadata.framing is not None and metadata.framing.second_look
        self.second_look_min_top = metadata.framing.second_look_min_top if metadata.framing is not None else 0.0

    def _preprocess_pool(self) -> ThreadPoolExecutor:
        """Threads that crop and resize a batch's inputs side by side: Pillow's resampling and
        numpy's arithmetic release the GIL, so a 16-crop sweep's preprocessing runs ~1.9x
        faster on two cores (benchmarks/bench_inference.py)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(physical_cores(), thread_name_prefix="carvalue-preprocess")
            return self._pool

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, threads: int | None = None,
             flip_tta: bool | None = None) -> Predictor:
        """Load a model file (the bundled one when ``path`` is None); raises ModelFileError."""
        p = Path(path) if path is not None else default_model_path()
        session, meta = open_session(p, threads)
        return cls(session, meta, p, flip_tta)

    # -- inputs -----------------------------------------------------------------------------
    @staticmethod
    def as_photo(image: PhotoLike) -> Photo:
        if isinstance(image, Photo):
            return image
        if isinstance(image, Image.Image):
            return photo_from_image(image)
        if isinstance(image, np.ndarray):
            return photo_from_array(image)
        return load_photo(image)

    # -- inference --------------------------------------------------------------------------
    def run_batch(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for an (N, 3, S, S) float32 batch."""
        outs = self._session.run(self._output_names, {self._input_name: batch})
        return dict(zip(self._output_names, outs, strict=True))

    def decode(self, outs: dict[str, np.ndarray], box: Box, photo: Photo, top_k: int = 5) -> list[Prediction]:
        """One Prediction per row of ``run_batch``'s outputs, each made on ``box`` of ``photo``
        (for callers that build or alter the inputs themselves, as core.occlusion does)."""
        return [self._decode(outs, i, box, photo, top_k) for i in range(len(outs["make_model_logits"]))]

    def predict(self, image: PhotoLike, crop: Box | CropMode | None = None, top_k: int = 5) -> Prediction:
        """One estimate: on ``crop`` (a box), the whole photo (None or CropMode.FULL), or the car
        the model finds (CropMode.AUTO: see ``_predict_pairs``)."""
        return self._predict_pairs([(self.as_photo(image), crop)], top_k)[0]

    def locate(self, image: PhotoLike) -> Located:
        """Where the car is in the whole photo (one forward pass)."""
        photo = self.as_photo(image)
        outs, boxes = self._forward([(photo, None)])
        return self._located(outs, 0, boxes[0], photo)

    def _located(self, outs: dict[str, np.ndarray], i: int, crop: Box, photo: Photo) -> Located:
        fr = self.metadata.framing
        if fr is None or fr.box_output not in outs:
            return Located(None, math.nan)
        score = whole_car_score(float(np.ravel(outs[fr.whole_car_output][i])[0]), fr)
        box = found_box(outs[fr.box_output][i], crop, self.metadata.input, fr.found_margin, photo.original_size)
        return Located(box, score)

    def predict_many(self, images: Sequence[PhotoLike], crops: Sequence[Box | CropMode | None] | None = None,
                     top_k: int = 5, batch_size: int = 16) -> list[Prediction | PhotoError]:
        """Predict several photos in batches (each photo decoded once; a crop may be a box, None
        for the whole photo, or CropMode.AUTO).  A photo that cannot be read, or whose crop is
        not finite, gets a PhotoError in its place; the rest go on."""
        crops = list(crops) if crops is not None else [None] * len(images)
        if len(crops) != len(images):
            raise ValueError("crops must match images one to one")
        out: list[Prediction | PhotoError | None] = [None] * len(images)
        ready: list[tuple[int, Photo, Box | CropMode | None]] = []
        for i, (image, crop) in enumerate(zip(images, crops, strict=True)):
            try:
                photo = self.as_photo(image)
            except ImageLoadError as e:
                out[i] = PhotoError(e.source, e.reason)
                continue
            if isinstance(crop, Box) and not crop.is_finite():
                out[i] = PhotoError(photo.source, f"crop box must be finite numbers, got {crop.as_tuple()}")
                continue
            ready.append((i, photo, crop))
        for start in range(0, len(ready), batch_size):
            chunk = ready[start:start + batch_size]
            preds = self._predict_pairs([(photo, crop) for _, photo, crop in chunk], top_k)
            for (i, _, _), pred in zip(chunk, preds, strict=True):
                out[i] = pred
        return [r for r in out if r is not None]

    def predict_crops(self, photo: Photo, crops: Sequence[Box | None], top_k: int = 5) -> list[Prediction]:
        """Several crops of one photo as one batch."""
        return self._predict_pairs([(photo, c) for c in crops], top_k)

    def sweep(self, image: PhotoLike, n: int = 16, width: float = 0.5, top_k: int = 5,
              around: Box | None = None) -> Sweep:
        """Crops panned left to right (1 to MAX_SWEEP_POSITIONS of them), predicted in batches of
        SWEEP_BATCH: windows the size of the car ``around`` (see car_sweep_boxes), or with no
        car given, ``width`` x full height."""
        photo = self.as_photo(image)
        meta = self.metadata
        wanted = (sweep_boxes(photo.original_size, n, width) if around is None
                  else car_sweep_boxes(photo.original_size, n, around))
        boxes: list[Box] = []
        preds: list[Prediction] = []
        probs: list[np.ndarray] = []
        for start in range(0, len(wanted), SWEEP_BATCH):
            outs, clamped = self._forward([(photo, b) for b in wanted[start:start + SWEEP_BATCH]])
            probs.append(softmax(outs["make_model_logits"], meta.temperatures.get("make_model", 1.0)))
            preds += [self._decode(outs, i, b, photo, top_k) for i, b in enumerate(clamped)]
            boxes += clamped
        if around is not None:  # a window that leaves part of the car out shows part of a car
            car = around.clamp(photo.original_size)
            preds = [p if car_share(b, car) >= SWEEP_WHOLE_SHARE else as_part_of_car(p)
                     for b, p in zip(boxes, preds, strict=True)]
        return Sweep(photo.original_size, tuple(boxes), tuple(preds), tuple(meta.make_models),
                     np.concatenate(probs))

    def _predict_pairs(self, pairs: Sequence[tuple[Photo, Box | CropMode | None]], top_k: int) -> list[Prediction]:
        """One batch for all pairs; then, for the pairs whose crop is CropMode.AUTO and whose
        first pass (the whole photo) found a car that does not fill the photo, a second batch on
        the found boxes; with the file's ``second_look``, also where the first pass saw no whole
        car (the box head still says where one would be).  So an auto estimate costs one or two
        forward passes, never more."""
        if not pairs:
            return []
        first = [(photo, crop if isinstance(crop, Box) else None) for photo, crop in pairs]
        outs, boxes = self._forward(first)
        preds = [self._decode(outs, i, boxes[i], pairs[i][0], top_k) for i in range(len(pairs))]
        again: list[tuple[int, Box]] = []
        looks: set[int] = set()  # pairs whose first pass saw no whole car: a second look at the box found
        for i, (photo, crop) in enumerate(pairs):
            if crop is CropMode.AUTO:
                located = self._located(outs, i, boxes[i], photo)
                seen = preds[i].looks_like_car  # no car seen: nothing was found, the photo stays whole
                preds[i] = replace(preds[i], found_box=located.box if seen else None)
                box = located.crop_for_estimate(boxes[i])
                if box is not None and (seen or self.second_look):
                    again.append((i, box))
                    if not seen:
                        looks.add(i)
        if again:
            outs2, boxes2 = self._forward([(pairs[i][0], box) for i, box in again])
            for j, (i, box) in enumerate(again):
                second = self._decode(outs2, j, boxes2[j], pairs[i][0], top_k)
                if i in looks:
                    # A car small in a busy scene: the whole photo's pooled features read as the
                    # scene, the box found reads as the car.  Its own verdict stands only when it
                    # is a whole car (named at least as surely as the file asks); otherwise the
                    # first pass's "no car" / "part of a car" stays.
                    top = second.make_models[0].probability if second.make_models else 1.0
                    if second.whole_car in (WholeCar.YES, WholeCar.UNSURE) and top >= self.second_look_min_top:
                        preds[i] = replace(second, found_box=box)
                    continue
                # The whole-car verdict is the first pass's: whether the photo shows a whole car.
                # The found box is drawn tight on purpose (the framing's margin, chosen for the
                # classifier), so judging that crop would call the car it found partial.
                first = preds[i]
                preds[i] = replace(second, found_box=first.found_box, confidence=first.confidence,
                                   looks_like_car=first.looks_like_car, unsure=first.unsure,
                                   no_car=first.no_car, car_score=first.car_score,
                                   part_signals=first.part_signals)
        return preds

    def _forward(self, pairs: Sequence[tuple[Photo, Box | None]]) -> tuple[dict[str, np.ndarray], list[Box]]:
        """Crop, resize and normalise each pair, run them as one batch; the raw outputs and the
        clamped boxes."""
        spec = self.metadata.input
        boxes = [(c or p.full_box()).clamp(p.original_size) for p, c in pairs]
        photos = [p for p, _ in pairs]
        if len(pairs) > 1 and physical_cores() > 1:
            inputs = list(self._preprocess_pool().map(lambda p, b: crop_to_input(p, b, spec), photos, boxes))
        else:
            inputs = [crop_to_input(p, b, spec) for p, b in zip(photos, boxes, strict=True)]
        x = np.stack(inputs)
        if not self.flip_tta:
            return self.run_batch(x), boxes
        return self._flip_merged(self.run_batch(np.concatenate([x, x[:, :, :, ::-1]])), len(x)), boxes

    def _flip_merged(self, raw: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Outputs of photos and their mirrors (rows n.. mirror rows ..n) as one: each head's
        softmax (at its temperature) averaged, kept as logits whose softmax is that average;
        the median head averaged; the framing outputs and the confidence's logits from the
        photo itself (a mirrored box is another box)."""
        temps = self.metadata.temperatures
        outs = {k: v[:n] for k, v in raw.items()}
        outs[CONFIDENCE_LOGITS] = raw["make_model_logits"][:n]
        heads = [("price", "price_logits"), ("make_model", "make_model_logits"), ("year", "year_logits")]
        mk = self.metadata.make
        if mk is not None:
            heads += [(h, k) for h, k in (("make", mk.make_output), ("body", mk.body_output)) if k in raw]
        for head, key in heads:
            t = temps.get(head, 1.0)
            mean = (softmax(raw[key][:n], t) + softmax(raw[key][n:], t)) / 2
            outs[key] = (t * np.log(np.maximum(mean, 1e-300))).astype(np.float32)
        outs["median"] = (raw["median"][:n] + raw["median"][n:]) / 2
        return outs

    def _decode(self, outs: dict[str, np.ndarray], i: int, box: Box, photo: Photo, top_k: int) -> Prediction:
        meta = self.metadata
        temps = meta.temperatures
        price_p = softmax(outs["price_logits"][i], temps.get("price", 1.0))
        mm_logits = outs["make_model_logits"][i]
        mm_p = softmax(mm_logits, temps.get("make_model", 1.0))
        year_p = years_from_classes(mm_p, softmax(outs["year_logits"][i], temps.get("year", 1.0)),
                                    self._class_years)
        head = meta.price.to_dollars(float(np.ravel(outs["median"][i])[0]))
        bins = tuple(PriceBin(lo, hi, float(p)) for (lo, hi), p in
                     zip(meta.price.bounds(), price_p, strict=True))
        basis = PriceBasis(mm_p, bins, head, year_probs(year_p, meta.years))
        price = estimate_price(meta, basis, self.price_inputs)
        fr = meta.framing
        no_car, car, signals = False, math.nan, ()
        if fr is not None and fr.whole_car_output in outs:
            conf = whole_car_score(float(np.ravel(outs[fr.whole_car_output][i])[0]), fr)
            if fr.car_output and fr.car_output in outs:
                car = car_score(float(np.ravel(outs[fr.car_output][i])[0]), fr)
            judged = verdict(conf, fr, car)
            car_box = found_box(outs[fr.box_output][i], box, meta.input, 0.0, photo.original_size) \
                if fr.box_output in outs else None
            signals = part_signals(conf, float(mm_p.max()), car_box, box)
            if judged in (WholeCar.YES, WholeCar.UNSURE) and looks_partial(signals, fr):
                judged = WholeCar.NO
            looks, unsure = judged in (WholeCar.YES, WholeCar.UNSURE), judged is WholeCar.UNSURE
            no_car = judged is WholeCar.NO_CAR
        else:
            conf = confidence(outs.get(CONFIDENCE_LOGITS, outs["make_model_logits"])[i], meta.confidence)
            looks, unsure = conf >= _threshold01(meta), False
        makes, bodies, known, later = self._decode_make(outs, i, mm_p, year_p, top_k)
        return Prediction(
            median_price=price.median,
            price_low=price.likely[0],
            price_high=price.likely[1],
            price_bins=price.bins,
            make_models=top_labels(mm_p, meta.make_models, top_k),
            years=top_labels(year_p, meta.years, top_k),
            confidence=conf,
            looks_like_car=looks,
            unsure=unsure,
            no_car=no_car,
            car_score=car,
            crop=box,
            source=photo.source,
            median_head=head,
            photo_size=photo.original_size,
            price=price,
            basis=basis,
            makes=makes,
            bodies=bodies,
            known_car=known,
            year_or_later=later,
            part_signals=signals,
        )

    def _decode_make(self, outs: dict[str, np.ndarray], i: int, mm_p: np.ndarray, year_p: np.ndarray,
                     top_k: int) -> tuple[tuple[LabelProb, ...], tuple[LabelProb, ...], bool | None, bool]:
        """Make and body (their own heads), known_car (the top class's probability against the
        file's threshold) and whether the year reads "or later" (an unknown car whose top year
        is the classes' last)."""
        mk = self.metadata.make
        if mk is None or mk.make_output not in outs:
            return (), (), None, False
        temps = self.metadata.temperatures
        k = max(top_k, 5)  # the files list five makes whatever --top says
        makes = top_labels(softmax(outs[mk.make_output][i], temps.get("make", 1.0)), mk.makes, k)
        bodies: tuple[LabelProb, ...] = ()
        if mk.body_output and mk.body_output in outs:
            bodies = top_labels(softmax(outs[mk.body_output][i], temps.get("body", 1.0)), mk.bodies, k)
        known = bool(float(mm_p.max()) >= mk.known_threshold)
        later = not known and self._last_year is not None and \
            self.metadata.years[int(np.argmax(year_p))] == self._last_year
        return makes, bodies, known, later


def reprice(pred: Prediction, meta: ModelMetadata, inputs: PriceInputs) -> Prediction:
    """``pred`` priced with other inputs (no forward pass); unchanged when it has no basis or
    was priced with the same inputs already."""
    if pred.basis is None or (pred.price is not None and pred.price.inputs.to_dict() == inputs.to_dict()):
        return pred
    price = estimate_price(meta, pred.basis, inputs)
    return replace(pred, median_price=price.median, price_low=price.likely[0], price_high=price.likely[1],
                   price_bins=price.bins, price=price)


def class_year_matrix(make_models: Sequence[str], years: Sequence[str]) -> np.ndarray | None:
    """(classes, years) 0/1 matrix when every make/model class names its model year (Stanford
    classes end in it: "Ford GT Coupe 2006"), with the Unknown class's row zero; else None."""
    index = {y: j for j, y in enumerate(years)}
    m = np.zeros((len(make_models), len(years)))
    for i, label in enumerate(make_models[:-1]):
        j = index.get(label.rsplit(" ", 1)[-1])
        if j is None:
            return None
        m[i, j] = 1.0
    return m


def year_probs(p: np.ndarray, vocab: Sequence[str]) -> dict[int, float]:
    """{model year: probability} of the numeric years (what a price head's value is aged by)."""
    return {int(y): float(q) for y, q in zip(vocab, p, strict=True) if y.isdigit()}


def years_from_classes(mm_p: np.ndarray, year_head_p: np.ndarray, class_years: np.ndarray | None) -> np.ndarray:
    """The model-year distribution shown: for models whose classes carry the year, the class
    posterior summed by year (the year head spreads only the Unknown class's share), so the
    years agree with the make/models shown; otherwise the year head's own distribution."""
    if class_years is None:
        return year_head_p
    p = mm_p @ class_years + mm_p[-1] * year_head_p
    return p / p.sum()


def top_labels(probs: np.ndarray, vocab: Sequence[str], k: int) -> tuple[LabelProb, ...]:
    k = max(1, min(k, len(vocab)))
    idx = np.argsort(-probs, kind="stable")[:k]
    return tuple(LabelProb(vocab[j], float(probs[j])) for j in idx)


def _threshold01(meta: ModelMetadata) -> float:
    return 0.5 if meta.confidence.method == "energy" else meta.confidence.threshold
