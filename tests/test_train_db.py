"""Training on the data pipeline's SQLite database + image store (the listings source)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from core.dataset import database as db
from core.dataset.image_store import ImageStore
from tests.synthetic_cars import CLASSES, tiny_train_args
from training.config import TrainConfig
from training.data.records import load_records
from training.loop.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent


def make_listings_db(root: Path, listings_per_class: int = 4, photos_per_listing: int = 3) -> Path:
    """A database with stored, de-duplicated photos of synthetic listings (one class each)."""
    store = ImageStore(root / "images")
    path = root / "listings.sqlite"
    conn = db.connect(path)
    rng = np.random.default_rng(0)
    lid = 1000
    with conn:
        db.remember_images_root(conn, root / "images")
        for c, (make, model, year, price) in enumerate(CLASSES):
            for _ in range(listings_per_class):
                lid += 1
                conn.execute("INSERT INTO listings(listing_id, source_url, title, price, make, model, year) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (lid, f"http://x/{lid}", "t", price, make, model, year))
                for k in range(photos_per_listing):
                    arr = np.clip(rng.normal(60 * c + 40, 20, (40, 56, 3)), 0, 255).astype(np.uint8)
                    buf = io.BytesIO()
                    Image.fromarray(arr).save(buf, "JPEG", quality=90)
                    sha = store.put(buf.getvalue())
                    conn.execute("INSERT INTO photos(listing_id, photo_index, url, status, sha256, width, height) "
                                 "VALUES (?, ?, ?, 'stored', ?, 56, 40)", (lid, k, f"http://x/{lid}/{k}.jpg", sha))
                    conn.execute("INSERT INTO phashes(sha256, phash) VALUES (?, ?)", (sha, sha))
    conn.close()
    return path


def test_records_from_the_database_are_grouped_by_listing(tmp_path: Path) -> None:
    path = make_listings_db(tmp_path)
    records = load_records(TrainConfig(data=str(path)))
    assert len(records) == 4 * 4 * 3
    assert len({r.group for r in records}) == 16
    assert {r.price for r in records if r.make == "Audi"} == {None}  # no price: masked, not invented
    assert all(r.image_path.is_file() for r in records)


def test_tiny_run_on_the_database(tmp_path: Path) -> None:
    path = make_listings_db(tmp_path)
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "training.cli", *tiny_train_args(path, out, "--epochs", "1")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ck = load_checkpoint(out)
    assert ck.labels.class_key == "make_model"  # listings: make/model classes, years on the year head
    assert set(ck.labels.make_models[:-1]) == {f"{m} {n}" for m, n, _, _ in CLASSES}
    assert ck.meta["split"]["groups"] == {"train": 8, "val": 4, "test": 4}
