"""Read a small JSON or text file that a user or another program may have replaced with anything.

The file is opened without blocking (a FIFO or device in its place is refused, not waited on),
must be a regular file, and is read up to a size limit; JSON that nests too deeply, holds an
integer past Python's digit limit, or NaN/Infinity raises ``SmallFileError`` with one line
naming the file, never RecursionError or a traceback.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any


class SmallFileError(ValueError):
    """The file cannot be read as the small text or JSON file it should be; one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_text(path: str | os.PathLike[str], max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; FileNotFoundError when it is
    missing, SmallFileError for anything else wrong."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise SmallFileError(p, f"cannot be read ({getattr(e, 'strerror', None) or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SmallFileError(p, "not a regular file")
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise SmallFileError(p, f"cannot be read ({e.strerror or e})") from None
    if len(data) > max_bytes:
        raise SmallFileError(p, f"larger than {max_bytes:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SmallFileError(p, f"not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_json(path: str | os.PathLike[str], max_bytes: int) -> Any:
    """``read_text`` parsed as strict JSON (no NaN or Infinity)."""
    text = read_text(path, max_bytes)
    return parse_json(text, path)


def parse_json(text: str, path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise SmallFileError(path, "JSON nested too deeply to read") from None
    except ValueError as e:  # JSONDecodeError, a 5000-digit integer, NaN
        line = (str(e).splitlines() or ["invalid"])[0][:200]
        raise SmallFileError(path, f"not valid JSON ({line})") from None


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows")
