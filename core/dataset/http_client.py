"""Polite HTTP GETs: a shared rate limit, a deadline per request, retries with backoff and
jitter, 429 Retry-After.

Nothing here raises for a failed download: :func:`fetch` returns a :class:`FetchResult` whose
``error`` says what went wrong (and ``permanent`` whether retrying could help), so the caller
records it as a row with a status.

The deadline is total: the headers and the whole body of one attempt (redirects included) must
arrive within ``timeout_s`` of its start.  A socket timeout alone bounds each read, so a server
that trickles a byte a second would hold a worker for as long as it likes; here a timer shuts
the attempt's connection down when the deadline passes, which ends a blocked read at once.
Connecting (TCP, and the TLS handshake, which runs before the socket can be handed over) is
bounded by the same number of seconds as a connect/read timeout.
"""

from __future__ import annotations

import email.utils
import math
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from core.dataset.text import describe

USER_AGENT = "CarValue-dataset/0.1 (research scraper for the CarValue used-car price model; polite, rate-limited)"
MAX_BODY_BYTES = 40 * 1024 * 1024
MAX_TIMEOUT_S = 3600.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
NOT_FOUND_STATUSES = frozenset({404, 410})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 6  # further attempts after the first
    backoff_s: float = 1.0  # first backoff; doubles each retry
    backoff_max_s: float = 120.0
    timeout_s: float = 30.0  # deadline of each attempt: connect, headers and body together
    max_retry_after_s: float = 600.0  # a longer Retry-After is capped (and the run goes on)

    def __post_init__(self) -> None:
        """Refuse numbers no run can use: a NaN backoff waits forever, a zero or infinite
        deadline fails every request (``threading.Timer`` cannot wait an infinite time)."""
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= MAX_TIMEOUT_S):
            raise ValueError(f"timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} s, got {self.timeout_s}")
        for name in ("backoff_s", "backoff_max_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")

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
    permanent: bool = False  # retrying cannot help (a redirect loop, an unusable URL): record it as final

    @property
    def ok(self) -> bool:
        return self.error is None and not self.not_found


def new_session(user_agent: str = USER_AGENT) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    adapter = _DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# ---- the per-attempt deadline ---------------------------------------------------------------

_current = threading.local()  # .deadline: the _Deadline of the attempt running on this thread


class _Deadline:
    """One attempt's deadline.  The socket each request of the attempt is sent on registers
    itself here (from the thread running the attempt); when the deadline passes, a timer thread
    shuts that socket down, so a read blocked on a trickling server returns at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.deadline = None

    def attach(self, sock: object) -> None:
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired:
            _shut_down(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        # The plain socket call, also for TLS: it wakes the reading thread without touching the
        # SSL object that thread is using.  The response reads through its own reference to the
        # socket (http.client drops the connection's when the server says "Connection: close").
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        return  # already closed: nothing left to interrupt


class _DeadlineHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # connects first if needed
        _attach(self)


class _DeadlineHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)
        _attach(self)


def _attach(conn: HTTPConnection) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.attach(conn.sock)


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections register with the running attempt's deadline.
    (Behind a SOCKS proxy the deadline is checked between reads of the body only.)"""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


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
    """GET ``url`` with retries, each attempt within ``policy.timeout_s`` in total; never raises
    for network or HTTP trouble, nor for a URL that cannot be fetched."""
    status: int | None = None
    error = "no attempt made"
    attempt = 0
    for attempt in range(policy.retries + 1):
        limiter.acquire()
        wait: float | None = None
        with _Deadline(policy.timeout_s) as deadline:
            try:
                with session.get(url, timeout=policy.timeout_s, stream=True, allow_redirects=True) as resp:
                    status = resp.status_code
                    if status == 200:
                        body = _read_capped(resp, max_bytes, deadline)
                        if deadline.expired:  # the shutdown may end a body of unknown length "cleanly"
                            raise requests.Timeout
                        if body is None:
                            return FetchResult(url, status, None, f"body larger than {max_bytes} bytes", attempt + 1,
                                               permanent=True)
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
            except requests.TooManyRedirects:
                return FetchResult(url, None, None, f"redirect loop (more than {session.max_redirects} redirects)",
                                   attempt + 1, permanent=True)
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as e:
                return FetchResult(url, None, None, f"invalid URL ({type(e).__name__})", attempt + 1, permanent=True)
            except requests.RequestException as e:
                status, error = None, _failure(e, deadline)
            except ValueError as e:  # a URL (or a redirect's Location) that cannot even be parsed
                return FetchResult(url, None, None, f"invalid URL ({describe(e, 120)})", attempt + 1,
                                   permanent=True)
        if attempt < policy.retries:
            sleep(wait if wait is not None else policy.backoff(attempt, rng))
    return FetchResult(url, status, None, error, attempt + 1)


def _failure(e: requests.RequestException, deadline: _Deadline) -> str:
    """A short, stable description of a failed attempt (a run of identical ones is a lasting failure)."""
    if deadline.expired or isinstance(e, requests.Timeout):  # socket timeouts equal the deadline: the same event
        return f"deadline of {deadline.seconds:g} s exceeded"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return "connection broken mid-response"
    if isinstance(e, requests.ConnectionError):
        return f"connection error ({_root_cause(e)})"
    return f"request failed ({type(e).__name__})"


def _read_capped(resp: requests.Response, max_bytes: int, deadline: _Deadline) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_content(chunk_size=65536):
        if deadline.expired:
            raise requests.Timeout
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
