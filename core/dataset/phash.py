"""The perceptual hash used for de-duplication (the seed's definition).

Downscale the photo to 16x16 RGB, keep the top 4 bits of each channel value (so re-encoding
or a slightly different resize gives the same bytes), append one byte for the aspect ratio
(round(log2(w/h)) clamped to [-4, 4], plus 4, so a banner and a square photo never collide),
and take the SHA-256 of those 769 bytes.

Speed: a JPEG is decoded in draft mode, i.e. at 1/8 scale straight from the DCT coefficients,
which is several times cheaper than a full decode; the 16x16 downscale is a box (area) filter,
which is what the DCT scaling approximates too, so draft and full decodes give nearly the same
768 values (about nine in ten equal, the rest a step or two apart at sharp edges).  Not always the same hash, though: one value
crossing a step changes it, so every photo is hashed the same way (draft mode).  The golden
tests pin the hash bytes.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.preprocess import ImageLoadError, to_rgb

HASH_SIDE = 16
_TOP_4_BITS = bytes(v >> 4 for v in range(256))  # bytes.translate table: value -> value >> 4


def phash_bytes(img: Image.Image, original_size: tuple[int, int]) -> bytes:
    """The 769 bytes that get hashed: 16x16x3 quantised pixels, then the aspect-ratio byte."""
    small = to_rgb(img).resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX)
    quantised = small.tobytes().translate(_TOP_4_BITS)  # row-major RGB triplets, like numpy's HxWx3
    w, h = original_size
    aspect = int(min(4.0, max(-4.0, round(math.log2(w / h)))) + 4)
    return quantised + bytes([aspect])


def perceptual_hash_image(img: Image.Image) -> str:
    return hashlib.sha256(phash_bytes(img, img.size)).hexdigest()


def perceptual_hash_file(path: str | os.PathLike[str], draft: bool = True) -> str:
    """Hash of a photo file; raises ImageLoadError naming the file if it cannot be decoded."""
    return perceptual_hash_bytes(Path(path).read_bytes(), str(path), draft)


def perceptual_hash_bytes(data: bytes, name: str = "<bytes>", draft: bool = True) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size
            if draft and img.format == "JPEG":
                img.draft(img.mode, (HASH_SIDE, HASH_SIDE))  # largest 1/k reduction still >= 16x16
            img.load()
            return hashlib.sha256(phash_bytes(img, size)).hexdigest()
    except (UnidentifiedImageError, SyntaxError):
        raise ImageLoadError(name, "not an image (unrecognised file format)") from None
    except (OSError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageLoadError(name, f"cannot decode image ({e})") from None
