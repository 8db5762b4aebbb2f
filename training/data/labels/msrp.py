"""The MSRP (new price) of a Stanford class: ``car_features_msrp.csv`` and how a class matches it.

Each class (make, model, year) is joined to the median MSRP over the trims of the matched
make/model/year.  Model names differ between the two tables ("TTS Coupe" vs "TTS"), so the match
is: the MSRP model name that equals the Stanford name (``exact``), else the longest MSRP model
name that is a whole-word prefix of it (``prefix``); an entry of :data:`MODEL_ALIASES`
(``alias``) wins over a prefix match.  When the exact year is missing, the nearest year within
``max_year_gap`` is used (``+nearest_year``), its MSRP carried to the wanted year along the
table's own within-model MSRP trend (about +2-3 % a year).  MSRP rows of model years before 2001
are placeholders in that table (most are exactly $2,000), so they are never used: such classes
get no price.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FIRST_REAL_MSRP_YEAR = 2001  # car_features_msrp rows before this are placeholders (~$2,000)
MIN_PLAUSIBLE_MSRP = 5_000.0  # no real new car in the table costs less; below = placeholder

# (Stanford make, Stanford model) -> (MSRP-table make, MSRP-table model), for names that
# neither equal nor extend an MSRP model name.  Only equivalents, never "a similar car".
MODEL_ALIASES: dict[tuple[str, str], tuple[str, str]] = {
    ("Bentley", "Continental Supersports Conv. Convertible"): ("Bentley", "Continental Supersports Convertible"),
}


@dataclass(frozen=True)
class MsrpRow:
    make: str
    model: str
    year: int
    msrp: float


@dataclass(frozen=True)
class MsrpMatch:
    """How one (make, model, year) class found its MSRP, or why it did not."""

    make: str
    model: str
    year: int
    msrp: float | None
    method: str  # exact | prefix | alias | none  (+ "+nearest_year")
    matched_model: str = ""
    matched_year: int | None = None
    trims: int = 0  # MSRP rows (trims) the median was taken over
    note: str = ""


def load_msrp_table(path: str | Path) -> list[MsrpRow]:
    """Every row of ``car_features_msrp.csv`` (columns Make, Model, Year, MSRP), placeholders included."""
    rows: list[MsrpRow] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"Make", "Model", "Year", "MSRP"}
        if not need <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: needs columns {sorted(need)}, has {reader.fieldnames}")
        for line, r in enumerate(reader, start=2):
            try:
                rows.append(MsrpRow(r["Make"].strip(), r["Model"].strip(), int(r["Year"]), float(r["MSRP"])))
            except ValueError as e:
                raise ValueError(f"{path}:{line}: bad row ({e})") from e
    return rows


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


class MsrpTable:
    """MSRP rows indexed by make and model; placeholder rows are dropped on construction."""

    def __init__(self, rows: Iterable[MsrpRow], first_real_year: int = FIRST_REAL_MSRP_YEAR,
                 min_msrp: float = MIN_PLAUSIBLE_MSRP) -> None:
        self.by_model: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.models_by_make: dict[str, dict[str, str]] = defaultdict(dict)  # norm make -> norm model -> name
        self.placeholders = 0
        for r in rows:
            if r.year < first_real_year or r.msrp < min_msrp:
                self.placeholders += 1
                continue
            self.by_model[(_norm(r.make), _norm(r.model))][r.year].append(r.msrp)
            self.models_by_make[_norm(r.make)][_norm(r.model)] = r.model
        self.trend_per_year = self._within_model_trend()

    def _within_model_trend(self) -> float:
        """Yearly change of log MSRP within a model (pooled over models with 2+ years).

        Used to carry a nearest-year MSRP to the wanted year: MSRPs rise over time (inflation,
        equipment), so a 2007 car priced at its 2015 MSRP unadjusted would be over-priced.
        """
        dx: list[float] = []
        dy: list[float] = []
        for years in self.by_model.values():
            if len(years) < 2:
                continue
            ys = np.array(sorted(years), dtype=np.float64)
            logs = np.array([np.log(np.median(years[int(y)])) for y in ys])
            dx += list(ys - ys.mean())
            dy += list(logs - logs.mean())
        x, y = np.asarray(dx), np.asarray(dy)
        return float((x * y).sum() / (x * x).sum()) if len(x) and (x * x).sum() > 0 else 0.0

    def match(self, make: str, model: str, year: int, aliases: Mapping[tuple[str, str], tuple[str, str]] = MODEL_ALIASES,
              max_year_gap: int = 8) -> MsrpMatch:
        mk, md = _norm(make), _norm(model)
        candidates = self.models_by_make.get(mk, {})
        method, target_make, target = "none", mk, ""
        alias = aliases.get((make, model))
        if md in candidates:
            method, target = "exact", md
        elif alias is not None and (_norm(alias[0]), _norm(alias[1])) in self.by_model:
            # An alias is a deliberate choice: it wins over a shorter automatic prefix match.
            method, target_make, target = "alias", _norm(alias[0]), _norm(alias[1])
        else:
            prefixes = [m for m in candidates if md.startswith(m + " ")]
            if prefixes:
                method, target = "prefix", max(prefixes, key=len)
        if method == "none":
            why = "make not in the MSRP table" if not candidates else "no model name matches"
            return MsrpMatch(make, model, year, None, "none", note=why)
        years = self.by_model[(target_make, target)]
        shown = self.models_by_make[target_make][target]
        if year in years:
            used = year
        else:
            used = min(years, key=lambda y: (abs(y - year), -y))
            if abs(used - year) > max_year_gap:
                return MsrpMatch(make, model, year, None, "none", shown, None, 0,
                                 f"{shown}: nearest usable MSRP year {used} is more than {max_year_gap} years "
                                 f"away (MSRPs before {FIRST_REAL_MSRP_YEAR} are placeholders)")
            method += "+nearest_year"
        prices = years[used]
        # Carried from the nearest year to the class's year along the table's MSRP trend.
        msrp = float(np.median(prices)) * math.exp(self.trend_per_year * (year - used))
        note = "" if used == year else f"MSRP of {used} x exp({self.trend_per_year:.4f} x ({year}-{used}))"
        return MsrpMatch(make, model, year, round(msrp, 2), method, shown, used, len(prices), note)
