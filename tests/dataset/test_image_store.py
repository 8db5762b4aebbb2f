"""The hash-bucket store: layout, atomic idempotent writes, path safety, photo encoding."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.fakesite import car_photo
from core.dataset.image_store import ImageStore, check_sha256, encode_for_store, sha256_hex
from core.dataset.listing_page import is_fetchable_url
from core.preprocess import ImageLoadError


def test_put_writes_under_bucket_of_its_hash(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    data = b"\xff\xd8 some jpeg bytes"
    sha = store.put(data)
    assert sha == sha256_hex(data)
    assert store.path_for(sha) == tmp_path / sha[:2] / sha
    assert store.read(sha) == data
    assert store.put(data) == sha  # idempotent
    assert list(store.iter_hashes()) == [sha]
    assert os.listdir(tmp_path / ".tmp") == []  # no temp file left behind


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a" * 63, "A" * 64, "g" * 64,
                                  "0" * 64 + "/x", "..", "", "0" * 63 + "\n"])
def test_path_for_refuses_anything_but_a_sha256(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a SHA-256"):
        ImageStore(tmp_path).path_for(name)
    with pytest.raises(ValueError):
        check_sha256(name)


@pytest.mark.parametrize(("url", "ok"), [("https://a.example/x.jpg", True), ("http://127.0.0.1:8/p.jpg", True),
                                         ("file:///etc/passwd", False), ("data:image/png;base64,AA", False),
                                         ("ftp://a/x.jpg", False), ("javascript:alert(1)", False), ("http:///x", False)])
def test_only_http_urls_are_fetched(url: str, ok: bool) -> None:
    assert is_fetchable_url(url) is ok


def test_a_hostile_photo_url_cannot_choose_the_path(tmp_path: Path) -> None:
    """Whatever the URL, the file lands at <root>/<hh>/<sha256 of the stored bytes>."""
    store = ImageStore(tmp_path / "store")
    encoded = encode_for_store(car_photo(3), name="http://evil.example/../../../etc/cron.d/x.jpg")
    sha = store.put(encoded.jpeg)
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert files == [tmp_path / "store" / sha[:2] / sha]
    assert not (tmp_path / "etc").exists()


def test_encode_shrinks_short_side_to_256_and_never_enlarges() -> None:
    big = encode_for_store(car_photo(1, (1200, 800)))
    assert (big.width, big.height) == (384, 256)
    tall = encode_for_store(car_photo(2, (600, 900)))
    assert (tall.width, tall.height) == (256, 384)
    small = encode_for_store(car_photo(3, (200, 150)))
    assert (small.width, small.height) == (200, 150)
    with Image.open(io.BytesIO(big.jpeg)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
    assert encode_for_store(car_photo(1, (1200, 800)), quality=50).jpeg != big.jpeg  # quality is honoured


def test_encode_applies_exif_rotation_and_handles_odd_modes() -> None:
    img = Image.fromarray(np.zeros((300, 600, 3), np.uint8))  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: displayed tall
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    enc = encode_for_store(out.getvalue())
    assert (enc.width, enc.height) == (256, 512)
    rgba = io.BytesIO()
    Image.new("RGBA", (300, 300), (255, 0, 0, 0)).save(rgba, "PNG")
    assert encode_for_store(rgba.getvalue()).width == 256


@pytest.mark.parametrize(("data", "reason"), [(b"<html>nope</html>", "not an image"),
                                              (car_photo(4)[:2000], "truncated or corrupt"),
                                              (b"", "not an image")])
def test_encode_rejects_junk_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageLoadError, match=reason):
        encode_for_store(data, name="u")


def test_encode_rejects_tiny_images() -> None:
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "GIF")
    with pytest.raises(ImageLoadError, match="too small"):
        encode_for_store(out.getvalue())


def test_clean_temp_removes_only_old_files(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    (tmp_path / ".tmp").mkdir()
    old, new = tmp_path / ".tmp" / "1-old", tmp_path / ".tmp" / "2-new"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.clean_temp(3600) == 1
    assert not old.exists() and new.exists()
