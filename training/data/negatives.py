"""Images that are not a car, for training and testing the whole-car check.

Three kinds, all available offline:

- **photo** and **graphic** files from Debian packages: desktop wallpapers (mate-backgrounds,
  gnome-backgrounds, ukui-wallpapers, plasma-workspace-wallpapers: nature photos and abstract
  art) and clip art (openclipart-png, public domain), plus scikit-learn's two sample photos;
- **synthetic** images drawn here: text, gradients, window-like "screenshots" and logos.

Train and test never share a picture.  Splitting by file name alone would leak: the packages
ship one picture many times (plasma: up to 11 resolutions of each wallpaper; gnome: light and
dark variants; openclipart: the same PNG under several names and folders, e.g. 120 identical
``gradient-*.png``, and numbered series such as ``clock01..12``).  So files are first grouped
into pictures (same content, same name up to a resolution/variant/number suffix), each group goes
to one split by a SHA-256 of its key (about 25% test), exact copies are dropped, and of several
resolutions of one wallpaper only the smallest with a long side of at least 1024 px is kept.
One package is held out whole: every ukui-wallpapers picture is test-only, a style of art the
whole-car head never sees in training.

What is left out, and why:
- files whose path names a vehicle (:func:`is_vehicle_name`: car, truck, bus, taxi, wheel, ...;
  a short list of words that merely contain those letters, like "cards" or "vanilla", is
  allowed); every copy of such a picture goes too, whatever its name;
- openclipart's ``transportation/`` folder (cars named "ambulans", "lorry", "shelby_cobra") and
  ``unsorted/`` (Italian names the filter cannot read: "betoniera" is a cement-mixer truck);
- clip art under 32 px a side (core.preprocess refuses those) or over 40 MP (e.g. the
  ``*_mateya`` food drawings, 168 MP: seconds and gigabytes to decode each);
- all but SERIES_CAP files of a long numbered series (1,375 near-identical
  ``shapes/stars/star_#pt#step.png`` would otherwise be a fifth of the clip art);
- SVG files (nothing here rasterises them) and plasma's ``screenshot.*`` thumbnails.
Every wallpaper was looked at: none shows a vehicle (mate's Storm.jpg shows an empty road).

:data:`SOURCES_LICENCES` states each source's licence as read from its Debian copyright file,
for the model file's provenance.  ``python -m training.data.negatives`` prints the counts.
"""
# Over 400 lines: every not-a-car source behind one train/test split rule that sees all

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import math
import re
import struct
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from core.preprocess import MIN_SIDE, ImageLoadError, load_photo

SPLITS = ("train", "test")
TEST_SHARE = 0.25  # of picture groups, by hash
MAX_SIDE = 1024  # long side of a loaded negative, at most
HELD_OUT_PACKAGE = "ukui-wallpapers"  # all of it in test, none in train
CLIPART_MAX_PIXELS = 40_000_000
DPKG_INFO = Path("/var/lib/dpkg/info")  # <package>.list: the files a package installed
DECODED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})

WALLPAPER_PACKAGES = ("mate-backgrounds", "gnome-backgrounds", "ukui-wallpapers",
                      "plasma-workspace-wallpapers")
CLIPART_PACKAGE = "openclipart-png"
PACKAGES = (*WALLPAPER_PACKAGES, CLIPART_PACKAGE)
SKLEARN_SAMPLES = "scikit-learn sample images"

# Where each package's pictures start (the path parts before are the install prefix).
_ROOTS = {
    "mate-backgrounds": ("backgrounds", "mate"),
    "gnome-backgrounds": ("backgrounds", "gnome"),
    "ukui-wallpapers": ("backgrounds",),
    "plasma-workspace-wallpapers": ("wallpapers",),
    CLIPART_PACKAGE: ("openclipart", "png"),
}
_CLIPART_SKIPPED_FOLDERS = frozenset({"transportation", "unsorted"})

