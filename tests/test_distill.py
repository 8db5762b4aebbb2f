"""Distillation (``--teacher MODEL``): the teacher's cached targets, the loss term, refusal of a
teacher of other classes, and resumption with a teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from core.geometry import Box
from core.modelfile import open_session
from core.preprocess import crop_resize, load_photo, normalise
from tests.synthetic_cars import make_folder, run_train_cli, tiny_train_args
from training.data.dataset import records_from_folder
from training.loop import distill
from training.loop.checkpoint import load_checkpoint
from training.testmodels import make_model_file, random_metadata


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(load_checkpoint(run).weights_path))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cars") / "data")


@pytest.fixture(scope="module")
def plain_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "plain"
    res = run_train_cli(tiny_train_args(data, out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def teacher(plain_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model file at 48 px (the student trains at 32) with the student's vocabulary."""
    labels = load_checkpoint(plain_run).labels
    meta = random_metadata(48, make_models=labels.make_models, years=labels.years)
    return make_model_file(tmp_path_factory.mktemp("teacher") / "teacher.onnx", size=48, seed=3, metadata=meta)[0]


@pytest.fixture(scope="module")
def taught_run(data: Path, teacher: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "taught"
    res = run_train_cli(tiny_train_args(data, out, "--teacher", str(teacher), "--distill-temperature", "3"))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_targets_are_the_flip_averaged_logits_cached_and_reused(data: Path, plain_run: Path, teacher: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = load_checkpoint(plain_run).labels
    records = records_from_folder(data)[:5]
    got = distill.teacher_targets(teacher, records, labels.make_models, labels.years, tmp_path)
    assert got.make_model.shape == (5, len(labels.make_models)) and got.year.shape == (5, len(labels.years))
    # by hand: the app's view of the photo and of its mirror image, logits averaged
    session, meta = open_session(teacher, threads=1)
    image = load_photo(records[2].image_path).image
    views = np.stack([normalise(crop_resize(v, Box.full(v.size), meta.input), meta.input)
                      for v in (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))])
    mm, yr = session.run(["make_model_logits", "year_logits"], {session.get_inputs()[0].name: views})
    np.testing.assert_allclose(got.make_model[2].numpy(), mm.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.year[2].numpy(), yr.mean(axis=0), rtol=1e-5, atol=1e-5)
    assert not np.allclose(mm[0], mm[1])  # the mirror image is a different view (the mean means something)
    assert (tmp_path / distill.TARGETS_FILE).is_file()

    def no_teacher_runs(*args: object) -> None:
        raise AssertionError("the teacher ran although every photo was cached")

    monkeypatch.setattr(distill, "_teacher_logits", no_teacher_runs)
    again = distill.teacher_targets(teacher, records[::-1], labels.make_models, labels.years, tmp_path)
    assert torch.equal(again.make_model, got.make_model.flip(0))  # keyed by photo, not by position


def test_targets_of_another_teacher_file_are_not_reused(data: Path, plain_run: Path, teacher: Path,
                                                        tmp_path: Path) -> None:
    labels = load_checkpoint(plain_run).labels
    records = records_from_folder(data)[:3]
    first = distill.teacher_targets(teacher, records, labels.make_models, labels.years, tmp_path)
    meta = random_metadata(48, make_models=labels.make_models, years=labels.years)
    other = make_model_file(tmp_path / "other.onnx", size=48, seed=4, metadata=meta)[0]
    second = distill.teacher_targets(other, records, labels.make_models, labels.years, tmp_path)
    assert not torch.allclose(first.make_model, second.make_model)


def test_loss_is_t_squared_kl_and_zero_when_the_student_agrees() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    temp = 2.5
    p = torch.softmax(t / temp, -1)
    kl = (p * (p.log() - torch.log_softmax(s / temp, -1))).sum() / 6
    assert torch.allclose(distill.distill_loss(s, t, temp, 6), kl * temp ** 2, atol=1e-6)
    assert float(distill.distill_loss(t, t, temp, 6)) == pytest.approx(0.0, abs=1e-6)
    halves = distill.distill_loss(s[:3], t[:3], temp, 6) + distill.distill_loss(s[3:], t[3:], temp, 6)
    assert torch.allclose(halves, distill.distill_loss(s, t, temp, 6), atol=1e-6)


def test_alpha_zero_equals_the_run_without_a_teacher_and_alpha_one_does_not(
        data: Path, plain_run: Path, teacher: Path, taught_run: Path, tmp_path: Path) -> None:
    res = run_train_cli(tiny_train_args(data, tmp_path / "zero", "--teacher", str(teacher), "--distill-alpha", "0",
                                 "--distill-temperature", "3"))
    assert res.returncode == 0, res.stderr[-3000:]
    plain, zero, taught = _weights(plain_run), _weights(tmp_path / "zero"), _weights(taught_run)
    assert all(torch.equal(plain[k], zero[k]) for k in plain)
    assert not all(torch.equal(plain[k], taught[k]) for k in plain)
    log = (tmp_path / "zero" / "log.csv").read_text().splitlines()
    assert "train_distill" in log[0].split(",")  # computed (and logged) even at weight zero
    assert load_checkpoint(taught_run).meta["provenance"]["teacher"]["model"] == "teacher.onnx"


@pytest.mark.slow  # two refused CLI runs, each importing torch: ~24 s here under load
def test_a_teacher_of_other_classes_is_refused(data: Path, tmp_path: Path) -> None:
    foreign = make_model_file(tmp_path / "foreign.onnx", size=48)[0]  # the test vocabulary, not this data's
    res = run_train_cli(tiny_train_args(data, tmp_path / "run", "--teacher", str(foreign)))
    assert res.returncode == 2
    assert "make/model classes are not this run's" in res.stderr and "Traceback" not in res.stderr
    missing = run_train_cli(tiny_train_args(data, tmp_path / "run2", "--teacher", str(tmp_path / "nope.onnx")))
    assert missing.returncode == 2 and "no such teacher model file" in missing.stderr


@pytest.mark.slow  # three CLI runs: ~20 s here
def test_resume_with_a_teacher_equals_the_unbroken_run_and_reuses_the_targets(
        data: Path, teacher: Path, taught_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "stopped"
    args = ["--teacher", str(teacher), "--distill-temperature", "3"]
    first = run_train_cli(tiny_train_args(data, out, *args, "--max-steps", "3"))
    assert first.returncode == 0, first.stderr[-3000:]
    assert "logits of" in first.stdout
    cache = out / distill.TARGETS_FILE
    stamp = cache.stat().st_mtime_ns
    second = run_train_cli(tiny_train_args(data, out, *args))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "logits of" not in second.stdout and cache.stat().st_mtime_ns == stamp
    a, b = _weights(taught_run), _weights(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    changed = run_train_cli(tiny_train_args(data, out, "--teacher", str(teacher)))  # another temperature: refused
    assert changed.returncode == 2 and "different config" in changed.stderr


def test_the_study_measures_both_runs_on_the_same_photos(plain_run: Path, taught_run: Path, teacher: Path) -> None:
    from training.studies import distill_eval

    report = distill_eval.measure([plain_run, taught_run], teacher)
    test = report["sets"]["test"]
    assert not report["teacher_split_rebuilt"]  # a random teacher records no split
    for run in (plain_run, taught_run):
        assert test[str(run)]["right"] == round(test[str(run)]["make_model_top1"] * test["n"])
    paired = test["paired"]
    assert (test[str(taught_run)]["right"] - test[str(plain_run)]["right"]
            == paired["only_second_right"] - paired["only_first_right"])
    assert "| test |" in distill_eval.markdown(report)


def test_the_teachers_unseen_photos_are_its_rebuilt_split_checked_by_its_hash(plain_run: Path) -> None:
    import dataclasses

    from training.data.dataset import split_by_group
    from training.data.records import class_key_of
    from training.loop.trained import load_trained
    from training.studies.distill_eval import mcnemar_p, teacher_unseen

    t = load_trained(plain_run)
    theirs = split_by_group(t.records, 0.25, 0.0, 0, class_key_of(t.records))
    meta = random_metadata(48)
    prov = {"training": {"config": {"val_fraction": 0.25, "test_fraction": 0.0, "seed": 0}},
            "split": {"sha256": theirs.digest()}}
    assert teacher_unseen(t, dataclasses.replace(meta, provenance=prov)) == set(theirs.val)
    prov["split"] = {"sha256": "0" * 64}
    assert teacher_unseen(t, dataclasses.replace(meta, provenance=prov)) is None
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64) and mcnemar_p(9, 1) == pytest.approx(22 / 1024)


def test_crop_targets_are_the_teachers_logits_of_the_batch_as_the_student_sees_it(
        plain_run: Path, teacher: Path) -> None:
    """--distill-targets crop: the student's normalised batch, un-normalised, resized to the
    teacher's input and normalised its way, is what the teacher runs on."""
    from core.modelfile import InputSpec

    labels = load_checkpoint(plain_run).labels
    student = InputSpec(size=32, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    ct = distill.crop_teacher(teacher, labels.make_models, labels.years, student)
    rng = np.random.default_rng(0)
    pixels = rng.random((3, 32, 32, 3), dtype=np.float32)  # the crops, RGB in [0, 1]
    mean, std = np.array(student.mean, np.float32), np.array(student.std, np.float32)
    x = torch.from_numpy(((pixels - mean) / std).transpose(0, 3, 1, 2).copy())
    mm, yr = ct.for_batch([7, 8, 9], x)
    session, meta = open_session(teacher, threads=1)
    up = torch.nn.functional.interpolate(torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy()), size=(48, 48),
                                         mode="bilinear", align_corners=False).numpy()
    tm, ts = np.array(meta.input.mean, np.float32).reshape(1, 3, 1, 1), np.array(meta.input.std, np.float32).reshape(1, 3, 1, 1)
    want = session.run(["make_model_logits", "year_logits"], {session.get_inputs()[0].name: (up - tm) / ts})
    np.testing.assert_allclose(mm.numpy(), want[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(yr.numpy(), want[1], rtol=1e-4, atol=1e-4)
    other, _ = ct.for_batch([7, 8, 9], x.flip(-1))
    assert not torch.allclose(other, mm, atol=1e-4)  # a mirrored batch is taught as what it is


def test_a_run_taught_on_its_crops_trains_records_it_and_differs_from_the_cached_one(
        data: Path, teacher: Path, taught_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "crop"
    res = run_train_cli(tiny_train_args(data, out, "--teacher", str(teacher), "--distill-temperature", "3",
                                        "--distill-targets", "crop"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (out / distill.TARGETS_FILE).exists()  # nothing cached: the teacher ran on the batches
    prov = load_checkpoint(out).meta["provenance"]["teacher"]
    assert "as the student saw it" in prov["targets"]
    a, b = _weights(taught_run), _weights(out)
    assert not all(torch.equal(a[k], b[k]) for k in a)
    header, *rows = (out / "log.csv").read_text().splitlines()
    distill_col = header.split(",").index("train_distill")
    assert all(float(r.split(",")[distill_col]) > 0 for r in rows)
