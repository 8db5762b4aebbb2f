"""Polite HTTP GETs: a shared rate limit, timeouts, retries with backoff and jitter, 429 Retry-After.

Nothing here raises for a failed download: :func:`fetch` returns a :class:`FetchResult` whose
``error`` says what went wrong, so the caller records it as a row with a status.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

USER_AGENT = "CarValue-dataset/0.1 (research scraper for the CarValue used-car price model; polite, rate-limited)"
MAX_BODY_BYTES = 40 * 1024 * 1024
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
NOT_FOUND_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 6  # further attempts after the first
    backoff_s: float = 1.0  # first backoff; doubles each retry
    backoff_max_s: float = 120.0
    timeout_s: float = 30.0  # connect and read timeout of each attempt
    max_retry_after_s: float = 600.0  # a longer Retry-After is capped (and the run goes on)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so workers that
        failed together do not retry together."""
        base = min(self.backoff_max_s, self.backoff_s * (2 ** attempt))
        return base / 2 + rng.uniform(0, base / 2)


class RateLimiter:
    """At most ``rate`` request starts per second across all threads (0 = unlimited)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def acquire(self) -> None:
        if self.interval == 0:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


@dataclass(frozen=True)
class FetchResult:
    url: str
    status: int | None  # last HTTP status; None if no response arrived
    content: bytes | None  # body when ok
    error: str | None  # None when ok; else a short, stable description ("HTTP 503", "timeout")
    attempts: int
    not_found: bool = False  # 404/410: a recorded outcome, not an error

    @property
    def ok(self) -> bool:
        return self.error is None and not self.not_found


def new_session(user_agent: str = USER_AGENT) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    return session


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def fetch(session: requests.Session, url: str, policy: RetryPolicy, limiter: RateLimiter,
          rng: random.Random, sleep: Callable[[float], None] = time.sleep,
          max_bytes: int = MAX_BODY_BYTES) -> FetchResult:
    """GET ``url`` with retries; never raises for network or HTTP trouble."""
    status: int | None = None
    error = "no attempt made"
    attempt = 0
    for attempt in range(policy.retries + 1):
        limiter.acquire()
        wait: float | None = None
        try:
            with session.get(url, timeout=policy.timeout_s, stream=True, allow_redirects=True) as resp:
                status = resp.status_code
                if status == 200:
                    body = _read_capped(resp, max_bytes)
                    if body is None:
                        return FetchResult(url, status, None, f"body larger than {max_bytes} bytes", attempt + 1)
                    return FetchResult(url, status, body, None, attempt + 1)
                if status in NOT_FOUND_STATUSES:
                    return FetchResult(url, status, None, None, attempt + 1, not_found=True)
                error = f"HTTP {status}"
                if status not in RETRY_STATUSES:
                    return FetchResult(url, status, None, error, attempt + 1)
                if status == 429:
                    after = parse_retry_after(resp.headers.get("Retry-After"))
                    if after is not None:
                        wait = min(after, policy.max_retry_after_s)
        except requests.Timeout:
            status, error = None, "timeout"
        except requests.exceptions.ChunkedEncodingError:
            status, error = None, "connection broken mid-response"
        except requests.ConnectionError as e:
            status, error = None, f"connection error ({_root_cause(e)})"
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as e:  # retrying cannot help
            return FetchResult(url, None, None, f"invalid URL ({type(e).__name__})", attempt + 1)
        except requests.RequestException as e:
            status, error = None, f"request failed ({type(e).__name__})"
        if attempt < policy.retries:
            sleep(wait if wait is not None else policy.backoff(attempt, rng))
    return FetchResult(url, status, None, error, attempt + 1)


def _read_capped(resp: requests.Response, max_bytes: int) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_content(chunk_size=65536):
        total += len(chunk)
        if total > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _root_cause(e: BaseException) -> str:
    """A short, stable reason ("Connection refused"), so a run of identical failures is visible."""
    text = str(e)
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "Connection reset by peer", "Network is unreachable", "Remote end closed connection"):
        if marker in text:
            return marker
    return type(e).__name__
