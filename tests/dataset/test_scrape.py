"""The scraper against the loopback site: outcomes, faults, politeness, lasting failures, resume."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.fakesite import FakeSite, Faults
from core.dataset import database
from core.dataset.http_client import USER_AGENT
from core.dataset.image_store import ImageStore
from core.dataset.scrape import LastingFailure, Scraper
from tests.dataset.conftest import FIRST_ID, LAST_ID, fast_config

OK_IDS = set(range(FIRST_ID, LAST_ID)) - {1003, 1013, 1027, 1007, 1031, 1011, 1023}


def outcomes(conn: sqlite3.Connection) -> dict[int, str]:
    return dict(conn.execute("SELECT listing_id, outcome FROM attempts"))


def test_every_listing_gets_its_outcome(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, site = scraped
    conn = database.connect(db_path)
    got = outcomes(conn)
    assert set(got) == set(range(FIRST_ID, LAST_ID))
    assert {i for i, o in got.items() if o == "missing"} == {1003, 1013, 1027, 1007, 1031}  # 404 + "gone" page
    assert {i for i, o in got.items() if o == "invalid"} == {1011}  # malformed JSON
    assert {i for i, o in got.items() if o == "error"} == {1023}  # 500 on every retry
    assert {i for i, o in got.items() if o == "ok"} == OK_IDS  # incl. flaky 500, 429, stalled first try
    err = conn.execute("SELECT error, http_status FROM attempts WHERE listing_id = 1023").fetchone()
    assert err == ("HTTP 500", 500)
    assert "malformed" in conn.execute("SELECT error FROM attempts WHERE listing_id = 1011").fetchone()[0]
    assert conn.execute("SELECT COUNT(*) FROM listings").fetchone()[0] == len(OK_IDS)
    # The one-time faults really happened and were retried through.
    page = "/cars-for-sale/vehicledetails.xhtml?listingId={}".format
    requests = site.marks["after_scrape"]  # the session's scrape (the site is shared by several tests)
    for lid in (1002, 1019, 1005, 1009):  # flaky 500, flaky 500, 429 + Retry-After, stalled past the timeout
        assert requests[page(lid)] == 2
    assert requests[page(1023)] == 4  # 1 + 3 retries, then recorded as an error
    assert requests[page(1003)] == 1  # a 404 is an answer, not retried


def test_listing_fields_come_from_the_embedded_json(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, _, site = scraped
    conn = database.connect(db_path)
    row = conn.execute("SELECT title, price, make, model, year, mileage, trim, body_style, dealer_name, vin "
                       "FROM listings WHERE listing_id = 1001").fetchone()
    assert row == ("Used 2016 Toyota Camry & more", 5000 + 1001 * 7919 % 45000, "Toyota", "Camry", 2016,
                   1001 * 3371 % 150000, "LX", "Sedan", "Loopback Motors", "VIN00000000001001")


def test_photo_statuses_and_store_layout(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, site = scraped
    conn = database.connect(db_path)
    status = {(lid, url.rsplit("/", 1)[-1]): s for lid, url, s in
              conn.execute("SELECT listing_id, url, status FROM photos")}
    assert status[(1004, "p1004-1.jpg")] == "bad_image"  # truncated
    assert status[(1006, "p1006-0.jpg")] == "bad_image"  # HTML served as image/jpeg
    assert status[(1008, "p1008-2.jpg")] == "missing"  # 404
    assert status[(1010, "p1010-1.jpg")] == "stored"  # 500 once, then fine
    data_url = conn.execute("SELECT status FROM photos WHERE listing_id = 1001 AND url LIKE 'data:%'").fetchone()
    assert data_url == ("bad_url",)  # never fetched
    # The page lists p1001-1 first but names index 1 (p1001-0) primary: the primary photo goes first.
    page_first = site.listing_json(1001)["initialState"]["inventory"]["1001"]["images"]["sources"][0]["src"]  # type: ignore[index]
    assert page_first.endswith("/p1001-1.jpg")
    first = conn.execute("SELECT url FROM photos WHERE listing_id = 1001 AND photo_index = 0").fetchone()[0]
    assert first.endswith("/p1001-0.jpg")
    store = ImageStore(root)
    rows = conn.execute("SELECT sha256, width, height FROM photos WHERE status = 'stored'").fetchall()
    assert len(rows) > 60
    for sha, w, h in rows:
        path = store.path_for(sha)
        assert path.parent.name == sha[:2] and path.parent.parent == root
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.size == (w, h) and min(im.size) == 256
    # Stock photo shown by several listings: one file, several rows.
    stock = conn.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM photos WHERE url LIKE '%stock-dealer%'").fetchone()
    assert stock[0] >= 5 and stock[1] == 1


def test_politeness_user_agent_retry_after_and_rate(site: FakeSite, tmp_path: Path) -> None:
    conn = database.connect(tmp_path / "db.sqlite")
    Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site, workers=2)).run(np.array([1005]))
    assert site.user_agents == {USER_AGENT} and "CarValue" in USER_AGENT
    # The 429 said Retry-After: 1; the retry came at least that much later.
    t = site.request_times
    assert t[1] - t[0] >= 0.95
    site.request_times.clear()
    Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site, rate=20.0, workers=4)).run(np.arange(1040, 1046))
    gaps = np.diff(sorted(site.request_times))
    n = len(site.request_times)
    assert n >= 20 and (site.request_times[-1] - site.request_times[0]) >= (n - 1) / 20 * 0.9
    assert np.median(gaps) >= 0.04


def test_rerun_skips_final_outcomes_and_retries_errors(scraped: tuple[Path, Path, FakeSite]) -> None:
    db_path, root, site = scraped
    before = dict(site.requests)
    conn = database.connect(db_path)
    site.faults.always_500.clear()  # the site recovered
    try:
        summary = Scraper(conn, ImageStore(root), fast_config(site)).run(np.arange(FIRST_ID, LAST_ID))
    finally:
        site.faults.always_500.add(1023)
    assert summary.skipped_done == LAST_ID - FIRST_ID - 1 and summary.listings == {"ok": 1}
    pages = [k for k in site.requests if "listingId" in k and site.requests[k] != before.get(k, 0)]
    assert pages == ["/cars-for-sale/vehicledetails.xhtml?listingId=1023"]
    assert outcomes(conn)[1023] == "ok"


def test_failed_photos_are_retried_by_the_next_run(site: FakeSite, tmp_path: Path) -> None:
    site.faults.photo_faults["p1001-2"] = "404"
    conn = database.connect(tmp_path / "db.sqlite")
    store = ImageStore(tmp_path / "img")
    # A photo host that fails every attempt: recorded as an error row, listing still ok.
    site.faults.photo_faults["p1001-0"] = "always_500"
    original = site._handle

    def handle(h):  # type: ignore[no-untyped-def]
        if h.path.endswith("/p1001-0.jpg") and site.faults.photo_faults.get("p1001-0") == "always_500":
            site._count(h.path, "")
            from benchmarks.fakesite import _send
            return _send(h, 503, b"busy", "text/plain")
        return original(h)

    site._handle = handle  # type: ignore[method-assign]
    Scraper(conn, store, fast_config(site)).run(np.array([1001]))
    row = conn.execute("SELECT status, error FROM photos WHERE url LIKE '%p1001-0.jpg'").fetchone()
    assert row == ("error", "HTTP 503")
    assert outcomes(conn)[1001] == "ok"
    del site.faults.photo_faults["p1001-0"]
    summary = Scraper(conn, store, fast_config(site)).run(np.array([1001]))
    assert summary.photo_retries == 1 and summary.skipped_done == 1
    assert conn.execute("SELECT status FROM photos WHERE url LIKE '%p1001-0.jpg'").fetchone()[0] == "stored"


def test_lasting_failure_stops_the_run_with_a_clear_message(tmp_path: Path) -> None:
    site = FakeSite(Faults(always_500=set(range(2000, 2030)))).start()
    try:
        conn = database.connect(tmp_path / "db.sqlite")
        t0 = time.monotonic()
        with pytest.raises(LastingFailure, match=r"5 listings in a row failed with the same error \(listing page: HTTP 500"):
            Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site, max_same_error=5, workers=2)).run(
                np.arange(2000, 2030))
        assert time.monotonic() - t0 < 10
        n_attempted = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        assert 5 <= n_attempted < 30  # stopped early, and what it did is recorded (as retryable errors)
        assert {o for (o,) in conn.execute("SELECT outcome FROM attempts")} == {"error"}
        # The site comes back: the same command resumes and finishes.
        site.faults.always_500.clear()
        summary = Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site)).run(np.arange(2000, 2030))
        assert summary.listings == {"ok": 30}
    finally:
        site.stop()


def test_photo_host_down_is_a_lasting_failure_too(tmp_path: Path) -> None:
    site = FakeSite(Faults(photos_down=True, stock_every=0)).start()
    try:
        conn = database.connect(tmp_path / "db.sqlite")
        with pytest.raises(LastingFailure, match=r"every photo: HTTP 503"):
            Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site, max_same_error=4, workers=2)).run(
                np.arange(3000, 3016))
        # The listings are kept with their photo rows marked as errors; the next run retries those photos.
        errors = conn.execute("SELECT COUNT(*) FROM photos WHERE status = 'error'").fetchone()[0]
        assert errors >= 4 * 3
        site.faults.photos_down = False
        summary = Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site)).run(np.arange(3000, 3016))
        assert summary.photo_retries == errors and summary.photos["retried_stored"] == errors
        assert conn.execute("SELECT COUNT(*) FROM photos WHERE status = 'error'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'ok'").fetchone()[0] == 16
    finally:
        site.stop()


def test_connection_refused_is_a_lasting_failure(tmp_path: Path) -> None:
    site = FakeSite().start()
    url = site.listing_url_template()
    site.stop()  # nothing listens there any more
    conn = database.connect(tmp_path / "db.sqlite")
    from core.dataset.scrape import ScrapeConfig
    from tests.dataset.conftest import FAST

    config = ScrapeConfig(listing_url=url, workers=2, rate=0, policy=FAST, max_same_error=4, progress=False)
    with pytest.raises(LastingFailure, match="Connection refused"):
        Scraper(conn, ImageStore(tmp_path / "img"), config).run(np.arange(10))


def test_a_database_keeps_to_its_image_store(site: FakeSite, tmp_path: Path) -> None:
    conn = database.connect(tmp_path / "db.sqlite")
    Scraper(conn, ImageStore(tmp_path / "a"), fast_config(site)).run(np.array([1000]))
    with pytest.raises(database.DatabaseError, match="image store is"):
        Scraper(conn, ImageStore(tmp_path / "b"), fast_config(site)).run(np.array([1001]))


def test_shards_of_the_visit_order_partition_the_range() -> None:
    from core.dataset.ids import IdRange, Shard, visit_order

    ids = IdRange.parse("100:1100")
    parts = [visit_order(ids, 3, Shard(i, 4)).to_array() for i in range(4)]
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(100, 1100))
    assert np.array_equal(visit_order(ids, 3, Shard(1, 4)).to_array(), parts[1])  # deterministic
    assert not np.array_equal(visit_order(ids, 4).to_array(), visit_order(ids, 3).to_array())  # the seed matters
    first_tenth = visit_order(ids, 3).to_array()[:100]
    assert first_tenth.min() < 250 and first_tenth.max() > 950  # a partial run samples the whole range
    for bad in ("5:5", "a:b", "7", "-1:4"):
        with pytest.raises(ValueError, match="--ids"):
            IdRange.parse(bad)
    for bad in ("4/4", "x", "1/0", "1/2/3"):
        with pytest.raises(ValueError, match="--shard"):
            Shard.parse(bad)
