"""Training from `carvalue-data shards` through webdataset: the same records, split and pixels as
the SQLite path; validation metrics within 0.5 point of it on the same tiny split and seed;
pipe: URLs; a run stopped mid-epoch and resumed equals an unbroken one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from core.dataset.shards import write_shards
from core.modelfile import InputSpec
from tests.synthetic_cars import tiny_train_args
from tests.test_train_db import make_listings_db
from training.config import TrainConfig
from training.data.dataset import Augment, CarPhotos, LabelSpace, sample_seed, split_by_group
from training.data.records import class_key_of, load_records
from training.data.shard_stream import ShardStream, shard_urls
from training.loop.checkpoint import load_checkpoint

pytest.importorskip("webdataset", reason="the train extra's webdataset (pip install .[train])")

METRICS = ("val_make_model_top1", "val_price_acc", "val_year_within1")

pytestmark = pytest.mark.slow  # trains from shards and from the database to compare them: 8-15 s a test


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("listings")
    db = make_listings_db(root, listings_per_class=8, photos_per_listing=2)
    report = write_shards(db, root / "images", root / "shards", shard_size=10)
    assert len(report.shards) == 7 and report.samples == 64
    labels = (root / "shards" / "labels.jsonl").read_text().splitlines()  # what the trainer reads first
    assert len(labels) == 64 and json.loads((root / "shards" / "index.json").read_text())["labels"] == "labels.jsonl"
    return db, root / "shards"


def train(args: list[str]) -> Path:
    from training.cli import main

    threads = torch.get_num_threads()
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    return Path(args[args.index("--out") + 1])


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(load_checkpoint(run).weights_path))


def last_row(run: Path) -> dict[str, float]:
    with (run / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {k: float(v) for k, v in rows[-1].items() if k.startswith("val_") and v}


def test_shards_give_the_databases_records_split_and_pixels(data: tuple[Path, Path], tmp_path: Path) -> None:
    db, shards = data
    from_db = load_records(TrainConfig(data=str(db)))
    from_shards = load_records(TrainConfig(data=str(shards), out=str(tmp_path / "run"), probe_init=False,
                                            val_fraction=0.25, test_fraction=0.25))
    strip = [(r.group, r.make, r.model, r.year, r.price) for r in from_db]
    assert [(r.group, r.make, r.model, r.year, r.price) for r in from_shards] == strip
    split_db = split_by_group(from_db, 0.25, 0.25, 0, class_key=class_key_of(from_db))
    split_sh = split_by_group(from_shards, 0.25, 0.25, 0, class_key=class_key_of(from_shards))
    assert split_db == split_sh
    held = {*split_sh.val, *split_sh.test}
    for i, r in enumerate(from_shards):  # held-out photos copied out of the tars, byte for byte
        if i in held:
            assert r.image_path.read_bytes() == from_db[i].image_path.read_bytes()
        else:
            assert str(r.image_path).startswith("shard:")

    train_db = [from_db[i] for i in split_sh.train]
    train_sh = [from_shards[i] for i in split_sh.train]
    labels = LabelSpace.from_records(train_db, class_key="make_model")
    spec = InputSpec(32)
    augment = Augment()
    stream = ShardStream(shard_urls(str(shards)), train_sh, labels, spec, augment, seed=3, epoch=1, size=32, rank=0,
                         batches=len(train_sh) // 4, batch_size=4, buffer=0)
    photos = CarPhotos(train_db, labels, spec, augment)
    got = list(stream)
    assert len(got) == len(train_sh) // 4 * 4
    want = [photos[(j, sample_seed(3, 1, j), 32)] for j in range(len(train_db))]
    matched = set()
    for x, cls, med in got:  # each streamed sample is one of the SQLite path's, pixel for pixel
        hits = [j for j, w in enumerate(want) if torch.equal(x, w[0])]
        assert len(hits) == 1
        j = hits[0]
        assert torch.equal(cls, want[j][1]) and torch.equal(med, want[j][2]) | (med.isnan() & want[j][2].isnan())
        matched.add(j)
    assert len(matched) == len(got)  # none twice in one epoch


def test_metrics_within_half_a_point_of_the_sqlite_path(data: tuple[Path, Path], tmp_path: Path) -> None:
    """One batch an epoch (all 32 training photos, one micro-batch): the order the stream and the
    sampler deliver photos in cannot matter, so the two paths must agree; what is compared is the
    data itself (records, split, labels, decoded pixels, augmentation draws, the epoch's photos)."""
    db, shards = data
    common = ("--epochs", "3", "--val-fraction", "0.25", "--test-fraction", "0.25", "--batch-size", "32",
              "--micro-batch", "32", "--warmup-steps", "1")
    via_db = train(tiny_train_args(db, tmp_path / "db", *common))
    via_shards = train(tiny_train_args(shards, tmp_path / "shards", *common, "--shuffle-buffer", "16"))
    a, b = last_row(via_db), last_row(via_shards)
    for k in METRICS:
        assert abs(a[k] - b[k]) <= 0.005, (k, a[k], b[k])
    assert abs(a["val_make_model_ce"] - b["val_make_model_ce"]) < 1e-3
    assert load_checkpoint(via_shards).meta["split"] == load_checkpoint(via_db).meta["split"]


def test_pipe_urls_stream_the_same_samples(data: tuple[Path, Path], tmp_path: Path) -> None:
    """pipe: URLs (pipe:aws s3 cp s3://bucket/shard.tar - and the like) read as local paths do; their
    labels come from the tars themselves, the folder's from its labels.jsonl: the same records."""
    _, shards = data
    piped = "pipe:cat " + str(shards) + "/shard-{000000..000006}.tar"
    cfg = dict(probe_init=False, val_fraction=0.25, test_fraction=0.25)
    local = load_records(TrainConfig(data=str(shards), out=str(tmp_path / "a"), **cfg))  # type: ignore[arg-type]
    remote = load_records(TrainConfig(data=piped, out=str(tmp_path / "b"), **cfg))  # type: ignore[arg-type]
    assert [(r.group, r.price, r.image_path.name) for r in local] == [(r.group, r.price, r.image_path.name) for r in remote]
    train_records = [r for r in remote if str(r.image_path).startswith("shard:")]
    labels = LabelSpace.from_records(train_records, class_key="make_model")

    def stream(urls: list[str]) -> list[torch.Tensor]:
        s = ShardStream(urls, train_records, labels, InputSpec(32), Augment(), seed=1, epoch=0, size=32, rank=0,
                        batches=len(train_records) // 8, batch_size=8, buffer=8)
        return [x for x, _, _ in s]

    a, b = stream(shard_urls(str(shards))), stream(shard_urls(piped))
    assert len(a) == len(b) == len(train_records) // 8 * 8
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_stopped_mid_epoch_and_resumed_equals_unbroken(data: tuple[Path, Path], tmp_path: Path) -> None:
    _, shards = data
    common = ("--epochs", "2", "--shuffle-buffer", "8")
    unbroken = train(tiny_train_args(shards, tmp_path / "unbroken", *common))
    broken = tmp_path / "broken"
    train(tiny_train_args(shards, broken, *common, "--max-steps", "5"))
    train(tiny_train_args(shards, broken, *common))
    assert load_checkpoint(unbroken).progress == load_checkpoint(broken).progress
    a, b = final_weights(unbroken), final_weights(broken)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_split_by_node_and_worker(data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranks (torchrun's RANK/WORLD_SIZE) read disjoint shards; loader workers hand out whole
    batches in turn, every rank the same number of batches, no photo twice in an epoch."""
    from torch.utils.data import DataLoader

    from training.data.dataset import collate

    _, shards = data
    records = load_records(TrainConfig(data=str(shards), out=str(tmp_path / "r"), probe_init=False))
    train_records = [r for r in records if str(r.image_path).startswith("shard:")]
    labels = LabelSpace.from_records(train_records, class_key="make_model")

    def epoch(rank: int, batches: int, workers: int) -> list[torch.Tensor]:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        s = ShardStream(shard_urls(str(shards)), train_records, labels, InputSpec(32), Augment(), seed=5, epoch=2,
                        size=32, rank=rank, batches=batches, batch_size=4, buffer=4)
        loader = DataLoader(s, batch_size=4, num_workers=workers, collate_fn=collate, drop_last=True)
        return [x for xb, _, _ in loader for x in xb]

    rank0, rank1 = epoch(0, 3, 2), epoch(1, 3, 2)
    assert len(rank0) == len(rank1) == 12
    every = rank0 + rank1
    assert not any(torch.equal(a, b) for i, a in enumerate(every) for b in every[i + 1:])
    assert [torch.equal(a, b) for a, b in zip(rank0, epoch(0, 3, 2), strict=True)] == [True] * 12  # deterministic
