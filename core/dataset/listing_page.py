"""Read one listing page of the used-car site into a :class:`Listing`.

Facts about the page (from the seed's public scraper, unixpickle/car-data): the page at
``/cars-for-sale/vehicledetails.xhtml?listingId=<id>`` carries its data as JSON in a script
that starts with ``window.__BONNET_DATA__=``.  The vehicle sits at
``initialState.birf.pageData.page.vehicle`` (``price``, ``makeName``/``modelName``/``color``
as one-element lists, ``car_year``, ``odometer`` as text like ``"41,250 mi"``, ``vin``,
``stockNumber``); the inventory item at ``initialState.inventory.<id>`` has ``engine``,
``exteriorColorSimple``, ``interiorColorSimple``, ``driveGroup``, ``fuelType`` and the photos in
``images.sources[].src`` (``images.primary`` is the index of the main photo, which goes first);
dealers sit in ``initialState.owners``.  A page without an ``<h1>`` is the site's "this car is
no longer available" page.  Trim and body style are read when present (``trim``,
``bodyStyles``), else left empty.

The page is outside input: whatever it holds, parsing either returns a :class:`Listing` whose
fields are sane (numbers finite and non-negative or None, text that SQLite can store) or raises
ListingParseError / ListingUnavailable.  Numbers too big for a float, JSON nested too deep for
the decoder or a photo URL that cannot be parsed do not escape as other exceptions.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from core.dataset.text import one_line, storable

DATA_PREAMBLE = "window.__BONNET_DATA__="


class ListingParseError(ValueError):
    """The page is not a listing page we can read (a permanent outcome, not a network error)."""


class ListingUnavailable(Exception):
    """The site's "no longer available" page: a recorded outcome like a 404."""


@dataclass(frozen=True)
class Listing:
    listing_id: int
    title: str
    price: float | None  # dollars
    make: str | None
    model: str | None
    year: int | None
    mileage: float | None  # miles
    trim: str | None
    body_style: str | None
    exterior_color: str | None
    interior_color: str | None
    drive_type: str | None
    fuel_type: str | None
    engine: str | None
    vin: str | None
    stock_number: str | None
    dealer_name: str | None
    dealer_website: str | None
    photo_urls: tuple[str, ...]  # absolute http(s) URLs, main photo first


