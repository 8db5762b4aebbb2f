"""``carvalue-data filter train|apply``: features of stored photos -> junk filter -> verdicts."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from itertools import islice

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.dataset import database as db
from core.dataset.features import FeatureExtractor, make_extractor
from core.dataset.image_store import ImageStore
from core.dataset.junk_filter import JunkFilter, train_junk_filter
from core.dataset.labels import GOOD, LabelFile
from core.output import write
from core.preprocess import ImageLoadError, load_photo


def _load(store: ImageStore, sha: str) -> Image.Image:
    return load_photo(store.path_for(sha), max_side=512).image


def features_of(store: ImageStore, hashes: Sequence[str], extractor: FeatureExtractor, batch_size: int = 32,
                progress: bool = True) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Features of the photos that load; returns (features, their hashes, {hash: why not} for the rest)."""
    feats: list[np.ndarray] = []
    ok: list[str] = []
    failed: dict[str, str] = {}
    it: Iterator[str] = iter(hashes)
    with tqdm(total=len(hashes), unit="photo", desc="features", disable=not progress, file=sys.stderr) as bar:
        while chunk := list(islice(it, batch_size)):
            images, names = [], []
            for sha in chunk:
                try:
                    images.append(_load(store, sha))
                    names.append(sha)
                except ImageLoadError as e:
                    failed[sha] = e.reason
            if images:
                feats.append(extractor(images))
                ok.extend(names)
            bar.update(len(chunk))
    dim = extractor.dim
    return (np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)), ok, failed


def train_filter_cli(a: argparse.Namespace) -> int:
    if not a.labels.exists():
        raise FileNotFoundError(f"{a.labels}: no labels file; make one with `carvalue-data label`")
    labels = LabelFile(a.labels)
    items = labels.items()
    store = ImageStore(a.images)
    extractor = make_extractor(a.features, a.trunk, a.clip_weights, a.image_size, a.threads)
    x, hashes, failed = features_of(store, [s for s, _ in items], extractor, a.batch_size)
    label_of = dict(items)
    good = np.array([label_of[s] == GOOD for s in hashes])
    result = train_junk_filter(x, good, extractor.name, a.held_out, a.max_good_loss, a.seed)
    result.filter.save(a.out)
    report = {"filter": str(a.out), "features": extractor.name, "labels_used": len(hashes),
              "labels_unreadable": len(failed), "trained_on": result.n_train,
              "held_out": result.held_out.as_dict()}
    if result.warning:
        report["warning"] = result.warning
        print(f"carvalue-data filter train: warning: {result.warning}", file=sys.stderr)
    write(sys.stdout, json.dumps(report, indent=2))
    return 0


def apply_filter(conn: sqlite3.Connection, store: ImageStore, jf: JunkFilter, extractor: FeatureExtractor,
                 batch_size: int = 32, progress: bool = True) -> dict[str, object]:
    """Score every stored photo not yet scored by this filter; returns counts."""
    if extractor.name != jf.features:
        raise ValueError(f"the filter was trained on {jf.features} features, not {extractor.name}")
    fid = jf.fingerprint()
    todo_after = ("SELECT DISTINCT p.sha256 FROM photos p LEFT JOIN junk_scores j ON j.sha256 = p.sha256 "
                  "WHERE p.status = 'stored' AND (j.sha256 IS NULL OR j.filter_id != ?) AND p.sha256 > ? "
                  "ORDER BY p.sha256 LIMIT ?")
    unreadable: dict[str, str] = {}
    attempted = 0
    # Pages of a few batches, each committed: a killed run keeps most of its work.  Unreadable
    # photos get no row, so paging by hash (not by "still unscored") moves past them.
    total = conn.execute(
        "SELECT COUNT(DISTINCT p.sha256) FROM photos p LEFT JOIN junk_scores j ON j.sha256 = p.sha256 "
        "WHERE p.status = 'stored' AND (j.sha256 IS NULL OR j.filter_id != ?)", (fid,)).fetchone()[0]
    with tqdm(total=total, unit="photo", desc="filter", disable=not progress, file=sys.stderr) as bar:
        for page in db.hash_pages(conn, todo_after, (fid,), page=batch_size * 16):
            attempted += len(page)
            x, hashes, failed = features_of(store, page, extractor, batch_size, progress=False)
            unreadable.update(failed)
            if hashes:
                scores = jf.scores(x)
                with db.Transaction(conn) as c:
                    c.executemany(
                        "INSERT OR REPLACE INTO junk_scores(sha256, score, is_junk, filter_id) VALUES (?,?,?,?)",
                        [(s, float(v), int(v < jf.threshold), fid) for s, v in zip(hashes, scores, strict=True)])
            bar.update(len(page))
    scored, junk = conn.execute("SELECT COUNT(*), COALESCE(SUM(is_junk), 0) FROM junk_scores WHERE filter_id = ?",
                                (fid,)).fetchone()
    return {"filter_id": fid, "scored_now": attempted - len(unreadable), "scored_total": int(scored),
            "junk": int(junk), "fraction_junk": round(junk / scored, 6) if scored else 0.0,
            "unreadable": len(unreadable), "unreadable_examples": dict(list(unreadable.items())[:5]),
            "hint": "run `carvalue-data verify` to repair unreadable photos" if unreadable else None}


def apply_filter_cli(a: argparse.Namespace) -> int:
    conn = db.connect(a.db, create=False)  # first: a bad database is refused before the model loads
    try:
        jf = JunkFilter.load(a.filter)
        extractor = make_extractor(jf.features, a.trunk, a.clip_weights, threads=a.threads)
        write(sys.stdout, json.dumps(apply_filter(conn, ImageStore(a.images), jf, extractor, a.batch_size,
                                                  not a.no_progress), indent=2))
    finally:
        conn.close()
    return 0
