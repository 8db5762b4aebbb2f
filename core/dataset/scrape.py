"""The listing scraper: visit IDs, read each page, download its photos, record everything.

Worker threads (each with its own ``requests.Session``) fetch and process; the calling thread
is the only database writer and commits each listing with all its photo rows in one
transaction.  Photos are in the store before their rows are committed, so after a SIGKILL a
listing is either fully recorded or not at all (at worst its photos sit in the store unreferenced
and are rewritten, byte-identical, when the next run redoes it).  A rerun skips every ID with
a final outcome and retries the rest, plus any photo whose download failed.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import requests
from tqdm import tqdm

from core.dataset import database as db
from core.dataset.http_client import (
    USER_AGENT,
    FetchResult,
    RateLimiter,
    RetryPolicy,
    fetch,
    new_session,
)
from core.dataset.image_store import (
    DEFAULT_QUALITY,
    DEFAULT_SHORT_SIDE,
    ImageStore,
    encode_for_store,
)
from core.dataset.listing_page import (
    Listing,
    ListingParseError,
    ListingUnavailable,
    is_fetchable_url,
    parse_listing_page,
)
from core.preprocess import ImageLoadError

DEFAULT_LISTING_URL = "https://www.kbb.com/cars-for-sale/vehicledetails.xhtml?listingId={id}"


@dataclass(frozen=True)
class ScrapeConfig:
    listing_url: str = DEFAULT_LISTING_URL  # "{id}" is replaced by the listing ID
    workers: int = 8
    rate: float = 8.0  # requests per second over all workers (0 = unlimited)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    short_side: int = DEFAULT_SHORT_SIDE
    quality: int = DEFAULT_QUALITY
    max_photos: int = 200  # per listing
    max_same_error: int = 25  # this many listings in a row failing alike stops the run
    user_agent: str = USER_AGENT
    progress: bool = True

    def __post_init__(self) -> None:
        if "{id}" not in self.listing_url:
            raise ValueError(f"--listing-url must contain {{id}}, got {self.listing_url!r}")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.max_same_error < 1:
            raise ValueError("--max-same-error must be at least 1")


@dataclass(frozen=True)
class PhotoResult:
    index: int
    url: str
    status: str
    http_status: int | None = None
    error: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class ListingResult:
    listing_id: int
    outcome: str
    source_url: str
    http_status: int | None = None
    error: str | None = None
    listing: Listing | None = None
    photos: tuple[PhotoResult, ...] = ()

    def failure_signature(self) -> str | None:
        """The error this listing failed with, for spotting a lasting failure; None if it did not."""
        if self.outcome == db.OUTCOME_ERROR:
            return f"listing page: {self.error}"
        if self.photos and all(p.status == db.PHOTO_ERROR for p in self.photos):
            errors = {p.error for p in self.photos}
            if len(errors) == 1:
                return f"every photo: {errors.pop()}"
        return None


@dataclass(frozen=True)
class PhotoRetry:
    """A photo of an already recorded listing whose download failed last time."""

    listing_id: int
    index: int
    url: str


@dataclass
class ScrapeSummary:
    listings: Counter[str] = field(default_factory=Counter)
    photos: Counter[str] = field(default_factory=Counter)
    photo_retries: int = 0
    skipped_done: int = 0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"listings": dict(self.listings), "photos": dict(self.photos), "photo_retries": self.photo_retries,
                "skipped_already_done": self.skipped_done, "elapsed_s": round(self.elapsed_s, 3)}


class LastingFailure(RuntimeError):
    """The same error for many listings in a row: the site or network is down, or we are blocked."""


class _Stopped(Exception):
    pass


class Scraper:
    def __init__(self, conn: sqlite3.Connection, store: ImageStore, config: ScrapeConfig) -> None:
        self.conn = conn
        self.store = store
        self.config = config
        self.limiter = RateLimiter(config.rate)
        self._local = threading.local()
        self._stop = threading.Event()

    # ---- planning -------------------------------------------------------------------------

    def pending_ids(self, order: np.ndarray) -> np.ndarray:
        """``order`` without the IDs that already have a final outcome (order kept)."""
        marks = ",".join("?" * len(db.FINAL_OUTCOMES))
        done = np.fromiter((r[0] for r in self.conn.execute(
            f"SELECT listing_id FROM attempts WHERE outcome IN ({marks})", db.FINAL_OUTCOMES)), dtype=np.int64)
        return order[~np.isin(order, done)] if len(done) else order

    def failed_photos(self) -> list[PhotoRetry]:
        rows = self.conn.execute("SELECT listing_id, photo_index, url FROM photos WHERE status = ? "
                                 "ORDER BY listing_id, photo_index", (db.PHOTO_ERROR,))
        return [PhotoRetry(int(a), int(b), str(c)) for a, b, c in rows]

    # ---- the run --------------------------------------------------------------------------

    def run(self, order: np.ndarray) -> ScrapeSummary:
        """Scrape every not-yet-final ID of ``order`` (and retry failed photos first)."""
        started = time.monotonic()
        db.remember_images_root(self.conn, self.store.root)
        summary = ScrapeSummary()
        retries = self.failed_photos()
        todo = self.pending_ids(order)
        summary.skipped_done = len(order) - len(todo)
        summary.photo_retries = len(retries)
        tasks: Iterator[PhotoRetry | int] = chain(retries, (int(i) for i in todo))  # lazy: millions of IDs
        bar = tqdm(total=len(retries) + len(todo), unit="task", dynamic_ncols=True, smoothing=0.05,
                   disable=not self.config.progress, file=sys.stderr, desc="scrape")
        streak_error: str | None = None
        streak: list[int] = []
        failure: LastingFailure | None = None
        window = self.config.workers * 4
        pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="scrape")
        pending: set[Future[ListingResult | tuple[PhotoRetry, PhotoResult]]] = set()
        try:
            while True:
                while len(pending) < window and failure is None:
                    task = next(tasks, None)
                    if task is None:
                        break
                    pending.add(pool.submit(self._work, task))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    result = fut.result()
                    if isinstance(result, ListingResult):
                        self._record_listing(result)
                        summary.listings[result.outcome] += 1
                        for p in result.photos:
                            summary.photos[p.status] += 1
                        signature, ident = result.failure_signature(), result.listing_id
                    else:
                        retry, photo = result
                        self._record_photo_retry(retry, photo)
                        summary.photos[f"retried_{photo.status}"] += 1
                        signature = f"photo: {photo.error}" if photo.status == db.PHOTO_ERROR else None
                        ident = retry.listing_id
                    bar.update(1)
                    if signature is not None and signature == streak_error:
                        streak.append(ident)
                    else:
                        streak_error, streak = signature, ([ident] if signature else [])
                    if failure is None and len(streak) >= self.config.max_same_error:
                        failure = LastingFailure(
                            f"stopped: {len(streak)} listings in a row failed with the same error "
                            f"({streak_error}; e.g. {self.config.listing_url.format(id=streak[-1])}). "
                            "The site may be down, blocking us, or the network is out. Nothing is lost: "
                            "failed listings are recorded as errors and the same command retries them.")
                        self._stop.set()
                        bar.set_postfix_str("stopping")
                if summary.listings:
                    bar.set_postfix(ok=summary.listings[db.OUTCOME_OK], missing=summary.listings[db.OUTCOME_MISSING],
                                    err=summary.listings[db.OUTCOME_ERROR], photos=summary.photos[db.PHOTO_STORED],
                                    refresh=False)
        except BaseException:
            self._stop.set()
            for fut in pending:
                fut.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        summary.elapsed_s = time.monotonic() - started
        if failure is not None:
            raise failure
        return summary

    # ---- worker side ----------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = new_session(self.config.user_agent)
            self._local.rng = random.Random()
        return session

    def _get(self, url: str) -> FetchResult:
        session = self._session()
        return fetch(session, url, self.config.policy, self.limiter, self._local.rng, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _work(self, task: PhotoRetry | int) -> ListingResult | tuple[PhotoRetry, PhotoResult]:
        if isinstance(task, PhotoRetry):
            try:
                return task, self._photo(task.index, task.url, {})
            except _Stopped:
                return task, PhotoResult(task.index, task.url, db.PHOTO_ERROR, error="run stopped")
        try:
            return self._listing(task)
        except _Stopped:
            return ListingResult(task, db.OUTCOME_ERROR, self.config.listing_url.format(id=task), error="run stopped")

    def _listing(self, listing_id: int) -> ListingResult:
        url = self.config.listing_url.format(id=listing_id)
        got = self._get(url)
        if got.not_found:
            return ListingResult(listing_id, db.OUTCOME_MISSING, url, got.status, f"HTTP {got.status}")
        if not got.ok or got.content is None:
            return ListingResult(listing_id, db.OUTCOME_ERROR, url, got.status, got.error)
        try:
            listing = parse_listing_page(got.content.decode("utf-8", errors="replace"), listing_id, url)
        except ListingUnavailable as e:
            return ListingResult(listing_id, db.OUTCOME_MISSING, url, got.status, str(e))
        except ListingParseError as e:
            return ListingResult(listing_id, db.OUTCOME_INVALID, url, got.status, str(e))
        seen: dict[str, PhotoResult] = {}
        photos = tuple(self._photo(i, u, seen) for i, u in enumerate(listing.photo_urls[: self.config.max_photos]))
        return ListingResult(listing_id, db.OUTCOME_OK, url, got.status, None, listing, photos)

    def _photo(self, index: int, url: str, seen: dict[str, PhotoResult]) -> PhotoResult:
        """Download, shrink and store one photo; the result always says what happened."""
        if url in seen:  # the same URL twice in one listing: one download
            prior = seen[url]
            return PhotoResult(index, url, prior.status, prior.http_status, prior.error, prior.sha256,
                               prior.width, prior.height)
        if not is_fetchable_url(url):
            result = PhotoResult(index, url, db.PHOTO_BAD_URL, error="not an http(s) URL")
        else:
            got = self._get(url)
            if got.not_found:
                result = PhotoResult(index, url, db.PHOTO_MISSING, got.status, f"HTTP {got.status}")
            elif not got.ok or got.content is None:
                result = PhotoResult(index, url, db.PHOTO_ERROR, got.status, got.error)
            else:
                try:
                    encoded = encode_for_store(got.content, self.config.short_side, self.config.quality, url)
                except ImageLoadError as e:
                    result = PhotoResult(index, url, db.PHOTO_BAD_IMAGE, got.status, e.reason)
                else:
                    digest = self.store.put(encoded.jpeg)
                    result = PhotoResult(index, url, db.PHOTO_STORED, got.status, None, digest,
                                         encoded.width, encoded.height)
        seen[url] = result
        return result

    # ---- writer side (calling thread only) --------------------------------------------------

    def _record_listing(self, r: ListingResult) -> None:
        with db.Transaction(self.conn) as c:
            if r.outcome == db.OUTCOME_OK and r.listing is not None:
                c.execute("DELETE FROM photos WHERE listing_id = ?", (r.listing_id,))
                _insert_listing(c, r.listing, r.source_url)
                c.executemany(
                    "INSERT INTO photos(listing_id, photo_index, url, status, http_status, error, sha256, width, height) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    [(r.listing_id, p.index, p.url, p.status, p.http_status, p.error, p.sha256, p.width, p.height)
                     for p in r.photos])
            c.execute("INSERT OR REPLACE INTO attempts(listing_id, outcome, http_status, error, attempted_at) "
                      "VALUES (?,?,?,?,?)", (r.listing_id, r.outcome, r.http_status, r.error, time.time()))

    def _record_photo_retry(self, retry: PhotoRetry, p: PhotoResult) -> None:
        with db.Transaction(self.conn) as c:
            c.execute("UPDATE photos SET status=?, http_status=?, error=?, sha256=?, width=?, height=? "
                      "WHERE listing_id=? AND photo_index=?",
                      (p.status, p.http_status, p.error, p.sha256, p.width, p.height, retry.listing_id, retry.index))


def _insert_listing(c: sqlite3.Connection, x: Listing, source_url: str) -> None:
    c.execute(
        "INSERT OR REPLACE INTO listings(listing_id, source_url, title, price, make, model, year, mileage, trim, "
        "body_style, exterior_color, interior_color, drive_type, fuel_type, engine, vin, stock_number, "
        "dealer_name, dealer_website) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (x.listing_id, source_url, x.title, x.price, x.make, x.model, x.year, x.mileage, x.trim, x.body_style,
         x.exterior_color, x.interior_color, x.drive_type, x.fuel_type, x.engine, x.vin, x.stock_number,
         x.dealer_name, x.dealer_website))
