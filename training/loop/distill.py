"""Distillation from a teacher: ``carvalue-train train ... --teacher MODEL.onnx|RUN``.

The teacher is a CarValue model file, run through ONNX Runtime exactly as the app runs it (its
own input size and normalisation, the whole photo stretched to its square), or a training run
folder, whose last checkpoint runs in torch the same way: any architecture, so a
``--arch clip-vit-b16`` run, which cannot become a model file, can teach. Its make/model and
year logits are computed once per training photo, averaged over the photo and its mirror image,
and kept in the run folder (``teacher-targets.npz``, rows keyed by photo path, with the teacher's
sha256), so no teacher runs inside the training loop and a resumed run reuses them. With
``--distill-targets crop`` the teacher instead runs on every training batch as the student sees it
(the same random crop, flip and framing, resized to the teacher's input): "consistent" teaching
(Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and consistent"), at the
cost of one teacher forward per training photo per epoch.

The loss adds ``alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T))`` for the
make/model head and for the year head to the usual losses (Hinton et al. 2015: the ``T**2``
keeps the gradients' scale when the temperature changes). Both kinds of
targets are measured in training/reports/RESULTS.md.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.atomic import atomic_open
from core.dataset.records import ImageRecord
from core.geometry import Box
from core.modelfile import InputSpec, ModelFileError, open_session
from core.preprocess import crop_resize, load_photo, normalise

TARGETS_FILE = "teacher-targets.npz"


class TeacherError(ValueError):
    """The teacher cannot teach this run; the message says why."""


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's flip-averaged logits, one row per training photo in the run's dataset order."""

    make_model: torch.Tensor  # (N, make/model classes) float32
    year: torch.Tensor  # (N, years) float32

    def rows(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return self.make_model[idx], self.year[idx]

    def for_batch(self, indices: Sequence[int], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of the batch's photos (``x``, the batch itself, is not looked at)."""
        return self.rows(indices)


def file_sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


Logits = tuple[np.ndarray, np.ndarray]  # (make/model, year) logits of a batch


@dataclass(frozen=True)
class Teacher:
    """An opened teacher: what it is called and its SHA-256 (of the model file, or of the run's
    checkpoint weights), its vocabularies and input, and a function from a normalised batch
    (N, 3, S, S) to its (make/model, year) logits."""

    name: str
    sha256: str
    make_models: tuple[str, ...]
    years: tuple[str, ...]
    spec: InputSpec
    forward: Callable[[np.ndarray], Logits]


def open_teacher(teacher: str | os.PathLike[str], threads: int = 0) -> Teacher:
    """A model file through ONNX Runtime, or a training run folder's last checkpoint in torch."""
    path = Path(teacher)
    if path.is_dir():
        return _run_teacher(path)
    if not path.is_file():
        raise TeacherError(f"{path}: no such teacher model file or run folder")
    try:
        session, meta = open_session(path, threads=threads or None)
    except ModelFileError as e:
        raise TeacherError(f"teacher: {e}") from None
    name = session.get_inputs()[0].name

    def forward(x: np.ndarray) -> Logits:
        m, y = session.run(["make_model_logits", "year_logits"], {name: x})
        return np.asarray(m, np.float32), np.asarray(y, np.float32)

    return Teacher(path.name, file_sha256(path), tuple(meta.make_models), tuple(meta.years), meta.input, forward)


def _run_teacher(path: Path) -> Teacher:
    from training.loop.checkpoint import CheckpointError, load_checkpoint
    from training.loop.trained import load_trained

    try:
        t = load_trained(path)
    except (CheckpointError, ValueError, OSError, KeyError) as e:
        raise TeacherError(f"{path}: not a training run that can teach ({e})") from None
    model = t.model.eval()

    @torch.no_grad()
    def forward(x: np.ndarray) -> Logits:
        out = model(torch.from_numpy(x))
        return out[2].float().numpy(), out[3].float().numpy()

    return Teacher(path.name, file_sha256(load_checkpoint(path).weights_path), tuple(t.labels.make_models),
                   tuple(t.labels.years), t.spec("stretch"), forward)


@dataclass(frozen=True)
class CropTeacher:
    """The teacher run on each training batch as the student sees it (``--distill-targets crop``)."""

    teacher: Teacher
    student: InputSpec  # how the batch was normalised

    def for_batch(self, indices: Sequence[int], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's (make/model, year) logits of the batch ``x`` (N, 3, S, S) as the student
        sees it: un-normalised, resized to the teacher's input (bilinear) and normalised its way.
        ``indices`` (which photos they are) are not needed."""
        t = self.teacher.spec
        with torch.no_grad():
            img = x.float() * torch.tensor(self.student.std).view(1, 3, 1, 1) + torch.tensor(self.student.mean).view(1, 3, 1, 1)
            if img.shape[-1] != t.size or img.shape[-2] != t.size:
                img = F.interpolate(img, size=(t.size, t.size), mode="bilinear", align_corners=False,
                                    antialias=img.shape[-1] > t.size)
            img = (img - torch.tensor(t.mean).view(1, 3, 1, 1)) / torch.tensor(t.std).view(1, 3, 1, 1)
            mm, yr = self.teacher.forward(np.ascontiguousarray(img.numpy(), dtype=np.float32))
        return torch.from_numpy(mm), torch.from_numpy(yr)


def crop_teacher(teacher: str | os.PathLike[str], make_models: Sequence[str], years: Sequence[str],
                 student: InputSpec, threads: int = 0) -> CropTeacher:
    """The opened teacher, its vocabulary checked against the run's, for ``--distill-targets crop``."""
    opened = open_teacher(teacher, threads)
    check_vocabulary(opened, teacher, make_models, years)
    return CropTeacher(opened, student)


def check_vocabulary(teacher: Teacher, path: str | os.PathLike[str], make_models: Sequence[str],
                     years: Sequence[str]) -> None:
    """Refuse a teacher whose classes or years are not the student's, in the same order (its
    distributions would be over other things)."""
    if teacher.make_models != tuple(make_models):
        ours, theirs = set(make_models), set(teacher.make_models)
        raise TeacherError(f"{path}: the teacher's {len(theirs)} make/model classes are not this run's "
                           f"{len(ours)} in the same order ({len(ours - theirs)} of ours missing, "
                           f"{len(theirs - ours)} not ours); a teacher must be trained on the same classes")
    if teacher.years != tuple(years):
        raise TeacherError(f"{path}: the teacher's years ({len(teacher.years)}) are not this run's ({len(years)}) "
                           "in the same order")


def teacher_targets(teacher: str | os.PathLike[str], records: Sequence[ImageRecord], make_models: Sequence[str],
                    years: Sequence[str], out: Path, threads: int = 0, batch: int = 32) -> TeacherTargets:
    """The teacher's logits for ``records`` (the run's training photos, in order): read from
    ``out/teacher-targets.npz`` where it holds them for this teacher, the missing ones computed
    and the file rewritten."""
    opened = open_teacher(teacher, threads)
    check_vocabulary(opened, teacher, make_models, years)
    keys = [str(r.image_path) for r in records]
    cached = _read_cache(out / TARGETS_FILE, opened.sha256)
    missing = [i for i, k in enumerate(keys) if k not in cached]
    if missing:
        print(f"teacher {opened.name}: logits of {len(missing)} training photos (flip-averaged, "
              f"{opened.spec.size} px){'; ' + str(len(keys) - len(missing)) + ' cached' if cached else ''}", flush=True)
        mm, yr = _teacher_logits(opened, [records[i] for i in missing], batch)
        for j, i in enumerate(missing):
            cached[keys[i]] = (mm[j], yr[j])
        _write_cache(out / TARGETS_FILE, opened.sha256, cached)
    return TeacherTargets(torch.from_numpy(np.stack([cached[k][0] for k in keys])),
                          torch.from_numpy(np.stack([cached[k][1] for k in keys])))


def _teacher_logits(teacher: Teacher, records: Sequence[ImageRecord], batch: int) -> Logits:
    """(make/model, year) logits of each photo, the mean over the photo and its mirror image."""
    from training.framing.onnx_features import in_batches

    spec = teacher.spec
    mm: list[np.ndarray] = []
    yr: list[np.ndarray] = []
    for chunk in in_batches(records, batch, "teacher photos", every=25):
        views = []
        for r in chunk:
            image = load_photo(r.image_path).image
            for view in (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)):
                views.append(normalise(crop_resize(view, Box.full(view.size), spec), spec))
        m, y = teacher.forward(np.stack(views))
        mm.append(m.reshape(len(chunk), 2, -1).mean(axis=1))
        yr.append(y.reshape(len(chunk), 2, -1).mean(axis=1))
    return np.concatenate(mm), np.concatenate(yr)


def _read_cache(path: Path, digest: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The cached rows when ``path`` holds this teacher's; empty when absent, of another teacher,
    or unreadable (said on stderr: the rows are then recomputed)."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["teacher_sha256"]) != digest:
                print(f"{path}: made by another teacher file; recomputed", file=sys.stderr, flush=True)
                return {}
            keys, mm, yr = z["keys"].tolist(), z["make_model"], z["year"]
    except (OSError, ValueError, KeyError) as e:
        print(f"{path}: unreadable ({e}); recomputed", file=sys.stderr, flush=True)
        return {}
    return {k: (mm[i], yr[i]) for i, k in enumerate(keys)}


def _write_cache(path: Path, digest: str, rows: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    keys = sorted(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.savez(f, teacher_sha256=np.array(digest), keys=np.array(keys),
                 make_model=np.stack([rows[k][0] for k in keys]), year=np.stack([rows[k][1] for k in keys]))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, batch_count: int
                 ) -> torch.Tensor:
    """``T**2 * KL(softmax(teacher / T) || softmax(student / T))`` summed over this micro-batch's
    photos and divided by ``batch_count`` (the whole batch's size), so micro-batches add up to
    the batch mean as the other losses do."""
    t = F.log_softmax(teacher.float() / temperature, dim=-1)
    s = F.log_softmax(student.float() / temperature, dim=-1)
    return (t.exp() * (t - s)).sum() * (temperature ** 2) / max(batch_count, 1)


def with_distillation(loss: torch.Tensor, parts: dict[str, torch.Tensor], outputs: tuple[torch.Tensor, ...],
                      rows: tuple[torch.Tensor, torch.Tensor], alpha: float, temperature: float,
                      batch_count: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The usual loss plus ``alpha`` times the make/model and year distillation terms of this
    micro-batch (``rows``: the teacher's logits of its photos); ``parts`` gains ``distill``."""
    term = (distill_loss(outputs[2], rows[0].to(outputs[2].device), temperature, batch_count)
            + distill_loss(outputs[3], rows[1].to(outputs[3].device), temperature, batch_count))
    return loss + alpha * term, {**parts, "distill": term}


def provenance(teacher: str | os.PathLike[str], alpha: float, temperature: float, targets: str = "photo"
               ) -> dict[str, object]:
    """What a student's model file records about its teacher (a model file's SHA-256, or a run
    folder's checkpoint weights')."""
    path = Path(teacher)
    if path.is_dir():
        from training.loop.checkpoint import load_checkpoint

        digest, kind = file_sha256(load_checkpoint(path).weights_path), "training run (its last checkpoint)"
    else:
        digest, kind = file_sha256(path), "model file"
    said = ("make/model and year logits of each training batch as the student saw it (its crop, flip and "
            "framing), resized to the teacher's own input size" if targets == "crop" else
            "make/model and year logits of the whole photo and its mirror image, averaged, at the "
            "teacher's own input size")
    return {"model": path.name, "kind": kind, "sha256": digest, "alpha": alpha, "temperature": temperature,
            "targets": said}
