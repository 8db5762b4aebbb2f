"""``carvalue-data <stage>``: the data pipeline, one resumable stage at a time.

    scrape   listing pages + photos -> SQLite + image store
    verify   find and repair stored photos whose file is missing or corrupt
    dedup    perceptual hashes; photos whose hash occurs more than once are dropped
    label    hand-label photos good/bad for the junk filter (opens a Qt window)
    filter   train the junk filter on the labels / apply it to every photo
    shards   WebDataset-style tar shards for streaming training
    merge    several machines' databases and stores into one, then dedup over all of it
    stats    what the database holds

Heavy imports (torch for features, the Qt labeller) happen only in the stage that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from core.dataset import flags
from core.dataset.database import DatabaseError, DatabaseNotWritable, UnusableDatabase, cannot_write
from core.dataset.export import NotDeduplicated
from core.dataset.text import one_line
from core.output import OutputError, write

HELP = """The CarValue data pipeline, one resumable stage at a time. Every stage records its work
in one SQLite database (--db) and, for photos, a hash-bucket image store (--images)."""
EPILOG = """typical order:
  carvalue-data scrape --db d.sqlite --images store/ --ids 660000000:664000000
  carvalue-data verify --db d.sqlite --images store/
  carvalue-data dedup  --db d.sqlite --images store/
  carvalue-data label  --db d.sqlite --images store/ --labels labels.json
  carvalue-data filter train --db d.sqlite --images store/ --labels labels.json --out junkfilter/
  carvalue-data filter apply --db d.sqlite --images store/ --filter junkfilter/
  carvalue-data shards --db d.sqlite --images store/ --out shards/
scraped on several machines (scrape --shard i/n each)? merge them before verify:
  carvalue-data merge --db d.sqlite --images store/ --part m0.sqlite store0/ --part m1.sqlite store1/
then train on d.sqlite directly: carvalue-train train --data d.sqlite --images-root store/ ...
`carvalue-data STAGE --help` explains each stage.

