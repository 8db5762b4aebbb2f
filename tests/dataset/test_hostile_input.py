"""Malformed and hostile listing pages through the parser and the scraper's worker.

Whatever a page holds, one listing's trouble is recorded as that listing's outcome (failures are
data) and the run goes on; a failure that retrying cannot cure is not retried by every rerun.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fakesite import FakeSite, Faults
from core.dataset import database
from core.dataset import scrape as scrape_module
from core.dataset.http_client import RetryPolicy
from core.dataset.image_store import ImageStore
from core.dataset.listing_page import (
    Listing,
    ListingParseError,
    ListingUnavailable,
    parse_listing_page,
    url_problem,
)
from core.dataset.scrape import Scraper
from tests.dataset.conftest import fast_config

ALL_OUTCOMES = {"ok", "missing", "invalid", "error", "failed"}
ALL_PHOTO_STATUSES = {"stored", "missing", "error", "failed", "bad_image", "bad_url", "lost"}
HUGE_INT = "1" + "0" * 400  # a valid JSON integer; float() of it overflows
TOO_MANY_DIGITS = "9" * 5000  # past Python's 4300-digit limit for int(str)
DEEP = "[" * 100_000 + "]" * 100_000
PATIENT = RetryPolicy(retries=3, backoff_s=0.01, backoff_max_s=0.05, timeout_s=10.0)


@pytest.fixture(scope="module")
def quiet_site() -> Iterator[FakeSite]:
    """A site without faults (hostile pages are put in per test) and without stock photos."""
    site = FakeSite(Faults(stock_every=0)).start()
    yield site
    site.stop()


def hostile_page(site: FakeSite, listing_id: int, price: str | None = None, odometer: str | None = None,
                 make: str | None = None, photo_src: str | None = None, vehicle_extra: str | None = None,
                 before_h1: str = "") -> str:
    """The site's real page for ``listing_id`` with raw JSON text spliced into chosen fields."""
    data = site.listing_json(listing_id)
    vehicle = data["initialState"]["birf"]["pageData"]["page"]["vehicle"]  # type: ignore[index]
    raw: dict[str, str] = {}
    for key, text in (("price", price), ("odometer", odometer), ("makeName", make), ("extra", vehicle_extra)):
        if text is not None:
            vehicle[key] = f"@@{key}@@"
            raw[f'"@@{key}@@"'] = text
    if photo_src is not None:
        sources = data["initialState"]["inventory"][str(listing_id)]["images"]["sources"]  # type: ignore[index]
        sources.append({"src": photo_src})
    blob = json.dumps(data)
    for placeholder, text in raw.items():
        blob = blob.replace(placeholder, text)
    return (f"<html><body>{before_h1}<h1>Used car</h1>"
            f"<script>window.__BONNET_DATA__={blob}</script></body></html>")


def test_hostile_listings_are_recorded_and_the_run_goes_on(quiet_site: FakeSite, tmp_path: Path) -> None:
    site = quiet_site
    pages = {
        5001: hostile_page(site, 5001, price=HUGE_INT, odometer="-1e400"),
        5002: hostile_page(site, 5002, price="1e400", odometer=json.dumps("1" + "0" * 400 + " mi")),
        5003: hostile_page(site, 5003, price=TOO_MANY_DIGITS),
        5004: hostile_page(site, 5004, vehicle_extra=DEEP),
        5005: hostile_page(site, 5005, photo_src="http://[::1/x.jpg"),
        5006: hostile_page(site, 5006, make=r'["\ud800 Motors"]'),  # a lone surrogate, as JSON spells it
        5007: hostile_page(site, 5007, before_h1="<![foo[ x ]]>"),  # html.parser asserts on this
    }
    site.faults.pages.update(pages)
    ids = np.array([5000, *pages, 5008])
    conn = database.connect(tmp_path / "db.sqlite")
    try:
        summary = Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site, policy=PATIENT)).run(ids)
        outcome = dict(conn.execute("SELECT listing_id, outcome FROM attempts"))
        error = dict(conn.execute("SELECT listing_id, error FROM attempts"))
        assert set(outcome) == set(ids.tolist())  # every listing recorded
        assert outcome[5000] == outcome[5008] == "ok"  # its neighbours were not hurt
        row = conn.execute("SELECT price, mileage FROM listings WHERE listing_id = 5001").fetchone()
        assert outcome[5001] == "ok" and row == (None, None)  # unreadable numbers are unknown, not a crash
        row = conn.execute("SELECT price, mileage FROM listings WHERE listing_id = 5002").fetchone()
        assert outcome[5002] == "ok" and row == (None, None)
        assert outcome[5003] == "invalid" and "cannot be read" in error[5003]
        assert outcome[5004] == "invalid" and "nested too deeply" in error[5004]
        assert outcome[5005] == "ok"
        bad = conn.execute("SELECT status, error, url FROM photos WHERE listing_id = 5005 AND url LIKE '%[::1%'")
        assert bad.fetchall() == [("bad_url", "unparsable URL (Invalid IPv6 URL)", "http://[::1/x.jpg")]
        assert conn.execute("SELECT COUNT(*) FROM photos WHERE listing_id = 5005 AND status = 'stored'").fetchone()[0]
        assert outcome[5006] == "ok"
        assert conn.execute("SELECT make FROM listings WHERE listing_id = 5006").fetchone()[0] == "? Motors"
        assert outcome[5007] == "invalid" and "HTML cannot be parsed" in error[5007]
        assert sum(summary.listings.values()) == len(ids)

        before = site.requests.copy()
        again = Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site)).run(ids)
        assert again.skipped_done == len(ids) and not again.listings  # nothing is retried forever
        assert site.requests == before
    finally:
        conn.close()
        for lid in pages:
            del site.faults.pages[lid]


