"""A loopback stand-in for the used-car listing site, with the faults a real scrape meets.

Pages are shaped like the real site's: an ``<h1>`` title and the listing JSON in a
``window.__BONNET_DATA__=`` script, vehicle data under ``initialState.birf.pageData.page.vehicle``
and photos under ``initialState.inventory.<id>.images``.  The server binds 127.0.0.1 only,
serves at most ``max_concurrent`` requests at once, and stops with the fixture.

Everything is deterministic: a listing's content and faults depend only on its ID, and
"transient" faults fail the first request(s) for a URL and then succeed.  Used by
benchmarks/bench_pipeline.py and the data pipeline's tests (tests/dataset/); it lives here, not
under tests/, because nothing outside the tests may import them.
"""

from __future__ import annotations

import functools
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image, ImageDraw

LISTING_PATH = "/cars-for-sale/vehicledetails.xhtml"
MAKES = (("Honda", "Civic"), ("Toyota", "Camry"), ("Ford", "F-150"), ("BMW", "3 Series"), ("Tesla", "Model 3"))


@dataclass
class Faults:
    """Which IDs / photos misbehave, and how."""

    not_found: set[int] = field(default_factory=set)  # page 404
    unavailable: set[int] = field(default_factory=set)  # "no longer available" page (no <h1>)
    malformed_json: set[int] = field(default_factory=set)
    flaky_500: set[int] = field(default_factory=set)  # page 500 on the first request, then fine
    always_500: set[int] = field(default_factory=set)  # page 500 every time
    rate_limited: set[int] = field(default_factory=set)  # page 429 + Retry-After on the first request
    slow_first: set[int] = field(default_factory=set)  # first request stalls past the client timeout
    retry_after_s: int = 1
    stall_s: float = 1.0
    photo_faults: dict[str, str] = field(default_factory=dict)  # name -> truncated|not_image|404|flaky_500|redirect_loop
    stock_every: int = 4  # every n-th listing also shows the dealer's stock photo (a duplicate)
    photos_down: bool = False  # the photo host answers 503 to everything
    pages: dict[int, str] = field(default_factory=dict)  # listing id -> page served instead (hostile content)
    redirect_loop: set[int] = field(default_factory=set)  # the page redirects to itself, forever
    trickle_headers: set[int] = field(default_factory=set)  # status line and headers one byte at a time
    trickle_body: set[int] = field(default_factory=set)  # headers at once, then the body one byte at a time
    trickle_s: float = 0.05  # between trickled bytes


def default_faults() -> Faults:
    return Faults(
        not_found={1003, 1013, 1027},
        unavailable={1007, 1031},
        malformed_json={1011},
        flaky_500={1002, 1019},
        always_500={1023},
        rate_limited={1005},
        slow_first={1009},
        photo_faults={"p1004-1": "truncated", "p1006-0": "not_image", "p1008-2": "404", "p1010-1": "flaky_500"},
    )


