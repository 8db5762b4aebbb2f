"""What the app remembers between runs, stored as JSON in ``core.paths.config_dir()``.

Reading never fails: a missing, unreadable or malformed file gives the defaults (and the reason,
so the window can say so). Writing is atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.paths import config_dir

SETTINGS_FILE = "settings.json"
MAX_RECENT = 10


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
    if not p.exists():
        return Settings(), ""
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return Settings(), f"settings file {p} could not be read ({e}); using defaults"
    if not isinstance(data, dict):
        return Settings(), f"settings file {p} is not a JSON object; using defaults"
    return _from_dict(data), ""


def _from_dict(d: dict[str, Any]) -> Settings:
    s = Settings()
    if isinstance(d.get("geometry"), str):
        s.geometry = d["geometry"]
    if isinstance(d.get("window_state"), str):
        s.window_state = d["window_state"]
    if isinstance(d.get("splitters"), dict):
        s.splitters = {str(k): [int(x) for x in v] for k, v in d["splitters"].items()
                       if isinstance(v, list) and all(isinstance(x, int) for x in v)}
    if isinstance(d.get("last_folder"), str):
        s.last_folder = d["last_folder"]
    if isinstance(d.get("recent_files"), list):
        s.recent_files = [str(x) for x in d["recent_files"] if isinstance(x, str)][:MAX_RECENT]
    if isinstance(d.get("model_path"), str):
        s.model_path = d["model_path"]
    y = d.get("year_of_sale")
    if isinstance(y, int) and not isinstance(y, bool) and (y == 0 or 1950 <= y <= 2100):
        s.year_of_sale = y
    return s


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically; raises OSError when the config folder is not writable."""
    p = path or settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(settings), f, indent=2)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
