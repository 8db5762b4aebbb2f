"""``carvalue-data shards``: WebDataset-style tar shards for streaming to many GPUs.

Each sample is two tar members sharing a key: ``<key>.jpg`` (the stored photo) and
``<key>.json`` (its listing's labels).  The key is ``<listing id>_<photo index>``; WebDataset
splits a member name at its first dot, so keys hold no dots.  Samples go in (listing, photo)
order, so a listing's photos sit together and the output is the same on every run.  Each shard
is written to a temp name and renamed; ``index.json`` (written last) lists the shards.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from core.dataset import database as db
from core.dataset.export import split_of, usable_photos
from core.dataset.image_store import ImageStore

MTIME = 0  # fixed, so identical inputs give byte-identical shards


@dataclass
class ShardReport:
    shards: list[str] = field(default_factory=list)
    samples: int = 0
    listings: int = 0
    by_split: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"shards": len(self.shards), "samples": self.samples, "listings": self.listings,
                "samples_by_split": self.by_split}


def sample_key(listing_id: int, photo_index: int) -> str:
    return f"{listing_id}_{photo_index}"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = MTIME
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(db_path: str | Path, images_root: str | Path, out_dir: str | Path,
                 shard_size: int = 1000) -> ShardReport:
    if shard_size < 1:
        raise ValueError("--shard-size must be at least 1")
    conn = db.connect(db_path, create=False)  # first: a bad database is refused before anything is written
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        conn.close()
        raise
    store = ImageStore(images_root)
    report = ShardReport()
    listings: set[int] = set()
    tar: tarfile.TarFile | None = None
    tmp: Path | None = None
    in_shard = 0

    def close_shard() -> None:
        nonlocal tar, tmp
        if tar is not None and tmp is not None:
            tar.close()
            final = out / f"shard-{len(report.shards):06d}.tar"
            os.replace(tmp, final)
            report.shards.append(final.name)
        tar, tmp = None, None

    try:
        for photo in usable_photos(conn):
            if tar is None:
                tmp = out / f".shard-{len(report.shards):06d}.tar.tmp"
                tar = tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT)
                in_shard = 0
            key = sample_key(photo.listing_id, photo.photo_index)
            split = split_of(str(photo.listing_id))
            meta = {"listing_id": photo.listing_id, "photo_index": photo.photo_index, "sha256": photo.sha256,
                    "make": photo.make, "model": photo.model, "year": photo.year, "price": photo.price,
                    "mileage": photo.mileage, "split": split}
            _add(tar, f"{key}.jpg", store.read(photo.sha256))
            _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
            report.samples += 1
            report.by_split[split] = report.by_split.get(split, 0) + 1
            listings.add(photo.listing_id)
            in_shard += 1
            if in_shard >= shard_size:
                close_shard()
        close_shard()
    finally:
        if tar is not None:
            tar.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        conn.close()
    report.listings = len(listings)
    # Drop shards a previous, larger export left behind, then publish the index.
    for stale in out.glob("shard-*.tar"):
        if stale.name not in report.shards:
            stale.unlink()
    index = {"shards": report.shards, "samples": report.samples, "listings": report.listings,
             "samples_by_split": report.by_split}
    tmp_index = out / ".index.json.tmp"
    tmp_index.write_text(json.dumps(index, indent=2))
    os.replace(tmp_index, out / "index.json")
    return report
