"""What the four studies share: the command line, the model, the car photos and their labels.

Every study runs as ``python -m training.studies.<name> --model FILE --data DIR --out DIR
[--limit N] [--seed S]``; ``--data`` is a folder with ``labels.csv`` + images laid out like
``../shared/data/stanford-cars-train``.  Photos are picked from the model's held-out split when
the model file records one (``provenance``), so the studies do not measure photos the model
was trained on; otherwise the report says that the photos may have been seen in training.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.predictor import Prediction, Predictor, default_model_path
from core.preprocess import MIN_SIDE, Photo, load_photo, photo_from_image
from training.data.labels_csv import LabelsCsvError, read_labels_csv

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "stanford-cars-train"
DEFAULT_OUT = REPO / "docs" / "studies"
# Keys under the model file's ``provenance`` that may list the held-out (test) photos.
HELD_OUT_KEYS = ("test_files", "held_out_files", "heldout_files", "test", "held_out", "heldout")


@dataclass(frozen=True)
class StudyArgs:
    model: Path
    data: Path
    out: Path
    limit: int | None
    seed: int
    split: Path | None = None  # the trainer's split.json, when the model file lists no held-out photos


def parse_args(name: str, description: str, argv: Sequence[str] | None = None,
               default_limit: int | None = None) -> StudyArgs:
    p = argparse.ArgumentParser(prog=f"python -m training.studies.{name}", description=description)
    p.add_argument("--model", type=Path, default=default_model_path(),
                   help="CarValue model file (default: the bundled model)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="folder with labels.csv and the photos it names (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"where {name}.md, {name}.json and the PNGs go (default: %(default)s)")
    p.add_argument("--limit", type=int, default=default_limit,
                   help="at most this many car photos (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed for picking photos (default: 0)")
    p.add_argument("--split", type=Path, default=None,
                   help="the training run's split.json: use its test photos (needed only when the "
                        "model file does not list its held-out photos)")
    a = p.parse_args(argv)
    if a.limit is not None and a.limit < 1:
        p.error("--limit must be at least 1")
    return StudyArgs(a.model, a.data, a.out, a.limit, a.seed, a.split)



def study_main(name: str, doc: str | None, run: Callable[[StudyArgs], object],
               default_limit: int | None, argv: Sequence[str] | None = None) -> int:
    """The command-line entry point every study shares: parse flags, run, say where the report went."""
    args = parse_args(name, (doc or name).splitlines()[0], argv, default_limit=default_limit)
    run(args)
    print(f"wrote {args.out / (name + '.md')}")
    return 0

# -- labelled car photos -------------------------------------------------------------------------
@dataclass(frozen=True)
class CarPhoto:
    """One row of labels.csv."""

    file: str  # relative to the data folder, as in labels.csv
    make: str
    model: str
    year: str
    class_name: str
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def path(self, data_dir: Path) -> Path:
        return data_dir / self.file


def read_labels(data_dir: Path) -> list[CarPhoto]:
    """Every photo of ``data_dir/labels.csv`` (through training.data.labels_csv); a missing or bad
    file stops the study with its one-line message."""
    try:
        rows = read_labels_csv(data_dir, ("file", "make", "model", "year", "width", "height"))
    except (FileNotFoundError, LabelsCsvError) as e:
        raise SystemExit(str(e)) from e
    return [CarPhoto(r.file, r.make, r.model, str(r.year), r.class_name, r.width, r.height) for r in rows]


def truth_label(car: CarPhoto, vocabulary: Sequence[str]) -> str | None:
    """The model's make/model label for this photo, or None when its vocabulary lacks it."""
    vocab = set(vocabulary)
    for candidate in (car.class_name, f"{car.make} {car.model} {car.year}", f"{car.make} {car.model}"):
        if candidate in vocab:
            return candidate
    return None


def held_out_files(provenance: dict[str, Any]) -> set[str] | None:
    """File names of the held-out photos the model file records, or None when it records none.

    Accepts, at any depth of ``provenance``, a key from HELD_OUT_KEYS holding either a list of
    file names or an object with a ``files`` list (the layout of the trainer's split.json:
    ``{"parts": {"test": {"files": [...]}}}``).  Names are compared by their last two path
    parts (``images/00002.jpg``) so absolute and relative paths both match labels.csv.
    """
    found = _find_file_list(provenance, depth=0)
    return {file_key(v) for v in found} if found else None


def _find_file_list(node: Any, depth: int) -> list[str] | None:
    if not isinstance(node, dict) or depth > 5:
        return None
    for key in HELD_OUT_KEYS:
        value = node.get(key)
        if isinstance(value, dict):
            value = value.get("files")
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
    for value in node.values():
        hit = _find_file_list(value, depth + 1)
        if hit:
            return hit
    return None


