"""Scrape one ID range across a Dask cluster's workers, then merge: ``carvalue-scrape-cluster``.

    carvalue-scrape-cluster --db listings.sqlite --images store/ --parts parts/ --ids 660000000:664000000 \\
        --scheduler tcp://head:8786 --shards 64 -- --workers 8 --rate 2
    carvalue-scrape-cluster ... --local-workers 2          # a LocalCluster on this machine

The range is cut into ``--shards`` shards (``scrape --shard i/n``: the same seeded order, no
overlap, nothing left out).  Each shard is one task: a worker runs ``carvalue-data scrape`` for
it into its own database and store under ``--parts`` (``shard-<i>-of-<n>.sqlite`` and
``shard-<i>-of-<n>-store/``), so workers never share a SQLite file.  When every task has ended,
``carvalue-data merge`` puts the parts into ``--db``/``--images`` and dedups over all of it.
Rerun the same command after a crash, a lost worker or a shard stopped by a lasting failure:
each shard resumes where its database says, and the merge changes only what is new.  On a real
cluster ``--parts`` must be a folder every worker and this machine see (NFS, a shared volume);
flags after ``--`` go to every shard's scrape (so the site sees up to workers x ``--rate``).

Why Dask (``distributed``): the tasks are a few long Python calls that need a scheduler, worker
processes, retries of a lost worker's task and a dashboard, which it gives in ~35 MB of pure-Python
wheels installed (dask, distributed, tornado, msgpack, ...; measured in this venv); Ray does the
same with a wheel of tens of MB (not measured here) carrying its own native object store and gRPC
services, which this job (no shared arrays, no actors) never uses.  It is a training-side dependency (``pip install .[train]``): ``core`` never imports it,
and ``scrape --shard i/n`` still serves plain machines without it.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from core.dataset.cli import build_parser
from core.dataset.cli import main as data_main
from core.dataset.ids import IdRange

EXIT_SHARD_FAILED = 3  # as `scrape` after a lasting failure: rerun the same command to resume


@dataclass(frozen=True)
class ShardResult:
    index: int
    returncode: int
    report: dict[str, object]
    stderr: str


def part_paths(parts: Path, index: int, count: int) -> tuple[Path, Path]:
    stem = parts / f"shard-{index}-of-{count}"
    return stem.with_name(stem.name + ".sqlite"), stem.with_name(stem.name + "-store")


def scrape_args(parts: Path, ids: str, seed: int, index: int, count: int, extra: list[str]) -> list[str]:
    db, images = part_paths(parts, index, count)
    return ["scrape", "--db", str(db), "--images", str(images), "--ids", ids, "--seed", str(seed),
            "--shard", f"{index}/{count}", "--no-progress", *extra]


def run_shard(args: list[str], index: int) -> ShardResult:
    """A worker's task: one shard's ``carvalue-data scrape`` in a child process of the worker (its
    own stdout, no clash with other tasks of a many-threaded worker; a crash ends the child only)."""
    res = subprocess.run([sys.executable, "-m", "core.dataset.cli", *args], capture_output=True, text=True,
                         check=False)
    text = res.stdout.strip()
    return ShardResult(index, res.returncode, json.loads(text) if res.returncode == 0 and text else {},
                       res.stderr[-2000:])


def _client(a: argparse.Namespace):  # -> distributed.Client
    from distributed import Client, LocalCluster

    if a.scheduler:
        return Client(a.scheduler)
    cluster = LocalCluster(n_workers=a.local_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster)


def run_cluster(a: argparse.Namespace) -> tuple[list[ShardResult], dict[str, object] | None]:
    """Every shard as a task on the cluster, then the merge here (on what the shards produced)."""
    client = _client(a)
    try:
        count = a.shards or max(1, len(client.scheduler_info()["workers"]))
        tasks = [scrape_args(a.parts, a.ids, a.seed, i, count, a.scrape_flags) for i in range(count)]
        futures = client.map(run_shard, tasks, range(count), pure=False, retries=a.retries)
        results = sorted(client.gather(futures), key=lambda r: r.index)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and not a.scheduler:
            cluster.close()
    merge_args = ["merge", "--db", str(a.db), "--images", str(a.images), "--no-progress"]
    for i in range(count):
        db, images = part_paths(a.parts, i, count)
        if db.exists():
            merge_args += ["--part", str(db), str(images)]
    if "--part" not in merge_args:
        return results, None
    out = io.StringIO()
    with redirect_stdout(out):
        rc = data_main(merge_args)
    if rc != 0:
        raise RuntimeError(f"carvalue-data merge exited {rc}")
    return results, json.loads(out.getvalue())


def build_cluster_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carvalue-scrape-cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, required=True, help="the merged database")
    p.add_argument("--images", type=Path, required=True, help="the merged image store")
    p.add_argument("--parts", type=Path, required=True, help="folder for each shard's database and store "
                                                             "(shared by every worker and this machine)")
    p.add_argument("--ids", required=True, help="listing ID range A:B")
    p.add_argument("--seed", type=int, default=0, help="seed of the visiting order (default 0)")
    p.add_argument("--shards", type=int, default=0, help="shards (tasks); default: one per worker. Keep it "
                                                         "the same when rerunning, or the shards start over")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    where.add_argument("--local-workers", type=int, help="start a LocalCluster of this many worker processes")
    p.add_argument("--retries", type=int, default=2, help="reruns of a task whose worker was lost (default 2)")
    p.add_argument("scrape_flags", nargs=argparse.REMAINDER,
                   help="after --: flags for every shard's `carvalue-data scrape` (--listing-url, --workers, --rate ...)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_cluster_parser()
    a = parser.parse_args(argv)
    if a.scrape_flags[:1] == ["--"]:
        a.scrape_flags = a.scrape_flags[1:]
    if a.shards < 0 or (a.local_workers is not None and a.local_workers < 1):
        parser.error("--shards must be 0 or more and --local-workers 1 or more")
    try:
        IdRange.parse(a.ids)
    except ValueError as e:
        parser.error(str(e))
    try:  # the shards' flags are checked here, once, before any worker starts
        build_parser().parse_args(scrape_args(a.parts, a.ids, a.seed, 0, max(a.shards, 1), a.scrape_flags))
    except SystemExit as e:
        return int(e.code or 2)
    results, merged = run_cluster(a)
    failed = [r for r in results if r.returncode != 0]
    print(json.dumps({"shards": [{"shard": r.index, "exit": r.returncode, **r.report} for r in results],
                      "merge": merged}))
    for r in failed:
        print(f"carvalue-scrape-cluster: shard {r.index} exited {r.returncode}: {r.stderr.strip()[-500:]}",
              file=sys.stderr)
    return EXIT_SHARD_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
