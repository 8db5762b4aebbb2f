"""Open any photo a user may drop, and turn a crop of it into the network's input.

A photo is decoded once into a :class:`Photo`: an RGB working copy (long side at most
``max_side``) plus the original size.  A large JPEG is decoded in draft mode, at the smallest
DCT scale (1/2, 1/4 or 1/8) that still gives a long side of ``DRAFT_MIN_FRACTION * max_side``,
so a 24-MP camera file decodes at 1/8 (750 px) and a 12-MP phone photo at 1/4 (1008 px) with no
resize after; that skips most of the decoder's work but not its Huffman decoding.  Crop boxes
are in original-image coordinates, so moving the box never re-reads the file.  Every failure
raises :class:`ImageLoadError` with a one-line message that names the file.
"""
# Over 400 lines: one path from a dropped file to the network's input around the Photo type

from __future__ import annotations

import functools
import io
import math
import os
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from core.geometry import Box, input_region
from core.modelfile import InputSpec

MAX_PIXELS = 150_000_000  # larger photos are refused before any pixel is decoded
MIN_SIDE = 32  # smaller photos hold too little for the network
WORKING_MAX_SIDE = 1024  # long side of the decoded working copy, at most
# A large JPEG's working copy may be this much smaller than max_side.  The network sees 224 px
# crops and was trained on photos with a median long side of 418 px (90% <= 568 px), so 720 px
# keeps more detail than it uses; the photo view asks for a sharper copy when it is larger.
DRAFT_MIN_FRACTION = 0.7
NEUTRAL_BACKGROUND = (128, 128, 128)  # transparent pixels: the normalised zero of mean=0.5 models
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif",
                            ".heic", ".heif", ".avif"})
# ISO-BMFF brands of HEIF stills (iPhones save HEIC by default); decoded by pi-heif (libheif).
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})

ImageFile.LOAD_TRUNCATED_IMAGES = False
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX only; Windows has no FIFOs to block on
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# Pillow keeps one process-wide pixel limit (MAX_IMAGE_PIXELS, 89.5 MP: a warning above it, an
# error above twice it), checked when a file is opened.  Our limit is MAX_PIXELS, checked on the
# header's size right after opening; see _pillow_limit_at_least.
_PILLOW_LIMIT_LOCK = threading.Lock()
# A decoded image larger than this (Pillow's own buffer: 4 bytes a pixel for RGB, RGBA, LA, I, F)
# is decoded while no other large one is, and one that is not RGB above BANDED_CONVERT_PIXELS is
# converted BAND_PIXELS at a time.  A 149-MP photo then costs its decoded buffer (at most 596 MB)
# plus a few small copies, whatever its mode, on any number of threads.
LARGE_DECODE_BYTES = 256 * 1024 * 1024
BANDED_CONVERT_PIXELS = 16_000_000
BAND_PIXELS = 4_000_000
_LARGE_DECODES = threading.BoundedSemaphore(1)
_PILLOW_BOMB_PIXELS = re.compile(r"Image size \((\d+) pixels\)")


