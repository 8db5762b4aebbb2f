"""The window's photos: each one's path, working copy and results, and what memory they may use.

Two limits keep memory bounded whatever a folder's size:
- at most ``max_resident`` decoded working copies stay in memory; beyond that the least recently
  selected are let go (their thumbnail and results stay) and decoded again when selected;
- a photo the loader delivered holds one of its slots (``PhotoLoader.release``) until its
  whole-photo estimate is in; ``awaiting`` records which, so each slot is released exactly once.
No Qt here: the window turns what this returns into widget updates.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from core.geometry import Box
from core.predictor import Prediction, Sweep
from core.preprocess import Photo
from core.report import PhotoResults

# Decoded working copies kept in memory (at most 1024 px long: ~2.4 MB each); photos beyond this,
# least recently selected first, keep their thumbnail and estimates and are decoded again when
# selected, so a folder of thousands of camera photos does not fill the memory.
MAX_RESIDENT = 120


@dataclass(frozen=True)
class PhotoFields:
    """A photo's mileage, unit and condition as typed (text, so a half-typed number is not lost)."""

    mileage: str = ""
    unit: str = "mi"
    condition: str = ""


@dataclass
class PhotoEntry:
    key: int
    path: str  # a file, or "<pasted image N>"
    size: tuple[int, int]  # original pixels
    photo: Photo | None  # the decoded working copy; None while let go (see MAX_RESIDENT)
    prediction: Prediction | None = None  # on the car found in it (or the whole photo), batch queue
    error: str = ""  # why the whole-photo estimate failed, when it did
    box: Box | None = None  # the user's crop box (None: whole photo)
    crop_prediction: Prediction | None = None  # for `box`
    sweep: Sweep | None = None
    fields: PhotoFields = PhotoFields()  # as typed
    valid_fields: PhotoFields = PhotoFields()  # the last that parsed: what the photo is priced with
    cars: list[str] = field(default_factory=list)  # the cars the user named for it, latest last

    @property
    def reloadable(self) -> bool:
        return not self.path.startswith("<")

    def results(self) -> PhotoResults:
        return PhotoResults(self.path, self.size, self.prediction,
                            self.crop_prediction, self.sweep)

    def found_box(self) -> Box | None:
        """Where the model found the car (from the automatic estimate), if it did."""
        p = self.prediction
        return p.crop if p is not None and p.found_box is not None and p.crop != Box.full(self.size) else None

    def shown_prediction(self) -> Prediction | None:
        """What the photo's row shows: the crop's estimate while a crop is set, else the whole
        photo's."""
        return self.crop_prediction if self.box is not None and self.crop_prediction else self.prediction


class PhotoCollection:
    """Photos by key in the order they came; see the module docstring."""

    def __init__(self, max_resident: int = MAX_RESIDENT) -> None:
        self.entries: dict[int, PhotoEntry] = {}
        self.max_resident = max_resident
        self._paths: set[str] = set()  # a file dropped twice is listed once
        self._resident: OrderedDict[int, None] = OrderedDict()  # keys with a working copy, LRU first
        self._awaiting: set[int] = set()  # keys holding a loader slot until estimated
        self._next_key = 1

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[PhotoEntry]:
        return iter(list(self.entries.values()))

    def get(self, key: int | None) -> PhotoEntry | None:
        return None if key is None else self.entries.get(key)

    def has_path(self, path: str) -> bool:
        return path in self._paths

    def next_paste_name(self) -> str:
        return f"<pasted image {self._next_key}>"

    def add(self, path: str, photo: Photo) -> PhotoEntry:
        entry = PhotoEntry(self._next_key, path, photo.original_size, photo)
        self._next_key += 1
        self.entries[entry.key] = entry
        self._paths.add(path)
        self._resident[entry.key] = None
        return entry

    def remove(self, key: int) -> bool:
        """Forget a photo; True when it held a loader slot (the caller releases it)."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            self._paths.discard(entry.path)
        self._resident.pop(key, None)
        held = key in self._awaiting
        self._awaiting.discard(key)
        return held

    def touch(self, key: int) -> None:
        """The photo was selected: its working copy is the last to be let go."""
        if key in self._resident:
            self._resident.move_to_end(key)

    def set_photo(self, entry: PhotoEntry, photo: Photo) -> None:
        """A working copy decoded again."""
        entry.photo = photo
        self._resident[entry.key] = None

    def evict(self, keep: int | None) -> None:
        """Let go of the least recently selected working copies beyond ``max_resident`` (never
        ``keep``'s, never a pasted image's: it has no file to read again). A photo still waiting
        for its estimate stays alive in the estimator's queue until it is estimated."""
        for key in list(self._resident):
            if len(self._resident) <= self.max_resident:
                break
            entry = self.entries.get(key)
            if entry is None or (key != keep and entry.reloadable):
                if entry is not None:
                    entry.photo = None
                del self._resident[key]

    def resident_count(self) -> int:
        return sum(e.photo is not None for e in self.entries.values())

    # -- loader slots ---------------------------------------------------------------------------
    def await_estimate(self, key: int) -> bool:
        """The photo's delivered copy keeps its loader slot until ``estimated``; False when it
        already waits (the caller releases the new copy's slot at once)."""
        if key in self._awaiting:
            return False
        self._awaiting.add(key)
        return True

    def estimated(self, keys: Iterable[int]) -> int:
        """Slots to release for these photos' estimates (given or failed)."""
        done = self._awaiting.intersection(keys)
        self._awaiting -= done
        return len(done)

    def drop_all_awaiting(self) -> int:
        """Slots to release when the estimator's queue was emptied (the model changed)."""
        n = len(self._awaiting)
        self._awaiting.clear()
        return n