def test_an_unexpected_failure_is_the_listings_and_final(quiet_site: FakeSite, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the reader raises for one listing is recorded as "failed" with the error; reruns
    skip it, --retry-failed tries it again."""
    real = scrape_module.parse_listing_page

    def reader(page: str, listing_id: int, url: str) -> Listing:
        if listing_id == 5101:
            raise RuntimeError("the reader met something new\non two lines")
        return real(page, listing_id, url)

    monkeypatch.setattr(scrape_module, "parse_listing_page", reader)
    site = quiet_site
    ids = np.arange(5100, 5103)
    conn = database.connect(tmp_path / "db.sqlite")
    try:
        Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site)).run(ids)
        rows = dict(conn.execute("SELECT listing_id, outcome || ': ' || error FROM attempts WHERE outcome != 'ok'"))
        assert rows == {5101: "failed: RuntimeError: the reader met something new on two lines"}
        page = "/cars-for-sale/vehicledetails.xhtml?listingId=5101"
        n = site.requests[page]
        assert Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site)).run(ids).skipped_done == 3
        assert site.requests[page] == n
        monkeypatch.setattr(scrape_module, "parse_listing_page", real)  # the reader was fixed
        summary = Scraper(conn, ImageStore(tmp_path / "img"), fast_config(site, retry_failed=True)).run(ids)
        assert summary.listings == {"ok": 1} and site.requests[page] == n + 1
    finally:
        conn.close()


def test_a_row_sqlite_refuses_makes_the_listing_failed(quiet_site: FakeSite, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = scrape_module.parse_listing_page

    def reader(page: str, listing_id: int, url: str) -> Listing:
        x = real(page, listing_id, url)
        return Listing(**{**x.__dict__, "title": "\ud800"})  # not encodable: SQLite cannot store it

    monkeypatch.setattr(scrape_module, "parse_listing_page", reader)
    conn = database.connect(tmp_path / "db.sqlite")
    try:
        Scraper(conn, ImageStore(tmp_path / "img"), fast_config(quiet_site)).run(np.array([5200, 5201]))
        rows = conn.execute("SELECT outcome, error FROM attempts ORDER BY listing_id").fetchall()
        assert [o for o, _ in rows] == ["failed", "failed"]
        assert rows[0][1].startswith("cannot record the listing: UnicodeEncodeError")
        assert conn.execute("SELECT COUNT(*) FROM listings").fetchone()[0] == 0  # nothing half-written
        assert conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_redirect_loop_is_recorded_once_not_retried_every_run(tmp_path: Path) -> None:
    site = FakeSite(Faults(redirect_loop={6001}, photo_faults={"p6002-1": "redirect_loop"}, stock_every=0)).start()
    try:
        conn = database.connect(tmp_path / "db.sqlite")
        config = fast_config(site, policy=PATIENT)  # 31 requests must not miss the deadline on a busy machine
        Scraper(conn, ImageStore(tmp_path / "img"), config).run(np.arange(6000, 6003))
        assert conn.execute("SELECT outcome, error FROM attempts WHERE listing_id = 6001").fetchone() == (
            "failed", "redirect loop (more than 30 redirects)")
        photo = conn.execute("SELECT status, error FROM photos WHERE url LIKE '%p6002-1.jpg'").fetchone()
        assert photo == ("failed", "redirect loop (more than 30 redirects)")
        page, photo_path = "/cars-for-sale/vehicledetails.xhtml?listingId=6001", "/photos/p6002-1.jpg"
        assert site.requests[page] == 31 and site.requests[photo_path] == 31  # one attempt each
        summary = Scraper(conn, ImageStore(tmp_path / "img"), config).run(np.arange(6000, 6003))
        assert summary.skipped_done == 3 and summary.photo_retries == 0
        assert site.requests[page] == 31 and site.requests[photo_path] == 31  # the rerun left them alone
        conn.close()
    finally:
        site.stop()


def test_the_same_failure_on_every_listing_still_stops_the_run(tmp_path: Path) -> None:
    """A redirect loop on every page (a login wall, say) is a lasting failure, not a million
    listings each marked failed."""
    site = FakeSite(Faults(redirect_loop=set(range(7000, 7040)), stock_every=0)).start()
    try:
        conn = database.connect(tmp_path / "db.sqlite")
        with pytest.raises(scrape_module.LastingFailure, match="redirect loop.*--retry-failed"):
            config = fast_config(site, max_same_error=4, workers=1, policy=PATIENT)
            Scraper(conn, ImageStore(tmp_path / "img"), config).run(np.arange(7000, 7040))
        assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] < 40
        conn.close()
    finally:
        site.stop()


# ---- property tests ----------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=3)
                          | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=8)
raw_numbers = st.sampled_from([HUGE_INT, "-" + HUGE_INT, TOO_MANY_DIGITS, "1e400", "-1e400", "1e-400", "-0",
                               "NaN", "Infinity", "-Infinity", "1.5e308", "2023.0000000001", "2e3"])
raw_json = st.one_of(raw_numbers, json_value.map(json.dumps), st.text(max_size=12),  # the last: mostly not JSON
                     st.sampled_from([DEEP, "[" * 50 + "]" * 50, '"\\ud800"', '"\\udfff x \\ud83d"']))
nasty_urls = st.sampled_from(["http://[::1/x.jpg", "//[", "http://[::1]:99999/x.jpg", "http://a:b/x.jpg",
                              "http://127.0.0.1:99999999/x", "http:///x.jpg", "data:image/png;base64,AA",
                              "javascript:alert(1)", "ftp://127.0.0.1/x.jpg", "http://\ud800/x.jpg",
                              "/photos/p0-0.jpg?x=\x00", "https://", "http://127.0.0.1:1/x.jpg"])
# Relative sources resolve against the loopback site, so the scraper really fetches them; no
# generated host is ever looked up in DNS.
worker_srcs = st.one_of(nasty_urls, st.text(max_size=20).map(lambda t: "/photos/" + t),
                        st.sampled_from(["/photos/p9000-0.jpg", "/photos/p9000-1.jpg"]))
markup = st.sampled_from(["", "<![foo[ x ]]>", "<h1>second</h1>", "<script>", "</script>", "<!--", "&#xd800;",
                          "<h1>", "\x00", "<script>window.__BONNET_DATA__=[]</script>"])


@st.composite
def pages(draw: st.DrawFn, srcs: st.SearchStrategy[str]) -> str:
    vehicle: dict[str, object] = {}
    raw: dict[str, str] = {}
    for key in draw(st.sets(st.sampled_from(["price", "odometer", "car_year", "makeName", "modelName", "vin"]))):
        vehicle[key] = f"@@{key}@@"
        raw[f'"@@{key}@@"'] = draw(raw_json)
    sources = draw(st.lists(st.one_of(srcs.map(lambda s: {"src": s}), json_value), max_size=4))
    images = {"primary": draw(st.one_of(st.integers(-3, 6), json_value)), "sources": sources}
    item = {"images": images, "trim": draw(json_value), "bodyStyles": draw(json_value),
            "engine": draw(json_value)}
    data = {"initialState": {"birf": {"pageData": {"page": {"vehicle": vehicle}}},
                             "inventory": {"9000": item}, "owners": draw(json_value)}}
    blob = json.dumps(data)
    for placeholder, text in raw.items():
        blob = blob.replace(placeholder, text)
    title = draw(st.text(max_size=20).map(lambda t: f"<h1>{t}</h1>") | st.just(""))
    return (f"<html><body>{draw(markup)}{title}{draw(markup)}<script>window.__BONNET_DATA__={blob}"
            f"{draw(st.sampled_from(['', ';', ' ']))}</script>{draw(markup)}</body></html>")


def assert_storable(text: str | None) -> None:
    if text is not None:
        text.encode("utf-8")  # SQLite stores UTF-8: a lone surrogate would fail here


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=st.one_of(pages(st.one_of(nasty_urls, st.text(max_size=20))), st.text(max_size=200)))
def test_the_parser_returns_a_sane_listing_or_says_why_not(page: str) -> None:
    try:
        x = parse_listing_page(page, 9000, "https://site.example/cars/l?id=9000")
    except (ListingParseError, ListingUnavailable) as e:
        assert str(e)
        return
    assert x.price is None or (math.isfinite(x.price) and x.price >= 0)
    assert x.mileage is None or (math.isfinite(x.mileage) and x.mileage >= 0)
    assert x.year is None or 1886 <= x.year <= 2100
    for text in (x.title, x.make, x.model, x.trim, x.body_style, x.engine, x.vin, x.dealer_name, *x.photo_urls):
        assert_storable(text)
    for url in x.photo_urls:
        problem = url_problem(url)  # never raises
        assert problem is None or problem


@settings(max_examples=60, deadline=None)
@given(url=st.one_of(st.text(max_size=40), nasty_urls, st.text(max_size=20).map(lambda t: "http://" + t)))
def test_url_problem_never_raises(url: str) -> None:
    problem = url_problem(url)
    assert problem is None or isinstance(problem, str)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(page=pages(worker_srcs))
def test_the_worker_records_any_page_and_never_retries_it_forever(quiet_site: FakeSite, page: str) -> None:
    site, lid = quiet_site, 9000
    site.faults.pages[lid] = page
    try:
        with tempfile.TemporaryDirectory() as tmp:
            conn = database.connect(Path(tmp) / "db.sqlite")
            try:
                config = fast_config(site, workers=1, policy=PATIENT)  # no missed deadline on a busy machine
                summary = Scraper(conn, ImageStore(Path(tmp) / "img"), config).run(np.array([lid]))
                assert sum(summary.listings.values()) == 1
                (outcome,) = conn.execute("SELECT outcome FROM attempts WHERE listing_id = ?", (lid,)).fetchone()
                assert outcome in ALL_OUTCOMES - {"error"}  # the site answered: a final outcome
                statuses = {s for (s,) in conn.execute("SELECT status FROM photos")}
                assert statuses <= ALL_PHOTO_STATUSES
                assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
                again = Scraper(conn, ImageStore(Path(tmp) / "img"), config).run(np.array([lid]))
                assert again.skipped_done == 1 and not again.listings
            finally:
                conn.close()
    finally:
        del site.faults.pages[lid]


def test_fakesite_serves_a_page_byte_for_byte(quiet_site: FakeSite) -> None:
    """The hostile pages above reach the scraper as written (the fake site adds nothing)."""
    import requests

    quiet_site.faults.pages[9001] = "<h1>x</h1>\ud800"
    try:
        got = requests.get(quiet_site.listing_url_template().format(id=9001), timeout=5)
        assert got.content == "<h1>x</h1>\ud800".encode("utf-8", "surrogatepass")
    finally:
        del quiet_site.faults.pages[9001]


def test_sqlite3_is_what_refuses_lone_surrogates() -> None:
    """Why the parser cleans text: sqlite3 raises for it, which used to end the whole run."""
    conn = sqlite3.connect(":memory:")
    with pytest.raises(UnicodeEncodeError):
        conn.execute("SELECT ?", ("\ud800",))


def test_a_store_that_cannot_be_written_stops_the_run_and_marks_nothing_failed(
        quiet_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk trouble is the run's, not the listing's: the safety net must not swallow it."""
    import errno

    def full(self: ImageStore, data: bytes) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ImageStore, "put", full)
    conn = database.connect(tmp_path / "db.sqlite")
    try:
        with pytest.raises(scrape_module.StoreWriteError, match="cannot write to the image store.*No space left"):
            Scraper(conn, ImageStore(tmp_path / "img"), fast_config(quiet_site, policy=PATIENT)).run(
                np.arange(5300, 5304))
        assert conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'failed'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM photos WHERE status = 'failed'").fetchone()[0] == 0
    finally:
        conn.close()
    from core.dataset.cli import main

    args = ["scrape", "--db", str(tmp_path / "db.sqlite"), "--images", str(tmp_path / "img"), "--ids", "5300:5304",
            "--listing-url", quiet_site.listing_url_template(), "--no-progress", "--rate", "0"]
    assert main(args) == 4  # "cannot write": fix it and rerun
