"""Every stage in order on the loopback listing site, ending in `carvalue predict` on the model
file the run exported (tests/dataset/end_to_end.py, smallest settings: about a minute and a half
on a busy 2-core machine, most of it three interpreters importing torch)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.fakesite import MAKES
from tests.dataset.end_to_end import run_pipeline

pytestmark = pytest.mark.slow  # every stage end to end: ~35 s on the 2-core machine


@pytest.mark.usefixtures("torch_threads_restored")
def test_scrape_to_predict_on_a_local_site(tmp_path: Path) -> None:
    r = run_pipeline(tmp_path, listings=36, machines=3, epochs=1, size=32)
    scraped = sum(sum(r[f"scrape {i}/3"]["listings"].values()) for i in range(3))  # type: ignore[union-attr]
    assert scraped == 36
    merged = r["merge"]
    assert merged["listings_new"] == 36 and merged["conflicts_total"] == 0
    assert merged["dedup"]["duplicate_groups"] == 1  # type: ignore[index]  # the dealer's stock photo
    assert r["verify"]["bad"] == 0
    assert r["filter apply"]["scored_total"] == merged["files_copied"]
    shards = r["shards"]
    assert shards["samples"] > 50 and shards["listings"] > 20  # type: ignore[operator]
    assert (tmp_path / "shards" / "index.json").is_file()
    assert "run folder:" in str(r["train"]["stdout"]) and r["train"]["from"] == str(tmp_path / "shards")
    exported = r["evaluate + export"]
    assert Path(str(exported["model_file"])) == tmp_path / "model.onnx" and exported["model_bytes"] > 100_000  # type: ignore[operator]

    out = r["predict"]
    assert Path(out["model"]["file"]) == tmp_path / "model.onnx"  # type: ignore[index]
    pred = out["photos"][0]["prediction"]  # type: ignore[index]
    assert math.isfinite(pred["median_price"]) and pred["median_price"] > 0
    vocabulary = {f"{make} {model}" for make, model in MAKES}
    assert {c["label"] for c in pred["make_models"]} <= vocabulary | {"Unknown"}
