"""Where the car is in a photo, and whether a crop shows a whole car (Qt-free, torch-free).

A model file of format 2 with a ``framing`` section has two more outputs: the car's box in the
network's input and a whole-car logit.  The first forward pass on a new photo (the crop box on
the whole photo) therefore also says where the car is; the estimate shown is then made on that
box: at most one more forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from core.geometry import Box, box_iou, input_region
from core.modelfile import FramingSpec, InputSpec
from core.scores import sigmoid


class CropMode(Enum):
    """How a photo's crop is chosen when the user has not drawn one."""

    AUTO = "auto"  # on the car the model finds (the whole photo when it finds none)
    FULL = "full"  # the whole photo


class WholeCar(Enum):
    """The whole-car check's verdict on one crop."""

    YES = "whole car"
    UNSURE = "unsure"
    NO = "not a whole car"  # part of a car (or, for a file without a car output, maybe no car)
    NO_CAR = "no car"

    @property
    def priced(self) -> bool:
        """Whether a price is an answer for this crop: never when there is no car in it."""
        return self is not WholeCar.NO_CAR


def parse_crop(text: str) -> CropMode | Box:
    """``auto``, ``full`` or ``x,y,w,h`` (original-image pixels); raises ValueError."""
    t = text.strip().lower()
    for mode in CropMode:
        if t == mode.value:
            return mode
    return Box.parse(text)


def verdict(score: float, spec: FramingSpec, car_score: float = math.nan) -> WholeCar:
    """One crop's verdict from its whole-car score and (files with a car output) its car score:
    below the car threshold there is no car in it at all; a score that is not a number (no
    car output) never says "no car"."""
    if score >= spec.unsure_below:
        return WholeCar.YES
    if score >= spec.threshold:
        return WholeCar.UNSURE
    if spec.car_output and not math.isnan(car_score) and car_score < spec.car_threshold:
        return WholeCar.NO_CAR
    return WholeCar.NO


def part_signals(score: float, top_prob: float, car: Box | None, crop: Box) -> tuple[float, float, float]:
    """What the part-of-a-car rule reads, all known after the crop's forward pass: the whole-car
    score as a logit, the log of the top make/model probability (a part is named less surely),
    and the log width/height of the car the box head finds in the crop (of the crop when it
    finds none): a car seen from any side is about as wide as tall or wider, half a side view
    is taller than wide."""
    s = min(max(score, 1e-6), 1 - 1e-6)
    b = car if car is not None else crop
    return (math.log(s / (1 - s)), math.log(max(top_prob, 1e-9)), math.log(max(b.w, 1e-6) / max(b.h, 1e-6)))


def looks_partial(signals: tuple[float, ...], spec: FramingSpec) -> bool:
    """The file's part-of-a-car rule (a logistic regression fitted on validation photos, its cut
    in ``part_bias``) says this crop holds part of a car; False for a file without one."""
    if not spec.part_weights or len(signals) != len(spec.part_weights):
        return False
    return sum(w * x for w, x in zip(spec.part_weights, signals, strict=True)) + spec.part_bias < 0


def whole_car_score(logit: float, spec: FramingSpec) -> float:
    """0..1: sigmoid of the whole-car logit at the spec's temperature (0 for a logit that is
    not a number: nothing is claimed to be a whole car on a broken output)."""
    s = sigmoid(float(logit) / spec.temperature)
    return 0.0 if math.isnan(s) else s


def car_score(logit: float, spec: FramingSpec) -> float:
    """0..1: sigmoid of the car logit (a car or part of one in the crop); 0 for a logit that is
    not a number (a broken output finds no car, so nothing is priced on it)."""
    s = sigmoid(float(logit) / spec.temperature)
    return 0.0 if math.isnan(s) else s


def found_box(output: np.ndarray, crop: Box, spec: InputSpec, margin: float,
              image_size: tuple[int, int]) -> Box | None:
    """The box output (x0, y0, x1, y1 as fractions of the input) in original-image pixels,
    widened by ``margin`` of its size on each side and kept inside the image; None when the
    output is not a usable box (not finite, or empty)."""
    v = np.asarray(output, dtype=np.float64).ravel()
    if v.size != 4 or not np.all(np.isfinite(v)):
        return None
    x0, y0, x1, y1 = (float(min(max(a, 0.0), 1.0)) for a in v)
    if x1 - x0 <= 1e-3 or y1 - y0 <= 1e-3:
        return None
    region = input_region(crop, spec)
    bx, by = region.x + x0 * region.w, region.y + y0 * region.h
    bw, bh = (x1 - x0) * region.w, (y1 - y0) * region.h
    box = Box(bx - margin * bw, by - margin * bh, bw * (1 + 2 * margin), bh * (1 + 2 * margin))
    return box.clamp(image_size)


# A found box this close to the whole photo is the whole photo: the first pass's estimate stands.
SAME_AS_FULL_IOU = 0.9


@dataclass(frozen=True)
class Located:
    """What the first pass says about a whole photo."""

    box: Box | None  # the car, original pixels; None when the model cannot say or sees no car
    score: float  # whole-car score of the whole photo

    def crop_for_estimate(self, full: Box) -> Box | None:
        """The box to predict on next, or None when the first pass on ``full`` already is it."""
        if self.box is None or box_iou(self.box, full) >= SAME_AS_FULL_IOU:
            return None
        return self.box


def whole_car_message(judged: WholeCar, covers_photo: bool, reset: str = "Ctrl+R") -> str:
    """What the app and the CLI say about the whole-car check, in one place, in words that fit
    the case: no car (no advice to widen: there is nothing to take in), part of a car (widen
    or reset), unsure (say so).  It never asks to widen a box that already covers the whole
    photo.  No score in the words: the head's sigmoid is not a probability (the threshold is
    chosen on validation photos and sits far from 50%); the score is in the JSON."""
    if judged is WholeCar.YES:
        return "Looks like a whole car"
    if judged is WholeCar.NO_CAR:
        if covers_photo:
            return "No car found in this photo: no price. Try a photo of a car."
        return f"No car in this box: no price. Draw the box around a car, or reset it to the whole photo or the car found ({reset})."
    if judged is WholeCar.UNSURE:
        fix = ("" if covers_photo else " Check that the box takes in the whole car, or reset it to the car "
               f"found ({reset}).")
        return f"Unsure this shows a whole car: treat the estimate with care.{fix}"
    if covers_photo:
        return ("This does not look like a whole car: the estimate is unreliable. Try a photo that shows the "
                "whole car.")
    return ("This looks like only part of a car: the estimate is unreliable. Widen the box to take in the "
            f"whole car, or reset it to the car found ({reset}).")