exit codes: 0 done; 2 bad arguments or input; 3 scrape stopped by a lasting failure (rerun to
resume); 4 the store, the database or the output cannot be written (read-only, a full disk, a
closed pipe); 5 the --db file is not a usable pipeline database (empty, truncated, overwritten,
another program's): it is left exactly as it was. 130 interrupted."""
EXIT_CANNOT_WRITE = 4
EXIT_UNUSABLE_DATABASE = 5
SHORT_SIDES = (32, 4096)  # stored photos' short side: a smaller one is no photo, a larger one no thumbnail


def _add_common(p: argparse.ArgumentParser, images: bool = True) -> None:
    p.add_argument("--db", type=Path, required=True, help="the pipeline's SQLite database file")
    if images:
        p.add_argument("--images", type=Path, required=True, help="root of the image store (<root>/<hh>/<sha256>)")


def _add_retry_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("politeness and retries")
    g.add_argument("--rate", type=flags.rate, default=8.0,
                   help="requests per second over all workers; 0 = unlimited (default 8)")
    g.add_argument("--timeout", type=flags.seconds(0, 3600, lo_open=True), default=30.0,
                   help="deadline of each request attempt in seconds: its headers and last byte of the body "
                        "must arrive within it, redirects included; a missed deadline is retried like a "
                        "network error; more than 0, at most 3600 (default 30)")
    g.add_argument("--retries", type=flags.int_in(0, 100), default=6,
                   help="retries after a failed attempt, 0 to 100 (default 6)")
    g.add_argument("--backoff", type=flags.seconds(0, 3600), default=1.0,
                   help="first backoff in seconds, 0 to 3600; doubles each retry, with jitter (default 1)")
    g.add_argument("--backoff-max", type=flags.seconds(0, 86400), default=120.0,
                   help="longest backoff in seconds, 0 to 86400 (default 120)")
    g.add_argument("--max-retry-after", type=flags.seconds(0, 86400), default=600.0,
                   help="cap on a 429 response's Retry-After wait, seconds, 0 to 86400 (default 600)")


def _policy(a: argparse.Namespace):  # -> RetryPolicy
    from core.dataset.http_client import RetryPolicy

    return RetryPolicy(retries=a.retries, backoff_s=a.backoff, backoff_max_s=a.backoff_max,
                       timeout_s=a.timeout, max_retry_after_s=a.max_retry_after)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carvalue-data", description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    p = sub.add_parser(
        "scrape", help="fetch listing pages and photos into the database and image store",
        description="Visit listing IDs in a seeded shuffled order (a partial run is a uniform sample), read "
                    "each page's embedded listing JSON, download its photos (short side shrunk to 256, "
                    "JPEG) into the store, and record every listing and photo with its outcome. Kill it "
                    "at any moment: the same command resumes, retrying errors and skipping what is done. "
                    "A listing or photo whose handling fails in a way retrying cannot cure (a redirect loop, "
                    "an unusable URL, data the reader cannot handle) is recorded as 'failed' and skipped by "
                    "reruns. A lasting failure (the same error for --max-same-error listings in a row) stops it.")
    _add_common(p)
    p.add_argument("--ids", required=True, help="listing ID range A:B (A inclusive, B exclusive)")
    p.add_argument("--shard", default="0/1", help="i/n: this machine's share of the range (default 0/1)")
    p.add_argument("--seed", type=flags.int_in(0, 2**63 - 1), default=0, help="seed of the visiting order (default 0)")
    p.add_argument("--workers", type=flags.int_in(1, 256), default=8,
                   help="concurrent workers, one HTTP session each, 1 to 256 (default 8)")
    p.add_argument("--listing-url", type=flags.listing_url, default=None,
                   help="listing page URL template: an http(s) URL whose only field is {id} (default: the real site)")
    p.add_argument("--short-side", type=flags.int_in(*SHORT_SIDES), default=256,
                   help=f"stored photos' short side in pixels, {SHORT_SIDES[0]} to {SHORT_SIDES[1]} (default 256)")
    p.add_argument("--quality", type=flags.int_in(1, 100), default=90,
                   help="JPEG quality of stored photos, 1 to 100 (default 90)")
    p.add_argument("--max-photos", type=flags.int_in(1, 100_000), default=200,
                   help="photos kept per listing, 1 to 100000 (default 200)")
    p.add_argument("--max-same-error", type=flags.int_in(1, 1_000_000), default=25,
                   help="stop after this many listings in a row fail with the same error (default 25)")
    p.add_argument("--user-agent", default=None, help="override the User-Agent (default names the project)")
    p.add_argument("--retry-failed", action="store_true",
                   help="also retry listings and photos recorded as 'failed' (a redirect loop, an unusable URL, "
                        "data the reader could not handle); a plain rerun skips them")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_retry_flags(p)

    p = sub.add_parser(
        "verify", help="find and repair stored photos whose file is missing or corrupt",
        description="Check every stored photo: the file exists, its bytes hash to its name, and it decodes. "
                    "A bad file is deleted and downloaded again from its URL; if that fails its rows are "
                    "marked 'lost' (never used for training). Also removes temp files left by killed runs.")
    _add_common(p)
    p.add_argument("--no-refetch", action="store_true", help="mark bad photos lost instead of re-downloading")
    p.add_argument("--temp-age", type=flags.seconds(0, 1e9), default=3600.0,
                   help="remove temp files older than this many seconds (default 3600)")
    p.add_argument("--short-side", type=flags.int_in(*SHORT_SIDES), default=256,
                   help="re-fetched photos' short side, as the scrape used (default 256)")
    p.add_argument("--quality", type=flags.int_in(1, 100), default=90,
                   help="re-fetched photos' JPEG quality (default 90)")
    _add_retry_flags(p)

    p = sub.add_parser(
        "dedup", help="perceptual hashes; photos whose hash occurs more than once are dropped",
        description="Hash every stored photo (16x16 RGB, top 4 bits a channel, plus aspect ratio, SHA-256), "
                    "decoding JPEGs in draft mode across a process pool. Every photo whose hash occurs on "
                    "more than one photo row (dealer stock photos, re-uploads) is then left out of training "
                    "data. Resumable: only photos without a hash are hashed.")
    _add_common(p)
    p.add_argument("--jobs", type=flags.int_in(1, 256), default=os.cpu_count() or 1,
                   help="hashing processes (default: all cores)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser(
        "label", help="hand-label photos good/bad for the junk filter (keyboard-driven Qt window)",
        description="Shows stored, non-duplicate photos one at a time in a seeded random order. Keys: "
                    "G or Right = good (a whole vehicle), B or Left = bad (wheel, dashboard, interior, keys, "
                    "...), U or Backspace = undo, S = skip, Q or Esc = quit. Every key press is saved at once "
                    "to the labels file, so closing at any time loses nothing.")
    _add_common(p)
    p.add_argument("--labels", type=Path, required=True, help="labels JSON file (created if absent)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser(
        "filter", help="train the junk filter on labels, or apply it to every photo",
        description="train: features for the labelled photos, a linear SVM, and a threshold chosen on "
                    "held-out labels so fewer than --max-good-loss of good photos are dropped; prints "
                    "precision, recall and the fraction removed; saves arrays + JSON (no pickle). "
                    "apply: score every stored, non-duplicate photo and record the verdicts.")
    fsub = p.add_subparsers(dest="filter_cmd", required=True, metavar="ACTION")
    t = fsub.add_parser("train", help="train the filter on hand labels")
    _add_common(t)
    t.add_argument("--labels", type=Path, required=True, help="labels JSON written by `carvalue-data label`")
    t.add_argument("--out", type=Path, required=True, help="directory for the trained filter")
    t.add_argument("--held-out", type=float, default=0.3, help="fraction of labels held out (default 0.3)")
    t.add_argument("--max-good-loss", type=float, default=0.01,
                   help="the threshold drops fewer than this fraction of held-out good photos (default 0.01)")
    t.add_argument("--seed", type=int, default=0)
    _add_feature_flags(t)
    a = fsub.add_parser("apply", help="score every photo with a trained filter")
    _add_common(a)
    a.add_argument("--filter", type=Path, required=True, help="directory written by `filter train`")
    a.add_argument("--batch-size", type=int, default=32)
    a.add_argument("--threads", type=int, default=0,
                   help="torch threads; 0 = torch's default (1 is often faster on a busy machine)")
    a.add_argument("--trunk", type=Path, default=None, help="MobileNetV2 trunk safetensors (default: the cached one)")
    a.add_argument("--clip-weights", type=Path, default=None, help="local open_clip ViT-B/16 weights file")
    a.add_argument("--no-progress", action="store_true")

    p = sub.add_parser(
        "shards", help="write WebDataset-style tar shards (key.jpg + key.json per photo)",
        description="Writes the training photos (stored, not duplicates, not junk) with their listing's "
                    "labels into tar shards of --shard-size samples, each written to a temp file and renamed, "
                    "plus index.json and labels.jsonl (every sample's labels, for trainers). Each JSON holds the listing id (split by it, never by photo) and a "
                    "split name drawn from a hash of the listing id.")
    _add_common(p)
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--shard-size", type=flags.int_in(1, 10_000_000), default=1000)

    p = sub.add_parser(
        "merge", help="merge several machines' databases and image stores into one, then dedup it all",
        description="Copies (or hard-links) every stored file of each --part into the 256 buckets of --images "
                    "by its hash, and its rows into --db: one version per listing ID. When two parts hold "
                    "different data for the same ID, the kept one is: outcome ok, then another final "
                    "outcome, then error; then more stored photos; then the later attempt. The others go to "
                    "the merge_conflicts table (all their rows as JSON; their files are copied too) and are "
                    "counted in the report. Then dedup runs over every photo. Kill it at any moment: the same "
                    "command resumes, and merging again changes nothing.")
    _add_common(p)
    p.add_argument("--part", nargs=2, action="append", required=True, metavar=("DB", "IMAGES"),
                   type=Path, help="one machine's database and image store (repeat for each machine)")
    p.add_argument("--files", choices=("copy", "hardlink"), default="copy",
                   help="copy files, or hard-link them when the stores share a file system (default copy)")
    p.add_argument("--batch", type=flags.int_in(1, 100_000), default=256,
                   help="listings per transaction (default 256)")
    p.add_argument("--jobs", type=flags.int_in(1, 256), default=os.cpu_count() or 1,
                   help="hashing processes for the final dedup (default: all cores)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("stats", help="counts of listings and photos by outcome",
                       description="Prints what the database holds, as JSON: listings by outcome (ok, "
                                   "missing, invalid, error, failed), photos by status (stored, missing, error, "
                                   "failed, bad_image, bad_url, lost), stored files, perceptual hashes, "
                                   "duplicates, junk-filter verdicts and, for a merged database, the merge conflicts kept "
                                   "aside. Safe to run while a scrape writes (WAL).")
    _add_common(p, images=False)
    return parser


