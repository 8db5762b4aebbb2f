"""Real photos with no car in them, for the background and out-of-distribution studies.

Sources (all offline):
- scikit-learn's sample images (``china.jpg``, ``flower.jpg``; CC BY 2.0, see
  sklearn/datasets/images/README.txt);
- photographic wallpapers from a Debian package, used when installed
  (``apt-get install -y mate-backgrounds``): the 12 photos of the MATE "nature" set (GPL-2+,
  per-file authors in /usr/share/doc/mate-backgrounds/copyright).  Abstract or illustrated
  wallpapers (most of gnome-backgrounds, ukui-wallpapers, desktop-base) are left out on purpose:
  the question is how real scenes behind a car move its price.
- synthetic plain grey and uniform noise (always available).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from core.geometry import Box

WALLPAPER_DIR = Path("/usr/share/backgrounds")
# Photographs (checked by eye), relative to WALLPAPER_DIR, with their Debian package and licence.
DEBIAN_PHOTOS: tuple[tuple[str, str, str], ...] = tuple(
    (f"mate/nature/{n}.jpg", "mate-backgrounds", "GPL-2+")
    for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
              "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")
)
WORKING_SIDE = 640  # backgrounds are kept at this long side (they are resized again anyway)


@dataclass(frozen=True)
class Background:
    name: str
    kind: str  # "photo" or "synthetic"
    source: str  # where it came from, with its licence
    image: Image.Image  # RGB, long side <= WORKING_SIDE


def _shrink(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    img.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR)
    return img


def sklearn_photos() -> list[Background]:
    return list(_sklearn_photos())


@lru_cache(maxsize=1)
def _sklearn_photos() -> tuple[Background, ...]:
    from sklearn.datasets import load_sample_images  # slow to import: loaded once per process

    data = load_sample_images()
    out = []
    for arr, fname in zip(data.images, data.filenames, strict=True):
        name = Path(fname).stem
        out.append(Background(name, "photo", "scikit-learn sample image (CC BY 2.0)",
                              _shrink(Image.fromarray(np.asarray(arr, dtype=np.uint8), "RGB"))))
    return tuple(out)


def debian_photos(root: Path | None = None) -> list[Background]:
    """The installed ones among DEBIAN_PHOTOS (none when the packages are not installed)."""
    root = root or WALLPAPER_DIR
    out = []
    for rel, package, licence in DEBIAN_PHOTOS:
        path = root / rel
        if not path.exists():
            continue
        with Image.open(path) as img:
            img.draft("RGB", (WORKING_SIDE * 2, WORKING_SIDE * 2))
            out.append(Background(Path(rel).stem, "photo", f"Debian {package} ({licence})", _shrink(img)))
    return out


def synthetic(size: tuple[int, int] = (WORKING_SIDE, 480), seed: int = 0) -> list[Background]:
    rng = np.random.default_rng(seed)
    w, h = size
    grey = Image.new("RGB", size, (128, 128, 128))
    noise = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    return [Background("plain grey", "synthetic", "generated", grey),
            Background("uniform noise", "synthetic", "generated", noise)]


def photo_backgrounds() -> list[Background]:
    return sklearn_photos() + debian_photos()


def all_backgrounds(seed: int = 0) -> list[Background]:
    return photo_backgrounds() + synthetic(seed=seed)


def random_boxes(size: tuple[int, int], n: int, rng: np.random.Generator,
                 min_frac: float = 0.2, max_frac: float = 0.6) -> list[Box]:
    """``n`` random crop boxes, each side a ``min_frac``..``max_frac`` fraction of the image's."""
    w, h = size
    boxes = []
    for _ in range(n):
        cw = w * rng.uniform(min_frac, max_frac)
        ch = h * rng.uniform(min_frac, max_frac)
        boxes.append(Box(float(rng.uniform(0, w - cw)), float(rng.uniform(0, h - ch)), float(cw), float(ch)))
    return boxes


def licence_lines(backgrounds: list[Background]) -> list[str]:
    """One report line per source used."""
    seen: dict[str, list[str]] = {}
    for bg in backgrounds:
        seen.setdefault(bg.source, []).append(bg.name)
    return [f"{src}: {', '.join(names)}" for src, names in seen.items()]
