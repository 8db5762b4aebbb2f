"""Photos that could hang or exhaust memory: a path swapped for a FIFO after the type check
(issue 30 item 7), and large PNGs whose mode costs several bytes a pixel to convert (item 8).

The hanging and memory cases run in a subprocess bounded by a timeout, reading its peak
resident size, so a regression fails the test instead of hanging or swapping the machine."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import preprocess
from core.preprocess import ImageLoadError, load_photo

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})


# ---- item 7: the path becomes a FIFO between stat and open --------------------------------------

SWAPPED = """
import os, sys, stat
from core import preprocess
regular = os.stat(sys.argv[2])  # what the type check sees: a regular file
real_stat = os.stat
preprocess.os.stat = lambda p, *a, **k: regular if str(p) == sys.argv[1] else real_stat(p, *a, **k)
try:
    preprocess.load_photo(sys.argv[1])
except preprocess.ImageLoadError as e:
    print(e)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_photo_swapped_for_a_fifo_after_the_check_fails_instead_of_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    regular = tmp_path / "real.jpg"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(regular)
    proc = _run(SWAPPED, str(fifo), str(regular), timeout=30)  # before the fix: open() blocks forever
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{fifo}: not a regular file"


def test_a_regular_photo_still_loads_through_the_checked_open(tmp_path: Path) -> None:
    p = tmp_path / "ok.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(p)
    assert load_photo(p).original_size == (64, 48)
    d = tmp_path / "dir.jpg"
    d.mkdir()
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_photo(d)


# ---- item 8: large PNGs in costly modes ------------------------------------------------------------

def _flat_png(path: Path, w: int, h: int, ctype: int, bitdepth: int) -> None:
    """A PNG of w x h zero pixels, written row block by row block (small file, quick to make)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    row = 1 + (w * bitdepth * channels + 7) // 8
    comp = zlib.compressobj(6)
    per = max(1, (1 << 22) // row)
    parts, left = [], h
    while left > 0:
        n = min(left, per)
        parts.append(comp.compress(b"\x00" * (row * n)))
        left -= n
    parts.append(comp.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bitdepth, ctype, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


# The peak is the child's own VmHWM: Linux carries ru_maxrss across fork+exec, so a child of a
# pytest process that has grown to gigabytes would report the parent's peak as its own.
PEAK = """
import resource, sys
from core.preprocess import load_photo
photo = load_photo(sys.argv[1])
try:
    with open("/proc/self/status") as f:
        peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(photo.image.mode, *photo.image.size, peak_kb // 1024)
"""


@pytest.mark.parametrize(("ctype", "bitdepth"), [(6, 8), (0, 16), (4, 8)], ids=["rgba8", "grey16", "la8"])
def test_a_large_png_in_a_costly_mode_decodes_in_bounded_memory(tmp_path: Path, ctype: int, bitdepth: int) -> None:
    """30 MP: the whole-image conversion cost 5-6 copies (RGBA: ~700 MB; 16-bit grey as float64:
    ~800 MB); converted band by band it costs the decoded buffer (<= 120 MB) and little more."""
    path = tmp_path / "big.png"
    _flat_png(path, 6000, 5000, ctype, bitdepth)
    proc = _run(PEAK, str(path))
    assert proc.returncode == 0, proc.stderr
    mode, w, h, peak_mb = proc.stdout.split()
    assert (mode, int(w), int(h)) == ("RGB", 1024, 853)
    assert int(peak_mb) < 400, f"peak resident {peak_mb} MB"


def _gradient(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (x * 7 + y * 3) / (w * 7 + h * 3)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "I;16", "I", "F", "P", "L"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_banded_conversion_matches_whole_image_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          mode: str, orientation: int) -> None:
    g = _gradient(900, 700)
    if mode in ("RGBA", "LA"):
        rgba = np.dstack([g * 255, (1 - g) * 255, np.full_like(g, 90), (g > 0.3) * 200 + 40]).astype(np.uint8)
        img = Image.fromarray(rgba).convert(mode)
    elif mode == "I;16":
        img = Image.fromarray((g * 60000).astype(np.uint16))
    elif mode == "I":
        img = Image.fromarray((g * 200).astype(np.int32))
    elif mode == "F":
        img = Image.fromarray((g * 0.9).astype(np.float32))
    else:
        img = Image.fromarray((g * 255).astype(np.uint8))
        if mode == "P":
            img = img.convert("RGB").quantize(64)
    path = tmp_path / ("x.tif" if mode in ("I", "F") else "x.png")
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, exif=exif.tobytes())
    whole = load_photo(path, max_side=200)
    monkeypatch.setattr(preprocess, "BANDED_CONVERT_PIXELS", 1000)
    monkeypatch.setattr(preprocess, "BAND_PIXELS", 900 * 37)  # bands of 36 rows: not a multiple of the image
    banded = load_photo(path, max_side=200)
    assert banded.original_size == whole.original_size
    assert banded.image.size == whole.image.size
    diff = np.abs(np.asarray(banded.image, dtype=np.int16) - np.asarray(whole.image, dtype=np.int16))
    assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 8


def test_large_decodes_take_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Images above LARGE_DECODE_BYTES are decoded one at a time (the app decodes on threads)."""
    small = Image.new("L", (100, 100))
    assert preprocess.decoded_bytes("RGBA", (14900, 10000)) == 596_000_000
    assert preprocess.decoded_bytes("I;16", (14900, 10000)) == 298_000_000
    monkeypatch.setattr(preprocess, "LARGE_DECODE_BYTES", 5000)
    with preprocess._large_decode_slot(small):
        assert not preprocess._LARGE_DECODES.acquire(blocking=False)
    assert preprocess._LARGE_DECODES.acquire(blocking=False)
    preprocess._LARGE_DECODES.release()