# Wallpapers that are photographs (checked by eye); the rest of the wallpapers are graphics.
_PHOTO_FOLDERS = {"mate-backgrounds": frozenset({"nature"})}
_PHOTO_PICTURES = {"plasma-workspace-wallpapers": frozenset({
    "bythewater", "coldripple", "colorfulcups", "darkesthour", "eveningglow", "fallenleaf",
    "grey", "kite", "onestandsout", "path", "summer_1am"})}

SOURCES_LICENCES: list[dict[str, str]] = [
    {"name": "mate-backgrounds", "package": "mate-backgrounds (Debian)",
     "licence": "GPL-2+; desktop/Ubuntu-Mate-*-no-logo.png: CC-BY-SA-4.0",
     "copyright": "/usr/share/doc/mate-backgrounds/copyright", "kinds": "photo, graphic"},
    {"name": "gnome-backgrounds", "package": "gnome-backgrounds (Debian)",
     "licence": "GPL-2+; adwaita-*: CC-BY-SA-3.0",
     "copyright": "/usr/share/doc/gnome-backgrounds/copyright", "kinds": "graphic"},
    {"name": "ukui-wallpapers", "package": "ukui-wallpapers (Debian)", "licence": "CC-BY-SA-3.0",
     "copyright": "/usr/share/doc/ukui-wallpapers/copyright", "kinds": "graphic (test only)"},
    {"name": "plasma-workspace-wallpapers", "package": "plasma-workspace-wallpapers (Debian)",
     "licence": "GPL-2+", "copyright": "/usr/share/doc/plasma-workspace-wallpapers/copyright",
     "kinds": "photo, graphic"},
    {"name": "openclipart-png", "package": "openclipart-png (Debian)",
     "licence": "public domain (Creative Commons Public Domain Dedication)",
     "copyright": "/usr/share/doc/openclipart-png/copyright", "kinds": "graphic"},
    # Not BSD like scikit-learn's code: sklearn/datasets/images/README.txt gives CC BY 2.0,
    # china.jpg by danielbuechele, flower.jpg by vultilion (Flickr).
    {"name": SKLEARN_SAMPLES, "package": "scikit-learn (PyPI), sklearn/datasets/images",
     "licence": "CC-BY-2.0", "copyright": "sklearn/datasets/images/README.txt", "kinds": "photo"},
    {"name": "synthetic", "package": "carvalue training/data/negatives.py",
     "licence": "MIT (drawn by this project)", "copyright": "LICENSE", "kinds": "synthetic"},
]
_LICENCE = {d["name"]: d["licence"] for d in SOURCES_LICENCES}

# Any of these letters in a path may name a vehicle ...
_VEHICLE = re.compile(
    r"car|auto|vehic|truck|bus|taxi|van|jeep|race|racing|wheel|tire|tyre|motor|lorry|ambulan"
    r"|engine|wagon|tractor|limousine|sedan|coupe|hummer|porsche|ferrari|cobra|transport"
    r"|parking|garage|fire_?station|voiture", re.IGNORECASE)
# ... unless they are part of one of these words (each seen in the packages, none a vehicle).
_NOT_VEHICLE = re.compile(
    r"cards?|cartoons?|carton|carrot|carnegie|cart[ae]s?|cartella|carreau|carbs|carpent|scart"
    r"|oscar|carolina|madagascar|nicaragua|picardie|vancouver|vanuatu|vanilla|ravanello"
    r"|advanced|business|bussiness|busy|bussola|scribus|braces?|reincarnate|van_gogh"
    r"|van_de_grond|autodiff|autoform", re.IGNORECASE)


@dataclass(frozen=True)
class NegativeSource:
    name: str  # a Debian package, SKLEARN_SAMPLES or "synthetic"
    licence: str
    kind: str  # "photo" | "graphic" | "synthetic"


@dataclass(frozen=True)
class _Entry:
    path: Path
    source: NegativeSource
    group: str  # files of one group show the same picture (or a series of near-copies)
    split: str = ""  # "train" | "test", set by _catalogue