class ImageLoadError(ValueError):
    """A photo that cannot be used; ``str(e)`` is one line naming the file."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True, eq=False)
class Photo:
    """A decoded photo: RGB working copy plus where it came from and its original size."""

    source: str
    original_size: tuple[int, int]
    image: Image.Image  # RGB, long side <= WORKING_MAX_SIDE

    @property
    def scale(self) -> float:
        """Working-copy pixels per original pixel, horizontally.  The vertical ratio differs
        slightly (each side is rounded on its own): map boxes with :meth:`working_box`."""
        return self.image.width / self.original_size[0]

    def full_box(self) -> Box:
        return Box.full(self.original_size)

    def working_box(self, box: Box | None = None) -> Box:
        """``box`` (original pixels; None: the whole photo) clamped to the photo, as the same
        region in working-copy pixels, inside the working copy.

        x and y scale separately: the copy's sides are rounded one by one (a 3000x2001 photo
        becomes 1024x683, so 2001 * 1024/3000 = 683.008 rows would lie past its edge)."""
        b = (box or self.full_box()).clamp(self.original_size)
        (ow, oh), (iw, ih) = self.original_size, self.image.size
        sx, sy = iw / ow, ih / oh
        x0, y0 = b.x * sx, b.y * sy
        x1, y1 = min((b.x + b.w) * sx, float(iw)), min((b.y + b.h) * sy, float(ih))
        return Box(x0, y0, x1 - x0, y1 - y0)


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_photo(path: str | os.PathLike[str], max_side: int = WORKING_MAX_SIDE,
               max_pixels: int = MAX_PIXELS, draft_min_fraction: float = DRAFT_MIN_FRACTION) -> Photo:
    """Decode a photo file; raises ImageLoadError naming the file on any problem.

    A large JPEG's copy has a long side between ``draft_min_fraction * max_side`` and
    ``max_side`` (1.0: exactly ``max_side``, as a display at that size wants)."""
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageLoadError(name, "file not found") from None
    except OSError as e:
        raise ImageLoadError(name, f"cannot read file ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(name, "is a folder, not a photo")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device: reading it could block or never end
        raise ImageLoadError(name, "not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(name, "file is empty")
    try:
        with _open_regular(path, name) as f:
            return _decode(f, name, max_side, max_pixels, draft_min_fraction)
    except OSError as e:
        raise ImageLoadError(name, f"cannot read file ({e})") from None


def _open_regular(path: str | os.PathLike[str], name: str) -> io.BufferedReader:
    """Open ``path`` for reading only if what was opened is a regular file.

    The path may be replaced between the ``stat`` above and this open (a FIFO renamed over it:
    a plain open would wait forever for a writer), so it is opened non-blocking and the opened
    descriptor itself is checked with ``fstat``."""
    fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageLoadError(name, "is a folder, not a photo" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        if st.st_size == 0:
            raise ImageLoadError(name, "file is empty")
        if _O_NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def photo_from_bytes(data: bytes, name: str = "<bytes>", max_side: int = WORKING_MAX_SIDE,
                     max_pixels: int = MAX_PIXELS) -> Photo:
    if not data:
        raise ImageLoadError(name, "file is empty")
    return _decode(io.BytesIO(data), name, max_side, max_pixels, DRAFT_MIN_FRACTION)


def photo_from_image(img: Image.Image, name: str = "<image>", max_side: int = WORKING_MAX_SIDE) -> Photo:
    """Wrap an already decoded PIL image (e.g. pasted from the clipboard)."""
    _check_size(name, img.size, MAX_PIXELS)
    rgb = to_rgb(img)
    return Photo(name, rgb.size, _downscale(rgb, max_side))


def photo_from_array(arr: np.ndarray, name: str = "<array>", max_side: int = WORKING_MAX_SIDE) -> Photo:
    """Wrap an HxWx3 uint8 RGB array."""
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ImageLoadError(name, f"expected an HxWx3 uint8 array, got {arr.shape} {arr.dtype}")
    return photo_from_image(Image.fromarray(arr, "RGB"), name, max_side)


def _too_large(pixels: int, max_pixels: int, dims: str = "") -> str:
    return f"photo is {pixels / 1e6:.1f} MP{dims}; the limit is {max_pixels / 1e6:g} MP"


def _check_size(name: str, size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageLoadError(name, _too_large(w * h, max_pixels, f" ({w}x{h})"))
    if min(w, h) < MIN_SIDE:
        raise ImageLoadError(name, f"image is too small ({w}x{h}; needs at least {MIN_SIDE} px a side)")


def _decode(fp: io.BufferedIOBase, name: str, max_side: int, max_pixels: int,
            draft_min_fraction: float) -> Photo:
    _heif_support(fp, name)
    try:
        with _pillow_limit_at_least(max_pixels):
            img = Image.open(fp)
            img.seek(0)  # animated files: first frame
        # Pillow's TIFF reader gives the size already turned (and turns the pixels on load()).
        turned = _orientation(img) in (5, 6, 7, 8) and img.format != "TIFF"
        original = (img.height, img.width) if turned else img.size
        _check_size(name, original, max_pixels)
        if img.format == "JPEG" and img.mode in ("RGB", "L", "CMYK", "YCbCr"):
            request = draft_request(img.size, max_side, draft_min_fraction)
            if request is not None:
                img.draft(img.mode, request)
        with _large_decode_slot(img):
            img.load()
            if img.mode != "RGB" and img.width * img.height > BANDED_CONVERT_PIXELS:
                # Resized to the size the photo's own copy would have (the reduction rounds up).
                reduced = _oriented(_to_rgb_reduced(img, max_side), _orientation(img))
                small = _downscale(reduced, max_side, working_size(original, max_side))
            else:
                # In the slot: rgb may be the large decoded image itself.
                small = _downscale(to_rgb(ImageOps.exif_transpose(img)), max_side)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, SyntaxError):
        raise ImageLoadError(name, "not an image (unrecognised file format)") from None
    except Image.DecompressionBombError as e:  # over twice our limit: Pillow refused the header
        found = _PILLOW_BOMB_PIXELS.search(str(e))
        pixels = int(found.group(1)) if found else 2 * max_pixels + 1
        raise ImageLoadError(name, _too_large(pixels, max_pixels)) from None
    except (OSError, ValueError, EOFError, MemoryError) as e:
        raise ImageLoadError(name, _decode_failure(e)) from None
    return Photo(name, original, small)


@contextmanager
def _pillow_limit_at_least(max_pixels: int) -> Iterator[None]:
    """Open files with Pillow's process-wide pixel limit raised to ours (never lowered, never off).

    Pillow would otherwise refuse a 100-MP photo within our 150-MP limit; the only per-call
    alternative, a warnings filter, is process-wide too and not thread-safe.  The limit is
    raised around ``Image.open`` only (it reads the header, no pixels) and under a lock, so our
    decoding threads never restore each other's value; code elsewhere opening a file in that
    moment still has a guard, at our limit.  A photo above ours is refused by ``_check_size``
    on the header's size before anything is decoded (Pillow may also warn about it, which
    ``carvalue predict`` silences); above twice ours Pillow refuses it first
    (DecompressionBombError), which ``_decode`` reports the same way.
    """
    with _PILLOW_LIMIT_LOCK:
        before = Image.MAX_IMAGE_PIXELS
        raised = before is not None and before < max_pixels
        if raised:
            Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            if raised and Image.MAX_IMAGE_PIXELS == max_pixels:  # unless someone else set it since
                Image.MAX_IMAGE_PIXELS = before


def _decode_failure(e: BaseException) -> str:
    """One line for a decoder's exception (libheif's messages end in a newline)."""
    text = " ".join(str(e).split())
    lowered = text.lower()
    if any(s in lowered for s in ("truncated", "broken data stream", "premature end", "end of file")):
        return "file is truncated or corrupt"
    return f"cannot decode image ({text if isinstance(e, OSError) else f'{type(e).__name__}: {text}'})"


def draft_request(size: tuple[int, int], max_side: int,
                  min_fraction: float = DRAFT_MIN_FRACTION) -> tuple[int, int] | None:
    """The size to ask ``Image.draft`` for: it picks the largest 1/2, 1/4 or 1/8 reduction that
    still covers the request, i.e. a long side of at least ``min_fraction * max_side``.
    None when even 1/2 would fall below that."""
    need = min_fraction * max_side
    long_side = max(size)
    if long_side < 2 * need:
        return None
    f = need / long_side
    return (max(1, math.ceil(size[0] * f)), max(1, math.ceil(size[1] * f)))


def _heif_support(fp: io.BufferedIOBase, name: str) -> None:
    """Register the HEIF decoder the first time a HEIF file comes by (importing it costs ~30 ms,
    which every start-up would pay otherwise).  libheif applies the file's rotation itself and
    resets the EXIF orientation, so ``exif_transpose`` does not turn it twice."""
    head = fp.read(12)
    fp.seek(0)
    if len(head) < 12 or head[4:8] != b"ftyp" or head[8:12] not in HEIF_BRANDS:
        return
    try:
        import pi_heif
    except ImportError:
        raise ImageLoadError(name, "HEIC/HEIF photos need the pi-heif package (pip install pi-heif)") from None
    pi_heif.register_heif_opener()  # ~5 us, idempotent: a few dict entries in Pillow's registry


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8; 1 when absent or unreadable)."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _oriented(img: Image.Image, orientation: int) -> Image.Image:
    """``img`` turned as EXIF ``orientation`` says (what ImageOps.exif_transpose does)."""
    method = _EXIF_TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)


_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                   6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """What Pillow holds for a decoded image of ``mode`` and ``size`` (1, 2 or 4 bytes a pixel)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return per_pixel * size[0] * size[1]


