"""Data pipeline benchmark; prints one JSON object.

1. Perceptual hashes per second on 256-px JPEGs (the store's format), draft-mode decode vs full
   decode, and their ratio (target: draft >= 2x).
2. Scrape throughput against the loopback listing site (benchmarks/fakesite.py, no faults)
   vs plain GETs of the very same URLs with the same number of threads and sessions (target:
   the pipeline within 2x of the network alone): what parsing, resizing, hashing, storing and
   SQLite cost on top of the downloads.

    python benchmarks/bench_pipeline.py [--photos 300] [--listings 60] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fakesite import FakeSite, Faults, car_photo  # noqa: E402
from core.dataset import database  # noqa: E402
from core.dataset.http_client import (  # noqa: E402
    USER_AGENT,
    RetryPolicy,  # noqa: E402
    new_session,
)
from core.dataset.image_store import ImageStore, encode_for_store  # noqa: E402
from core.dataset.listing_page import parse_listing_page  # noqa: E402
from core.dataset.phash import perceptual_hash_bytes  # noqa: E402
from core.dataset.scrape import ScrapeConfig, Scraper  # noqa: E402


def bench_phash(n: int, repeats: int) -> dict[str, float]:
    # Store-format inputs: camera-like photos shrunk to short side 256 and re-encoded, as scrape does.
    photos = [encode_for_store(car_photo(i, (640, 480))).jpeg for i in range(n)]

    def rate(draft: bool) -> float:
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for p in photos:
                perceptual_hash_bytes(p, draft=draft)
            best = min(best, time.perf_counter() - t)
        return n / best

    full = rate(False)
    draft = rate(True)
    return {"photos": n, "size": "341x256 JPEG q90", "hashes_per_s_draft": round(draft, 1),
            "hashes_per_s_full": round(full, 1), "draft_speedup": round(draft / full, 2)}


def _serve(conn: Connection, ids: list[int], photos_per_listing: int) -> None:
    """The loopback site in its own process, so it does not share a GIL with the client."""
    site = FakeSite(Faults(stock_every=0), photos_per_listing=photos_per_listing, max_concurrent=64).start()
    template = site.listing_url_template()
    page_urls = [template.format(id=i) for i in ids]
    photo_urls = [u for i, pu in zip(ids, page_urls, strict=True)
                  for u in parse_listing_page(site.listing_page(i), i, pu).photo_urls if u.startswith("http")]
    for i in ids:  # warm the photo cache so every run sees the same server
        for name in site.photo_names(i):
            site.photo_bytes(name)
    n_bytes = sum(len(site.photo_bytes(u.rsplit("/", 1)[-1][:-4])) for u in photo_urls)
    conn.send((template, page_urls + photo_urls, n_bytes))
    conn.recv()  # until the benchmark is done
    site.stop()


def bench_scrape(listings: int, workers: int, repeats: int) -> dict[str, float | int | str]:
    ids = list(range(5000, 5000 + listings))
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs, ids, 4), daemon=True)
    server.start()
    try:
        template, urls, n_bytes = ours.recv()
        local = threading.local()

        def get(url: str) -> int:
            s = getattr(local, "s", None)
            if s is None:
                s = local.s = new_session(USER_AGENT)
            r = s.get(url, timeout=30)
            r.raise_for_status()
            return len(r.content)

        def plain() -> float:
            t = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(get, urls))
            return time.perf_counter() - t

        def pipeline() -> float:
            with tempfile.TemporaryDirectory() as d:
                conn = database.connect(Path(d) / "db.sqlite")
                config = ScrapeConfig(listing_url=template, workers=workers, rate=0,
                                      policy=RetryPolicy(retries=2, timeout_s=30), progress=False)
                t = time.perf_counter()
                summary = Scraper(conn, ImageStore(Path(d) / "images"), config).run(np.array(ids))
                dt = time.perf_counter() - t
                conn.close()
                assert summary.listings == {"ok": listings}, summary.as_dict()
                return dt

        plain()  # warm-up (connections, caches)
        plain_s = min(plain() for _ in range(repeats))
        pipe_s = min(pipeline() for _ in range(repeats))
    finally:
        ours.send("stop")
        server.join(10)
    return {"listings": listings, "requests": len(urls), "photo_bytes": n_bytes, "workers": workers,
            "server": "benchmarks/fakesite.py in its own process, 480x360 JPEG photos",
            "plain_get_s": round(plain_s, 3), "pipeline_s": round(pipe_s, 3),
            "plain_requests_per_s": round(len(urls) / plain_s, 1),
            "pipeline_requests_per_s": round(len(urls) / pipe_s, 1),
            "pipeline_listings_per_s": round(listings / pipe_s, 1),
            "pipeline_over_plain": round(pipe_s / plain_s, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", type=int, default=300)
    p.add_argument("--listings", type=int, default=60)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    result = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": __import__("os").cpu_count()},
        "phash": bench_phash(a.photos, a.repeats),
        "scrape": bench_scrape(a.listings, a.workers, a.repeats),
    }
    result["targets_met"] = {"draft_at_least_2x": result["phash"]["draft_speedup"] >= 2.0,
                             "scrape_within_2x_of_plain_get": result["scrape"]["pipeline_over_plain"] <= 2.0}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
