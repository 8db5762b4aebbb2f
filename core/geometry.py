"""Rectangles in a photo: the crop box, the part of it the network sees, overlap (a leaf module).

Shared by preprocessing, framing, the app and training; imports nothing of the project.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class CropRule(Protocol):
    """What :func:`input_region` needs of a model file's ``InputSpec`` (core.modelfile)."""

    resize: str
    crop_fraction: float


@dataclass(frozen=True)
class Box:
    """A crop rectangle in original-image pixel coordinates (x, y = top-left corner)."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def full(cls, size: tuple[int, int]) -> Box:
        return cls(0.0, 0.0, float(size[0]), float(size[1]))

    @classmethod
    def parse(cls, text: str) -> Box:
        """From ``"x,y,w,h"``: four finite numbers, width and height positive."""
        parts = text.split(",")
        if len(parts) != 4:
            raise ValueError(f"crop must be x,y,w,h, got {text!r}")
        try:
            x, y, w, h = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"crop must be four numbers x,y,w,h, got {text!r}") from None
        box = cls(x, y, w, h)
        if not box.is_finite():
            raise ValueError(f"crop values must be finite numbers, got {text!r}")
        if w <= 0 or h <= 0:
            raise ValueError(f"crop width and height must be positive, got {text!r}")
        return box

    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.as_tuple())

    def clamp(self, size: tuple[int, int], min_side: float = 1.0) -> Box:
        """The box moved and shrunk as little as possible to lie inside an image of ``size``.

        Any finite box works (negative, zero-sized, far outside, huge); a NaN or infinite
        coordinate raises ValueError, since no position can be made of it."""
        if not self.is_finite():
            raise ValueError(f"crop box must be finite numbers, got {self.as_tuple()}")
        iw, ih = float(size[0]), float(size[1])
        w = min(max(self.w, min_side), iw)
        h = min(max(self.h, min_side), ih)
        x = min(max(self.x, 0.0), iw - w)
        y = min(max(self.y, 0.0), ih - h)
        return Box(x, y, w, h)

    def scaled(self, factor: float) -> Box:
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)

    @property
    def center_x(self) -> float:
        return self.x + self.w / 2


def input_region(box: Box, spec: CropRule) -> Box:
    """The part of ``box`` that becomes the network's input: all of it when stretched; with
    "center_crop", the central square of side crop_fraction * short side."""
    if spec.resize != "center_crop":
        return box
    side = min(box.w, box.h) * spec.crop_fraction
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return Box(cx - side / 2, cy - side / 2, side, side)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when both are empty)."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0
