"""Photos framed the way people take them, made from tight crops of one car.

Stanford Cars photos are cropped to the car's bounding box; users' photos show the car with
street, sky and other cars around it.  :func:`compose` pastes a tight crop, whole, into a larger
frame so that it covers a chosen share of the picture, at a random position, and returns the
frame with the car's true box (known exactly, which is what the box head learns from).

So that a network cannot find the car by finding a seam, the paste is blended: the background
is moved towards the colour statistics of the crop's own border, and the crop's edge is
feathered into it.  Backgrounds come in kinds that users' photos resemble: real photos and
wallpapers (``backgrounds`` given by the caller, split train/test by the caller), plain and
white fills, a blurred enlargement of the crop itself, and the crop's own edges reflected
outwards (a street that continues the one in the photo).  Other cars, partly in the frame,
stand at the edges as in a street.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from core.geometry import Box

BLUR_SCALE = 4  # the blurred fill is blurred at 1/BLUR_SCALE of the frame's size

FILLS = ("photo", "plain", "white", "blurred", "reflect")
FRAME_ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4)  # landscape phone/camera, square, portrait


@dataclass(frozen=True)
class Composite:
    image: Image.Image  # RGB frame
    box: Box  # the pasted car, frame pixels
    fill: str

    @property
    def coverage(self) -> float:
        return self.box.w * self.box.h / (self.image.width * self.image.height)


@dataclass(frozen=True)
class FrameRecipe:
    """How one composite is drawn; all random choices live here so a recipe is reproducible."""

    coverage: float  # car box area / frame area, 0 < c <= 1
    aspect: float  # frame width / height
    fill: str
    cx: float  # car centre, as a fraction of the room left to move in (0..1)
    cy: float
    long_side: int = 512
    colour_match: float = 0.7  # 0: background untouched, 1: its mean/std equal the crop border's
    feather: float = 0.04  # feather width, fraction of the car box's short side
    others: int = 0  # other cars partly in the frame


def random_recipe(rng: np.random.Generator, coverage: tuple[float, float] = (0.15, 1.0),
                  fills: Sequence[str] = FILLS, fill_weights: Sequence[float] | None = None,
                  long_side: int = 512) -> FrameRecipe:
    """Coverage uniform in log space (as many cars across the street as filling the frame)."""
    lo, hi = coverage
    c = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    p = None if fill_weights is None else np.asarray(fill_weights, float) / np.sum(fill_weights)
    return FrameRecipe(coverage=c, aspect=float(rng.choice(FRAME_ASPECTS)), fill=str(rng.choice(list(fills), p=p)),
                       cx=float(rng.uniform()), cy=float(rng.uniform(0.2, 0.9)), long_side=long_side,
                       colour_match=float(rng.uniform(0.4, 1.0)), feather=float(rng.uniform(0.02, 0.08)),
                       others=int(rng.choice([0, 0, 1, 2])) if c < 0.6 else 0)


def frame_size(car: tuple[int, int], recipe: FrameRecipe) -> tuple[tuple[int, int], tuple[int, int]]:
    """(frame w, h), (car w, h) in frame pixels for a car crop of size ``car``.

    The frame's long side is ``recipe.long_side``; the car is scaled to cover ``coverage`` of it,
    then shrunk if it would not fit (a wide car in a portrait frame), so the car is always whole.
    """
    a = recipe.aspect
    fw, fh = (recipe.long_side, round(recipe.long_side / a)) if a >= 1 else (round(recipe.long_side * a), recipe.long_side)
    cw, ch = car
    s = math.sqrt(recipe.coverage * fw * fh / (cw * ch))
    s = min(s, fw / cw, fh / ch)
    return (fw, fh), (max(8, min(fw, round(cw * s))), max(8, min(fh, round(ch * s))))


def fitted_long_side(car: tuple[int, int], recipe: FrameRecipe, out_size: int) -> int:
    """The frame's long side at which the car's box is ``out_size`` pixels on its shorter side,
    so that a crop around it is shrunk, not enlarged, to the network's input, as at the
    recipe's own long side; never more than that (where a small car is enlarged already).
    The same picture at fewer pixels: composing costs about the frame's area."""
    _, (cw, ch) = frame_size(car, recipe)
    k = out_size / min(cw, ch)
    return recipe.long_side if k >= 1 else max(out_size, math.ceil(recipe.long_side * k))


