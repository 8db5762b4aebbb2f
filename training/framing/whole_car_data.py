"""Samples that teach and measure the whole-car check: cars, parts of cars and everything else.

Three labels per sample (``label``): 2 a whole car, 1 part of a car (what a careless box or
the pan sweep gives: half a side view, a bumper, a wheel), 0 no car.  The no-car samples are
natural photos (``../shared/data/natural-photos``: ImageNet and Caltech 101 categories, random
web photos), the installed wallpapers and clip art (training/data/negatives.py) and drawn graphics.

Natural photos are split by *category*, never by photo: a check that has seen pandas is not
thereby good on cassette tapes.  Each kind (car, other vehicle, car part, not a car) is split
on its own so that every part holds some of each.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.geometry import Box
from training.data import compositing as comp
from training.data.labels_csv import LABELS_CSV

NO_CAR, PART, WHOLE = 0, 1, 2
PARTS = ("train", "val", "test")
# Shares of each kind's categories per part: most to train; validation sets the thresholds;
# test is reported and never used for a choice.
CATEGORY_SHARES = {"train": 0.6, "val": 0.2, "test": 0.2}
NATURAL_KINDS = {"car": WHOLE, "vehicle_not_car": NO_CAR, "car_part": PART, "not_car": NO_CAR}
# The natural-photos folder's sources and licences (its README), recorded in the model file's
# framing section beside the installed negatives'.
NATURAL_SOURCES: tuple[dict[str, str], ...] = (
    {"name": "natural-photos/imagenet", "package": "shared data natural-photos (EliSchwartz/imagenet-sample-images "
     "bc69043)", "licence": "ImageNet terms of access: non-commercial research and education only",
     "copyright": "natural-photos/README.md", "kinds": "photo"},
    {"name": "natural-photos/caltech101", "package": "shared data natural-photos (Caltech 101, Fei-Fei, Fergus, "
     "Perona 2004)", "licence": "CC-BY-4.0", "copyright": "natural-photos/README.md", "kinds": "photo"},
)


@dataclass(frozen=True)
class Sample:
    image: Image.Image
    label: int  # NO_CAR, PART or WHOLE
    kind: str  # where it comes from: "tight", "framed", "natural-not_car", "sweep-half", ...
    group: str = ""  # the category (natural photos) or the car photo it was cut from


@dataclass(frozen=True)
class NaturalPhoto:
    path: Path
    source: str
    category: str
    kind: str  # the README's kind: car, vehicle_not_car, car_part, not_car

    @property
    def group(self) -> str:
        return f"{self.source}/{self.category}"


def read_natural(root: Path) -> list[NaturalPhoto]:
    """labels.csv of the natural-photos folder; rows whose file is missing are left out."""
    out = []
    table = root / LABELS_CSV  # the same file name as the car folders' table, another schema
    with table.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            kind = row.get("kind", "")
            if kind not in NATURAL_KINDS:
                raise ValueError(f"{table}: unknown kind {kind!r} for {row.get('file')!r}")
            path = root / row["file"]
            if path.is_file():
                out.append(NaturalPhoto(path, row["source"], row["category"], kind))
    return out


def _rank(group: str) -> str:
    return hashlib.sha256(group.encode()).hexdigest()


def split_by_category(photos: Sequence[NaturalPhoto]) -> dict[str, list[NaturalPhoto]]:
    """train / val / test by category, each kind on its own, categories ordered by a hash of
    their name (so the split is fixed and says nothing about the photos' content)."""
    parts: dict[str, list[NaturalPhoto]] = {p: [] for p in PARTS}
    # Whole cars are one category however they are filed (a side view, a cab, a jeep): their
    # photos are split by photo, so that training sees real car photos and not only crops.
    for p in photos:
        if p.kind == "car":
            r = int(_rank(p.path.name + p.group)[:8], 16) / 16**8
            parts["val" if r < CATEGORY_SHARES["val"] else "test" if r < 1 - CATEGORY_SHARES["train"] else
                  "train"].append(p)
    kinds = sorted({p.kind for p in photos} - {"car"})
    for kind in kinds:
        groups = sorted({p.group for p in photos if p.kind == kind}, key=_rank)
        n = len(groups)
        n_val = max(1, round(n * CATEGORY_SHARES["val"])) if n >= 3 else 0
        n_test = max(1, round(n * CATEGORY_SHARES["test"])) if n >= 3 else 0
        where = {g: "val" for g in groups[:n_val]}
        where |= {g: "test" for g in groups[n_val:n_val + n_test]}
        for p in photos:
            if p.kind == kind:
                parts[where.get(p.group, "train")].append(p)
    return parts


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.draft("RGB", (1024, 1024))
        return im.convert("RGB")


def held_out_cars(parts: dict[str, list[Path]]) -> tuple[list[Path], list[Path]]:
    """(photos that set the thresholds, photos that are reported): a split run's validation and
    test photos; a model trained on all but its validation photos halves those, by a hash of
    the file name."""
    if parts.get("test"):
        return list(parts["val"]), list(parts["test"])
    held = sorted(parts["val"], key=lambda p: _rank(p.name))
    return held[: len(held) // 2], held[len(held) // 2:]


def natural_samples(photos: Sequence[NaturalPhoto], seed: int, regions: bool = True) -> Iterator[Sample]:
    """Each natural photo whole, and (``regions``) one random region of each that is not a whole
    car (a region of a car photo may hold part of the car: left out)."""
    rng = np.random.default_rng(seed)
    for p in photos:
        im = _open_rgb(p.path)
        label = NATURAL_KINDS[p.kind]
        yield Sample(im, label, f"natural-{p.kind}", p.group)
        if regions and label == NO_CAR:
            w, h = im.size
            cw, ch = max(16, int(w * rng.uniform(0.35, 0.8))), max(16, int(h * rng.uniform(0.35, 0.8)))
            x, y = int(rng.integers(0, max(1, w - cw))), int(rng.integers(0, max(1, h - ch)))
            yield Sample(im.crop((x, y, x + cw, y + ch)), NO_CAR, f"natural-{p.kind}-region", p.group)


def sweep_part(image: Image.Image, car: Box, rng: np.random.Generator) -> Image.Image:
    """What a pan sweep's box or a careless box holds on a side view: 25-50% of the car's length
    at full height of the frame, anywhere along it."""
    share = float(rng.uniform(0.25, 0.5))
    bw = car.w * share
    x = car.x + float(rng.uniform(0, car.w - bw))
    top = float(rng.uniform(0, max(0.0, car.y)))
    bottom = float(rng.uniform(min(image.height, car.y + car.h), image.height))
    return image.crop((round(x), round(top), round(x + bw), round(max(bottom, top + 8))))


def corner_part(car: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A bumper, a wheel or a lamp: a box at the car's bottom or front/back, 15-40% of its
    width and 30-70% of its height."""
    w, h = car.size
    cw = max(8, round(w * rng.uniform(0.15, 0.4)))
    ch = max(8, round(h * rng.uniform(0.3, 0.7)))
    x = 0 if rng.uniform() < 0.5 else w - cw
    x = int(min(max(0, x + rng.integers(-cw // 4, cw // 4 + 1)), w - cw))
    y = h - ch if rng.uniform() < 0.7 else int(rng.integers(0, h - ch + 1))
    return car.crop((x, y, x + cw, y + ch))


def car_samples(photos: Sequence[Path], backgrounds: comp.BackgroundSource | None, seed: int,
                framed: int = 1) -> Iterator[Sample]:
    """Per tight car photo: the photo itself and ``framed`` composites (whole cars: tight,
    framed, found), then parts of it: half a side view as the sweep cuts it (from the
    composite), a bumper or wheel, and a random 8-40% crop."""
    rng = np.random.default_rng(seed)
    for i, path in enumerate(photos):
        car = _open_rgb(path)
        group = path.name
        yield Sample(car, WHOLE, "tight", group)
        c = None
        for _ in range(framed):
            bg = backgrounds(rng) if backgrounds is not None else None
            c = comp.compose(car, comp.random_recipe(rng, (0.15, 1.0)), rng, bg)
            yield Sample(c.image, WHOLE, "framed", group)
        assert c is not None
        if i % 2 == 0:
            f = comp.jitter_box(c.box, c.image.size, rng)
            yield Sample(c.image.crop((round(f.x), round(f.y), round(f.x + f.w), round(f.y + f.h))), WHOLE, "found",
                         group)
        yield Sample(sweep_part(c.image, c.box, rng), PART, "sweep-half", group)
        yield Sample(corner_part(car, rng), PART, "corner", group)
        yield Sample(comp.partial_view(car, rng), PART, "partial", group)


def natural_framed_samples(photos: Sequence[Path], backgrounds: comp.BackgroundSource, seed: int) -> Iterator[Sample]:
    """Per tight car photo, one composite on a natural photo of the part's own categories (kind
    ``framed-natural``): a car in front of a field, a kitchen or a panda is still a whole car.
    The installed backgrounds are a few dozen wallpapers; with only those, 10% of held-out cars
    framed at 35% on held-out natural photos were flagged (whole_car_eval --natural-backgrounds)."""
    rng = np.random.default_rng(seed)
    for path in photos:
        c = comp.compose(_open_rgb(path), comp.random_recipe(rng, (0.15, 1.0), fills=("photo",)), rng, backgrounds(rng))
        yield Sample(c.image, WHOLE, "framed-natural", path.name)


def window_part(image: Image.Image, car: Box, rng: np.random.Generator) -> Image.Image:
    """What the pan sweep's window shows off the car's middle: the car's own box moved 30-55%
    of its length left or right and cut to the frame, so 45-70% of the car is in view."""
    dx = car.w * float(rng.uniform(0.3, 0.55)) * (1 if rng.uniform() < 0.5 else -1)
    x0, x1 = max(0.0, car.x + dx), min(float(image.width), car.x + dx + car.w)
    return image.crop((round(x0), round(car.y), round(max(x1, x0 + 8)), round(car.y + car.h)))


def window_samples(photos: Sequence[Path], backgrounds: comp.BackgroundSource | None,
                   seed: int) -> Iterator[Sample]:
    """Per tight car photo, two sweep windows off the car's middle (window_part): one on the
    photo itself, one on a composite of it (the car at 35-90% of the frame's width)."""
    rng = np.random.default_rng(seed)
    for path in photos:
        car = _open_rgb(path)
        yield Sample(window_part(car, Box.full(car.size), rng), PART, "sweep-window", path.name)
        bg = backgrounds(rng) if backgrounds is not None else None
        c = comp.compose(car, comp.random_recipe(rng, (0.35, 0.9)), rng, bg)
        yield Sample(window_part(c.image, c.box, rng), PART, "sweep-window", path.name)


def grey_samples(photos: Sequence[Path], every: int = 4) -> Iterator[Sample]:
    """Every ``every``-th tight car photo in greyscale: old and black-and-white photos of cars
    are cars too (the check had flagged most greyscale side views)."""
    for path in photos[::every]:
        yield Sample(_open_rgb(path).convert("L").convert("RGB"), WHOLE, "tight-grey", path.name)


def positive_share(labels: np.ndarray) -> float:
    return float(np.mean(labels == WHOLE)) if len(labels) else math.nan
