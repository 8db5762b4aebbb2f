"""The training loop: one file, read top to bottom.

Single process (``carvalue-train train ...``) and multi-process / multi-node
(``torchrun --nproc_per_node N -m training.cli train ...``) share this code path: with
``WORLD_SIZE > 1`` the model is wrapped in DistributedDataParallel (gloo on CPU, nccl on CUDA),
each rank reads its own shard of every epoch, and only rank 0 logs, evaluates and writes
checkpoints.

Determinism: the data order depends on (seed, epoch), each photo's augmentation on
(seed, epoch, index), and the global RNG (dropout) is re-seeded from (seed, step, rank) before
every step. A run resumed from any checkpoint therefore takes exactly the steps an unbroken run
would have taken.
"""
# Over 400 lines: the training loop, meant to be read top to bottom in one file

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from core.atomic import atomic_open
from core.dataset.records import ImageRecord
from core.model import CarValueNet, ModelConfig
from core.modelfile import InputSpec
from training.config import TrainConfig, shard_source
from training.data.dataset import (
    Augment,
    CarPhotos,
    EpochSampler,
    LabelSpace,
    class_name,
    collate,
    split_by_group,
)
from training.data.records import class_key_of, load_records
from training.loop.checkpoint import (
    Checkpoint,
    CheckpointError,
    Progress,
    RunMismatch,
    checkpoint_candidates,
    has_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from training.loop.distill import CropTeacher, TeacherTargets, with_distillation
from training.loop.metrics import (
    TASKS,
    LossWeights,
    autocast_context,
    class_makes,
    collect,
    label_counts,
    make_loss,
    multitask_loss,
    summarise,
)
from training.loop.modeling import (
    TrunkStart,
    build_model,
    model_config,
    set_train_mode,
    trunk_start,
)
from training.loop.run_state import Dist, Run


# -- processes and devices ---------------------------------------------------------------------
def setup_distributed(cfg: TrainConfig) -> Dist:
    """Read torchrun's environment; initialise the process group when there are several ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if want_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        _keep_large_allocations_mapped()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    if world > 1 and not dist.is_initialized():
        # Rank 0 alone fits the linear-probe heads before the first collective, so the other
        # ranks may wait at it for minutes: a generous timeout.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=2))
    return Dist(rank, world, local, device)


def _keep_large_allocations_mapped(threshold: int = 32 * 1024 * 1024) -> None:
    """Ask glibc to serve allocations up to 32 MB from the heap instead of fresh mmaps.

    Measured on the 2-core laptop: activations over glibc's default threshold were unmapped
    and page-faulted back in on every batch (the same effect as MALLOC_MMAP_THRESHOLD_=33554432
    in the environment). Micro-batching keeps most tensors small anyway; this covers the rest.
    Not glibc (macOS, Windows, musl): nothing to do.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3  # from glibc's malloc.h
    mallopt(ctypes.c_int(m_mmap_threshold), ctypes.c_int(threshold))


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


# -- data: training.data.records (load_records, class_key_of) ----------------------------------------
# -- optimisation ------------------------------------------------------------------------------
def make_optimizer(model: CarValueNet, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and BatchNorm; heads at ``lr * head_lr_mult``; a CLIP
    tower's blocks with layer-wise decayed lrs (training/loop/clip_arch.py)."""
    if cfg.arch == "clip-vit-b16":
        from training.loop.clip_arch import param_groups

        return torch.optim.AdamW(param_groups(model, cfg.lr, cfg.weight_decay, cfg.layer_decay,  # type: ignore[arg-type]
                                              cfg.head_lr_mult), lr=cfg.lr, weight_decay=cfg.weight_decay)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = not name.startswith("features.")
        decay = p.ndim > 1
        groups.setdefault((head, decay), []).append(p)
    params = [{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0,
               "lr": cfg.lr * (cfg.head_lr_mult if head else 1.0)}
              for (head, decay), ps in sorted(groups.items())]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, warmup: int, min_fraction: float) -> float:
    """Linear warmup to 1 over ``warmup`` steps, then cosine down to ``min_fraction``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def steps_per_epoch(n_train: int, cfg: TrainConfig, world: int) -> int:
    return (n_train // world) // cfg.batch_size


# -- evaluation (collect and autocast_context live in training.loop.metrics) ---------------------------
def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 or AMX); elsewhere it emulates it."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


# -- run state (Dist and Run live in training.loop.run_state) -----------------------------------------
def resumable_fields() -> frozenset[str]:
    """Config fields that may differ between a run and its resumption: they change neither the
    data order nor the schedule. (``threads`` and ``device`` can change floating-point rounding,
    so only a resumption with the same values is bit-identical to an unbroken run.)"""
    return frozenset({"max_steps", "workers", "progress", "checkpoint_every", "keep_checkpoints",
                      "eval_batch", "notes", "device", "threads",
                      # used once, before the first step; a checkpoint already holds their result
                      "probe_init", "probe_steps", "probe_l2", "probe_max_images", "init",
                      "pretrained_path", "init_weights"})


def prepare(cfg: TrainConfig, d: Dist) -> Run:
    """A fresh run, or the run in ``cfg.out`` resumed from its newest intact checkpoint: a
    damaged one (truncated, emptied, unreadable meta, weights of another architecture) is
    reported in one line and the next older one kept by ``--keep-checkpoints`` tried."""
    out = Path(cfg.out)
    candidates = checkpoint_candidates(out) if has_checkpoint(out) else []
    if has_checkpoint(out) and not candidates:
        raise CheckpointError(f"{out}: last.json names no checkpoint of this run and checkpoints/ holds "
                              "none; choose another --out")
    _refuse_other_runs(cfg, candidates, out)  # flags changed: refused before the data is read
    records = load_records(cfg)
    split = split_by_group(records, cfg.val_fraction, cfg.test_fraction, cfg.seed,
                           class_key=class_key_of(records))
    problems: list[CheckpointError] = []
    for i, path in enumerate(candidates):
        try:
            run = _resume(cfg, d, read_checkpoint(path), records, split)
        except CheckpointError as e:
            problems.append(e)
            if d.main and i + 1 < len(candidates):
                print(f"carvalue-train: {e}; trying an older checkpoint", file=sys.stderr, flush=True)
            continue
        if problems and d.main:
            _set_aside(candidates[:i])
            print(f"carvalue-train: resuming from the older checkpoint {path}", file=sys.stderr, flush=True)
        return run
    if candidates:
        mismatches = [e for e in problems if isinstance(e, RunMismatch)]
        if mismatches:  # the flags or the data changed: say that, not "damaged"
            raise mismatches[0]
        raise CheckpointError(f"{out}: no intact checkpoint to resume ({len(candidates)} tried; the newest: "
                              f"{problems[0]}); keep more with --keep-checkpoints, or choose another --out")
    return _fresh(cfg, d, records, split)


def _refuse_other_runs(cfg: TrainConfig, candidates: list[Path], out: Path) -> None:
    """RunMismatch when no readable checkpoint has the run's config but one has another."""
    mismatch: RunMismatch | None = None
    for path in candidates:
        try:
            _check_config(cfg, read_checkpoint(path), out)
            return
        except RunMismatch as e:
            mismatch = mismatch or e
        except CheckpointError:
            continue
    if mismatch is not None:
        raise mismatch


def _set_aside(damaged: list[Path]) -> None:
    """Rename damaged checkpoints to ``damaged-step-*`` (kept for a look, never resumed nor
    counted by --keep-checkpoints, so they cannot crowd out the intact ones)."""
    for p in damaged:
        if p.name.startswith("step-") and p.is_dir():
            target = p.with_name(f"damaged-{p.name}")
            if target.exists():
                shutil.rmtree(target)
            p.rename(target)
            print(f"carvalue-train: {p} set aside as {target.name}", file=sys.stderr, flush=True)


def _check_config(cfg: TrainConfig, ckpt: Checkpoint, out: Path) -> None:
    diff = {k for k, v in ckpt.config.__dict__.items() if getattr(cfg, k, v) != v} - resumable_fields()
    if diff:
        raise RunMismatch(f"{out} holds a run with a different config ({sorted(diff)}); "
                          f"resume it with the same flags or choose another --out")


def _resume(cfg: TrainConfig, d: Dist, ckpt: Checkpoint, records: list[ImageRecord], split: Any) -> Run:
    """The run as ``ckpt`` left it; CheckpointError when any part of it cannot be used."""
    _check_config(cfg, ckpt, Path(cfg.out))
    split_meta = ckpt.meta.get("split")
    if not isinstance(split_meta, dict) or split_meta.get("sha256") != split.digest():
        raise RunMismatch(f"{cfg.out}: the data or split changed since the checkpoint was written")
    try:
        mcfg = ModelConfig.from_dict(ckpt.meta["model_config"])
        norm = ckpt.meta["input"]
        eval_spec = InputSpec(cfg.size, tuple(norm["mean"]), tuple(norm["std"]), cfg.eval_resize,  # type: ignore[arg-type]
                              cfg.eval_crop_fraction)
        model = build_model(cfg, mcfg, trunk=None)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt.path / 'meta.json'}: malformed model settings ({e})") from None
    ckpt.load_weights(model)
    state = ckpt.state()
    model.to(d.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer, scheduler = _optimizer(cfg, d, model, split)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sums = dict(state["epoch_sums"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise CheckpointError(f"{ckpt.path / 'state.pt'}: does not fit the run ({e})") from None
    return Run(cfg, d, records, split, ckpt.labels, eval_spec, model, mcfg, optimizer, scheduler,
               ckpt.progress, sums, ckpt.meta.get("provenance", {}))


def _fresh(cfg: TrainConfig, d: Dist, records: list[ImageRecord], split: Any) -> Run:
    train_records = [records[i] for i in split.train]
    labels = _label_space(cfg, train_records, records)
    start: TrunkStart = trunk_start(cfg)
    mcfg = model_config(cfg, start, labels.num_price_bins, len(labels.make_models), len(labels.years))
    eval_spec = InputSpec(cfg.size, start.mean, start.std, cfg.eval_resize, cfg.eval_crop_fraction)
    torch.manual_seed(cfg.seed)  # head initialisation
    model = build_model(cfg, mcfg, trunk=start.path)
    if cfg.init == "model":
        from training.loop import model_init

        start_meta = model_init.read_metadata(Path(cfg.pretrained_path))
        model_init.check_compatible(start_meta, cfg.pretrained_path, labels.make_models, labels.years,
                                    split.digest())
        model_init.load_weights(model, cfg.pretrained_path)
    provenance = {"trunk": start.provenance, "data": {"source": cfg.data, "photos": len(records)}}
    model.to(d.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer, scheduler = _optimizer(cfg, d, model, split)
    return Run(cfg, d, records, split, labels, eval_spec, model, mcfg, optimizer, scheduler,
               Progress(), dict.fromkeys(("loss", *TASKS, "n"), 0.0), provenance)


def _optimizer(cfg: TrainConfig, d: Dist, model: CarValueNet, split: Any) -> tuple[Any, Any]:
    optimizer = make_optimizer(model, cfg)
    total = cfg.epochs * steps_per_epoch(len(split.train), cfg, d.world)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, cfg.warmup_steps, cfg.min_lr_fraction))
    return optimizer, scheduler


def _framing_backgrounds(cfg: TrainConfig) -> tuple[str, ...]:
    """The training side's background photos for framed samples (none installed: the framed
    samples use drawn fills only)."""
    if cfg.framed <= 0:
        return ()
    from training.data.negatives import background_files

    return tuple(str(p) for p in background_files("train"))


def _label_space(cfg: TrainConfig, train_records: Sequence[ImageRecord],
                 all_records: Sequence[ImageRecord]) -> LabelSpace:
    from training.data import labels_adapter

    return labels_adapter.label_space(train_records, all_records, class_key_of(all_records),
                                      cfg.max_make_models)


# -- the loop ----------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> Path:
    """Train (or resume) the run in ``cfg.out``; returns the run folder."""
    cfg.validate()
    d = setup_distributed(cfg)
    if cfg.cpu_amp and d.device.type == "cpu" and not cpu_has_native_bf16():
        raise ValueError("--cpu-amp needs a CPU with native bf16 (AVX512-BF16 or AMX); this one would "
                         "emulate it, slower than fp32: train without --cpu-amp")
    out = Path(cfg.out)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(d)
    run = prepare(cfg, d)
    if d.main:
        (out / "split.json").write_text(run.split.to_json(run.records, Path(cfg.data)))
    teacher = _teacher(run, out) if cfg.teacher else None  # refused before the probe's minutes
    fresh = run.progress.step == 0 and run.progress.batch == 0 and run.progress.epoch == 0
    if fresh and cfg.probe_init and cfg.init != "model":  # a model file's heads are trained already
        if d.main:
            from training.loop.probe_init import init_heads_from_probe

            init_heads_from_probe(run)
        # DistributedDataParallel's constructor broadcasts rank 0's parameters to every rank.
    model: nn.Module = run.model
    if d.world > 1:
        model = DistributedDataParallel(run.model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    try:
        _loop(run, model, out, teacher)
    finally:
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return out


def _teacher(run: Run, out: Path) -> TeacherTargets | CropTeacher:
    """The teacher's logits of every training photo (rank 0 computes and caches them first), or
    with ``--distill-targets crop`` the opened teacher, to run on every batch."""
    from training.loop.distill import crop_teacher, provenance, teacher_targets

    cfg = run.cfg
    if cfg.distill_targets == "crop":
        opened = crop_teacher(cfg.teacher, run.labels.make_models, run.labels.years, run.eval_spec, cfg.threads)
        run.provenance["teacher"] = provenance(cfg.teacher, cfg.distill_alpha, cfg.distill_temperature, "crop")
        return opened
    args = (cfg.teacher, [run.records[i] for i in run.split.train], run.labels.make_models, run.labels.years,
            out, cfg.threads)
    targets = teacher_targets(*args) if run.dist.main else None
    barrier(run.dist)
    run.provenance["teacher"] = provenance(cfg.teacher, cfg.distill_alpha, cfg.distill_temperature, "photo")
    return targets if targets is not None else teacher_targets(*args)


def _loop(run: Run, model: nn.Module, out: Path, teacher: TeacherTargets | CropTeacher | None = None) -> None:
    cfg, d = run.cfg, run.dist
    weights = LossWeights(cfg.loss_price, cfg.loss_median, cfg.loss_make_model, cfg.loss_year)
    class_make = None
    if cfg.loss_make > 0:  # each class's make, from the training photos' records
        train_records = [run.records[i] for i in run.split.train]
        key = run.labels.class_key
        _, class_make = class_makes(run.labels.make_models, {class_name(r, key): r.make for r in train_records if r.make})
    dataset = CarPhotos([run.records[i] for i in run.split.train], run.labels, run.eval_spec,
                        Augment(cfg.rrc_min_area, (cfg.rrc_ratio_min, cfg.rrc_ratio_max),
                                cfg.rrc_ratio_mode, cfg.hflip, cfg.color_jitter, cfg.framed,
                                cfg.framed_box_jitter, _framing_backgrounds(cfg), cfg.framed_long_side))
    per_epoch = steps_per_epoch(len(dataset), cfg, d.world)
    if per_epoch == 0:
        raise ValueError(f"{len(dataset)} training photos cannot fill one batch of {cfg.batch_size} per rank")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    log = out / "log.csv"
    p = run.progress
    step, sums = p.step, run.epoch_sums
    for epoch in range(p.epoch, cfg.epochs):
        size = cfg.size_for_epoch(epoch)
        skip_batches = p.batch if epoch == p.epoch else 0
        if skip_batches == 0:
            sums = dict.fromkeys(sums, 0.0)
        if shard_source(cfg.data):  # streamed through webdataset (training/data/shard_stream.py)
            from training.data.shard_stream import ShardStream, shard_urls

            stream = ShardStream(shard_urls(cfg.data), dataset.records, run.labels, run.eval_spec, dataset.augment,
                                 seed=cfg.seed, epoch=epoch, size=size, rank=d.rank, batches=per_epoch,
                                 batch_size=cfg.batch_size, skip_batches=skip_batches, buffer=cfg.shuffle_buffer)
            loader = DataLoader(stream, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=collate,
                                drop_last=True, pin_memory=d.device.type == "cuda",
                                prefetch_factor=4 if cfg.workers > 0 else None)
        else:
            sampler = EpochSampler(len(dataset), cfg.seed, epoch, size, d.rank, d.world,
                                   skip=skip_batches * cfg.batch_size, batch_size=cfg.batch_size)
            loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,  # type: ignore[arg-type]
                                collate_fn=collate, drop_last=True, pin_memory=d.device.type == "cuda",
                                generator=torch.Generator().manual_seed(cfg.seed),
                                prefetch_factor=4 if cfg.workers > 0 else None)
        # the epoch's photos, batch after batch (cached targets are looked up by photo)
        order = sampler.indices() if isinstance(teacher, TeacherTargets) else []
        bar = _bar(d.main and cfg.progress, per_epoch, skip_batches, f"epoch {epoch + 1}/{cfg.epochs} @{size}px")
        t0, seen = time.perf_counter(), 0
        set_train_mode(run.model, cfg)
        for batch_index, (x, cls, med) in enumerate(loader, start=skip_batches):
            torch.manual_seed(_step_seed(cfg.seed, step, d.rank))  # dropout: same draws on resume
            rows = teacher.for_batch(order[batch_index * cfg.batch_size:][:len(x)], x) if teacher else None
            parts = _train_step(run, model, x, cls, med, weights, memory_format, rows, class_make)
            run.optimizer.step()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(x)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(x)
            sums["n"] += len(x)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss'] / max(sums['n'], 1):.3f}",
                                img_s=f"{seen * d.world / (time.perf_counter() - t0):.1f}")
            done = batch_index + 1
            stop = cfg.max_steps > 0 and step >= cfg.max_steps
            if done < per_epoch and (stop or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)):
                _checkpoint(run, Progress(epoch, done, step), sums, out)
            if stop and done < per_epoch:
                _close(bar)
                if d.main:
                    print(f"stopped at step {step} (--max-steps); run again without it to resume", flush=True)
                return
        _close(bar)
        elapsed = time.perf_counter() - t0
        if d.main:
            row = _epoch_row(run, epoch, step, sums, elapsed, size)
            _append_csv(log, row)
            _plot(log, out / "curves.png")
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
        _checkpoint(run, Progress(epoch + 1, 0, step), dict.fromkeys(sums, 0.0), out)
        if cfg.max_steps > 0 and step >= cfg.max_steps:
            return