def compose(car: Image.Image, recipe: FrameRecipe, rng: np.random.Generator,
            background: Image.Image | None = None, others: Sequence[Image.Image] = ()) -> Composite:
    """Paste ``car`` (RGB, a tight crop) whole into a frame drawn by ``recipe``.

    ``background``: a photo for ``fill == "photo"`` (a random region of it, resized).
    ``others``: tight crops of other cars, placed partly outside the frame's left/right edges.
    """
    (fw, fh), (cw, ch) = frame_size(car.size, recipe)
    x = round(recipe.cx * (fw - cw))
    y = round(recipe.cy * (fh - ch))
    car_s = car.resize((cw, ch), Image.Resampling.BILINEAR)
    fill = recipe.fill if recipe.fill != "photo" or background is not None else "blurred"
    bg = _background(fill, car_s, (fw, fh), (x, y), rng, background)
    if fill in ("photo", "blurred"):  # white and plain fills stay as they are (cut-out cars)
        bg = _match_colours(bg, car_s, recipe.colour_match)
    for other in others[:recipe.others]:
        _paste_other(bg, other, (x, y, cw, ch), rng)
    out = _feathered_paste(bg, car_s, (x, y), recipe.feather)
    return Composite(out, Box(float(x), float(y), float(cw), float(ch)), fill)