class _PageScanner(HTMLParser):
    """Collects the text of every <h1> and every <script> in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None
        self._buf: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "script") and self._in is None:
            self._in, self._buf = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            text = "".join(self._buf)
            (self.headings if tag == "h1" else self.scripts).append(text)
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._buf.append(data)


def parse_listing_page(page: str, listing_id: int, page_url: str) -> Listing:
    """Parse a listing page; raises ListingUnavailable or ListingParseError."""
    scanner = _PageScanner()
    try:
        scanner.feed(page)
        scanner.close()
    except AssertionError as e:  # html.parser's verdict on some malformed markup ("<![foo[")
        raise ListingParseError(f"page HTML cannot be parsed ({one_line(str(e), 100)})") from None
    if not scanner.headings:
        raise ListingUnavailable(f"listing {listing_id} is no longer available")
    if len(scanner.headings) != 1:
        raise ListingParseError(f"expected one <h1> title, found {len(scanner.headings)}")
    title = one_line(html.unescape(scanner.headings[0]), limit=1000)
    data = _page_json(scanner.scripts)
    state = data.get("initialState")
    if not isinstance(state, dict):
        raise ListingParseError("page JSON has no initialState object")
    vehicle = _path(state, "birf", "pageData", "page", "vehicle")
    if not isinstance(vehicle, dict):
        raise ListingParseError("page JSON has no vehicle at initialState.birf.pageData.page.vehicle")
    item = _inventory_item(state, listing_id)
    dealer = _first_owner(state)
    return Listing(
        listing_id=listing_id,
        title=title,
        price=_number(vehicle.get("price")),
        make=_first_text(vehicle.get("makeName")),
        model=_first_text(vehicle.get("modelName")),
        year=_year(vehicle.get("car_year")),
        mileage=_number(vehicle.get("odometer")),
        trim=_name(item.get("trim")),
        body_style=_name(item.get("bodyStyles")),
        exterior_color=_first_text(item.get("exteriorColorSimple")) or _first_text(vehicle.get("color")),
        interior_color=_first_text(item.get("interiorColorSimple")),
        drive_type=_first_text(item.get("driveGroup")),
        fuel_type=_first_text(item.get("fuelType")),
        engine=_first_text(item.get("engine")),
        vin=_first_text(vehicle.get("vin")),
        stock_number=_first_text(vehicle.get("stockNumber")),
        dealer_name=_first_text(dealer.get("name")),
        dealer_website=_first_text(_path(dealer, "website", "href")),
        photo_urls=_photo_urls(item.get("images"), page_url),
    )


def _page_json(scripts: list[str]) -> dict[str, Any]:
    for text in scripts:
        body = text.strip()
        if not body.startswith(DATA_PREAMBLE):
            continue
        body = body[len(DATA_PREAMBLE):].strip().rstrip(";")
        try:
            data = json.loads(body)
        except json.JSONDecodeError as e:
            raise ListingParseError(f"listing JSON is malformed ({e.msg} at line {e.lineno} column {e.colno})") from None
        except RecursionError:
            raise ListingParseError("listing JSON is nested too deeply to read") from None
        except ValueError as e:  # e.g. an integer longer than Python converts (4300 digits)
            raise ListingParseError(f"listing JSON cannot be read ({one_line(str(e), 100)})") from None
        if not isinstance(data, dict):
            raise ListingParseError("listing JSON is not an object")
        return data
    raise ListingParseError(f"no <script> starting with {DATA_PREAMBLE!r} in the page")


def _path(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _inventory_item(state: dict[str, Any], listing_id: int) -> dict[str, Any]:
    inventory = state.get("inventory")
    if not isinstance(inventory, dict) or not inventory:
        return {}
    item = inventory.get(str(listing_id))
    if not isinstance(item, dict):
        item = next((v for v in inventory.values() if isinstance(v, dict)), {})
    return item


def _first_owner(state: dict[str, Any]) -> dict[str, Any]:
    owners = state.get("owners")
    if isinstance(owners, dict):
        for owner in owners.values():
            if isinstance(owner, dict):
                return owner
    return {}


def _first_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = " ".join(storable(value).split())
    return text or None


def _name(value: Any) -> str | None:
    """Text from a string, a {"name": ...} object, or a list of either (first wins)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name")
    return _first_text(value)


def _number(value: Any) -> float | None:
    """A number from 21995, "21,995", "$21,995" or "41,250 mi"; None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("$", "")
        if text.endswith("mi"):
            text = text[:-2].strip()
        value = text
    elif not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)  # OverflowError for an int past 1e308, ValueError for junk text
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _year(value: Any) -> int | None:
    number = _number(value)
    if number is None or not 1886 <= number <= 2100 or not number.is_integer():
        return None
    return int(number)


def _photo_urls(images: Any, page_url: str) -> tuple[str, ...]:
    if not isinstance(images, dict) or not isinstance(images.get("sources"), list):
        return ()
    sources = list(images["sources"])
    primary = images.get("primary")
    if isinstance(primary, int) and not isinstance(primary, bool) and 0 <= primary < len(sources):
        sources.insert(0, sources.pop(primary))
    urls: list[str] = []
    for source in sources:
        src = source.get("src") if isinstance(source, dict) else None
        if not isinstance(src, str) or not src.strip():
            continue
        src = storable(src.strip())
        try:
            url = urljoin(page_url, src)  # also turns "//host/x.jpg" into "https://host/x.jpg"
        except ValueError:  # "http://[::1/x.jpg": kept as written; url_problem() says why it is not fetched
            url = src
        urls.append(url)
    return tuple(urls)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not downloaded, or None: only http(s) URLs with a host and a valid port
    are (no file://, data:, ftp:, unparsable hosts ...)."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # .port raises for "host:99999" or "host:x"
    except ValueError as e:
        return f"unparsable URL ({one_line(str(e), 80)})"
    if parts.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not host:
        return "URL has no host"
    return None


def is_fetchable_url(url: str) -> bool:
    return url_problem(url) is None
