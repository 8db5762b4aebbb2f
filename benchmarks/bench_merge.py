"""`carvalue-data merge` throughput; prints one JSON object.

Makes ``--machines`` part databases of ``--listings`` listings with ``--photos`` distinct small
JPEGs each (64x48, like nothing real but cheap to make), then merges them (copy, then again with
hard links into a new store) and reruns the merge (the idempotent no-op a resumed run pays for).
The final dedup hashes every photo; its time is inside the merge's.

    python benchmarks/bench_merge.py [--machines 3] [--listings 1000] [--photos 3]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.dataset import database  # noqa: E402
from core.dataset.image_store import ImageStore  # noqa: E402
from core.dataset.merge import Part, merge  # noqa: E402


def make_part(base: Path, name: str, first_id: int, listings: int, photos: int, rng: np.random.Generator) -> Part:
    part = Part(base / f"{name}.sqlite", base / f"{name}-images")
    conn = database.connect(part.db)
    store = ImageStore(part.images)
    with database.Transaction(conn) as c:
        for lid in range(first_id, first_id + listings):
            c.execute("INSERT INTO listings(listing_id, source_url, title, price, make, model, year) "
                      "VALUES (?,?,?,?,?,?,?)", (lid, f"http://x/{lid}", "t", 9000.0, "Honda", "Civic", 2010))
            for k in range(photos):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
                sha = store.put(buf.getvalue())
                c.execute("INSERT INTO photos(listing_id, photo_index, url, status, sha256, width, height) "
                          "VALUES (?,?,?,?,?,?,?)", (lid, k, f"http://x/{lid}/{k}.jpg", "stored", sha, 64, 48))
            c.execute("INSERT INTO attempts(listing_id, outcome, http_status, error, attempted_at) "
                      "VALUES (?, 'ok', 200, NULL, 1.0)", (lid,))
    conn.close()
    return part


def timed_merge(out: Path, parts: list[Part], files: str) -> tuple[float, dict[str, object]]:
    conn = database.connect(out / "merged.sqlite")
    try:
        t0 = time.perf_counter()
        report = merge(conn, ImageStore(out / "store"), parts, files=files, jobs=1)
        return time.perf_counter() - t0, report.as_dict()
    finally:
        conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--machines", type=int, default=3)
    p.add_argument("--listings", type=int, default=1000, help="listings a machine")
    p.add_argument("--photos", type=int, default=3, help="photos a listing")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        parts = [make_part(base, f"m{i}", i * a.listings, a.listings, a.photos, rng) for i in range(a.machines)]
        files = a.machines * a.listings * a.photos
        (base / "copy").mkdir()
        (base / "link").mkdir()
        t_copy, report = timed_merge(base / "copy", parts, "copy")
        t_again, again = timed_merge(base / "copy", parts, "copy")
        t_link, linked = timed_merge(base / "link", parts, "hardlink")
    print(json.dumps({
        "machines": a.machines, "listings": a.machines * a.listings, "files": files,
        "merge_copy_s": round(t_copy, 2), "files_per_s_copy_with_dedup": round(files / t_copy),
        "merge_hardlink_s": round(t_link, 2), "files_per_s_hardlink_with_dedup": round(files / t_link),
        "rerun_s": round(t_again, 2), "rerun_parts_already_merged": again["parts_already_merged"],
        "copied": report["files_copied"], "linked": linked["files_linked"],
        "hashed": report["dedup"]["hashed_now"],  # type: ignore[index]
    }))


if __name__ == "__main__":
    main()