def read_split_file(path: Path, provenance: dict[str, Any] | None = None) -> set[str]:
    """Held-out file names from a split.json written by the trainer (``--split``).

    When the model file records its split's digest (``provenance.split.sha256``), the file must
    carry the same one: a split from another run would put training photos in the studies.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"{path}: cannot read the split ({e})") from e
    files = held_out_files(data) if isinstance(data, dict) else None
    if not files:
        raise SystemExit(f"{path}: no held-out (test) file list found")
    want = _split_digest(provenance or {})
    if want and data.get("sha256") != want:
        raise SystemExit(f"{path}: split sha256 {str(data.get('sha256'))[:12]}... is not the model's "
                         f"({str(want)[:12]}...): this split is from another training run")
    return files


def _split_digest(provenance: dict[str, Any]) -> str | None:
    split = provenance.get("split")
    return split.get("sha256") if isinstance(split, dict) else None


def file_key(name: str) -> str:
    parts = Path(name).parts
    return "/".join(parts[-2:])


@dataclass(frozen=True)
class Selection:
    cars: list[CarPhoto]
    held_out: bool  # True: all from the model's recorded held-out split
    pool_size: int  # photos that passed the filter before the limit
    note: str  # one sentence for the report


def pick_cars(args: StudyArgs, predictor: Predictor, keep: Callable[[CarPhoto], bool] = lambda c: True,
              what: str = "photos") -> Selection:
    """Car photos passing ``keep``, from the held-out split (``--split`` or the model file's
    provenance) when there is one, shuffled with the seed and cut to the limit."""
    data_dir = args.data
    # Photos under MIN_SIDE px a side are refused by the app's loader, so by the studies too.
    cars = [c for c in read_labels(data_dir)
            if min(c.width, c.height) >= MIN_SIDE and keep(c) and c.path(data_dir).exists()]
    if args.split is not None:
        test: set[str] | None = read_split_file(args.split, predictor.metadata.provenance)
        where = f"the held-out split in {args.split.name}" + (
            " (its sha256 matches the model's)" if _split_digest(predictor.metadata.provenance) else "")
    else:
        test = held_out_files(predictor.metadata.provenance)
        where = "the model's held-out split (recorded in its metadata)"
    if test is not None:
        cars = [c for c in cars if file_key(c.file) in test]
        note = f"{what} from {where}: none of them was used in training"
    else:
        note = (f"{what} from {data_dir.name}; the model file lists no held-out photos and no "
                "--split was given, so some of these photos may have been used to train it")
    random.Random(args.seed).shuffle(cars)
    pool = len(cars)
    if args.limit is not None:
        cars = cars[:args.limit]
    if not cars:
        raise SystemExit(f"no usable photos in {data_dir} for this study")
    return Selection(cars, test is not None, pool, f"{len(cars)} of {pool} {note}.")


def open_photo(car: CarPhoto, data_dir: Path) -> Photo:
    return load_photo(car.path(data_dir))


def pil_of(photo: Photo) -> Image.Image:
    """The photo's working copy at its original size (the studies' own edits start here)."""
    if photo.image.size == photo.original_size:
        return photo.image.copy()
    return photo.image.resize(photo.original_size, Image.Resampling.BILINEAR)


def as_photo(img: Image.Image, name: str) -> Photo:
    return photo_from_image(img, name)


def load_predictor(path: Path) -> Predictor:
    return Predictor.load(path)


# -- small numeric helpers -------------------------------------------------------------------------
def prob_of(pred: Prediction, label: str) -> float:
    """Probability of ``label`` among the prediction's top-k (0 when outside them)."""
    for lp in pred.make_models:
        if lp.label == label:
            return lp.probability
    return 0.0


def mean_or_nan(values: Iterable[float]) -> float:
    arr = np.asarray(list(values), dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def median_or_nan(values: Iterable[float]) -> float:
    arr = np.asarray(list(values), dtype=np.float64)
    return float(np.median(arr)) if arr.size else float("nan")


def model_line(predictor: Predictor) -> str:
    m = predictor.metadata
    return (f"Model: `{predictor.path.name}` ({m.name}, {m.architecture}, {m.input.size} px input, "
            f"{len(m.make_models) - 1} make/model classes + Unknown, confidence method "
            f"`{m.confidence.method}`). Price label: {m.price.meaning or 'not described in the file'}")


def write_json_report(out: Path, report: dict[str, Any]) -> int:
    """A study's JSON report to ``out`` (its folder made) and to stdout; 0, the exit status."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0
