"""Fixtures for the data pipeline tests: the loopback listing site and fast retry settings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.fakesite import FakeSite, default_faults
from core.dataset import database
from core.dataset.http_client import RetryPolicy
from core.dataset.image_store import ImageStore
from core.dataset.scrape import ScrapeConfig, Scraper

FIRST_ID, LAST_ID = 1000, 1036  # half-open: 36 listings, every fault of default_faults() inside
# Retries fast enough for tests; the stall (0.6 s) outlasts the timeout (0.3 s).
FAST = RetryPolicy(retries=3, backoff_s=0.01, backoff_max_s=0.05, timeout_s=0.3, max_retry_after_s=2.0)


@pytest.fixture
def torch_threads_restored() -> Iterator[None]:
    """Feature stages may set torch's thread count (--threads); keep that out of other tests."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def new_site() -> FakeSite:
    faults = default_faults()
    faults.stall_s = 0.6
    return FakeSite(faults).start()


@pytest.fixture
def site() -> Iterator[FakeSite]:
    """A fresh site: its one-time faults (flaky 500, 429, stall) have not fired yet."""
    s = new_site()
    yield s
    s.stop()


def fast_config(site: FakeSite, **kw: object) -> ScrapeConfig:
    args: dict[str, object] = dict(listing_url=site.listing_url_template(), workers=4, rate=0.0, policy=FAST,
                                   progress=False)
    args.update(kw)
    return ScrapeConfig(**args)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _scraped_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, FakeSite]]:
    site = new_site()
    base = tmp_path_factory.mktemp("scraped")
    conn = database.connect(base / "db.sqlite")
    Scraper(conn, ImageStore(base / "images"), fast_config(site)).run(np.arange(FIRST_ID, LAST_ID))
    conn.close()
    site.marks["after_scrape"] = site.requests.copy()
    yield base / "db.sqlite", base / "images", site
    site.stop()


@pytest.fixture
def scraped(_scraped_once: tuple[Path, Path, FakeSite], tmp_path: Path) -> tuple[Path, Path, FakeSite]:
    """A private copy of one finished scrape of the fault-laden site: (db path, image root, site).
    The site is shared: tests that change its faults put them back."""
    db_src, img_src, site = _scraped_once
    shutil.copy(db_src, tmp_path / "db.sqlite")
    shutil.copytree(img_src, tmp_path / "images")
    conn = database.connect(tmp_path / "db.sqlite")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'images_root'", (str((tmp_path / "images").resolve()),))
    conn.close()
    return tmp_path / "db.sqlite", tmp_path / "images", site
