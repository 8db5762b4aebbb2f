"""Other vehicles by leave-category-out: each fold's categories are left out of its head's training."""

from __future__ import annotations

import numpy as np
import pytest

from training.framing import vehicles_cv as cv
from training.framing import whole_car_data as wd
from training.framing import whole_car_head as wh


def part(rng: np.random.Generator, rows: list[tuple[str, int, str, int, float]]) -> dict[str, np.ndarray]:
    """(kind, label, group, n, centre): n samples of 8 features around ``centre``."""
    feat, kind, label, group = [], [], [], []
    for k, lab, g, n, c in rows:
        feat.append(rng.normal(c, 0.3, (n, 8)))
        kind += [k] * n
        label += [lab] * n
        group += [g] * n
    return {"feat": np.concatenate(feat).astype(np.float16), "kind": np.array(kind), "label": np.array(label),
            "group": np.array(group), "old_logit": np.zeros(len(kind), np.float32)}


@pytest.fixture()
def parts() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    common = [("tight", wd.WHOLE, "car", 60, 2.0), ("partial", wd.PART, "car", 60, 0.5),
              ("natural-not_car", wd.NO_CAR, "panda", 60, -2.0)]
    return {"train": part(rng, [*common, (cv.VEHICLE, wd.NO_CAR, "bikes", 12, -1.5),
                                (f"{cv.VEHICLE}-region", wd.NO_CAR, "bikes", 12, -1.5),
                                (cv.VEHICLE, wd.NO_CAR, "tram", 3, -1.5), (cv.VEHICLE, wd.NO_CAR, "kart", 2, -1.5)]),
            "val": part(rng, [*common, (cv.VEHICLE, wd.NO_CAR, "moped", 2, -1.5)]),
            "test": part(rng, [*common, (cv.VEHICLE, wd.NO_CAR, "forklift", 3, -1.5)])}


def test_each_fold_trains_without_its_categories(parts: dict[str, dict[str, np.ndarray]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert cv.folds(parts["train"]) == {"bikes": {"bikes"}, "2 smaller categories": {"kart", "tram"}}
    seen: list[set[str]] = []
    real = wh.train_head

    def recording(train: dict[str, np.ndarray], **kw: object) -> wh.Head:
        seen.append(set(train["group"].tolist()))
        return real(train, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cv, "train_head", recording)
    r = cv.measure(parts, epochs=3)
    assert "bikes" not in seen[0] and {"kart", "tram"} <= seen[0]  # the bikes fold: no bike photo or region
    assert "bikes" in seen[1] and not {"kart", "tram"} & seen[1]
    assert seen[2] >= {"bikes", "kart", "tram"}  # the shipped recipe's head for val/test categories
    assert [v["n"] for v in r.values()] == [12, 5, 2, 3, 22]
    assert 0.0 <= r["all"]["flagged"] <= 1.0
