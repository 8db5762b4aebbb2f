"""Training data: records -> labels -> a split by car/listing -> augmented tensors.

Both data sources end as ``list[ImageRecord]`` (core.dataset.records): a folder + labels CSV
(:func:`records_from_folder`, or the Stanford reader in ``training.data.stanford`` which adds derived
prices) and the data pipeline's SQLite + image store (``core.dataset.export.records_from_db``).
Everything below works on records only.

Splits are made over ``ImageRecord.group`` (a listing / a car), never over photos, stratified by
class and seeded; :class:`Split` records which groups went where and a hash of it.

Augmentation is deterministic per (seed, epoch, sample): the sampler hands the dataset an
``(index, seed, size)`` triple, so the pixels a sample gets do not depend on worker processes,
the number of ranks, or whether the run was resumed mid-epoch.
"""
# Over 400 lines: records to batches (labels, group split, augmentation, sampler), top to bottom

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.utils.data import Dataset, Sampler

from core.dataset.records import ImageRecord
from core.geometry import Box
from core.modelfile import UNKNOWN, InputSpec, PriceSpec
from core.preprocess import crop_resize, load_photo, normalise
from training.config import FRAMED_LONG_SIDE
from training.data.labels_csv import LABELS_CSV, LabelsCsvError, read_labels_csv
from training.data.price_scale import DEFAULT_EDGES, price_scaling

IGNORE = -100  # class target for "no label" (torch's cross-entropy ignore_index default)
KERAS_MEAN = (0.5, 0.5, 0.5)  # the Keras MobileNetV2 trunk expects x / 127.5 - 1
KERAS_STD = (0.5, 0.5, 0.5)
ClassKey = Literal["make_model", "make_model_year"]


class DataError(ValueError):
    """Training data that cannot be used; the message says which file and why."""


# -- reading -----------------------------------------------------------------------------------
def records_from_folder(folder: str | Path) -> list[ImageRecord]:
    """Records from ``folder/labels.csv`` (columns: file, make, model, year; optional price,
    mileage, group), read by :func:`training.data.labels_csv.read_labels_csv`. Without a ``group``
    column each photo is its own group (Stanford: one photo per car). Empty price/year cells mean
    "unknown" (their losses are masked)."""
    folder = Path(folder)
    try:
        rows = read_labels_csv(folder)
    except (FileNotFoundError, LabelsCsvError) as e:
        raise DataError(str(e)) from e
    if not rows:
        raise DataError(f"{folder / LABELS_CSV}: no rows")
    return [ImageRecord(image_path=folder / r.file, group=r.group, make=r.make, model=r.model, year=r.year,
                        price=r.price, mileage=r.mileage) for r in rows]


# -- labels ------------------------------------------------------------------------------------
def class_name(r: ImageRecord, key: ClassKey) -> str:
    """The make/model class of a record. ``make_model_year`` matches Stanford's 196 classes
    (a model year is part of the class there); listings use ``make_model`` and the year head."""
    if key == "make_model_year" and r.year is not None:
        return f"{r.make_model} {r.year}"
    return r.make_model


