"""Golden tests for the perceptual hash: fixed images give fixed hashes, byte for byte."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from benchmarks.fakesite import car_photo
from core.dataset.phash import perceptual_hash_bytes, perceptual_hash_image, phash_bytes
from core.preprocess import ImageLoadError


def gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w)[None, :]
    y = np.linspace(0, 255, h)[:, None]
    a = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 128.0)], -1)
    return Image.fromarray(a.round().astype(np.uint8), "RGB")


def checker(n: int = 256, block: int = 32) -> Image.Image:
    i = np.arange(n) // block
    odd = (i[:, None] + i[None, :]) % 2 == 1
    a = np.where(odd[..., None], np.array([200, 40, 40]), np.array([20, 90, 220])).astype(np.uint8)
    return Image.fromarray(a, "RGB")


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


GOLDEN = {
    "gradient_320x256": (lambda: gradient(320, 256), "3e93737e45aa62d1b0903b2bc625e4f454780e1091621ef037bd182c5a693ccb"),
    "checker_256": (checker, "04d1224da00e1bea1d021d296424fa93931a9c3a4f7575eb77b45b65e18c1a7d"),
    "banner_1024x128": (lambda: gradient(1024, 128), "f6308d152ebc43dbc026a2a924e6bc78fba32e038fecce9110f4233339784917"),
    "gray_200x300": (lambda: gradient(200, 300).convert("L"), "fe628b8a7881360656325704a166272ab7db8afc54155a42c6d34850000d736a"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_hashes(name: str) -> None:
    make, expected = GOLDEN[name]
    img = make()
    assert perceptual_hash_image(img) == expected
    assert perceptual_hash_bytes(png(img)) == expected  # from a file's bytes too


def test_checker_bytes_derived_by_hand() -> None:
    """Each 16x16 output pixel covers one half of a 32-px block, so its colour is exact; the top
    4 bits of (200, 40, 40) are (12, 2, 2), of (20, 90, 220) are (1, 5, 13); square = aspect byte 4."""
    r, c = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    odd = ((r // 2 + c // 2) % 2 == 1)[..., None]
    expected = np.where(odd, np.array([12, 2, 2]), np.array([1, 5, 13])).astype(np.uint8).tobytes() + bytes([4])
    img = checker()
    assert phash_bytes(img, img.size) == expected
    assert perceptual_hash_image(img) == hashlib.sha256(expected).hexdigest()


@pytest.mark.parametrize(("size", "byte"), [((256, 256), 4), ((512, 256), 5), ((256, 512), 3), ((4000, 100), 8),
                                            ((100, 4000), 0), ((300, 200), 5), ((360, 256), 4)])
def test_aspect_byte(size: tuple[int, int], byte: int) -> None:
    assert phash_bytes(Image.new("RGB", size), size)[-1] == byte


def test_quantisation_absorbs_small_changes_but_not_big_ones() -> None:
    img = checker()
    a = np.asarray(img).astype(np.int16)
    nudged = Image.fromarray(np.clip(a + np.where(a % 16 < 8, 3, -3), 0, 255).astype(np.uint8))
    assert perceptual_hash_image(nudged) == perceptual_hash_image(img)
    assert perceptual_hash_image(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) != perceptual_hash_image(img)


def _quantised(data: bytes, draft: bool) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        size = img.size
        if draft:
            img.draft(img.mode, (16, 16))
        img.load()
        assert (img.size != size) == draft  # draft mode really decoded at reduced scale
        return np.frombuffer(phash_bytes(img, size), np.uint8)


def test_draft_mode_is_close_to_full_decode() -> None:
    """Draft decoding (1/8 scale) + box filter sees nearly the same 16x16 colours as a full decode.
    (Not the same hash: one of 768 values crossing a 16-level step changes it; so the pipeline
    hashes every photo the same way, in draft mode.)"""
    for seed in range(10):
        data = car_photo(seed, (341, 256))
        a, b = _quantised(data, True), _quantised(data, False)
        assert a[-1] == b[-1]
        assert np.mean(a == b) > 0.85 and np.max(np.abs(a.astype(int) - b)) <= 2


def test_undecodable_bytes_raise_a_clear_error() -> None:
    with pytest.raises(ImageLoadError, match="not an image"):
        perceptual_hash_bytes(b"<html>nope</html>", "x.jpg")
    with pytest.raises(ImageLoadError, match="x.jpg"):
        perceptual_hash_bytes(car_photo(1)[:500], "x.jpg")
