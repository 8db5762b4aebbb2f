"""Content-addressed photo store: ``<root>/<hh>/<sha256>``.

The name of every file is the SHA-256 of its bytes and ``hh`` is the hash's first byte, so 256
buckets keep each directory small (one directory of millions of files hits EXT4's
directory-hash limit, "No space left on device" with free space, and slows every open).
Names come from hashes only: nothing a listing page says can choose a path.  Files are written
to ``<root>/.tmp/`` and ``os.replace``d into place, so a killed process leaves at most a stray
temp file, never a half-written photo under a real name.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from core.atomic import atomic_write
from core.preprocess import ImageLoadError, to_rgb

SHA256_RE = re.compile(r"[0-9a-f]{64}")
TEMP_DIR = ".tmp"
DEFAULT_SHORT_SIDE = 256
DEFAULT_QUALITY = 90
MIN_SOURCE_SIDE = 32  # smaller "photos" are icons or tracking pixels
MAX_SOURCE_PIXELS = 80_000_000
# A stored photo is a small JPEG (short side 256 by default: ~20 KB; 4096 px at quality 100 stays
# under 20 MB).  A larger file in the store is damage and is refused without being read.
MAX_STORED_BYTES = 64 * 1024 * 1024
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StoredFileError(ValueError):
    """A store entry that is not a stored photo's file: not a regular file (a FIFO, a device, a
    link to /dev/zero), larger than any stored photo, or under a bucket that is not a folder.
    ``str(e)`` is one line naming the photo; ``reason`` is the part after its name."""

    def __init__(self, sha256: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{sha256}: {reason}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(name: str) -> str:
    """``name`` if it is 64 lowercase hex digits, else ValueError (path-safety gate)."""
    if not isinstance(name, str) or not SHA256_RE.fullmatch(name):
        raise ValueError(f"not a SHA-256 hex digest: {name!r}")
    return name


@dataclass(frozen=True)
class EncodedPhoto:
    jpeg: bytes
    width: int
    height: int


def encode_for_store(data: bytes, short_side: int = DEFAULT_SHORT_SIDE, quality: int = DEFAULT_QUALITY,
                     name: str = "<download>") -> EncodedPhoto:
    """Decode downloaded bytes, apply EXIF rotation, shrink so the short side is ``short_side``
    (never enlarge), and encode as baseline JPEG.  Raises ImageLoadError with the reason."""
    try:
        img = Image.open(io.BytesIO(data))
        img.seek(0)
        w, h = img.size
        if w * h > MAX_SOURCE_PIXELS:
            raise ImageLoadError(name, f"image is too large ({w}x{h})")
        if min(w, h) < MIN_SOURCE_SIDE:
            raise ImageLoadError(name, f"image is too small ({w}x{h})")
        if img.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when that still leaves the short side >= target.
            scale = short_side / min(w, h)
            img.draft(img.mode, (max(1, int(w * scale + 0.999)), max(1, int(h * scale + 0.999))))
        img.load()
        img = to_rgb(ImageOps.exif_transpose(img))
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, SyntaxError):
        raise ImageLoadError(name, "not an image (unrecognised file format)") from None
    except Image.DecompressionBombError:
        raise ImageLoadError(name, "image is too large (decompression-bomb guard)") from None
    except OSError as e:
        raise ImageLoadError(name, f"truncated or corrupt image ({e})") from None
    except (ValueError, EOFError) as e:
        raise ImageLoadError(name, f"cannot decode image ({type(e).__name__}: {e})") from None
    w, h = img.size
    s = short_side / min(w, h)
    if s < 1:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return EncodedPhoto(out.getvalue(), img.width, img.height)


class ImageStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` under its hash (atomically); returns the hash. Idempotent."""
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if path.is_file() and path.stat().st_size == len(data):
            return digest
        atomic_write(path, data, temp_dir=self.root / TEMP_DIR)
        return digest

    def read(self, sha256: str) -> bytes:
        """The stored file's bytes: a regular file of at most MAX_STORED_BYTES, read without
        blocking on a FIFO; StoredFileError for anything else (OSError if it cannot be read)."""
        path = self.path_for(sha256)
        fd = self._open(path, sha256)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_STORED_BYTES + 1)
        if len(data) > MAX_STORED_BYTES:  # grew after the check
            raise StoredFileError(sha256, f"file is larger than {MAX_STORED_BYTES:,} bytes: not a stored photo")
        return data

    def _open(self, path: Path, sha256: str) -> int:
        """A descriptor of ``path`` if it is a regular file no larger than a stored photo can be."""
        try:
            fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
        except NotADirectoryError:
            raise StoredFileError(sha256, f"its bucket {path.parent} is not a folder") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoredFileError(sha256, "not a regular file (a FIFO, device or folder)")
            if st.st_size > MAX_STORED_BYTES:
                raise StoredFileError(sha256, f"file is {st.st_size:,} bytes, more than a stored photo can be "
                                              f"({MAX_STORED_BYTES:,})")
            if _O_NONBLOCK:
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def problem(self, sha256: str) -> str | None:
        """Why the stored file is unusable (missing, not a regular file, too large, wrong hash,
        not a decodable image), or None.  Reads at most MAX_STORED_BYTES."""
        try:
            data = self.read(sha256)
        except FileNotFoundError:
            return "file is missing"
        except StoredFileError as e:
            return e.reason
        except OSError as e:
            return f"cannot read file ({e.strerror or e})"
        if sha256_hex(data) != sha256:
            return "contents do not match the file's hash (corrupt or partly written)"
        try:
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_SOURCE_PIXELS:
                    return f"not a stored photo ({img.width}x{img.height} pixels)"
                img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            return f"not a decodable image ({e})"
        return None

    def remove(self, sha256: str) -> None:
        """Delete the stored file (nothing to do when it or its bucket folder is not there)."""
        path = self.path_for(sha256)
        try:
            if path.is_dir() and not path.is_symlink():
                return  # a folder under a photo's name: not ours to delete; the rows are marked lost
            path.unlink(missing_ok=True)
        except NotADirectoryError:
            return  # the bucket is a file: no photo under it

    def iter_hashes(self) -> Iterator[str]:
        """Hashes of every file in the buckets (stray names are skipped)."""
        if not self.root.is_dir():
            return
        for bucket in sorted(self.root.iterdir()):
            if len(bucket.name) != 2 or not bucket.is_dir():
                continue
            for entry in os.scandir(bucket):
                if SHA256_RE.fullmatch(entry.name) and entry.name.startswith(bucket.name):
                    yield entry.name

    def clean_temp(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left by killed runs (only old ones: another run may be writing)."""
        tmp_dir = self.root / TEMP_DIR
        if not tmp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in os.scandir(tmp_dir):
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