@dataclass(frozen=True)
class LabelSpace:
    """Vocabularies (each ending in Unknown) and the price encoding a model is trained with."""

    make_models: tuple[str, ...]
    years: tuple[str, ...]
    class_key: ClassKey = "make_model_year"
    edges: tuple[float, ...] = DEFAULT_EDGES
    log_mean: float = PriceSpec.log_mean  # the median head's scaling (PriceSpec's defaults)
    log_std: float = PriceSpec.log_std
    meaning: str = ""

    def __post_init__(self) -> None:
        if not self.make_models or self.make_models[-1] != UNKNOWN:
            raise ValueError("make/model vocabulary must end with Unknown")
        if not self.years or self.years[-1] != UNKNOWN:
            raise ValueError("year vocabulary must end with Unknown")

    @classmethod
    def from_records(cls, records: Sequence[ImageRecord], class_key: ClassKey = "make_model_year",
                     max_classes: int = 0, edges: tuple[float, ...] = DEFAULT_EDGES,
                     meaning: str = "") -> LabelSpace:
        """Vocabularies from (training) records: classes by frequency then name (the top
        ``max_classes`` when > 0, others become Unknown), years sorted; log-price mean/std of
        the records that have a price (defaults when none do)."""
        counts = Counter(class_name(r, class_key) for r in records if r.make)
        ranked = sorted(counts, key=lambda c: (-counts[c], c))
        if max_classes > 0:
            ranked = ranked[:max_classes]
        years = sorted({r.year for r in records if r.year is not None})
        prices = [r.price for r in records if r.price is not None and r.price > 0]
        default = PriceSpec()
        log_mean, log_std = price_scaling(prices) if len(prices) > 1 else (default.log_mean, default.log_std)
        return cls(tuple(sorted(ranked)) + (UNKNOWN,), tuple(str(y) for y in years) + (UNKNOWN,),
                   class_key, tuple(edges), log_mean, log_std, meaning)

    @property
    def num_price_bins(self) -> int:
        return len(self.edges) + 1

    def price_spec(self) -> PriceSpec:
        return PriceSpec(edges=tuple(self.edges), log_mean=self.log_mean, log_std=self.log_std,
                         meaning=self.meaning)

    def to_dict(self) -> dict[str, object]:
        return {"make_models": list(self.make_models), "years": list(self.years),
                "class_key": self.class_key, "edges": list(self.edges), "log_mean": self.log_mean,
                "log_std": self.log_std, "meaning": self.meaning}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> LabelSpace:
        return cls(tuple(d["make_models"]), tuple(d["years"]), d["class_key"],  # type: ignore[arg-type]
                   tuple(d["edges"]), float(d["log_mean"]), float(d["log_std"]),  # type: ignore[arg-type]
                   str(d.get("meaning", "")))

    def encode(self, r: ImageRecord) -> Targets:
        mm_index = {c: i for i, c in enumerate(self.make_models)}
        return self._encode(r, mm_index, {y: i for i, y in enumerate(self.years)})

    def encode_all(self, records: Sequence[ImageRecord]) -> list[Targets]:
        mm_index = {c: i for i, c in enumerate(self.make_models)}
        y_index = {y: i for i, y in enumerate(self.years)}
        return [self._encode(r, mm_index, y_index) for r in records]

    def _encode(self, r: ImageRecord, mm_index: dict[str, int], y_index: dict[str, int]) -> Targets:
        unknown_mm = len(self.make_models) - 1
        make_model = mm_index.get(class_name(r, self.class_key), unknown_mm) if r.make else IGNORE
        year = IGNORE if r.year is None else y_index.get(str(r.year), len(self.years) - 1)
        if r.price is not None and r.price > 0:
            price_bin = int(np.searchsorted(np.asarray(self.edges), r.price, side="right"))
            median = self.price_spec().to_z(r.price)
        else:
            price_bin, median = IGNORE, math.nan
        return Targets(price_bin, median, make_model, year)


@dataclass(frozen=True)
class Targets:
    """Per-photo targets; IGNORE / NaN where the label is missing."""

    price_bin: int
    median: float
    make_model: int
    year: int