def _train_step(run: Run, model: nn.Module, x: torch.Tensor, cls: torch.Tensor, med: torch.Tensor,
                weights: LossWeights, memory_format: torch.memory_format,
                teacher_rows: tuple[torch.Tensor, torch.Tensor] | None = None,
                class_make: torch.Tensor | None = None) -> dict[str, float]:
    """One optimizer step's forward/backward, in micro-batches (gradients accumulate); with
    ``teacher_rows`` (the teacher's logits of the batch's photos) the distillation term is added."""
    cfg, d = run.cfg, run.dist
    counts = label_counts(cls, med)
    parts_sum = dict.fromkeys(("loss", *TASKS), 0.0)
    chunks = list(range(0, len(x), cfg.micro_batch))
    for j, start in enumerate(chunks):
        sl = slice(start, start + cfg.micro_batch)
        xb = x[sl].to(d.device, non_blocking=True).contiguous(memory_format=memory_format)
        cb, mb = cls[sl].to(d.device, non_blocking=True), med[sl].to(d.device, non_blocking=True)
        last = j == len(chunks) - 1
        sync = nullcontext() if last or not isinstance(model, DistributedDataParallel) else model.no_sync()
        with sync:
            with autocast_context(d.device, cfg.amp, cfg.cpu_amp):
                outputs = model(xb)
            loss, parts = multitask_loss(outputs, cb, mb, counts, weights, cfg.label_smoothing)
            if class_make is not None:  # --loss-make: the make as an output of its own
                parts["make"] = make_loss(outputs[2], cb[:, 1], class_make, counts["make_model"])
                loss = loss + cfg.loss_make * parts["make"]
            if teacher_rows is not None:
                loss, parts = with_distillation(loss, parts, outputs, (teacher_rows[0][sl], teacher_rows[1][sl]),
                                                cfg.distill_alpha, cfg.distill_temperature, len(x))
            loss.backward()
        parts_sum["loss"] += float(loss.detach())
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + float(v.detach())
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for p in run.model.parameters() if p.requires_grad], cfg.grad_clip)
    return parts_sum


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step) * 4099 + rank