def _background(fill: str, car: Image.Image, size: tuple[int, int], pos: tuple[int, int],
                rng: np.random.Generator, photo: Image.Image | None) -> Image.Image:
    fw, fh = size
    if fill == "white":
        level = int(rng.integers(235, 256))
        return Image.new("RGB", size, (level, level, level))
    if fill == "plain":
        return Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    if fill == "photo" and photo is not None:
        return _random_region(photo, size, rng)
    if fill == "reflect":
        out = Image.fromarray(_reflect_edges(np.asarray(car), pos, size))
        return out.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.5))))
    # "blurred": the crop enlarged to the frame and blurred, as a phone's portrait mode would.  The
    # blur (a radius of 2.5-7% of the frame) is done at a quarter of the frame's size and enlarged:
    # it keeps nothing finer than that, and costs a twentieth of blurring the full frame.
    radius = max(fw, fh) / float(rng.uniform(15, 40))
    small = car.resize((max(1, fw // BLUR_SCALE), max(1, fh // BLUR_SCALE)), Image.Resampling.BILINEAR)
    small = small.filter(ImageFilter.GaussianBlur(radius=radius / BLUR_SCALE))
    return small.resize(size, Image.Resampling.BILINEAR)


def _reflect_edges(arr: np.ndarray, pos: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The crop's outer band (12% of each side) mirrored outwards to fill the frame: the street
    continues, but no mirrored copy of the car appears."""
    x, y = pos
    fw, fh = size
    h, w = arr.shape[:2]
    bw, bh = max(1, w * 12 // 100), max(1, h * 12 // 100)
    left = np.pad(arr[:, :bw], ((0, 0), (x, 0), (0, 0)), mode="symmetric")[:, :x]
    right = np.pad(arr[:, w - bw:], ((0, 0), (0, fw - x - w), (0, 0)), mode="symmetric")[:, bw:]
    row = np.concatenate([left, arr, right], axis=1)
    top = np.pad(row[:bh], ((y, 0), (0, 0), (0, 0)), mode="symmetric")[:y]
    bottom = np.pad(row[h - bh:], ((0, fh - y - h), (0, 0), (0, 0)), mode="symmetric")[bh:]
    return np.ascontiguousarray(np.concatenate([top, row, bottom], axis=0))


def _random_region(photo: Image.Image, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A random region of ``photo`` with the frame's aspect, at least half its size, resized."""
    fw, fh = size
    pw, ph = photo.size
    scale = min(pw / fw, ph / fh) * float(rng.uniform(0.5, 1.0))
    rw, rh = max(1, round(fw * scale)), max(1, round(fh * scale))
    rx = int(rng.integers(0, pw - rw + 1))
    ry = int(rng.integers(0, ph - rh + 1))
    region = photo.resize(size, Image.Resampling.BILINEAR, box=(rx, ry, rx + rw, ry + rh))
    return region.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.uniform() < 0.5 else region


def _border_stats(car: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the crop's outer 10% (what lies next to the seam)."""
    a = np.asarray(car, dtype=np.float32)
    h, w = a.shape[:2]
    bh, bw = max(1, h // 10), max(1, w // 10)
    border = np.concatenate([a[:bh].reshape(-1, 3), a[-bh:].reshape(-1, 3), a[:, :bw].reshape(-1, 3),
                             a[:, -bw:].reshape(-1, 3)])
    return border.mean(0), border.std(0) + 1.0


def _match_colours(bg: Image.Image, car: Image.Image, strength: float) -> Image.Image:
    """Move the background's per-channel mean/std ``strength`` of the way to the crop border's.

    The move is an affine map of each channel's 256 levels, so it is applied as a lookup table
    (``Image.point``) and the statistics come from the histogram: no float copy of the frame
    (this runs for most framed training samples, in the DataLoader worker)."""
    if strength <= 0:
        return bg
    mean, std = _channel_stats(bg)
    t_mean, t_std = _border_stats(car)
    gain = 1.0 + strength * (t_std / std - 1.0)
    gain = np.clip(gain, 0.3, 3.0)
    levels = np.arange(256, dtype=np.float32)[None, :]
    table = (levels - mean[:, None]) * gain[:, None] + mean[:, None] + strength * (t_mean - mean)[:, None]
    return bg.point(np.clip(table, 0, 255).astype(np.uint8).reshape(-1).tolist())


def _channel_stats(img: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (+1) of an RGB image, from its histogram."""
    hist = np.asarray(img.histogram(), dtype=np.float64).reshape(3, 256)
    levels = np.arange(256, dtype=np.float64)
    n = hist.sum(1)
    mean = (hist * levels).sum(1) / n
    var = (hist * (levels[None, :] - mean[:, None]) ** 2).sum(1) / n
    return mean.astype(np.float32), (np.sqrt(var) + 1.0).astype(np.float32)


def _feathered_paste(bg: Image.Image, car: Image.Image, pos: tuple[int, int], feather: float) -> Image.Image:
    """Paste with an alpha that ramps from 0 at the crop's edge to 1 ``feather`` inside it.

    The crop's own outer pixels are background around the car (a bounding-box crop), so
    blending them hides the seam without fading the car itself.
    """
    w, h = car.size
    f = max(1.0, feather * min(w, h))
    ramp_x = np.clip((np.minimum(np.arange(w), np.arange(w)[::-1]) + 0.5) / f, 0, 1)
    ramp_y = np.clip((np.minimum(np.arange(h), np.arange(h)[::-1]) + 0.5) / f, 0, 1)
    alpha = (np.minimum(ramp_y[:, None], ramp_x[None, :]) * 255).astype(np.uint8)
    out = bg.copy()
    out.paste(car, pos, Image.fromarray(alpha, "L"))
    return out


def _paste_other(bg: Image.Image, other: Image.Image, main: tuple[int, int, int, int],
                 rng: np.random.Generator) -> None:
    """Another car, 40-90% of the main car's height, cut by the left or right edge of the frame
    (at most half of it inside), on the main car's ground line; pasted before the main car so
    the main car stands in front."""
    x, y, cw, ch = main
    fw, fh = bg.size
    oh = max(8, round(ch * float(rng.uniform(0.4, 0.9))))
    ow = max(8, round(other.width * oh / other.height))
    o = other.resize((ow, oh), Image.Resampling.BILINEAR)
    inside = round(ow * float(rng.uniform(0.15, 0.5)))
    ox = inside - ow if rng.uniform() < 0.5 else fw - inside
    oy = min(max(0, y + ch - oh + int(rng.integers(-ch // 8 - 1, ch // 8 + 1))), max(0, fh - oh))
    bg.paste(_feathered_paste(Image.new("RGB", o.size), o, (0, 0), 0.0), (ox, oy))


def partial_view(car: Image.Image, rng: np.random.Generator, max_share: float = 0.4) -> Image.Image:
    """A crop holding 8%..``max_share`` of the car's area (a wheel, a door, half a bonnet)."""
    w, h = car.size
    share = float(rng.uniform(0.08, max_share))
    ar = float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))
    cw = min(w, max(8, round(math.sqrt(share * w * h * ar))))
    ch = min(h, max(8, round(share * w * h / cw)))
    x = int(rng.integers(0, w - cw + 1))
    y = int(rng.integers(0, h - ch + 1))
    return car.crop((x, y, x + cw, y + ch))


def jitter_box(box: Box, size: tuple[int, int], rng: np.random.Generator, amount: float = 0.08) -> Box:
    """The box with each side moved by up to ``amount`` of its size (a found box is not exact)."""
    dx0, dy0, dx1, dy1 = (float(v) for v in rng.uniform(-amount, amount, 4))
    x0, y0 = box.x + dx0 * box.w, box.y + dy0 * box.h
    x1, y1 = box.x + box.w + dx1 * box.w, box.y + box.h + dy1 * box.h
    return Box(x0, y0, max(1.0, x1 - x0), max(1.0, y1 - y0)).clamp(size)


BackgroundSource = Callable[[np.random.Generator], Image.Image]
