"""The listing scraper: visit IDs, read each page, download its photos, record everything.

Worker threads (each with its own ``requests.Session``) fetch and process; the calling thread
is the only database writer and commits each listing with all its photo rows in one
transaction.  Photos are in the store before their rows are committed, so after a SIGKILL a
listing is either fully recorded or not at all (at worst its photos sit in the store unreferenced
and are rewritten, byte-identical, when the next run redoes it).  A rerun skips every ID with
a final outcome and retries the rest, plus any photo whose download failed.

Failures are data.  Whatever happens while handling one listing or photo (a page that breaks
the reader, a redirect loop, a value SQLite cannot store) is recorded as that listing's or
photo's outcome with the error, and the run goes on.  Failures that retrying cannot cure are
recorded as "failed", which a rerun skips (``--retry-failed`` tries them again); only trouble
with the store or the database itself (disk full, permissions) stops the run.
"""
# Over 400 lines: the Scraper's threads and its one-writer transactions, read in one place

from __future__ import annotations

import math
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
from core.dataset.ids import VisitOrder
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
    parse_listing_page,
    url_problem,
)
from core.dataset.text import describe
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
    retry_failed: bool = False  # also retry listings and photos recorded as "failed"

    def __post_init__(self) -> None:
        if "{id}" not in self.listing_url:
            raise ValueError(f"--listing-url must contain {{id}}, got {self.listing_url!r}")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.max_same_error < 1:
            raise ValueError("--max-same-error must be at least 1")
        if self.max_photos < 1:
            raise ValueError(f"--max-photos must be at least 1, got {self.max_photos}")
        if self.short_side < 1 or not 1 <= self.quality <= 100:
            raise ValueError(f"stored photos need a short side >= 1 and a quality of 1-100, got "
                             f"{self.short_side} and {self.quality}")
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(f"--rate must be a finite number >= 0, got {self.rate}")


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
        if self.outcome in (db.OUTCOME_ERROR, db.OUTCOME_FAILED):
            return f"listing page: {self.error}"
        if self.photos and all(p.status in (db.PHOTO_ERROR, db.PHOTO_FAILED) for p in self.photos):
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


class StoreWriteError(OSError):
    """The image store cannot be written (disk full, permissions): the run stops, the listing
    is not marked as failed."""


