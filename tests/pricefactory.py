"""Small hand-made ``price_model`` sections and model files carrying them (tests only: the
numbers are round and plausible, not fitted)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from core.pricing import CONDITIONS, VARIANT_KEYS
from training.testmodels import MAKE_MODELS, make_model_file, random_metadata

LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
# Roughly a normal with sigma 0.25 in log dollars (a factor ~1.4 across the middle half).
QUANTILES = (-0.58, -0.41, -0.32, -0.17, 0.0, 0.17, 0.32, 0.41, 0.58)
OFFSETS = {"like-new": 0.06, "excellent": 0.05, "good": 0.0, "fair": -0.5, "salvage": -0.3}
# (make/model, new price) of training.testmodels.MAKE_MODELS; None: no MSRP (as in Stanford Cars).
PRICES: dict[str, float | None] = {"Acura TL Sedan 2012": 35_000.0, "Audi TTS Coupe 2012": 46_000.0,
                                   "Ford F-450 Super Duty Crew Cab 2012": 52_000.0,
                                   "Geo Metro Convertible 1993": 9_000.0,
                                   "Hyundai Sonata Hybrid Sedan 2012": 26_000.0, "Unknown": None}


def variant(key: str) -> dict[str, Any]:
    return {"intercept": -0.05, "age_coefs": [-1.1, -0.45, 0.2],
            "mileage_coef": -0.3 if "mileage" in key else 0.0,
            "condition_offsets": dict(OFFSETS) if "condition" in key else {},
            "residual_levels": list(LEVELS), "residual_quantiles": list(QUANTILES)}


def price_section(make_models: tuple[str, ...] = MAKE_MODELS) -> dict[str, Any]:
    classes = []
    for name in make_models:
        price = PRICES.get(name)
        year = int(name.rsplit(" ", 1)[1]) if name.rsplit(" ", 1)[-1].isdigit() else None
        classes.append({"log_msrp": None if price is None else math.log(price), "model_year": year})
    assert set(OFFSETS) == set(CONDITIONS)
    return {"version": 1, "listings_year": 2021, "age_range": [0, 25], "age_scale": 10.0,
            # typical odometer: ~12,000 miles a year (log(miles + 1000) ~ cubic in age/10)
            "typical_miles": [8.86, 5.46, -3.41, 0.70],
            "variants": {k: variant(k) for k in VARIANT_KEYS},
            "edges": [2500, 5000, 7500, 10000, 15000, 20000, 25000, 30000, 40000, 50000, 60000],
            "classes": classes, "provenance": {"data": "hand-made for tests"}}


def make_priced_model_file(path: str | Path, seed: int = 0) -> Path:
    meta = dataclasses.replace(random_metadata(), price_model=price_section(), format_version=2)
    out, _ = make_model_file(path, seed=seed, metadata=meta)
    return out