def _add_feature_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", choices=("mobilenet", "clip"), default="mobilenet",
                   help="image features: the ImageNet MobileNetV2 trunk (default) or CLIP ViT-B/16")
    p.add_argument("--trunk", type=Path, default=None, help="MobileNetV2 trunk safetensors (default: the cached one)")
    p.add_argument("--clip-weights", type=Path, default=None,
                   help="local open_clip ViT-B/16 weights file (needed for --features clip; never downloaded)")
    p.add_argument("--image-size", type=int, default=224,
                   help="MobileNetV2 input size in pixels (default 224); the filter remembers it")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads; 0 = torch's default (1 is often faster on a busy machine)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    flags.refuse_empty_values(parser, args)
    stage = f"carvalue-data {args.stage}"
    try:
        return _run(args)
    except OutputError as e:
        print(f"{stage}: error: {e}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    except UnusableDatabase as e:
        print(f"{stage}: error: {e}", file=sys.stderr)
        return EXIT_UNUSABLE_DATABASE
    except DatabaseNotWritable as e:
        print(f"{stage}: error: {e}", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    except sqlite3.DatabaseError as e:  # a full disk, or damage found after the checks on open
        if cannot_write(e):
            print(f"{stage}: error: {args.db}: cannot write the database ({e}); work committed before it is "
                  "kept: fix it and run the same command again", file=sys.stderr)
            return EXIT_CANNOT_WRITE
        print(f"{stage}: error: {args.db}: SQLite error ({e}); work committed before it is kept", file=sys.stderr)
        return EXIT_UNUSABLE_DATABASE
    except (DatabaseError, ValueError, FileNotFoundError, ImportError, NotDeduplicated) as e:
        print(f"{stage}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the store or an output folder: not writable, a full disk
        where = f" {e.filename}" if e.filename else ""
        print(f"{stage}: error: cannot write{where} ({e.strerror or one_line(str(e))}); work committed before it "
              "is kept", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    except KeyboardInterrupt:
        print(f"carvalue-data {args.stage}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _run(a: argparse.Namespace) -> int:
    if a.stage == "scrape":
        return _scrape(a)
    if a.stage == "verify":
        from core.dataset import database
        from core.dataset.image_store import ImageStore
        from core.dataset.verify import verify

        conn = database.connect(a.db, create=False)
        try:
            report = verify(conn, ImageStore(a.images), refetch=not a.no_refetch, policy=_policy(a), rate=a.rate,
                            short_side=a.short_side, quality=a.quality, temp_age_s=a.temp_age)
        finally:
            conn.close()
        write(sys.stdout, json.dumps(report.as_dict()))
        return 0
    if a.stage == "dedup":
        from core.dataset import database
        from core.dataset.dedup import dedup
        from core.dataset.image_store import ImageStore

        conn = database.connect(a.db, create=False)
        try:
            write(sys.stdout, json.dumps(dedup(conn, ImageStore(a.images), jobs=a.jobs,
                                               progress=not a.no_progress).as_dict()))
        finally:
            conn.close()
        return 0
    if a.stage == "label":
        return _label(a)
    if a.stage == "filter":
        from core.dataset.filter_stage import apply_filter_cli, train_filter_cli

        return train_filter_cli(a) if a.filter_cmd == "train" else apply_filter_cli(a)
    if a.stage == "shards":
        from core.dataset.shards import write_shards

        write(sys.stdout, json.dumps(write_shards(a.db, a.images, a.out, a.shard_size).as_dict()))
        return 0
    if a.stage == "merge":
        return _merge(a)
    if a.stage == "stats":
        from core.dataset import database
        from core.dataset.stats import database_stats

        conn = database.connect(a.db, create=False, readonly=True)
        try:
            write(sys.stdout, json.dumps(database_stats(conn), indent=2))
        finally:
            conn.close()
        return 0
    raise ValueError(f"unknown stage {a.stage!r}")


def _scrape(a: argparse.Namespace) -> int:
    from core.dataset import database
    from core.dataset.ids import IdRange, Shard, visit_order
    from core.dataset.image_store import ImageStore
    from core.dataset.scrape import LastingFailure, Scraper

    config = scrape_config(a)
    order = visit_order(IdRange.parse(a.ids), a.seed, Shard.parse(a.shard))
    conn = database.connect(a.db)
    try:
        summary = Scraper(conn, ImageStore(a.images), config).run(order)
    except LastingFailure as e:
        print(f"carvalue-data scrape: {e}", file=sys.stderr)
        return 3
    except OSError as e:  # the store or database cannot be written (disk full, permissions)
        print(f"carvalue-data scrape: cannot write ({e}); everything committed so far is kept: fix it and "
              "run the same command again to resume", file=sys.stderr)
        return EXIT_CANNOT_WRITE
    finally:
        conn.close()
    write(sys.stdout, json.dumps(summary.as_dict()))
    return 0


def _merge(a: argparse.Namespace) -> int:
    from core.dataset import database
    from core.dataset.image_store import ImageStore
    from core.dataset.merge import Part, merge

    parts = [Part(d, i) for d, i in a.part]
    for part in parts:  # every part is checked before the merged database is made or touched
        database.connect(part.db, create=False, readonly=True).close()
    conn = database.connect(a.db)
    try:
        report = merge(conn, ImageStore(a.images), parts, files=a.files, batch=a.batch, jobs=a.jobs,
                       progress=not a.no_progress)
    finally:
        conn.close()
    write(sys.stdout, json.dumps(report.as_dict()))
    return 0


def scrape_config(a: argparse.Namespace):  # -> ScrapeConfig
    from core.dataset.http_client import USER_AGENT
    from core.dataset.scrape import DEFAULT_LISTING_URL, ScrapeConfig

    return ScrapeConfig(
        listing_url=a.listing_url or DEFAULT_LISTING_URL, workers=a.workers, rate=a.rate, policy=_policy(a),
        short_side=a.short_side, quality=a.quality, max_photos=a.max_photos, max_same_error=a.max_same_error,
        user_agent=a.user_agent or USER_AGENT, progress=not a.no_progress, retry_failed=a.retry_failed)


def _label(a: argparse.Namespace) -> int:
    """The labeller is a Qt program in carvalue_gui.  This is the one place core reaches the app's
    package: an import inside this stage only (nothing else of core loads Qt), which the
    import-linter contract "core never imports Qt" names as its single allowed exception."""
    from core.dataset import database

    database.connect(a.db, create=False, readonly=True).close()  # refuse a missing or damaged database here, before Qt starts
    from carvalue_gui.labeller import main as labeller_main

    return labeller_main(["--db", str(a.db), "--images", str(a.images), "--labels", str(a.labels),
                          "--seed", str(a.seed)])


if __name__ == "__main__":
    sys.exit(main())