class Scraper:
    def __init__(self, conn: sqlite3.Connection, store: ImageStore, config: ScrapeConfig) -> None:
        self.conn = conn
        self.store = store
        self.config = config
        self.limiter = RateLimiter(config.rate)
        self._local = threading.local()
        self._stop = threading.Event()

    # ---- planning -------------------------------------------------------------------------

    def done_ids(self) -> np.ndarray:
        """The IDs that already have a final outcome, sorted (8 bytes each)."""
        final = tuple(o for o in db.FINAL_OUTCOMES if not (self.config.retry_failed and o == db.OUTCOME_FAILED))
        marks = ",".join("?" * len(final))
        return np.fromiter((r[0] for r in self.conn.execute(
            f"SELECT listing_id FROM attempts WHERE outcome IN ({marks}) ORDER BY listing_id", final)),
            dtype=np.int64)

    def pending(self, order: np.ndarray | VisitOrder) -> tuple[int, Iterator[int]]:
        """How many IDs of ``order`` already have a final outcome, and the others, lazily, in order
        (a VisitOrder is computed a chunk at a time: a billion IDs cost no more than a thousand)."""
        done = self.done_ids()
        if isinstance(order, VisitOrder):
            skipped, chunks = int(order.contains(done).sum()), order.chunks()
        else:
            skipped, chunks = int(_in_sorted(order, done).sum()), iter([np.asarray(order, dtype=np.int64)])

        def todo() -> Iterator[int]:
            for chunk in chunks:
                yield from chunk[~_in_sorted(chunk, done)].tolist()

        return skipped, todo()

    def failed_photos(self) -> list[PhotoRetry]:
        statuses = (db.PHOTO_ERROR, db.PHOTO_FAILED) if self.config.retry_failed else (db.PHOTO_ERROR,)
        marks = ",".join("?" * len(statuses))
        rows = self.conn.execute(f"SELECT listing_id, photo_index, url FROM photos WHERE status IN ({marks}) "
                                 "ORDER BY listing_id, photo_index", statuses)
        return [PhotoRetry(int(a), int(b), str(c)) for a, b, c in rows]

    # ---- the run --------------------------------------------------------------------------

    def run(self, order: np.ndarray | VisitOrder) -> ScrapeSummary:
        """Scrape every not-yet-final ID of ``order`` (and retry failed photos first)."""
        started = time.monotonic()
        db.remember_images_root(self.conn, self.store.root)
        summary = ScrapeSummary()
        retries = self.failed_photos()
        summary.skipped_done, todo = self.pending(order)
        summary.photo_retries = len(retries)
        tasks: Iterator[PhotoRetry | int] = chain(retries, todo)  # lazy: millions of IDs
        bar = tqdm(total=len(retries) + len(order) - summary.skipped_done, unit="task", dynamic_ncols=True, smoothing=0.05,
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
                        failed = photo.status in (db.PHOTO_ERROR, db.PHOTO_FAILED)
                        signature = f"photo: {photo.error}" if failed else None
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
                            "every listing is recorded with its outcome; the same command retries those that "
                            "failed with an error (add --retry-failed for those recorded as 'failed').")
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
        """One task's result; it raises only when the store cannot be written (StoreWriteError)."""
        if isinstance(task, PhotoRetry):
            try:
                return task, self._photo(task.index, task.url, {})
            except _Stopped:
                return task, PhotoResult(task.index, task.url, db.PHOTO_ERROR, error="run stopped")
        url = self.config.listing_url.format(id=task)
        try:
            return self._listing(task, url)
        except _Stopped:
            return ListingResult(task, db.OUTCOME_ERROR, url, error="run stopped")
        except StoreWriteError:
            raise  # stop the run; the listing is not its own failure
        except Exception as e:  # noqa: BLE001 - whatever this listing's data set off is recorded as its failure
            return ListingResult(task, db.OUTCOME_FAILED, url, error=describe(e))

    def _listing(self, listing_id: int, url: str) -> ListingResult:
        got = self._get(url)
        if got.not_found:
            return ListingResult(listing_id, db.OUTCOME_MISSING, url, got.status, f"HTTP {got.status}")
        if got.permanent:
            return ListingResult(listing_id, db.OUTCOME_FAILED, url, got.status, got.error)
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
        try:
            result = self._fetch_photo(index, url)
        except (_Stopped, StoreWriteError):
            raise  # the run is stopping / the store cannot be written
        except Exception as e:  # noqa: BLE001 - whatever this photo set off is recorded as its failure
            result = PhotoResult(index, url, db.PHOTO_FAILED, error=describe(e))
        seen[url] = result
        return result

    def _fetch_photo(self, index: int, url: str) -> PhotoResult:
        problem = url_problem(url)
        if problem is not None:
            return PhotoResult(index, url, db.PHOTO_BAD_URL, error=problem)
        got = self._get(url)
        if got.not_found:
            return PhotoResult(index, url, db.PHOTO_MISSING, got.status, f"HTTP {got.status}")
        if got.permanent:
            return PhotoResult(index, url, db.PHOTO_FAILED, got.status, got.error)
        if not got.ok or got.content is None:
            return PhotoResult(index, url, db.PHOTO_ERROR, got.status, got.error)
        try:
            encoded = encode_for_store(got.content, self.config.short_side, self.config.quality, url)
        except ImageLoadError as e:
            return PhotoResult(index, url, db.PHOTO_BAD_IMAGE, got.status, e.reason)
        try:
            digest = self.store.put(encoded.jpeg)
        except OSError as e:
            raise StoreWriteError(f"cannot write to the image store {self.store.root}: {e}") from e
        return PhotoResult(index, url, db.PHOTO_STORED, got.status, None, digest, encoded.width, encoded.height)

    # ---- writer side (calling thread only) --------------------------------------------------

    def _record_listing(self, r: ListingResult) -> None:
        """Commit the listing with its photos; a row SQLite refuses (a value it cannot store)
        makes the listing "failed" with the reason, so it is never left unrecorded."""
        try:
            self._write_listing(r)
        except (ValueError, OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                sqlite3.IntegrityError) as e:  # the transaction was rolled back
            with db.Transaction(self.conn) as c:
                c.execute("INSERT OR REPLACE INTO attempts(listing_id, outcome, http_status, error, attempted_at) "
                          "VALUES (?,?,?,?,?)", (r.listing_id, db.OUTCOME_FAILED, r.http_status,
                                                 f"cannot record the listing: {describe(e)}", time.time()))

    def _write_listing(self, r: ListingResult) -> None:
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


def _in_sorted(ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` occur in ``sorted_ids`` (binary search: no sort of either per call)."""
    if not len(sorted_ids):
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.asarray(sorted_ids[at] == ids)


def _insert_listing(c: sqlite3.Connection, x: Listing, source_url: str) -> None:
    c.execute(
        "INSERT OR REPLACE INTO listings(listing_id, source_url, title, price, make, model, year, mileage, trim, "
        "body_style, exterior_color, interior_color, drive_type, fuel_type, engine, vin, stock_number, "
        "dealer_name, dealer_website) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (x.listing_id, source_url, x.title, x.price, x.make, x.model, x.year, x.mileage, x.trim, x.body_style,
         x.exterior_color, x.interior_color, x.drive_type, x.fuel_type, x.engine, x.vin, x.stock_number,
         x.dealer_name, x.dealer_website))
