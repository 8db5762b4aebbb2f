"""``carvalue-data shards``: WebDataset-style tar shards for streaming to many GPUs.

Each sample is two tar members sharing a key: ``<key>.jpg`` (the stored photo) and
``<key>.json`` (its listing's labels).  A stored file that cannot be read (missing, not a
regular file, larger than any stored photo) is left out and counted (`carvalue-data verify`
repairs the store).  Trouble writing the output (a full disk) stops the run with
:class:`ShardWriteError` and removes the shard being written.  The key is ``<listing id>_<photo index>``; WebDataset
splits a member name at its first dot, so keys hold no dots.  Samples go in (listing, photo)
order, so a listing's photos sit together and the output is the same on every run.  Each shard
is written to a temp name and renamed; ``index.json`` (written last) lists the shards.
``labels.jsonl`` beside them holds every sample's key and labels, one line each in shard order:
a trainer reads it instead of streaming every tar to learn the labels (200 GB at 10M photos).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import PendingFile, atomic_write
from core.dataset import database as db
from core.dataset.export import split_of, usable_photos
from core.dataset.image_store import ImageStore, StoredFileError

MTIME = 0  # fixed, so identical inputs give byte-identical shards
LABELS = "labels.jsonl"


class ShardWriteError(OSError):
    """The shards cannot be written (a full disk, a read-only folder); ``str(e)`` is one line."""


@dataclass
class ShardReport:
    shards: list[str] = field(default_factory=list)
    samples: int = 0
    listings: int = 0
    by_split: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # sha256 -> why it was left out

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"shards": len(self.shards), "samples": self.samples, "listings": self.listings,
                                  "samples_by_split": self.by_split}
        if self.unreadable:
            out["unreadable_left_out"] = len(self.unreadable)
            out["unreadable_examples"] = dict(list(self.unreadable.items())[:5])
            out["hint"] = "run `carvalue-data verify` to repair the store"
        return out


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
    conn = db.connect(db_path, create=False, readonly=True)  # first: a bad database is refused before anything is written
    out = Path(out_dir)
    try:
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ShardWriteError(f"the output folder {out}: {e.strerror or e}") from None
    except BaseException:
        conn.close()
        raise
    store = ImageStore(images_root)
    report = ShardReport()
    listings: set[int] = set()
    tar: tarfile.TarFile | None = None
    shard: PendingFile | None = None
    in_shard = 0
    labels_file = PendingFile(out / LABELS)
    labels = None
    finished = False

    def close_shard() -> None:
        nonlocal tar, shard
        if tar is not None and shard is not None:
            tar.close()
            shard.commit()
            report.shards.append(shard.path.name)
        tar, shard = None, None

    try:
        labels = labels_file.open("w", encoding="utf-8")
        for photo in usable_photos(conn):
            try:
                data = store.read(photo.sha256)
            except (OSError, StoredFileError) as e:  # the store's damage: verify repairs it
                report.unreadable[photo.sha256] = e.reason if isinstance(e, StoredFileError) else (
                    "file is missing" if isinstance(e, FileNotFoundError) else f"cannot read file ({e.strerror or e})")
                continue
            if tar is None:
                shard = PendingFile(out / f"shard-{len(report.shards):06d}.tar")
                tar = tarfile.open(shard.tmp, "w", format=tarfile.USTAR_FORMAT)
                in_shard = 0
            key = sample_key(photo.listing_id, photo.photo_index)
            split = split_of(str(photo.listing_id))
            meta = {"listing_id": photo.listing_id, "photo_index": photo.photo_index, "sha256": photo.sha256,
                    "make": photo.make, "model": photo.model, "year": photo.year, "price": photo.price,
                    "mileage": photo.mileage, "split": split}
            _add(tar, f"{key}.jpg", data)
            _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
            labels.write(json.dumps({"key": key, **meta}, sort_keys=True) + "\n")
            report.samples += 1
            report.by_split[split] = report.by_split.get(split, 0) + 1
            listings.add(photo.listing_id)
            in_shard += 1
            if in_shard >= shard_size:
                close_shard()
        close_shard()
        labels.close()
        finished = True
    except OSError as e:
        raise ShardWriteError(f"shards in {out}: {e.strerror or e}; the shard being written was removed") from None
    finally:
        _discard(tar, shard)
        conn.close()
        if not finished:  # stopped by an error: no half labels file either
            if labels is not None:
                with contextlib.suppress(OSError):  # the error that stopped the run is the one reported
                    labels.close()
            labels_file.discard()
    report.listings = len(listings)
    try:
        labels_file.commit()
        _publish(out, report)
    except OSError as e:
        raise ShardWriteError(f"{out / 'index.json'}: {e.strerror or e}") from None
    return report


def _discard(tar: tarfile.TarFile | None, shard: PendingFile | None) -> None:
    """Close and delete a shard left half-written by an error (its close may fail as well: the
    disk is full; the file goes anyway)."""
    if tar is not None:
        with contextlib.suppress(OSError):  # the error that stopped the run is the one reported
            tar.close()  # closes the file even when its last write fails
    if shard is not None:
        shard.discard()


def _publish(out: Path, report: ShardReport) -> None:
    """Drop shards a previous, larger export left behind, then write index.json (atomically)."""
    for stale in out.glob("shard-*.tar"):
        if stale.name not in report.shards:
            stale.unlink()
    index = {"shards": report.shards, "samples": report.samples, "listings": report.listings,
             "samples_by_split": report.by_split, "labels": LABELS}
    atomic_write(out / "index.json", json.dumps(index, indent=2))