def is_vehicle_name(text: str) -> bool:
    """Whether a file name or path may name a vehicle (so the picture may show one)."""
    return _VEHICLE.search(_NOT_VEHICLE.sub("_", text)) is not None


def split_groups(keys: Iterable[str]) -> dict[str, str]:
    """"train" or "test" for each picture group's key: the groups are ranked by the SHA-256 of
    their keys and the first ``round(TEST_SHARE * n)`` go to test.  The same on every machine,
    whatever the order of ``keys``; ranking rather than a hash threshold gives small sets (12
    photos of one package) their share too, and a group added later moves at most one other.
    """
    ranked = sorted(set(keys), key=lambda k: hashlib.sha256(k.encode("utf-8")).digest())
    n_test = math.floor(TEST_SHARE * len(ranked) + 0.5)
    return {k: "test" if i < n_test else "train" for i, k in enumerate(ranked)}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _default_sample_images() -> Path | None:
    """scikit-learn's sample photos, found without importing scikit-learn (~1 s)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    return folder if folder.is_dir() else None


SKLEARN_IMAGES = _default_sample_images()


def negative_files(split: str, *, dpkg_info: Path = DPKG_INFO,
                   sample_images: Path | None = SKLEARN_IMAGES) -> list[tuple[Path, NegativeSource]]:
    """The installed negative image files of one split, sorted by path.

    ``dpkg_info`` holds the packages' file lists (``<package>.list``); a package that is not
    installed contributes nothing (see :func:`installed_packages`).  ``sample_images``: the
    folder with scikit-learn's china.jpg and flower.jpg (None: leave them out).
    """
    _check_split(split)
    return [(e.path, e.source) for e in _catalogue(Path(dpkg_info), sample_images) if e.split == split]


def background_files(split: str, *, dpkg_info: Path = DPKG_INFO,
                     sample_images: Path | None = SKLEARN_IMAGES) -> list[Path]:
    """Photos of one split to paste a car in front of (wallpaper photos and scikit-learn's):
    the same pictures and the same split as :func:`negative_files`, graphics left out."""
    return [p for p, s in negative_files(split, dpkg_info=dpkg_info, sample_images=sample_images)
            if s.kind == "photo"]


def installed_packages(dpkg_info: Path = DPKG_INFO) -> list[str]:
    """Those of :data:`PACKAGES` that dpkg lists as installed."""
    return [p for p in PACKAGES if _package_list(Path(dpkg_info), p) is not None]


def _package_list(dpkg_info: Path, package: str) -> Path | None:
    for candidate in (dpkg_info / f"{package}.list", *sorted(dpkg_info.glob(f"{package}:*.list"))):
        if candidate.is_file():
            return candidate
    return None


def _package_files(dpkg_info: Path, package: str) -> list[Path]:
    listing = _package_list(dpkg_info, package)
    if listing is None:
        return []
    files = (Path(line) for line in listing.read_text(encoding="utf-8", errors="replace").splitlines())
    return sorted(p for p in files if p.suffix.lower() in DECODED_SUFFIXES and p.is_file())


def _relative(path: Path, root: tuple[str, ...]) -> tuple[str, ...]:
    """The parts of ``path`` after the last occurrence of ``root``'s parts."""
    parts = path.parts
    for i in range(len(parts) - len(root), -1, -1):
        if parts[i:i + len(root)] == root:
            return parts[i + len(root):]
    return (path.name,)


@functools.lru_cache(maxsize=8)
def _catalogue(dpkg_info: Path, sample_images: Path | None) -> tuple[_Entry, ...]:
    entries: list[_Entry] = []
    for package in WALLPAPER_PACKAGES:
        entries += _wallpapers(package, _package_files(dpkg_info, package))
    entries += _clipart(_package_files(dpkg_info, CLIPART_PACKAGE))
    if sample_images is not None:
        source = NegativeSource(SKLEARN_SAMPLES, _LICENCE[SKLEARN_SAMPLES], "photo")
        for name in ("china.jpg", "flower.jpg"):
            if (sample_images / name).is_file():
                entries.append(_Entry(sample_images / name, source, name))
    # Split each (source, kind) on its own, so that each has its share in test.
    strata: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in entries:
        strata[(e.source.name, e.source.kind)].add(f"{e.source.name}/{e.group}")
    split = {k: v for keys in strata.values() for k, v in split_groups(keys).items()}
    done = (dataclasses.replace(e, split="test" if e.source.name == HELD_OUT_PACKAGE
                                else split[f"{e.source.name}/{e.group}"]) for e in entries)
    return tuple(sorted(done, key=lambda e: str(e.path)))


# -- wallpapers -------------------------------------------------------------------------------

_RESOLUTION = re.compile(r"_\d+x\d+$")
_VARIANT = re.compile(r"(.+?)-(d|l|dark|light|cold|warm|radioactive)(-no-logo)?")
_SIZE_NAME = re.compile(r"(\d+)x(\d+)")


def _picture(package: str, rel: tuple[str, ...]) -> tuple[str, str] | None:
    """(picture key, variant) of a wallpaper file; None for files that are not wallpapers.

    Files with the same key show the same picture (one split); of those with the same key and
    variant, only one resolution is kept."""
    if package == "plasma-workspace-wallpapers":
        if len(rel) < 3 or rel[1] != "contents" or not rel[2].startswith("images"):
            return None  # screenshot.* (a thumbnail) and anything unexpected
        return rel[0].lower(), rel[2]
    stem = _RESOLUTION.sub("", Path(rel[-1]).stem.lower())
    m = _VARIANT.fullmatch(stem)
    return (m.group(1) + (m.group(3) or ""), m.group(2)) if m else (stem, "")


def _pixel_size(path: Path) -> tuple[int, int]:
    m = _SIZE_NAME.fullmatch(path.stem)
    if m:
        return int(m.group(1)), int(m.group(2))
    with Image.open(path) as img:
        return img.size


def _smallest_sufficient(paths: list[Path]) -> Path:
    """The file to keep of one picture's resolutions: the fewest pixels with a long side of at
    least MAX_SIDE (it is downscaled to that anyway), else the largest."""
    sized = sorted(((w * h, str(p)), p, max(w, h)) for p in paths for w, h in [_pixel_size(p)])
    big_enough = [p for _, p, long_side in sized if long_side >= MAX_SIDE]
    return big_enough[0] if big_enough else sized[-1][1]


def _wallpaper_kind(package: str, rel: tuple[str, ...], key: str) -> str:
    if rel[0] in _PHOTO_FOLDERS.get(package, ()) or key in _PHOTO_PICTURES.get(package, ()):
        return "photo"
    return "graphic"


def _wallpaper_licence(package: str, key: str) -> str:
    if package == "mate-backgrounds" and key == "ubuntu-mate-no-logo":
        return "CC-BY-SA-4.0"
    if package == "gnome-backgrounds" and key == "adwaita":
        return "CC-BY-SA-3.0"
    return _LICENCE[package].split(";")[0]


def _wallpapers(package: str, files: list[Path]) -> list[_Entry]:
    pictures: dict[tuple[str, str], list[Path]] = defaultdict(list)
    first_rel: dict[tuple[str, str], tuple[str, ...]] = {}
    for path in files:
        rel = _relative(path, _ROOTS[package])
        picture = _picture(package, rel)
        if picture is None or is_vehicle_name("/".join(rel)):
            continue
        pictures[picture].append(path)
        first_rel.setdefault(picture, rel)
    entries = []
    for (key, variant), paths in sorted(pictures.items()):
        kind = _wallpaper_kind(package, first_rel[(key, variant)], key)
        source = NegativeSource(package, _wallpaper_licence(package, key), kind)
        entries.append(_Entry(_smallest_sufficient(paths), source, key))
    return entries


# -- clip art ---------------------------------------------------------------------------------

_SERIES_SUFFIX = re.compile(r"(?:[_\- ]*(?:bw|#)|_r)$")
SERIES_CAP = 24  # clip-art files kept per series (shapes/stars alone has 1,375 star_#pt#step.png)


def _series_name(name: str) -> str:
    """A clip-art file name with its numbers and variant suffixes taken out, the same for all
    files of a numbered series: clock07.png -> clock, muffin1_bw.png -> muffin,
    star_42pt05step.png -> star_#pt#step, cake_jarno_vasamaa_r.png -> cake_jarno_vasamaa."""
    stem = re.sub(r"\d+", "#", name.lower().removesuffix(".png").removesuffix(".svg"))
    while True:
        shorter = _SERIES_SUFFIX.sub("", stem)
        if shorter == stem or not shorter:
            return stem
        stem = shorter


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, without decoding (or Pillow's bomb warning)."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return w, h


def _content_keys(paths: Iterable[Path]) -> dict[Path, str]:
    """A key equal for files with equal bytes: the size, plus a SHA-256 where sizes collide."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        by_size[p.stat().st_size].append(p)
    keys = {}
    for size, same in by_size.items():
        for p in same:
            keys[p] = f"{size}" if len(same) == 1 else f"{size}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
    return keys


class _Groups:
    """Union-find over string keys."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _cap_series(kept: dict[str, Path]) -> dict[str, Path]:
    """At most SERIES_CAP files of each series, those whose names rank first by SHA-256 (a
    spread over the series, not its first numbers)."""
    series: dict[str, list[tuple[bytes, str]]] = defaultdict(list)
    for key, p in kept.items():
        series[_series_name(p.name)].append((hashlib.sha256(p.name.encode("utf-8")).digest(), key))
    chosen = {key for members in series.values() for _, key in sorted(members)[:SERIES_CAP]}
    return {key: p for key, p in kept.items() if key in chosen}


def _clipart(files: list[Path]) -> list[_Entry]:
    content = _content_keys(files)
    rel = {p: _relative(p, _ROOTS[CLIPART_PACKAGE]) for p in files}
    banned = {content[p] for p in files if is_vehicle_name("/".join(rel[p]))}
    kept: dict[str, Path] = {}  # one file per content, the first by path
    for p in files:
        if rel[p][0] in _CLIPART_SKIPPED_FOLDERS or content[p] in banned or content[p] in kept:
            continue
        size = _png_size(p)
        if size is None or min(size) < MIN_SIDE or size[0] * size[1] > CLIPART_MAX_PIXELS:
            continue
        kept[content[p]] = p
    kept = _cap_series(kept)
    groups = _Groups()
    for p in files:  # all copies, so that names seen only on a dropped copy still join groups
        groups.join("c:" + content[p], "n:" + _series_name(p.name))
    members: dict[str, list[str]] = defaultdict(list)
    for key in list(groups.parent):
        if key.startswith("n:"):
            members[groups.find(key)].append(key[2:])
    source = NegativeSource(CLIPART_PACKAGE, _LICENCE[CLIPART_PACKAGE], "graphic")
    entries = []
    for key, p in kept.items():
        entries.append(_Entry(p, source, min(members[groups.find("c:" + key)])))
    return entries


# -- loading ----------------------------------------------------------------------------------

def _plain_background(path: Path) -> tuple[int, int, int]:
    """White for half of the files, a plain colour for the rest; fixed per file name."""
    d = hashlib.sha256(path.name.encode("utf-8")).digest()
    return (255, 255, 255) if d[0] < 128 else (d[1], d[2], d[3])


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def load_negative(path: str | Path, background: tuple[int, int, int] | None = None) -> Image.Image:
    """An RGB image, long side at most MAX_SIDE; raises core.preprocess.ImageLoadError (one line
    naming the file) for anything that cannot be used.

    Transparent pixels (clip art) are composited onto ``background``, or, when None, onto white
    or a plain colour chosen by the file's name.  Everything else (JPEG draft decoding, EXIF
    rotation, 16-bit and palette modes, size limits) is core.preprocess.load_photo's.
    """
    path = Path(path)
    if path.suffix.lower() == ".svg":
        raise ImageLoadError(str(path), "SVG is not supported (no rasteriser); skipped")
    try:
        with Image.open(path) as img:
            if not _has_alpha(img):
                return load_photo(path, max_side=MAX_SIDE).image
            if min(img.size) < MIN_SIDE:
                raise ImageLoadError(str(path), f"image is too small ({img.width}x{img.height})")
            img.seek(0)
            rgba = ImageOps.exif_transpose(img).convert("RGBA")
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(str(path), "file not found") from None
    except (UnidentifiedImageError, SyntaxError):
        raise ImageLoadError(str(path), "not an image (unrecognised file format)") from None
    except (OSError, ValueError, EOFError, MemoryError, Image.DecompressionBombError) as e:
        raise ImageLoadError(str(path), f"cannot decode image ({' '.join(str(e).split())})") from None
    rgba.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)  # keeps the aspect ratio
    colour = _plain_background(path) if background is None else tuple(background)
    canvas = Image.new("RGBA", rgba.size, (*colour, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


# -- synthetic images -------------------------------------------------------------------------

SYNTHETIC_KINDS = ("text", "gradient", "screenshot", "logo")
_SPLIT_STREAM = {"train": 0, "test": 1}
_ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 9 / 16)
_WORDS = ("hello", "not", "a", "car", "meeting", "at", "three", "invoice", "total", "thank", "you",
          "sale", "open", "today", "menu", "coffee", "settings", "file", "edit", "view", "help",
          "welcome", "home", "about", "contact", "lorem", "ipsum", "dolor", "sit", "amet",
          "chapter", "one", "notes", "draft", "report", "summary", "page", "next", "back", "ok")
_PHRASES = ("Hello, not a car", "Lorem ipsum dolor sit amet", "Meeting at 3 pm", "SALE 50% OFF",
            "Thank you!", "Chapter 1", "Invoice #20431", "Call 555-0142", "Open today 9-17",
            "Settings", "Welcome home", "Happy birthday", "Total: 42.00", "Page 3 of 12")


def synthetic_negatives(n: int, seed: int, split: str) -> Iterator[Image.Image]:
    """``n`` drawn RGB images, cycling through SYNTHETIC_KINDS (the kind is in ``img.info``).

    Image ``i`` depends only on (seed, split, i): the splits draw from different random streams,
    so they never share an image, and a longer run starts with the images of a shorter one."""
    _check_split(split)
    if n < 0 or seed < 0:
        raise ValueError(f"n and seed must be >= 0, got n={n}, seed={seed}")
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLIT_STREAM[split], i])
        kind = SYNTHETIC_KINDS[i % len(SYNTHETIC_KINDS)]
        img = _DRAW[kind](rng)
        img.info["negative_kind"] = kind
        yield img


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _canvas_size(rng: np.random.Generator) -> tuple[int, int]:
    aspect = _ASPECTS[rng.integers(len(_ASPECTS))]
    long_side = int(rng.integers(320, 897))
    if aspect >= 1:
        return long_side, max(MIN_SIDE, round(long_side / aspect))
    return max(MIN_SIDE, round(long_side * aspect)), long_side


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, 3))
    return r, g, b


