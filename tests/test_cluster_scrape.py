"""carvalue-scrape-cluster on a Dask LocalCluster of 2 worker processes: the loopback site's range
in 3 shard tasks, merged, equals one unsharded scrape; a rerun changes nothing."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from core.dataset import database
from core.dataset.dedup import dedup
from core.dataset.ids import Shard
from core.dataset.image_store import ImageStore
from tests.dataset.conftest import FIRST_ID, LAST_ID
from tests.dataset.merge_helpers import SEED, STEADY, scrape_shard, snapshot, steady_site

pytest.importorskip("distributed", reason="the train extra's Dask (pip install .[train])")


def cluster(tmp_path: Path, url: str, *extra: str, scrape: tuple[str, ...] = ()) -> tuple[int, dict[str, object]]:
    from training.cluster_scrape import main

    args = ["--db", str(tmp_path / "merged.sqlite"), "--images", str(tmp_path / "merged-store"),
            "--parts", str(tmp_path / "parts"), "--ids", f"{FIRST_ID}:{LAST_ID}", "--seed", str(SEED),
            "--local-workers", "2", *extra, "--",
            "--listing-url", url, "--workers", "4", "--rate", "0", "--timeout", str(STEADY.timeout_s),
            "--retries", str(STEADY.retries), "--backoff", str(STEADY.backoff_s), "--backoff-max",
            str(STEADY.backoff_max_s), "--max-retry-after", "2", *scrape]
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(args)
    return rc, json.loads(buf.getvalue()) if buf.getvalue().strip() else {}


@pytest.mark.slow  # a local Dask cluster scrapes and merges: ~25 s
def test_a_local_cluster_scrapes_the_range_and_merges_it(tmp_path: Path) -> None:
    site = steady_site()
    try:
        rc, report = cluster(tmp_path, site.listing_url_template(), "--shards", "3")
        assert rc == 0, report
        shards = report["shards"]
        assert [s["shard"] for s in shards] == [0, 1, 2] and all(s["exit"] == 0 for s in shards)  # type: ignore[index, union-attr]
        assert sum(sum(s["listings"].values()) for s in shards) == LAST_ID - FIRST_ID  # type: ignore[index, union-attr]
        assert sorted(p.name for p in (tmp_path / "parts").glob("*.sqlite")) == [
            f"shard-{i}-of-3.sqlite" for i in range(3)]
        merged = report["merge"]
        assert merged["listings_new"] == LAST_ID - FIRST_ID and merged["conflicts_total"] == 0  # type: ignore[index]

        site.requests.clear()  # the same faults again for the one-machine scrape
        whole = scrape_shard(site, tmp_path, "unsharded", Shard(0, 1))
        conn = database.connect(whole[0])
        dedup(conn, ImageStore(whole[1]), progress=False)
        conn.close()
        got = snapshot(tmp_path / "merged.sqlite", tmp_path / "merged-store")
        assert got == snapshot(*whole)

        rc, again = cluster(tmp_path, site.listing_url_template(), "--shards", "3")  # resumes: nothing to do
        assert rc == 0
        # every listing but the one the site always fails (1023: an error, retried by each run)
        assert sum(s["skipped_already_done"] for s in again["shards"]) == LAST_ID - FIRST_ID - 1  # type: ignore[index, union-attr, misc]
        assert snapshot(tmp_path / "merged.sqlite", tmp_path / "merged-store") == got
    finally:
        site.stop()


def test_bad_scrape_flags_are_refused_before_any_worker_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = cluster(tmp_path, "http://127.0.0.1:9/x?id={id}", "--shards", "2", scrape=("--timeout", "nan"))
    assert rc == 2 and "--timeout" in capsys.readouterr().err
    assert not (tmp_path / "parts").exists()
