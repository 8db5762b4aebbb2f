"""Training from ``carvalue-data shards`` through the ``webdataset`` library.

``--data`` may name a shards folder (its ``index.json`` lists the tars), one ``.tar``, a brace
pattern (``shards/shard-{000000..000099}.tar``) or ``pipe:`` URLs (``pipe:aws s3 cp s3://b/x.tar -``,
``pipe:cat ...``): webdataset opens them all alike.

Why the split and labels still come first: the trainer's split (by listing, stratified by
class, seeded), its vocabularies and its validation set must be the ones the SQLite path gets
from the same photos, or the two cannot be compared.  So :func:`records_from_shards` reads
every sample's labels first (from the shards folder's ``labels.jsonl``, or, for pipe: URLs and
patterns, by streaming every tar's ``.json`` members: no JPEG is decoded), builds the records in
the shards' (listing, photo) order, which is the database's, splits them with the trainer's own
function, and copies the validation and test photos into ``<run>/heldout/`` (a few percent of
the data: evaluation reads them by path, as from the store).  Training photos stay in the tars
and are named ``shard:<key>``; :class:`ShardStream` streams them:

* shards shuffled per (seed, epoch, pass), then split by node (``wds.split_by_node``: the
  torch.distributed rank) and by loader worker (``wds.split_by_worker``);
* a seeded shuffle buffer (``--shuffle-buffer`` samples; 0 or 1 keeps the shard order);
* every rank yields exactly ``batches`` batches an epoch (DDP needs equal step counts): a rank
  whose shards run out starts another shuffled pass over them;
* resumable: the position is the batch count the checkpoint holds; the stream is deterministic
  for a (seed, epoch, rank, worker count), so resuming skips that many batches of it unread by
  the model (resume with the same ``--workers``);
* each sample gets the SQLite path's augmentation seed (``sample_seed(seed, epoch, index)``),
  decoded by the same loader, so only the order of the photos differs from the SQLite path.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from core.atomic import atomic_write
from core.dataset.records import ImageRecord
from core.modelfile import InputSpec
from core.preprocess import photo_from_bytes
from training.data.dataset import Augment, DataError, LabelSpace, sample_seed

SHARD_PREFIX = "shard:"  # image_path of a training photo that lives in a tar
HELDOUT_DIR = "heldout"


def shard_urls(data: str) -> list[str]:
    """The tars ``data`` names, in order."""
    folder = Path(data)
    if not data.startswith("pipe:") and folder.is_dir():
        try:
            index = json.loads((folder / "index.json").read_text())
            names = index["shards"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{folder / 'index.json'}: not a shards index ({e})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) and "/" not in n for n in names):
            raise DataError(f"{folder / 'index.json'}: 'shards' must be a list of file names")
        return [str(folder / n) for n in names]
    from braceexpand import braceexpand

    return list(braceexpand(data))


def _labels_file(data: str) -> list[tuple[str, dict[str, Any]]] | None:
    """(key, labels) from the ``labels.jsonl`` that ``carvalue-data shards`` writes beside a local
    shards folder (no tar read at all), or None where there is none (tars named one by one, a
    brace pattern, pipe: URLs, shards from an older version)."""
    folder = Path(data)
    if data.startswith("pipe:") or not folder.is_dir():
        return None
    index = json.loads((folder / "index.json").read_text())
    name = index.get("labels") if isinstance(index, dict) else None
    if not isinstance(name, str) or "/" in name or not (folder / name).is_file():
        return None
    out = []
    with (folder / name).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                m = json.loads(line)
                out.append((str(m["key"]), m))
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f"{folder / name}, line {n}: not a sample's labels ({e})") from None
    if len(out) != index.get("samples"):
        raise DataError(f"{folder / name} holds {len(out)} samples, index.json says {index.get('samples')}: "
                        "write the shards again")
    return out


def _labels_only(urls: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, labels) of every sample, reading only the .json members (the tars are streams: their
    JPEG bytes are read and skipped)."""
    import webdataset as wds

    pipeline = wds.DataPipeline(wds.SimpleShardList(list(urls)),
                                wds.tarfile_to_samples(select_files=lambda name: name.endswith(".json")))
    for s in pipeline:
        if "json" not in s:
            raise DataError(f"{s.get('__url__')}: sample {s.get('__key__')} has no .json labels")
        yield str(s["__key__"]), json.loads(s["json"])