def _contrasting(rng: np.random.Generator, bg: Iterable[float]) -> tuple[int, int, int]:
    """A random colour far in brightness from ``bg``, so drawn text stays readable."""
    light = float(np.mean(list(bg))) < 128
    lo, hi = (170, 256) if light else (0, 86)
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return r, g, b


def _gradient(rng: np.random.Generator, size: tuple[int, int] | None = None) -> Image.Image:
    w, h = size or _canvas_size(rng)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:  # linear, at any angle
        a = rng.uniform(0, 2 * math.pi)
        t = x * math.cos(a) + y * math.sin(a)
    else:  # radial, centre anywhere in the frame
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(x - cx, y - cy)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    stops = np.sort(rng.uniform(0, 1, int(rng.integers(2, 5))))
    stops[0], stops[-1] = 0.0, 1.0
    colours = rng.integers(0, 256, (len(stops), 3)).astype(np.float32)
    rgb = np.stack([np.interp(t, stops, colours[:, c]) for c in range(3)], axis=-1)
    rgb += rng.normal(0, rng.uniform(0, 4), rgb.shape).astype(np.float32)  # sensor-like noise
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def _plain_or_gradient(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    if rng.random() < 0.5:
        return Image.new("RGB", size, _colour(rng))
    return _gradient(rng, size)


def _line_of_words(rng: np.random.Generator, k: int) -> str:
    return " ".join(_WORDS[j] for j in rng.integers(0, len(_WORDS), k))


def _text(rng: np.random.Generator) -> Image.Image:
    w, h = _canvas_size(rng)
    img = _plain_or_gradient(rng, (w, h))
    draw = ImageDraw.Draw(img)
    ink = _contrasting(rng, img.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0)))
    y = float(rng.uniform(0, 0.2)) * h
    while y < h:
        size = int(rng.integers(14, max(15, h // 5)))
        line = (_PHRASES[rng.integers(len(_PHRASES))] if rng.random() < 0.4
                else _line_of_words(rng, int(rng.integers(1, 7))))
        if rng.random() < 0.2:
            line = line.upper()
        draw.text((float(rng.uniform(0, 0.3)) * w, y), line, fill=ink, font=_font(size))
        y += size * float(rng.uniform(1.2, 2.5))
    return img


def _screenshot(rng: np.random.Generator) -> Image.Image:
    w, h = _canvas_size(rng)
    dark = rng.random() < 0.35
    base = (int(rng.integers(20, 60)),) * 3 if dark else (int(rng.integers(225, 256)),) * 3
    ink = (220, 220, 220) if dark else (30, 30, 30)
    accent = _colour(rng)
    img = Image.new("RGB", (w, h), tuple(base))
    draw = ImageDraw.Draw(img)
    bar = int(rng.integers(22, 42))
    bar_colour = tuple(max(0, min(255, c + (25 if dark else -25))) for c in base)
    draw.rectangle((0, 0, w, bar), fill=bar_colour)
    for k in range(3):  # window buttons
        r = bar // 4
        cx = bar // 2 + k * (2 * r + 6)
        draw.ellipse((cx - r, bar // 2 - r, cx + r, bar // 2 + r), fill=((237, 106, 94), (245, 191, 79), (98, 197, 84))[k])
    draw.text((w // 2 - 40, bar // 4), _line_of_words(rng, 2).title(), fill=ink, font=_font(max(10, bar // 2)))
    left = 0
    if rng.random() < 0.6:  # side panel with a list
        left = int(w * rng.uniform(0.18, 0.3))
        draw.rectangle((0, bar, left, h), fill=bar_colour)
        for j, y in enumerate(range(bar + 12, h - 16, int(rng.integers(22, 34)))):
            if j == 0:
                draw.rectangle((4, y - 4, left - 4, y + 16), fill=accent)
            draw.text((12, y), _line_of_words(rng, 1).title(), fill=ink, font=_font(13))
    x0, y = left + 16, bar + 16
    draw.text((x0, y), _line_of_words(rng, 3).title(), fill=ink, font=_font(int(rng.integers(18, 30))))
    y += 40
    while y < h - 50:
        choice = rng.random()
        if choice < 0.45:  # a paragraph as text lines or grey bars
            for _ in range(int(rng.integers(2, 6))):
                length = float(rng.uniform(0.4, 0.95)) * (w - x0 - 16)
                if rng.random() < 0.5:
                    draw.text((x0, y), _line_of_words(rng, int(rng.integers(3, 10))), fill=ink, font=_font(13))
                else:
                    draw.rounded_rectangle((x0, y + 3, x0 + length, y + 11), radius=4, fill=(128, 128, 128))
                y += 20
        elif choice < 0.7:  # buttons
            x = x0
            for _ in range(int(rng.integers(1, 4))):
                bw = int(rng.integers(70, 130))
                draw.rounded_rectangle((x, y, x + bw, y + 28), radius=6, fill=accent)
                draw.text((x + 10, y + 7), _WORDS[rng.integers(len(_WORDS))].upper(), fill=_contrasting(rng, accent), font=_font(12))
                x += bw + 12
            y += 40
        elif choice < 0.85:  # an input field
            draw.rectangle((x0, y, min(w - 16, x0 + 260), y + 26), outline=(128, 128, 128), width=1)
            y += 38
        else:  # an image placeholder
            ph = int(rng.integers(40, 120))
            box = (x0, y, max(x0 + 20, min(w - 16, x0 + int(rng.integers(80, 260)))), y + ph)
            img.paste(_gradient(rng, (box[2] - box[0], ph)), box[:2])
            y += ph + 12
    return img


def _logo(rng: np.random.Generator) -> Image.Image:
    w, h = _canvas_size(rng)
    bg = (255, 255, 255) if rng.random() < 0.4 else _colour(rng)
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    s = min(w, h)
    cx, cy = w / 2 + rng.uniform(-0.15, 0.15) * w, h / 2 + rng.uniform(-0.15, 0.15) * h
    for _ in range(int(rng.integers(1, 4))):
        r = s * float(rng.uniform(0.12, 0.35))
        fill = _colour(rng)
        shape = rng.integers(4)
        if shape == 0:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif shape == 1:
            draw.rounded_rectangle((cx - r, cy - r * 0.7, cx + r, cy + r * 0.7), radius=r * 0.2, fill=fill)
        elif shape == 2:
            draw.regular_polygon((cx, cy, r), int(rng.integers(3, 9)), rotation=float(rng.uniform(0, 360)), fill=fill)
        else:  # a star
            points = int(rng.integers(5, 9))
            pts = [(cx + (r if k % 2 == 0 else r * 0.45) * math.cos(math.pi * k / points),
                    cy + (r if k % 2 == 0 else r * 0.45) * math.sin(math.pi * k / points)) for k in range(2 * points)]
            draw.polygon(pts, fill=fill)
        cx += rng.uniform(-0.2, 0.2) * s
        cy += rng.uniform(-0.2, 0.2) * s
    letters = "".join(chr(int(c)) for c in rng.integers(ord("A"), ord("Z") + 1, int(rng.integers(1, 4))))
    font = _font(int(s * rng.uniform(0.15, 0.4)))
    left, top, right, bottom = draw.textbbox((0, 0), letters, font=font)
    draw.text((w / 2 - (right - left) / 2, h / 2 - (bottom - top) / 2 - top), letters,
              fill=_contrasting(rng, bg), font=font)
    return img


_DRAW = {"text": _text, "gradient": _gradient, "screenshot": _screenshot, "logo": _logo}


# -- counts -----------------------------------------------------------------------------------

def counts(dpkg_info: Path = DPKG_INFO, sample_images: Path | None = SKLEARN_IMAGES) -> dict[tuple[str, str, str], int]:
    """Number of files per (split, source name, kind)."""
    c: Counter[tuple[str, str, str]] = Counter()
    for split in SPLITS:
        for _, s in negative_files(split, dpkg_info=dpkg_info, sample_images=sample_images):
            c[(split, s.name, s.kind)] += 1
    return dict(sorted(c.items()))


def main(argv: list[str] | None = None) -> int:
    """What each split holds (no options)."""
    if argv:
        print(f"negatives takes no arguments, got {' '.join(argv)}", file=sys.stderr)
        return 2
    missing = sorted(set(PACKAGES) - set(installed_packages()))
    if missing:
        print(f"not installed (contributes nothing): {', '.join(missing)}")
    for (split, name, kind), k in counts().items():
        print(f"{split:5}  {name:30} {kind:8} {k:5d}")
    for split in SPLITS:
        print(f"{split:5}  backgrounds (photos): {len(background_files(split))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