# -- split -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    train: tuple[int, ...]  # record indices
    val: tuple[int, ...]
    test: tuple[int, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # part -> group ids
    seed: int = 0

    def digest(self) -> str:
        """SHA-256 over the sorted group ids of each part: equal digests = identical split."""
        h = hashlib.sha256()
        for part in ("train", "val", "test"):
            h.update(part.encode())
            for g in sorted(self.groups.get(part, ())):
                h.update(b"\0" + g.encode())
        return h.hexdigest()

    def summary(self) -> dict[str, object]:
        return {"seed": self.seed, "sha256": self.digest(),
                "photos": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
                "groups": {k: len(v) for k, v in self.groups.items()}}

    def to_json(self, records: Sequence[ImageRecord], root: Path | None = None) -> str:
        """The split as JSON: per part, its groups and photo paths (relative to ``root``)."""
        def rel(p: Path) -> str:
            if root is not None:
                try:
                    return str(p.relative_to(root))
                except ValueError:
                    return str(p)
            return str(p)

        return json.dumps({**self.summary(),
                           "parts": {part: {"groups": sorted(self.groups.get(part, ())),
                                            "files": [rel(records[i].image_path) for i in idx]}
                                     for part, idx in (("train", self.train), ("val", self.val),
                                                       ("test", self.test))}}, indent=1)


def parse_families(text: str) -> tuple[str, ...]:
    """``"Toyota Camry, BMW 3 Series"`` -> the families, trimmed, empty ones dropped."""
    return tuple(f.strip() for f in text.split(",") if f.strip())


def in_family(make_model: str, family: str) -> bool:
    """Whether a class ("Toyota Camry Sedan", "Chevrolet Silverado 1500 Regular Cab") belongs to
    a family ("Toyota Camry", "Chevrolet Silverado"): the family followed by nothing or a word
    break, case-insensitive ("BMW 3 Series" takes "BMW 3 Series Wagon", "Audi TT" not "Audi TTS")."""
    a, f = make_model.casefold().split(), family.casefold().split()
    return len(f) > 0 and a[:len(f)] == f


def without_families(records: Sequence[ImageRecord], families: Sequence[str]) -> list[ImageRecord]:
    """The records of no family in ``families`` (a leave-family-out run's data)."""
    return [r for r in records if not any(in_family(r.make_model, f) for f in families)]


def split_by_group(records: Sequence[ImageRecord], val_fraction: float, test_fraction: float,
                   seed: int, class_key: ClassKey = "make_model_year") -> Split:
    """Split *groups* (cars/listings) into train/val/test, stratified by the class of each
    group's first photo: within a class, groups are shuffled (seeded) and
    ``round(n * fraction)`` go to test and val (at least one each when the class has 3+
    groups and the fraction is positive), the rest to train."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_group[r.group].append(i)
    by_class: dict[str, list[str]] = defaultdict(list)
    for g, idx in by_group.items():
        by_class[class_name(records[idx[0]], class_key)].append(g)
    rng = random.Random(seed)
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cls in sorted(by_class):
        groups = sorted(by_class[cls])
        rng.shuffle(groups)
        n = len(groups)
        n_test = _share(n, test_fraction)
        n_val = _share(n - n_test, val_fraction * n / max(n - n_test, 1))
        parts["test"] += groups[:n_test]
        parts["val"] += groups[n_test:n_test + n_val]
        parts["train"] += groups[n_test + n_val:]
    idx = {p: tuple(sorted(i for g in gs for i in by_group[g])) for p, gs in parts.items()}
    return Split(idx["train"], idx["val"], idx["test"],
                 {p: tuple(sorted(gs)) for p, gs in parts.items()}, seed)


def _share(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 3:
        return 0
    return min(max(1, round(n * fraction)), n - 1)


# -- augmentation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Augment:
    """Random resized crop (or, for a ``framed`` share of samples, the car pasted into a larger
    frame and cropped to a jittered box around it) + horizontal flip + colour jitter, then the
    app's resize/normalise.

    The framed view is what ``--crop auto`` hands the classifier on a user's photo: a found box
    that is never exact, so it holds some street, sky or wall beside the car, or cuts a little
    of it off.  Training only on random crops *inside* tight Stanford crops never shows the
    network a background, and the found box then has to be tightened to be classified well.
    """

    min_area: float = 0.25
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    ratio_mode: Literal["absolute", "relative", "mixed"] = "mixed"
    hflip: bool = True
    jitter: float = 0.4
    framed: float = 0.0  # share of samples framed (training/data/compositing.py) and cropped around the car
    framed_box_jitter: float = 0.15  # each side of the crop moves up to this share of the car's size
    backgrounds: tuple[str, ...] = ()  # photos to frame the car in (training side of training/data/negatives.py)
    # the frame's long side in pixels; 0: fitted to the input size (compositing.fitted_long_side),
    # which composes fewer pixels for the same crop, most of all at small input sizes
    framed_long_side: int = FRAMED_LONG_SIDE

    def box(self, size: tuple[int, int], rng: np.random.Generator) -> Box:
        """A crop box covering ``min_area``-100% of the photo (torchvision's algorithm: ten
        tries, then the whole photo). Aspect ratios are in pixels ("absolute") or relative to
        the photo's own aspect ("relative": squashed to a square like a whole-photo box)."""
        w, h = size
        mode = self.ratio_mode
        if mode == "mixed":
            mode = "relative" if rng.random() < 0.5 else "absolute"
        base = w / h if mode == "relative" else 1.0
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            area = w * h * rng.uniform(self.min_area, 1.0)
            ratio = base * math.exp(rng.uniform(log_lo, log_hi))
            cw, ch = math.sqrt(area * ratio), math.sqrt(area / ratio)
            if cw <= w and ch <= h:
                return Box(float(rng.uniform(0, w - cw)), float(rng.uniform(0, h - ch)), cw, ch)
        return Box.full(size)

    def __call__(self, image: Image.Image, spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
        """An augmented crop, resized and normalised by ``spec`` (the model file's input spec:
        the trunk's own mean/std, so training sees what the app will feed).  The crop is always
        stretched to the square, as the app stretches its crop box."""
        spec = replace(spec, resize="stretch", crop_fraction=1.0)
        if self.framed > 0 and rng.random() < self.framed:
            image, box = self.framed_view(image, rng, spec.size)
        else:
            box = self.box(image.size, rng)
        img = crop_resize(image, box, spec)
        if self.hflip and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.jitter > 0:
            img = self._jitter(img, rng)
        return normalise(img, spec)

    def framed_view(self, car: Image.Image, rng: np.random.Generator, out_size: int = 224) -> tuple[Image.Image, Box]:
        """``car`` (a tight crop) composited into a frame where it covers 20-100% of the
        picture, and a box around it with each side jittered by up to ``framed_box_jitter``;
        ``out_size``: the input size the crop is resized to (for ``framed_long_side`` 0)."""
        from training.data.compositing import (
            FILLS,
            compose,
            fitted_long_side,
            jitter_box,
            random_recipe,
        )

        fills = FILLS if self.backgrounds else tuple(f for f in FILLS if f != "photo")
        recipe = random_recipe(rng, coverage=(0.2, 1.0), fills=fills, long_side=self.framed_long_side or FRAMED_LONG_SIDE)
        if not self.framed_long_side:
            recipe = replace(recipe, long_side=fitted_long_side(car.size, recipe, out_size))
        background = _background_photo(self.backgrounds[int(rng.integers(len(self.backgrounds)))]) \
            if recipe.fill == "photo" else None
        frame = compose(car, replace(recipe, others=0), rng, background)
        return frame.image, jitter_box(frame.box, frame.image.size, rng, self.framed_box_jitter)

    def _jitter(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        lo, hi = max(0.0, 1 - self.jitter), 1 + self.jitter
        ops = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color]
        for k in rng.permutation(len(ops)):
            img = ops[int(k)](img).enhance(float(rng.uniform(lo, hi)))
        return img


@functools.lru_cache(maxsize=64)
def _background_photo(path: str) -> Image.Image:
    """A background photo, decoded once per process (wallpapers are multi-megapixel PNGs)."""
    from training.data.negatives import load_negative

    return load_negative(path)


# -- dataset and sampler -----------------------------------------------------------------------
SampleKey = tuple[int, int, int]  # (record index, augmentation seed, input size)


class CarPhotos(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Photos with their targets. ``dataset[(i, seed, size)]`` gives an augmented crop (seed >= 0)
    or the evaluation view (seed < 0, ``eval_spec``); ``dataset[i]`` is the evaluation view.

    Returns (image (3,S,S) float32, class targets int64 [price_bin, make_model, year],
    median target float32 scalar, NaN when unknown)."""

    def __init__(self, records: Sequence[ImageRecord], labels: LabelSpace, eval_spec: InputSpec,
                 augment: Augment | None = None) -> None:
        self.records = list(records)
        self.targets = labels.encode_all(self.records)
        self.eval_spec = eval_spec
        self.augment = augment or Augment()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, seed, size = (key, -1, self.eval_spec.size) if isinstance(key, int) else key
        image = load_photo(self.records[i].image_path).image
        spec = self.eval_spec if size == self.eval_spec.size else replace(self.eval_spec, size=size)
        if seed >= 0:
            arr = self.augment(image, spec, np.random.default_rng(seed))
        else:
            arr = normalise(crop_resize(image, Box.full(image.size), spec), spec)
        t = self.targets[i]
        return (torch.from_numpy(arr), torch.tensor([t.price_bin, t.make_model, t.year]),
                torch.tensor(t.median, dtype=torch.float32))


class EpochSampler(Sampler[SampleKey]):
    """DistributedSampler's order (seeded permutation per epoch, padded to a multiple of the
    world size, every ``world``-th item for this rank) with a per-sample augmentation seed and
    input size, and ``skip`` to resume mid-epoch."""

    def __init__(self, n: int, seed: int, epoch: int, size: int, rank: int = 0, world: int = 1,
                 skip: int = 0, drop_last: bool = True, batch_size: int = 1) -> None:
        self.n, self.seed, self.epoch, self.size = n, seed, epoch, size
        self.rank, self.world, self.skip = rank, world, skip
        per_rank = math.ceil(n / world)
        if drop_last:  # whole batches only, so every step has the same batch size
            per_rank = (n // world) // batch_size * batch_size
        self.per_rank = per_rank

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        total = math.ceil(self.n / self.world) * self.world
        order += order[:total - len(order)]
        return order[self.rank:total:self.world][:self.per_rank]

    def __iter__(self) -> Iterator[SampleKey]:
        for pos, i in enumerate(self.indices()):
            if pos >= self.skip:
                yield (i, sample_seed(self.seed, self.epoch, i), self.size)

    def __len__(self) -> int:
        return max(0, self.per_rank - self.skip)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed per (run seed, epoch, sample)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def collate(batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, cls, med = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(cls), torch.stack(med)