def _checkpoint(run: Run, progress: Progress, sums: dict[str, float], out: Path) -> None:
    d = run.dist
    barrier(d)
    if d.main:
        state = {"optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
                 "epoch_sums": dict(sums), "rng_cpu": torch.get_rng_state(),
                 "np_rng": list(np.random.get_state()[1].tolist())}
        if torch.cuda.is_available() and d.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(d.device)
        extra = {"split": run.split.summary(), "model_config": run.model_cfg.to_dict(),
                 "input": {"mean": list(run.eval_spec.mean), "std": list(run.eval_spec.std)},
                 "provenance": run.provenance, "world_size": d.world}
        save_checkpoint(Path(run.cfg.out), run.model, state, run.cfg, run.labels, progress, extra,
                        keep=run.cfg.keep_checkpoints)
    barrier(d)


def _epoch_row(run: Run, epoch: int, step: int, sums: dict[str, float], elapsed: float, size: int
               ) -> dict[str, Any]:
    n = max(sums["n"], 1.0)
    row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "size": size,
                           "lr": run.scheduler.get_last_lr()[0], "train_seconds": round(elapsed, 1),
                           "train_images_per_s": round(sums["n"] * run.dist.world / max(elapsed, 1e-9), 2)}
    row.update({f"train_{k}": sums[k] / n for k in ("loss", *TASKS, "make", "distill") if k in sums})
    if run.split.val:
        val_set = CarPhotos([run.records[i] for i in run.split.val], run.labels, run.eval_spec)
        c = collect(run.model, val_set, range(len(val_set)), run.cfg.eval_batch, run.dist.device,
                    run.cfg.channels_last, workers=run.cfg.workers)
        row.update({f"val_{k}": v for k, v in summarise(c, run.labels).items()})
    return row


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append a row; an epoch logged before (a resumed run repeating it) is replaced."""
    rows: list[dict[str, Any]] = []
    if path.exists():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < row["epoch"]]
    rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_open(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _plot(log: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k in ("train_loss", "train_price", "train_median", "train_make_model", "train_year"):
        a.plot(ep, [float(r[k]) for r in rows], marker="o", label=k.removeprefix("train_"))
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    a.legend()
    for k in ("val_make_model_top1", "val_make_model_top5", "val_year_within1", "val_price_acc"):
        if k in rows[0] and rows[0][k] not in ("", "nan"):
            b.plot(ep, [float(r[k]) for r in rows], marker="o", label=k.removeprefix("val_"))
    b.set_xlabel("epoch")
    b.set_ylabel("validation")
    b.set_ylim(0, 1)
    b.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _bar(enabled: bool, total: int, initial: int, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, mininterval=2.0)


def _close(bar: Any) -> None:
    if bar is not None:
        bar.close()
