"""What the app remembers between runs, stored as JSON in ``core.paths.config_dir()``.

Reading never fails: a missing, unreadable or malformed file gives the defaults (and the reason,
so the window can say so), and every value read is one the window can use (splitter sizes that
fit Qt's int, no NUL in a path, bounded lengths); the file is opened without blocking, so a FIFO
or device in its place is refused, not waited on. Writing is atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import atomic_open
from core.paths import config_dir

SETTINGS_FILE = "settings.json"
MAX_RECENT = 10
MAX_BYTES = 1 << 20  # the app writes about 2 KB
MAX_TEXT = 1 << 16  # one stored string (base64 window state, a path)
MAX_SPLITTER_SIZE = 100_000  # pixels; Qt takes a 32-bit int
MAX_SPLITTER_PANES = 16


@dataclass
class Settings:
    geometry: str = ""  # QMainWindow.saveGeometry(), base64
    window_state: str = ""  # QMainWindow.saveState(), base64
    splitters: dict[str, list[int]] = field(default_factory=dict)
    last_folder: str = ""
    recent_files: list[str] = field(default_factory=list)
    model_path: str = ""  # "" = the bundled model
    year_of_sale: int = 0  # prices count ages to this year; 0 = the current year (never goes stale)

    def add_recent(self, paths: list[str]) -> None:
        """Most recent first, no duplicates, at most MAX_RECENT."""
        merged = [*reversed(paths), *self.recent_files]
        seen: set[str] = set()
        self.recent_files = [p for p in merged if not (p in seen or seen.add(p))][:MAX_RECENT]


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> tuple[Settings, str]:
    """The stored settings and a problem description ("" when all was well)."""
    p = path or settings_path()
    try:
        text = _read_text(p)
    except FileNotFoundError:
        return Settings(), ""
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return Settings(), f"settings file {p} could not be read ({_one_line(e)}); using defaults"
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:  # bad JSON, NaN, a 5000-digit integer, deep nesting
        reason = "nested too deeply" if isinstance(e, RecursionError) else _one_line(e)
        return Settings(), f"settings file {p} could not be read ({reason}); using defaults"
    if not isinstance(data, dict):
        return Settings(), f"settings file {p} is not a JSON object; using defaults"
    return _from_dict(data), ""


def _read_text(p: Path) -> str:
    """The file's text; a FIFO, device or folder, or a file over MAX_BYTES, raises ValueError."""
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError("not a regular file")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES:,} bytes")
    return data.decode("utf-8")


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows")


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _text(v: Any) -> str | None:
    """A usable stored string: at most MAX_TEXT characters, no NUL and nothing the file system
    cannot encode (a lone surrogate), as no path can hold them."""
    if not isinstance(v, str) or len(v) > MAX_TEXT or "\x00" in v:
        return None
    try:
        os.fsencode(v)
    except UnicodeError:
        return None
    return v


def _sizes(v: Any) -> list[int] | None:
    if not isinstance(v, list) or not 0 < len(v) <= MAX_SPLITTER_PANES:
        return None
    if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_SPLITTER_SIZE for x in v):
        return None
    return list(v)


def _from_dict(d: dict[str, Any]) -> Settings:
    s = Settings()
    s.geometry = _text(d.get("geometry")) or ""
    s.window_state = _text(d.get("window_state")) or ""
    if isinstance(d.get("splitters"), dict):
        pairs = ((str(k), _sizes(v)) for k, v in list(d["splitters"].items())[:MAX_SPLITTER_PANES])
        s.splitters = {k: v for k, v in pairs if v is not None}
    s.last_folder = _text(d.get("last_folder")) or ""
    if isinstance(d.get("recent_files"), list):
        s.recent_files = [x for x in d["recent_files"][:MAX_RECENT * 10] if _text(x)][:MAX_RECENT]
    s.model_path = _text(d.get("model_path")) or ""
    y = d.get("year_of_sale")
    if isinstance(y, int) and not isinstance(y, bool) and (y == 0 or 1950 <= y <= 2100):
        s.year_of_sale = y
    return s


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically; raises OSError when the config folder is not writable."""
    with atomic_open(path or settings_path()) as f:
        json.dump(asdict(settings), f, indent=2)
