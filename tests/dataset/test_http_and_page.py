"""Polite HTTP (backoff, Retry-After, rate limit) and reading the listing page."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from benchmarks.fakesite import FakeSite
from core.dataset.http_client import RateLimiter, RetryPolicy, fetch, new_session, parse_retry_after
from core.dataset.listing_page import ListingParseError, ListingUnavailable, parse_listing_page
from tests.dataset.conftest import FAST


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    p = RetryPolicy(backoff_s=1.0, backoff_max_s=10.0)
    rng = random.Random(0)
    for attempt, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        waits = [p.backoff(attempt, rng) for _ in range(200)]
        assert base / 2 <= min(waits) and max(waits) <= base
        assert len(set(waits)) > 100  # jittered, so workers do not retry in lockstep


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_rate_limiter_spaces_request_starts() -> None:
    t = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s

    limiter = RateLimiter(4.0, clock=lambda: t[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    RateLimiter(0).acquire()  # unlimited: returns at once


def test_fetch_outcomes_against_the_site(site: FakeSite) -> None:
    session, limiter, rng = new_session(), RateLimiter(0), random.Random(0)
    waits: list[float] = []
    url = site.listing_url_template().format
    got = fetch(session, url(id=1005), FAST, limiter, rng, sleep=waits.append)  # 429 then fine
    assert got.ok and got.attempts == 2 and waits == [1.0]  # waited what Retry-After said
    got = fetch(session, url(id=1003), FAST, limiter, rng, sleep=waits.append)
    assert got.not_found and not got.ok and got.attempts == 1 and got.error is None  # 404: no retry
    got = fetch(session, url(id=1023), FAST, limiter, rng, sleep=waits.append)
    assert got.error == "HTTP 500" and got.attempts == FAST.retries + 1 and not got.ok
    got = fetch(session, url(id=1009), FAST, limiter, rng, sleep=lambda s: None)  # stalls past the timeout once
    assert got.ok and got.attempts == 2
    got = fetch(session, f"{site.base_url()}/photos/p1000-0.jpg", FAST, limiter, rng, max_bytes=1000)
    assert got.error is not None and "larger than 1000 bytes" in got.error and got.permanent  # not retried


def page(data: object, h1: str = "<h1>Used 2019 Honda Civic</h1>") -> str:
    return f"<html><body>{h1}<script>window.__BONNET_DATA__={json.dumps(data)};</script></body></html>"


def vehicle(**kw: object) -> dict[str, object]:
    return {"initialState": {"birf": {"pageData": {"page": {"vehicle": kw}}}}}


def test_page_fields_tolerate_the_sites_formats() -> None:
    x = parse_listing_page(page(vehicle(price="$21,995", makeName=["Honda"], modelName="Civic", car_year="2019",
                                        odometer="41,250 mi", color=["Blue"])), 5, "https://a.example/l?id=5")
    assert (x.price, x.make, x.model, x.year, x.mileage, x.exterior_color) == (21995.0, "Honda", "Civic", 2019,
                                                                               41250.0, "Blue")
    assert x.photo_urls == () and x.dealer_name is None
    y = parse_listing_page(page(vehicle(price=None, car_year=3000, odometer="n/a")), 5, "https://a.example/")
    assert (y.price, y.year, y.mileage, y.make) == (None, None, None, None)


def test_photo_urls_resolved_primary_first() -> None:
    data = vehicle()
    data["initialState"]["inventory"] = {"5": {"images": {"primary": 2, "sources": [  # type: ignore[index]
        {"src": "//cdn.example/a.jpg"}, {"src": "/b.jpg"}, {"src": "https://cdn.example/c.jpg"}, {"nosrc": 1}, "x"]}}}
    x = parse_listing_page(page(data), 5, "https://site.example/cars/l?id=5")
    assert x.photo_urls == ("https://cdn.example/c.jpg", "https://cdn.example/a.jpg", "https://site.example/b.jpg")


@pytest.mark.parametrize(("html", "error", "match"), [
    ("<html><body>gone</body></html>", ListingUnavailable, "no longer available"),
    ("<h1>a</h1><h1>b</h1>", ListingParseError, "one <h1>"),
    ("<h1>a</h1><script>var x = 1;</script>", ListingParseError, "no <script>"),
    ("<h1>a</h1><script>window.__BONNET_DATA__={\"a\": </script>", ListingParseError, "malformed"),
    ("<h1>a</h1><script>window.__BONNET_DATA__=[1,2]</script>", ListingParseError, "not an object"),
    ("<h1>a</h1><script>window.__BONNET_DATA__={\"initialState\": {}}</script>", ListingParseError, "no vehicle"),
])
def test_unreadable_pages_say_why(html: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_listing_page(html, 1, "https://a.example/")


def test_an_invalid_url_is_not_retried() -> None:
    got = fetch(new_session(), "http://", FAST, RateLimiter(0), random.Random(0), sleep=lambda s: None)
    assert got.attempts == 1 and got.error is not None and got.error.startswith("invalid URL")


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickling_server_meets_a_total_deadline(site: FakeSite, where: str) -> None:
    """One byte every 50 ms keeps every read well inside any per-read timeout; the page takes
    minutes that way.  The deadline covers the whole attempt, so it ends after 0.5 s."""
    getattr(site.faults, f"trickle_{where}").add(1001)
    site.faults.trickle_s = 0.05
    policy = RetryPolicy(retries=1, backoff_s=0.01, backoff_max_s=0.01, timeout_s=0.5)
    t0 = time.monotonic()
    got = fetch(new_session(), site.listing_url_template().format(id=1001), policy, RateLimiter(0),
                random.Random(0))
    elapsed = time.monotonic() - t0
    assert got.error == "deadline of 0.5 s exceeded" and not got.ok and not got.permanent
    assert got.attempts == 2  # a missed deadline is retried like any network trouble
    assert 1.0 <= elapsed < 4.0  # two 0.5 s deadlines; without one, the page takes about a minute


def test_the_deadline_spares_a_response_that_arrives_in_time(site: FakeSite) -> None:
    site.faults.trickle_body.add(1001)
    site.faults.trickle_s = 0.0  # sent byte by byte, but fast
    got = fetch(new_session(), site.listing_url_template().format(id=1001), RetryPolicy(retries=0, timeout_s=10),
                RateLimiter(0), random.Random(0))
    assert got.ok and got.content == site.listing_page(1001).encode()


def test_a_redirect_loop_is_a_permanent_failure_tried_once(site: FakeSite) -> None:
    site.faults.redirect_loop.add(1001)
    url = site.listing_url_template().format(id=1001)
    patient = RetryPolicy(retries=3, timeout_s=10.0)  # 31 requests must not miss the deadline on a busy machine
    got = fetch(new_session(), url, patient, RateLimiter(0), random.Random(0), sleep=lambda s: None)
    assert got.permanent and got.attempts == 1 and got.error == "redirect loop (more than 30 redirects)"
    assert site.requests[url.removeprefix(site.base_url())] == 31  # one attempt: the first request + 30 redirects


@pytest.mark.parametrize("url", ["http://[::1/x.jpg", "http://127.0.0.1:99999999/x", "http://a b/", "http:///x",
                                 "ftp://127.0.0.1/x"])
def test_a_url_that_cannot_be_fetched_is_a_permanent_failure(url: str) -> None:
    got = fetch(new_session(), url, FAST, RateLimiter(0), random.Random(0), sleep=lambda s: None)
    assert got.permanent and got.attempts == 1 and got.error is not None and got.error.startswith("invalid URL")
