"""Hand labels for the junk filter: which stored photos show a whole vehicle (good) or not (bad).

The file is JSON, rewritten atomically after every change (a few hundred labels: tiny), in the
order the labels were given so that undo takes back the last one::

    {"version": 1, "labels": [{"sha256": "...", "label": "good"}, ...]}
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import reprlib
import sqlite3
from pathlib import Path

from core import smallfile
from core.atomic import atomic_write
from core.dataset import database as db
from core.dataset.image_store import check_sha256

GOOD = "good"
BAD = "bad"
VERSION = 1
MAX_BYTES = 256 << 20  # about 2 million labels; the labeller writes ~100 bytes a label


class LabelFileError(ValueError):
    pass


class LabelFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._order: list[str] = []
        self._labels: dict[str, str] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:  # never blocks (a FIFO), never a RecursionError (deep nesting): one line
            data = smallfile.read_json(self.path, MAX_BYTES)
        except smallfile.SmallFileError as e:
            raise LabelFileError(f"{self.path}: not a readable labels file ({e.reason})") from None
        except OSError as e:
            raise LabelFileError(f"{self.path}: not a readable labels file ({e.strerror or e})") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("labels"), list):
            raise LabelFileError(f"{self.path}: expected {{\"version\": {VERSION}, \"labels\": [...]}}")
        for i, item in enumerate(data["labels"]):
            try:
                sha, label = check_sha256(item["sha256"]), item["label"]
            except (KeyError, TypeError, ValueError):
                raise LabelFileError(f"{self.path}: label #{i} is malformed: {_brief(item)}") from None
            if not isinstance(label, str) or label not in (GOOD, BAD):
                raise LabelFileError(f"{self.path}: label #{i} is {_brief(label)}, expected 'good' or 'bad'")
            self._put(sha, label)

    def _put(self, sha: str, label: str) -> None:
        if sha in self._labels:
            self._order.remove(sha)
        self._labels[sha] = label
        self._order.append(sha)

    def _save(self) -> None:
        payload = {"version": VERSION, "labels": [{"sha256": s, "label": self._labels[s]} for s in self._order]}
        atomic_write(self.path, json.dumps(payload, indent=1))

    def set(self, sha256: str, label: str) -> None:
        if label not in (GOOD, BAD):
            raise ValueError(f"label must be 'good' or 'bad', got {label!r}")
        self._put(check_sha256(sha256), label)
        self._save()

    def undo(self) -> str | None:
        """Take back the most recent label; returns its photo's hash (None if there were none)."""
        if not self._order:
            return None
        sha = self._order.pop()
        del self._labels[sha]
        self._save()
        return sha

    def get(self, sha256: str) -> str | None:
        return self._labels.get(sha256)

    def items(self) -> list[tuple[str, str]]:
        return [(s, self._labels[s]) for s in self._order]

    def counts(self) -> dict[str, int]:
        good = sum(1 for v in self._labels.values() if v == GOOD)
        return {GOOD: good, BAD: len(self._labels) - good}

    def __len__(self) -> int:
        return len(self._order)


def labelling_queue(conn: sqlite3.Connection, seed: int = 0, limit: int = 5000) -> list[str]:
    """Up to ``limit`` stored photos to label (duplicates left out once hashed), in a seeded
    random order.  SHA-256 names are uniformly random, so the ``limit`` hashes that follow a
    seeded random point (wrapping round) are a uniform sample, read straight off the index
    even at millions of photos."""
    start = hashlib.sha256(f"labelling-queue-{seed}".encode()).hexdigest()
    sql = ("SELECT DISTINCT p.sha256 FROM photos p LEFT JOIN phashes h ON h.sha256 = p.sha256 "
           "WHERE p.status = ? AND (h.phash IS NULL OR h.phash NOT IN (SELECT phash FROM duplicate_phashes)) "
           "AND h.error IS NULL AND p.sha256 {} ? ORDER BY p.sha256 LIMIT ?")
    hashes = [r[0] for r in conn.execute(sql.format(">="), (db.PHOTO_STORED, start, limit))]
    if len(hashes) < limit:
        hashes += [r[0] for r in conn.execute(sql.format("<"), (db.PHOTO_STORED, start, limit - len(hashes)))]
    random.Random(seed).shuffle(hashes)
    return hashes


def _brief(value: object, limit: int = 160) -> str:
    """A value as an error message may quote it: reprlib's abbreviation, cut to ``limit``
    characters (nested dicts with long keys stay long under reprlib alone: hypothesis made one
    of 700)."""
    text = reprlib.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