def records_from_shards(data: str, run_dir: Path,
                        split: Callable[[list[ImageRecord]], Any]) -> list[ImageRecord]:
    """Records for every sample; held-out ones copied to ``run_dir/heldout`` (see the docstring)."""
    urls = shard_urls(data)
    if not urls:
        raise DataError(f"{data}: no shards")
    records = []
    for key, m in _labels_file(data) or _labels_only(urls):
        records.append(ImageRecord(image_path=Path(SHARD_PREFIX + key), group=str(m["listing_id"]),
                                   make=m.get("make") or "", model=m.get("model") or "", year=m.get("year"),
                                   price=m.get("price"), mileage=m.get("mileage")))
    if not records:
        raise DataError(f"{data}: the shards hold no samples")
    parts = split(records)
    held = {*parts.val, *parts.test}
    folder = run_dir / HELDOUT_DIR
    wanted = {shard_key(records[i]): folder / f"{shard_key(records[i])}.jpg" for i in held}
    _extract(urls, {k: p for k, p in wanted.items() if not p.is_file()}, folder)
    return [replace(r, image_path=wanted[shard_key(r)]) if i in held else r for i, r in enumerate(records)]


def shard_key(r: ImageRecord) -> str:
    name = str(r.image_path)
    return name[len(SHARD_PREFIX):] if name.startswith(SHARD_PREFIX) else Path(name).stem


def _extract(urls: Sequence[str], wanted: dict[str, Path], folder: Path) -> None:
    """Write the JPEGs of ``wanted`` keys (atomically: a killed run leaves no half file)."""
    if not wanted:
        return
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    for s in wds.DataPipeline(wds.SimpleShardList(list(urls)), wds.tarfile_to_samples()):
        path = wanted.get(str(s["__key__"]))
        if path is None:
            continue
        atomic_write(path, s["jpg"])


class ShardStream(IterableDataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """One epoch of this rank's training samples from the shards (see the module's docstring)."""

    def __init__(self, urls: Sequence[str], train: Sequence[ImageRecord], labels: LabelSpace, eval_spec: InputSpec,
                 augment: Augment, *, seed: int, epoch: int, size: int, rank: int, batches: int,
                 batch_size: int, skip_batches: int = 0, buffer: int = 1000) -> None:
        self.urls, self.seed, self.epoch, self.size, self.rank = list(urls), seed, epoch, size, rank
        self.batches, self.batch_size, self.skip_batches, self.buffer = batches, batch_size, skip_batches, buffer
        self.index = {shard_key(r): i for i, r in enumerate(train)}
        self.targets = labels.encode_all(list(train))
        self.spec = eval_spec if size == eval_spec.size else replace(eval_spec, size=size)
        self.augment = augment

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # A loader worker hands out whole batches in turn: this one makes batches worker, worker + W, ...
        quota = len(range(worker, self.batches, workers)) * self.batch_size
        start = len(range(worker, self.skip_batches, workers)) * self.batch_size
        produced = 0
        for turn in range(1_000_000):
            seen = 0
            for key, data in self._pass(turn, worker):
                seen += 1
                if produced >= start:
                    yield self._tensors(key, data)
                produced += 1
                if produced >= quota:
                    return
            if seen == 0:
                raise DataError(f"no training sample reached loader worker {worker} of rank {self.rank}: "
                                f"{len(self.urls)} shards are too few to split over every rank and worker; "
                                "write smaller shards (carvalue-data shards --shard-size) or use fewer --workers")

    def _pass(self, turn: int, worker: int) -> Iterator[tuple[str, bytes]]:
        import webdataset as wds

        stages: list[Any] = [wds.SimpleShardList(self.urls, seed=hash_seed(self.seed, self.epoch, turn)),
                             wds.split_by_node, wds.split_by_worker, wds.tarfile_to_samples(),
                             wds.select(lambda s: str(s["__key__"]) in self.index)]
        if self.buffer > 1:
            rng = random.Random(hash_seed(self.seed, self.epoch, turn, self.rank, worker))
            stages.append(wds.shuffle(self.buffer, initial=min(self.buffer, 100), rng=rng))
        for s in wds.DataPipeline(*stages):
            yield str(s["__key__"]), s["jpg"]

    def _tensors(self, key: str, data: bytes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As ``CarPhotos[(i, sample_seed(seed, epoch, i), size)]`` for the training photo ``key``."""
        i = self.index[key]
        image = photo_from_bytes(data, key).image
        arr = self.augment(image, self.spec, np.random.default_rng(sample_seed(self.seed, self.epoch, i)))
        t = self.targets[i]
        return (torch.from_numpy(arr), torch.tensor([t.price_bin, t.make_model, t.year]),
                torch.tensor(t.median, dtype=torch.float32))


def hash_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (run seed, epoch, pass, rank, worker)."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