@contextmanager
def _large_decode_slot(img: Image.Image) -> Iterator[None]:
    """Decode images larger than LARGE_DECODE_BYTES one at a time, process-wide: the app decodes
    on several threads, and four 149-MP photos decoded at once would hold 2.4 GB."""
    if decoded_bytes(img.mode, img.size) <= LARGE_DECODE_BYTES:
        yield
        return
    with _LARGE_DECODES:
        yield


def _to_rgb_reduced(img: Image.Image, max_side: int) -> Image.Image:
    """A large decoded image of any mode as RGB, reduced by a whole factor that keeps the long
    side at least twice ``max_side`` (what ``_downscale``'s reducing gap keeps too).

    Converted a band of rows at a time, so the conversion's temporaries (an RGBA copy and its
    composite, a float array of 16-bit grey) cost a band's worth, not the photo's: a 149-MP
    RGBA PNG costs its decoded 596 MB plus the small result instead of 3 GB."""
    w, h = img.size
    factor = max(1, max(w, h) // (2 * max_side))
    rows = max(factor, (BAND_PIXELS // max(1, w)) // factor * factor)
    top = _gray_top(img)
    out = Image.new("RGB", (-(-w // factor), -(-h // factor)))
    for y in range(0, h, rows):
        band = to_rgb(img.crop((0, y, w, min(h, y + rows))), top)
        out.paste(band.reduce(factor) if factor > 1 else band, (0, y // factor))
    return out


def _gray_top(img: Image.Image) -> float | None:
    """The full-scale value of a 32-bit integer or float grey image (from its whole range, so
    every band of it is scaled alike); None for other modes."""
    if img.mode == "I":
        high = img.getextrema()[1]
        return 65535.0 if isinstance(high, (int, float)) and high > 255 else 255.0
    if img.mode == "F":
        high = img.getextrema()[1]
        return 1.0 if isinstance(high, (int, float)) and high <= 1.0 else 255.0
    return None


def working_size(size: tuple[int, int], max_side: int = WORKING_MAX_SIDE) -> tuple[int, int]:
    """The size a decoded image of ``size`` is resized to: long side ``max_side`` at most, each
    side rounded on its own (so the two sides' ratios to the original differ slightly)."""
    w, h = size
    s = max(w, h) / max_side
    if s <= 1:
        return (w, h)
    return (max(1, round(w / s)), max(1, round(h / s)))


def _downscale(img: Image.Image, max_side: int, size: tuple[int, int] | None = None) -> Image.Image:
    size = size or working_size(img.size, max_side)
    if size == img.size:
        return img
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def to_rgb(img: Image.Image, top: float | None = None) -> Image.Image:
    """Any PIL mode to 8-bit RGB: alpha composited on a neutral grey, 16-bit scaled down.

    ``top``: the full-scale value of an "I" or "F" image (default: judged from its own pixels)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (*NEUTRAL_BACKGROUND, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit data (PNG, TIFF) spans 0..65535; "I" of 8-bit origin stays within 0..255.
        if mode.startswith("I;16"):
            top = 65535.0
        elif top is None:
            top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return _gray_to_rgb(arr * (255.0 / top))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if top is None:
            top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        return _gray_to_rgb(arr * (255.0 / top))
    return img.convert("RGB")


def _gray_to_rgb(arr: np.ndarray) -> Image.Image:
    g = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([g, g, g], axis=-1), "RGB")


def crop_to_input(photo: Photo, box: Box | None, spec: InputSpec) -> np.ndarray:
    """Crop -> resize -> normalise: a (3, size, size) float32 array as the model file says."""
    return normalise(crop_resize(photo.image, photo.working_box(box), spec), spec)


def crop_resize(image: Image.Image, box: Box, spec: InputSpec) -> Image.Image:
    """Resize the ``box`` region of ``image`` (its own pixel coordinates) to the input size.

    Training uses this same function, so the app and the network see identical pixels.
    """
    s = spec.size
    r = input_region(box, spec)
    return image.resize((s, s), Image.Resampling.BILINEAR, box=(r.x, r.y, r.x + r.w, r.y + r.h))


def normalise(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """RGB image -> (3, H, W) float32 of ``(x / 255 - mean) / std``.

    Done as a per-channel lookup of the 256 possible values, computed with the same float32
    operations as the formula, so the result is bit-identical to it in one pass (several times
    faster than float arithmetic over the whole image and a transpose: this runs per crop).
    """
    arr = np.asarray(img, dtype=np.uint8)
    lut = _lookup_table(spec.mean, spec.std)
    out = np.empty((3, arr.shape[0], arr.shape[1]), dtype=np.float32)
    for c in range(3):
        np.take(lut[c], arr[:, :, c], out=out[c])
    return out


@functools.lru_cache(maxsize=8)
def _lookup_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    levels = np.arange(256, dtype=np.float32)[None, :] * np.float32(1.0 / 255.0)
    inv_std = np.float32(1.0) / np.asarray(std, dtype=np.float32)[:, None]
    table = (levels - np.asarray(mean, dtype=np.float32)[:, None]) * inv_std
    table.flags.writeable = False
    return table
