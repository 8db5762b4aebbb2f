"""Every image mode, orientation and bad file a user may drop, against known pixels."""
# Over 400 lines: one table of image modes, orientations and bad files

from __future__ import annotations

import io
import math
import os
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.modelfile import InputSpec
from core.preprocess import (
    DRAFT_MIN_FRACTION,
    MAX_PIXELS,
    WORKING_MAX_SIDE,
    Box,
    ImageLoadError,
    Photo,
    crop_to_input,
    draft_request,
    load_photo,
    normalise,
    photo_from_bytes,
    photo_from_image,
    to_rgb,
    working_size,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(w: int = 80, h: int = 60) -> Image.Image:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    img = Image.new("RGB", (w, h))
    img.paste(RED, (0, 0, w // 2, h // 2))
    img.paste(GREEN, (w // 2, 0, w, h // 2))
    img.paste(BLUE, (0, h // 2, w // 2, h))
    img.paste(WHITE, (w // 2, h // 2, w, h))
    return img


def corner_colours(img: Image.Image) -> tuple[tuple[int, ...], ...]:
    a = np.asarray(img)
    h, w = a.shape[:2]
    return tuple(tuple(int(v) for v in a[y, x]) for y, x in ((2, 2), (2, w - 3), (h - 3, 2), (h - 3, w - 3)))


def close(c1: tuple[int, ...], c2: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(c1, c2, strict=True))


# What each EXIF orientation stores: the upright image transformed by the inverse operation.
_STORE = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    upright = quadrants()
    stored = _STORE[orientation](upright)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    photo = load_photo(path)
    assert photo.original_size == upright.size
    got = corner_colours(photo.image)
    want = corner_colours(upright)
    assert all(close(g, w) for g, w in zip(got, want, strict=True)), (got, want)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_photo_with_its_rotation(tmp_path: Path, orientation: int) -> None:
    """An iPhone's HEIC: libheif applies the stored rotation/mirror once (not again from EXIF)."""
    pillow_heif = pytest.importorskip("pillow_heif")  # dev extra: writes HEIC; the app reads with pi-heif
    upright = quadrants()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.heic"
    pillow_heif.from_pillow(_STORE[orientation](upright)).save(path, quality=95, exif=exif.tobytes())
    photo = load_photo(path)
    assert photo.original_size == upright.size
    got, want = corner_colours(photo.image), corner_colours(upright)
    assert all(close(g, w) for g, w in zip(got, want, strict=True)), (got, want)
    assert photo_from_bytes(path.read_bytes(), "o.heic").original_size == upright.size


def test_heic_without_its_decoder_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "phone.heic"
    pillow_heif.from_pillow(quadrants()).save(path, quality=90)
    monkeypatch.setitem(sys.modules, "pi_heif", None)  # import fails, as on an install without it
    _assert_error(path, "HEIC/HEIF photos need the pi-heif package")


def test_truncated_heic(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "cut.heic"
    pillow_heif.from_pillow(quadrants(320, 240)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _assert_error(path, "file is truncated or corrupt")


def test_avif(tmp_path: Path) -> None:
    path = tmp_path / "x.avif"
    quadrants().save(path, quality=95)
    photo = load_photo(path)
    assert photo.original_size == (80, 60)
    assert all(close(g, w) for g, w in zip(corner_colours(photo.image), corner_colours(quadrants()), strict=True))


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_cmyk_jpeg_becomes_rgb() -> None:
    photo = photo_from_bytes(_save(quadrants().convert("CMYK"), "JPEG", quality=95), "cmyk.jpg")
    assert photo.image.mode == "RGB"
    assert all(close(g, w) for g, w in zip(corner_colours(photo.image), corner_colours(quadrants()), strict=True))


def test_palette_with_transparency_composites_on_grey() -> None:
    img = Image.new("P", (64, 64), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (32, 0, 64, 64))  # right half: palette index 1 (blue), marked transparent
    data = _save(img, "PNG", transparency=1)
    photo = photo_from_bytes(data, "p.png")
    a = np.asarray(photo.image)
    assert tuple(a[10, 10]) == RED
    assert tuple(a[10, 50]) == (128, 128, 128)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_neutral_grey(mode: str) -> None:
    base = Image.new("RGBA", (64, 64), (255, 255, 255, 255))
    base.paste((255, 255, 255, 0), (0, 0, 32, 64))  # left half fully transparent
    base.paste((255, 255, 255, 128), (32, 32, 64, 64))  # bottom right half transparent
    photo = photo_from_bytes(_save(base.convert(mode), "PNG"), "a.png")
    a = np.asarray(photo.image).astype(int)
    assert tuple(a[5, 5]) == (128, 128, 128)
    assert tuple(a[5, 50]) == (255, 255, 255)
    assert all(abs(v - 192) <= 2 for v in a[50, 50])


def test_16bit_grey_png_is_scaled_to_8bit() -> None:
    arr = np.zeros((40, 40), dtype=np.uint16)
    arr[:, 20:] = 65535
    arr[20:, :20] = 32896  # 128 * 257
    img = Image.fromarray(arr)
    assert img.mode.startswith("I;16")
    photo = photo_from_bytes(_save(img, "PNG"), "g16.png")
    a = np.asarray(photo.image)
    assert tuple(a[5, 5]) == (0, 0, 0)
    assert tuple(a[5, 30]) == (255, 255, 255)
    assert tuple(a[30, 5]) == (128, 128, 128)


def test_mode_I_of_8bit_origin_keeps_its_values() -> None:
    img = Image.new("L", (40, 40), 100).convert("I")
    assert tuple(np.asarray(to_rgb(img))[0, 0]) == (100, 100, 100)


def test_grey_and_bilevel_modes() -> None:
    assert tuple(np.asarray(to_rgb(Image.new("L", (40, 40), 77)))[0, 0]) == (77, 77, 77)
    assert tuple(np.asarray(to_rgb(Image.new("1", (40, 40), 1)))[0, 0]) == (255, 255, 255)


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (48, 48), c) for c in (RED, BLUE, GREEN)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    photo = photo_from_bytes(data, "anim.gif")
    assert close(tuple(int(v) for v in np.asarray(photo.image)[10, 10]), RED, 10)


def test_webp_and_bmp(tmp_path: Path) -> None:
    for fmt, suffix in (("WEBP", "webp"), ("BMP", "bmp")):
        p = tmp_path / f"x.{suffix}"
        quadrants().save(p, fmt)
        assert load_photo(p).original_size == (80, 60)


def test_large_jpeg_decodes_in_draft_mode_to_working_copy(tmp_path: Path) -> None:
    p = tmp_path / "big.jpg"
    quadrants(4000, 3000).save(p, quality=90)
    photo = load_photo(p)
    assert photo.original_size == (4000, 3000)
    assert photo.image.size == (1000, 750)  # decoded at 1/4 scale, no resize after
    assert photo.scale == pytest.approx(1000 / 4000, rel=1e-3)
    assert all(close(g, w) for g, w in zip(corner_colours(photo.image), corner_colours(quadrants()), strict=True))


@pytest.mark.parametrize(("size", "working"), [
    ((6000, 4000), (750, 500)),  # 24 MP: 1/8
    ((4032, 3024), (1008, 756)),  # 12-MP phone: 1/4, not 1/2 and a resize
    ((5472, 3648), (1024, 683)),  # 1/8 would be 684 < 0.7 * 1024: 1/4, then resized
    ((3000, 4000), (750, 1000)),  # portrait: the long side counts
    ((1400, 1000), (1024, 731)),  # 1/2 would be too small: full decode, resized
    ((900, 600), (900, 600)),  # small: as is
])
def test_draft_scale_is_the_smallest_that_keeps_the_working_size(
        tmp_path: Path, size: tuple[int, int], working: tuple[int, int]) -> None:
    p = tmp_path / "x.jpg"
    Image.new("RGB", size, (90, 120, 150)).save(p, quality=90)
    photo = load_photo(p)
    assert photo.image.size == working
    assert DRAFT_MIN_FRACTION * WORKING_MAX_SIDE <= max(working) <= WORKING_MAX_SIDE or working == size


def test_display_copy_is_at_least_the_size_asked_for(tmp_path: Path) -> None:
    p = tmp_path / "x.jpg"
    Image.new("RGB", (6000, 4000), (90, 120, 150)).save(p, quality=90)
    assert load_photo(p, max_side=1400, draft_min_fraction=1.0).image.size == (1400, 933)
    assert draft_request((6000, 4000), 1400, 1.0) == (1400, 934)
    assert draft_request((1400, 1000), 1024) is None


# -- bad files: one line naming the file -------------------------------------------------------
def _assert_error(path: Path, fragment: str) -> None:
    with pytest.raises(ImageLoadError) as info:
        load_photo(path)
    msg = str(info.value)
    assert str(path) in msg and fragment in msg and "\n" not in msg, msg


def test_missing_file(tmp_path: Path) -> None:
    _assert_error(tmp_path / "nope.jpg", "not found")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    _assert_error(p, "empty")


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _save(quadrants(400, 300), "JPEG", quality=90)
    p = tmp_path / "trunc.jpg"
    p.write_bytes(data[: len(data) // 2])
    _assert_error(p, "truncated")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a photo\n" * 20)
    _assert_error(p, "not an image")


def test_folder_is_not_a_photo(tmp_path: Path) -> None:
    _assert_error(tmp_path, "folder")


def test_too_small(tmp_path: Path) -> None:
    p = tmp_path / "tiny.png"
    Image.new("RGB", (20, 100)).save(p)
    _assert_error(p, "too small")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (grey, 1 bit) and holds no pixel data:
    any size costs a few bytes, and only what a decoder does before decoding can be tested."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + struct.pack(">I", 0) + b"IEND"
            + struct.pack(">I", zlib.crc32(b"IEND")))


@pytest.mark.parametrize(("size", "megapixels"), [((20000, 10000), "200.0"), ((30000, 20000), "600.0")])
def test_a_photo_over_the_limit_is_refused_before_decoding_with_its_size(
        tmp_path: Path, size: tuple[int, int], megapixels: str) -> None:
    """200 MP: above our 150-MP limit (Pillow only warns there); 600 MP: above twice it, where
    Pillow refuses the header itself.  Both say the size and the limit, and warn nothing."""
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header_only(*size))
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow's own, below ours
        _assert_error(p, f"photo is {megapixels} MP")
        _assert_error(p, "the limit is 150 MP")
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's process-wide limit is left as it was


def test_a_photo_within_the_stated_limit_loads_though_pillow_would_refuse_it(tmp_path: Path) -> None:
    """100 MP: over Pillow's default 89.5 MP, under our 150 MP; and 12500x8000 is also a size
    whose working copy (1024x655) is 0.36 rows shorter than a single scale would map it to."""
    p = tmp_path / "100mp.jpg"
    Image.new("L", (12500, 8000), 90).save(p, quality=50)
    assert 12500 * 8000 > Image.MAX_IMAGE_PIXELS and 12500 * 8000 <= MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        photo = load_photo(p)
    assert photo.original_size == (12500, 8000) and photo.image.size == (1024, 655)
    assert crop_to_input(photo, None, InputSpec()).shape == (3, 224, 224)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # untouched for everyone else


def test_pillows_limit_is_raised_only_while_we_open_a_file(tmp_path: Path) -> None:
    """Code outside ours that opens files (the dataset pipeline) keeps Pillow's own guard."""
    p = tmp_path / "100mp.png"
    p.write_bytes(png_header_only(12500, 8000))
    with pytest.raises(ImageLoadError, match="cannot decode"):  # past the size checks, no pixels
        load_photo(p)
    with pytest.warns(Image.DecompressionBombWarning), Image.open(p):
        pass


def test_fifo_and_devices_are_not_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    _assert_error(fifo, "not a regular file")  # and returns at once: a FIFO is never opened
    if Path("/dev/null").exists():
        with pytest.raises(ImageLoadError, match="not a regular file"):
            load_photo("/dev/null")


# -- boxes and crops -----------------------------------------------------------------------------
@given(
    x=st.floats(-1e4, 1e4), y=st.floats(-1e4, 1e4), w=st.floats(0.1, 2e4), h=st.floats(0.1, 2e4),
    iw=st.integers(32, 5000), ih=st.integers(32, 5000),
)
def test_clamped_box_lies_inside_the_image(x: float, y: float, w: float, h: float, iw: int, ih: int) -> None:
    b = Box(x, y, w, h).clamp((iw, ih))
    assert 0 <= b.x and 0 <= b.y
    assert b.x + b.w <= iw + 1e-6 and b.y + b.h <= ih + 1e-6
    assert b.w <= iw and b.h <= ih and b.w > 0 and b.h > 0


def test_box_inside_is_unchanged_and_is_frozen() -> None:
    b = Box(10, 20, 30, 40)
    assert b.clamp((100, 100)) == b
    with pytest.raises(AttributeError):
        b.x = 5  # type: ignore[misc]


def test_box_parse() -> None:
    assert Box.parse("1,2,3,4") == Box(1, 2, 3, 4)
    assert Box.parse("-500,0,10,10") == Box(-500, 0, 10, 10)
    for bad, why in (("1,2,3", "x,y,w,h"), ("a,b,c,d", "four numbers"), ("0,0,0,5", "positive"),
                     ("nan,0,10,10", "finite"), ("0,inf,10,10", "finite"), ("0,0,10,-inf", "finite"),
                     ("0,0,nan,10", "finite")):
        with pytest.raises(ValueError, match=why):
            Box.parse(bad)


@given(st.tuples(*[st.floats(allow_nan=True, allow_infinity=True)] * 4))
@settings(max_examples=60, deadline=None)
def test_a_box_with_a_non_finite_value_is_refused_never_clamped_to_nan(values: tuple[float, ...]) -> None:
    box = Box(*values)
    if all(math.isfinite(v) for v in values):
        clamped = box.clamp((640, 480))
        assert clamped.is_finite() and clamped.w >= 1 and clamped.h >= 1
    else:
        with pytest.raises(ValueError, match="finite"):
            box.clamp((640, 480))
        with pytest.raises(ValueError, match="finite"):
            Box.parse(",".join(map(repr, values)))


_SIDE = st.integers(1, 12000)
_COORD = st.one_of(st.floats(-1e12, 1e12), st.sampled_from([0.0, -0.0, 1e-300, -500.0, 1e308]))


@given(size=st.tuples(_SIDE, _SIDE), nudge=st.tuples(st.integers(-1, 1), st.integers(-1, 1)),
       box=st.one_of(st.none(), st.builds(Box, _COORD, _COORD, _COORD, _COORD)))
@settings(max_examples=60, deadline=None)
def test_every_photo_size_and_finite_crop_maps_inside_the_working_copy(
        size: tuple[int, int], nudge: tuple[int, int], box: Box | None) -> None:
    """Half of all sizes above 1024 px used to map the full box past the working copy's last row
    (one scale from the width only).  The copy here is the real working size, give or take the
    pixel a JPEG's draft decode may round the other way; a tiny RGB copy keeps it cheap."""
    ww, wh = working_size(size)
    ww, wh = max(1, ww + nudge[0]), max(1, wh + nudge[1])
    photo = Photo("p.png", size, Image.new("RGB", (ww, wh)))
    wb = photo.working_box(box)
    assert 0 <= wb.x and 0 <= wb.y and wb.w > 0 and wb.h > 0
    assert wb.x + wb.w <= ww and wb.y + wb.h <= wh
    if box is None:
        assert wb.as_tuple() == pytest.approx((0, 0, ww, wh))
    assert crop_to_input(photo, box, InputSpec(size=32)).shape == (3, 32, 32)


@pytest.mark.parametrize("size", [(3000, 2001), (1028, 480), (1049, 777), (2001, 3000)])
def test_sizes_that_used_to_crash_prediction(tmp_path: Path, size: tuple[int, int]) -> None:
    p = tmp_path / "x.png"
    Image.new("L", size, 120).save(p)
    photo = load_photo(p)
    for box in (None, Box(0, 0, *size), Box(size[0] - 1, size[1] - 1, 5, 5)):
        assert crop_to_input(photo, box, InputSpec()).shape == (3, 224, 224)


def test_crop_to_input_normalises_as_the_spec_says() -> None:
    photo = photo_from_image(quadrants(200, 100))
    spec = InputSpec(size=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    arr = crop_to_input(photo, Box(0, 0, 100, 50), spec)  # the red quadrant only
    assert arr.shape == (3, 64, 64) and arr.dtype == np.float32
    # Bilinear filtering reads a pixel or two past the box edge; the interior is exact.
    np.testing.assert_allclose(arr[0, :-2, :-2], 1.0, atol=1e-5)
    np.testing.assert_allclose(arr[1:, :-2, :-2], -1.0, atol=1e-5)
    spec2 = InputSpec(size=32, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    arr2 = crop_to_input(photo, Box(100, 50, 100, 50), spec2)  # white quadrant
    np.testing.assert_allclose(arr2[:, 5, 5], (1 - np.array(spec2.mean)) / np.array(spec2.std), atol=1e-4)


@pytest.mark.parametrize("mean,std", [((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                                      ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
def test_normalise_is_bit_identical_to_the_formula(mean: tuple[float, ...], std: tuple[float, ...]) -> None:
    """The lookup-table normalise must give exactly the float32 formula, value for value, so
    models trained before it (and the exported ones) see the same inputs."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    spec = InputSpec(size=53, mean=mean, std=std)
    x = np.asarray(img, dtype=np.float32) * (1.0 / 255.0)
    expected = ((x - np.asarray(mean, dtype=np.float32)) * (1.0 / np.asarray(std, dtype=np.float32))).transpose(2, 0, 1)
    got = normalise(img, spec)
    assert got.dtype == np.float32 and got.shape == (3, 37, 53) and got.flags.c_contiguous
    assert np.array_equal(got, expected)


def test_crop_box_is_in_original_coordinates_for_downscaled_photos(tmp_path: Path) -> None:
    p = tmp_path / "big.png"
    quadrants(3000, 2000).save(p)
    photo = load_photo(p)
    assert photo.scale < 1
    arr = crop_to_input(photo, Box(1500, 1000, 1500, 1000), InputSpec(size=32))
    np.testing.assert_allclose(arr[:, 2:, 2:], 1.0, atol=1e-4)  # white quadrant in original pixels
