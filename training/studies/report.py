"""Markdown reports and small PNG figures for the studies.

Each study builds a :class:`Report` (headings, paragraphs, tables, figures) and writes it as
``<out>/<name>.md`` next to its PNGs, plus ``<out>/<name>.json`` holding the same numbers in a
machine-readable form (tests and later comparisons read that, never the Markdown).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.figure import Figure  # noqa: E402

FIGURE_DPI = 80  # keeps a 8x4.5-inch figure around 50-120 KB as PNG
MAX_PNG_BYTES = 200_000


def fmt(value: Any, digits: int = 3) -> str:
    """How numbers appear in reports: dollars as $12,345, fractions with ``digits`` decimals."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


@dataclass
class Report:
    name: str  # file stem: <out>/<name>.md
    title: str
    out_dir: Path
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.lines.append(f"# {self.title}\n")

    def heading(self, text: str, level: int = 2) -> None:
        self.lines.append(f"{'#' * level} {text}\n")

    def para(self, text: str) -> None:
        self.lines.append(text.strip() + "\n")

    def bullets(self, items: Sequence[str]) -> None:
        self.lines.append("".join(f"- {item}\n" for item in items))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
        out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in cells]
        self.lines.append("\n".join(out) + "\n")

    def figure(self, fig: Figure, stem: str, caption: str) -> Path:
        """Save ``fig`` as ``<out>/<name>_<stem>.png`` (closing it) and link it in the report."""
        path = self.out_dir / f"{self.name}_{stem}.png"
        save_png(fig, path)
        self.figures.append(path)
        self.lines.append(f"![{caption}]({path.name})\n\n*{caption}*\n")
        return path

    def write(self) -> Path:
        md = self.out_dir / f"{self.name}.md"
        md.write_text("\n".join(self.lines), encoding="utf-8")
        (self.out_dir / f"{self.name}.json").write_text(
            json.dumps(self.data, indent=1, sort_keys=True, default=_json_default), encoding="utf-8")
        return md


def save_png(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG, lowering the resolution until it is under MAX_PNG_BYTES."""
    dpi = FIGURE_DPI
    while True:
        fig.savefig(path, dpi=dpi, format="png")
        if path.stat().st_size <= MAX_PNG_BYTES or dpi <= 40:
            break
        dpi = int(dpi * 0.8)
    plt.close(fig)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
