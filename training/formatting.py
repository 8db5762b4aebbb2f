"""Number formatting and JSON cleaning shared by the evaluation report, the model card and the
studies' reports (one rule for what a missing value looks like: "n/a", or null in JSON)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.money import whole_dollars


def missing(v: float | None) -> bool:
    """None or NaN: a figure that was not measured."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v: float | None) -> str:
    """0.123 -> "12.3%"; None or NaN -> "n/a"."""
    return "n/a" if missing(v) else f"{100 * v:.1f}%"  # type: ignore[operator]


def usd(v: float | None) -> str:
    """12345.6 -> "$12,346" (core.money.whole_dollars); None or NaN -> "n/a"."""
    return "n/a" if missing(v) else whole_dollars(v)  # type: ignore[arg-type]


def json_safe(o: Any) -> Any:
    """Plain JSON values: NaN/inf -> None, numpy scalars -> Python numbers, tuples -> lists,
    keys -> strings."""
    if isinstance(o, float):
        return None if math.isnan(o) or math.isinf(o) else o
    if isinstance(o, dict):
        return {str(k): json_safe(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_safe(v) for v in o]
    if isinstance(o, np.floating | np.integer):
        return json_safe(o.item())
    return o