@functools.lru_cache(maxsize=4096)
def car_photo(seed: int, size: tuple[int, int] = (480, 360), quality: int = 88) -> bytes:
    """A deterministic JPEG "car photo": a gradient sky and ground, and a coloured car-like box."""
    rng = np.random.default_rng(seed)
    w, h = size
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    arr = top * (1 - y) + bottom * y + 30 * np.sin(6 * x + seed) * np.ones((1, 1, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    colour = tuple(int(c) for c in rng.integers(0, 255, 3))
    x0, y0 = int(rng.uniform(0.05, 0.3) * w), int(rng.uniform(0.35, 0.55) * h)
    draw.rectangle((x0, y0, x0 + w // 2, y0 + h // 4), fill=colour)
    for cx in (x0 + w // 10, x0 + w // 2 - w // 10):
        draw.ellipse((cx - h // 12, y0 + h // 5, cx + h // 12, y0 + h // 5 + h // 6), fill=(20, 20, 20))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


class FakeSite:
    def __init__(self, faults: Faults | None = None, photos_per_listing: int = 3,
                 max_concurrent: int = 16, photo_size: tuple[int, int] = (480, 360)) -> None:
        self.faults = faults if faults is not None else default_faults()
        self.photos_per_listing = photos_per_listing
        self.photo_size = photo_size
        self.requests: Counter[str] = Counter()
        self.marks: dict[str, Counter[str]] = {}  # named snapshots of `requests`
        self.user_agents: set[str] = set()
        self.request_times: list[float] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._photo_cache: dict[str, bytes] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- content --------------------------------------------------------------------------

    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def listing_url_template(self) -> str:
        return f"{self.base_url()}{LISTING_PATH}?listingId={{id}}"

    def photo_names(self, listing_id: int) -> list[str]:
        names = [f"p{listing_id}-{k}" for k in range(self.photos_per_listing)]
        if self.faults.stock_every and listing_id % self.faults.stock_every == 0:
            names.append("stock-dealer")
        return names

    def photo_bytes(self, name: str) -> bytes:
        with self._lock:
            if name not in self._photo_cache:
                if name == "stock-dealer":
                    data = car_photo(7, self.photo_size)
                else:
                    lid, k = name[1:].split("-")
                    data = car_photo(int(lid) * 10 + int(k), self.photo_size)
                self._photo_cache[name] = data
            return self._photo_cache[name]

    def listing_json(self, listing_id: int) -> dict[str, object]:
        make, model = MAKES[listing_id % len(MAKES)]
        year = 2005 + listing_id % 18
        price = 5000 + (listing_id * 7919) % 45000
        names = self.photo_names(listing_id)
        sources: list[dict[str, object]] = [{"src": f"{self.base_url()}/photos/{n}.jpg", "alt": n} for n in names]
        if sources:  # the site uses protocol-relative URLs sometimes: keep one like that
            sources[0]["src"] = str(sources[0]["src"]).replace("http:", "", 1)
        if listing_id % 5 == 1:
            sources.append({"src": "data:image/png;base64,AAAA"})  # never fetched: not http(s)
        primary = 1 if len(sources) > 1 else 0
        if sources:  # the page lists the main photo at index `primary`; the scraper puts it first
            sources.insert(primary, sources.pop(0))
        return {
            "initialState": {
                "birf": {"pageData": {"page": {"vehicle": {
                    "price": price, "makeName": [make], "modelName": [model], "car_year": year,
                    "odometer": f"{(listing_id * 3371) % 150000:,} mi", "color": ["Blue"],
                    "vin": f"VIN{listing_id:014d}", "stockNumber": f"S{listing_id}",
                    "fuelEconomy": ["30", "38"],
                }}}},
                "inventory": {str(listing_id): {
                    "engine": "2.0L I4", "exteriorColorSimple": "Blue", "interiorColorSimple": "Black",
                    "driveGroup": "FWD", "fuelType": "Gasoline", "trim": {"name": "LX"},
                    "bodyStyles": [{"name": "Sedan"}],
                    "images": {"primary": primary, "sources": sources},
                }},
                "owners": {"dealer-1": {"name": "Loopback Motors", "website": {"href": "https://dealer.invalid"}}},
            }
        }

    def listing_page(self, listing_id: int) -> str:
        make, model = MAKES[listing_id % len(MAKES)]
        year = 2005 + listing_id % 18
        if listing_id in self.faults.unavailable:
            return ("<!DOCTYPE html><html><body><div class='gone'>This car is no longer available.</div>"
                    "<script>window.__BONNET_DATA__={\"initialState\":{}}</script></body></html>")
        blob = json.dumps(self.listing_json(listing_id)).replace("</", "<\\/")
        if listing_id in self.faults.malformed_json:
            blob = blob[: len(blob) // 2]  # cut off mid-object
        return (f"<!DOCTYPE html><html><head><title>Used {year} {make} {model}</title>"
                "<script>window.analytics=[];</script></head><body>"
                f"<h1 class=\"title\">Used {year} {make} {model} &amp; more</h1>"
                f"<script>window.__BONNET_DATA__={blob}</script></body></html>")

    # ---- server ---------------------------------------------------------------------------

    def start(self) -> FakeSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def do_GET(self) -> None:
                with site._slots:
                    site._handle(self)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakesite", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _count(self, key: str, user_agent: str) -> int:
        with self._lock:
            self.requests[key] += 1
            self.user_agents.add(user_agent)
            self.request_times.append(time.monotonic())
            return self.requests[key]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        n = self._count(h.path, h.headers.get("User-Agent", ""))
        if parts.path == LISTING_PATH:
            ids = parse_qs(parts.query).get("listingId", [])
            if len(ids) != 1 or not ids[0].isdigit():
                return _send(h, 400, b"bad listingId", "text/plain")
            lid = int(ids[0])
            f = self.faults
            if lid in f.slow_first and n == 1:
                time.sleep(f.stall_s)
            if lid in f.not_found:
                return _send(h, 404, b"<html><h1>Not found</h1></html>", "text/html")
            if lid in f.always_500 or (lid in f.flaky_500 and n == 1):
                return _send(h, 500, b"server error", "text/plain")
            if lid in f.rate_limited and n == 1:
                return _send(h, 429, b"slow down", "text/plain", {"Retry-After": str(f.retry_after_s)})
            if lid in f.redirect_loop:
                return _send(h, 302, b"", "text/plain", {"Location": h.path})
            page = (f.pages[lid] if lid in f.pages else self.listing_page(lid)).encode("utf-8", "surrogatepass")
            if lid in f.trickle_headers or lid in f.trickle_body:
                return _trickle(h, page, f.trickle_s, headers_too=lid in f.trickle_headers)
            return _send(h, 200, page, "text/html; charset=utf-8")
        if parts.path.startswith("/photos/") and parts.path.endswith(".jpg"):
            name = parts.path[len("/photos/"):-len(".jpg")]
            if not (name == "stock-dealer" or (name.startswith("p") and "-" in name)):
                return _send(h, 404, b"no such photo", "text/plain")
            if self.faults.photos_down:
                return _send(h, 503, b"photo service unavailable", "text/plain")
            fault = self.faults.photo_faults.get(name)
            if fault == "404":
                return _send(h, 404, b"no such photo", "text/plain")
            if fault == "flaky_500" and n == 1:
                return _send(h, 500, b"server error", "text/plain")
            if fault == "redirect_loop":
                return _send(h, 302, b"", "text/plain", {"Location": h.path})
            data = self.photo_bytes(name)
            if fault == "truncated":
                data = data[: len(data) // 3]
            elif fault == "not_image":
                data = b"<html><body>Image temporarily unavailable</body></html>"
            return _send(h, 200, data, "image/jpeg")
        return _send(h, 404, b"not found", "text/plain")


class _QuietServer(ThreadingHTTPServer):
    """Loopback only; handler threads are daemons; a client hanging up is not an error."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the scraper closed the connection (timeout, kill): expected in these tests
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
          headers: dict[str, str] | None = None) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (e.g. its timeout fired while we stalled): nothing to tell it


def _trickle(h: BaseHTTPRequestHandler, body: bytes, interval_s: float, headers_too: bool) -> None:
    """A 200 response sent one byte every ``interval_s`` (the body; with ``headers_too`` the
    status line and headers as well): each read of the client gets data well within any
    per-read timeout, so only a deadline on the whole request ends it."""
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    h.close_connection = True
    try:
        if not headers_too:
            h.wfile.write(head)
            head = b""
        data = head + body
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            time.sleep(interval_s)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up: that is what a deadline does


@contextmanager
def running(site: FakeSite) -> Iterator[FakeSite]:
    site.start()
    try:
        yield site
    finally:
        site.stop()
