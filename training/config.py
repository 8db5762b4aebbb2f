"""Every knob of a training run in one dataclass.

The config is saved (as JSON) in every checkpoint, so a run can be resumed or evaluated without
guessing how it was made; the command-line flags of ``carvalue-train train`` are generated from
its fields, so a new field is a new flag with no other edits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

RatioMode = Literal["absolute", "relative", "mixed"]
DistillTargets = Literal["photo", "crop"]
InitMode = Literal["keras", "torchvision", "random", "model"]
Arch = Literal["mobilenet_v2", "clip-vit-b16"]


FRAMED_LONG_SIDE = 640  # a framed sample's frame, long side in pixels (the most a fitted one gets)


def shard_source(data: str) -> bool:
    """Whether ``--data`` names WebDataset shards: a folder with index.json, a .tar, a brace
    pattern of tars, or a pipe: URL (training/data/shard_stream.py reads them)."""
    if data.startswith("pipe:") or data.endswith(".tar") or ("{" in data and ".tar" in data):
        return True
    return bool(data) and Path(data).is_dir() and (Path(data) / "index.json").is_file()


@dataclass(frozen=True)
class TrainConfig:
    # -- data ---------------------------------------------------------------------------------
    data: str = ""  # folder with labels.csv + images/ (Stanford layout), a listings .sqlite, or shards
    # (a `carvalue-data shards` folder, .tar files, a brace pattern or pipe: URLs; training/data/shard_stream.py)
    shuffle_buffer: int = 1000  # shards only: samples in webdataset's shuffle buffer (0/1 = shard order)
    images_root: str = ""  # image store root, for a .sqlite data source
    out: str = "runs/carvalue"  # run folder: checkpoints, logs, split, model file
    val_fraction: float = 0.05  # of groups (cars/listings), stratified by make/model
    test_fraction: float = 0.10  # held out; never used for training or for fitting anything
    max_make_models: int = 0  # 0 = every make/model in the training split; else the N most frequent
    limit: int = 0  # use only the first N records (after a seeded shuffle); 0 = all; tests/smoke runs
    hold_out_families: str = ""  # "Toyota Camry,BMW 3 Series": every photo whose make + model starts with one
    # of these (a leave-family-out run) is left out of training, validation and test alike
    # -- model --------------------------------------------------------------------------------
    arch: Arch = "mobilenet_v2"  # clip-vit-b16: open_clip's ViT tower from --init-weights (training/loop/clip_arch.py);
    # trains and evaluates, but only the MobileNetV2 exports to the app's model file
    init_weights: str = ""  # clip-vit-b16: a local open_clip checkpoint (never downloaded)
    clip_config: str = "ViT-B-16"  # clip-vit-b16: open_clip's configuration name, or a JSON file holding one
    layer_decay: float = 1.0  # clip-vit-b16: block i of L trains at lr * layer_decay ** (L - i) (1 = off; e.g. 0.75)
    init: InitMode = "keras"  # ImageNet start: keras (offline cache), torchvision, random; or model:
    # every weight from a CarValue model file (--pretrained-path), to fine-tune a trained model further
    pretrained_path: str = ""  # explicit trunk safetensors (or the model file for --init model); default: the user cache
    dropout: float = 0.2
    fold_bn: bool = True  # fold BatchNorm into convolutions (frozen statistics): ~faster on CPU
    freeze_blocks: int = 4  # features[:N] are frozen (0 = full fine-tune)
    probe_init: bool = True  # initialise the heads from a linear probe on frozen features
    probe_steps: int = 100  # L-BFGS iterations (300 took ~3 min on 6k photos on a busy 2-core machine)
    probe_max_images: int = 20000  # probe on a seeded subset of at most this many training photos
    probe_l2: float = 1e-3  # L2 penalty of the probe (mean loss + l2 * sum of squared weights)
    # -- input / augmentation -----------------------------------------------------------------
    size: int = 224
    low_res_size: int = 0  # progressive resizing: train the first low_res_epochs at this size
    low_res_epochs: int = 0
    eval_resize: Literal["stretch", "center_crop"] = "stretch"  # what the model file tells the app
    eval_crop_fraction: float = 1.0
    rrc_min_area: float = 0.25  # random resized crops keep 25-100% of the photo's area
    rrc_ratio_min: float = 3 / 4
    rrc_ratio_max: float = 4 / 3
    # absolute: crop aspect (pixels) in [min,max] as torchvision; relative: relative to the photo's
    # aspect, so the square input is stretched as the app stretches a whole-photo box; mixed: half each
    rrc_ratio_mode: RatioMode = "mixed"
    hflip: bool = True
    color_jitter: float = 0.4  # brightness, contrast, saturation factors in [1-j, 1+j]
    # share of samples pasted into a larger frame (training/data/compositing.py, backgrounds from the
    # training side of training/data/negatives.py) and cropped to a jittered box around the car
    framed: float = 0.0
    framed_box_jitter: float = 0.15
    framed_long_side: int = FRAMED_LONG_SIDE  # the frame's long side (px); 0: fitted to the input size (cheaper)
    # -- optimisation -------------------------------------------------------------------------
    epochs: int = 10
    batch_size: int = 32  # per process (per GPU/rank)
    micro_batch: int = 8  # forward/backward in chunks of this many (same step; smaller activations)
    lr: float = 3e-4
    head_lr_mult: float = 1.0
    weight_decay: float = 0.02
    warmup_steps: int = 100
    min_lr_fraction: float = 0.01  # cosine decays to lr * this
    label_smoothing: float = 0.1
    grad_clip: float = 0.0  # 0 = off
    loss_price: float = 1.0
    loss_median: float = 1.0
    loss_make_model: float = 1.0
    loss_year: float = 1.0
    # the make as an output of its own (issue 29): the make/model logits summed by make (log-sum-exp)
    # against the photo's make, so classes of one make share what the trunk learns; 0 = off
    loss_make: float = 0.0
    # -- distillation (training/loop/distill.py) ---------------------------------------------------
    teacher: str = ""  # a CarValue model file, or a training run folder (any --arch), whose make/model and year
    # distributions the student also learns (see distill_targets)
    distill_alpha: float = 1.0  # weight of T^2 * KL(teacher_T || student_T), per head (make/model, year)
    distill_temperature: float = 2.0  # T: both distributions softened by it
    # photo: the teacher's flip-averaged logits of the whole photo, computed once and cached; crop: the teacher
    # runs on every training batch as the student sees it (its own crop, flip and framing; "consistent" teaching)
    distill_targets: DistillTargets = "photo"
    # -- runtime ------------------------------------------------------------------------------
    seed: int = 0
    device: str = "auto"  # auto: cuda (LOCAL_RANK) when available, else cpu
    workers: int = 1  # DataLoader worker processes per rank (1 is right on a 2-core laptop)
    threads: int = 0  # torch intra-op threads per process; 0 = torch's default
    channels_last: bool = True
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    # bf16 autocast on CPU too, on a CPU with AMX / AVX512-BF16: at 224 px 1.22x in the real
    # training loop here (micro-batches of 32 vs the recipe's fp32 with 8), 0.97-1.35x over two runs
    # of benchmarks/bench_train.py's synthetic step (noisy); no gain at 160 px. Refused on a CPU without native bf16, where oneDNN emulates it and the step gets
    # slower. Weights, optimizer state and the loss stay fp32.
    cpu_amp: bool = False
    checkpoint_every: int = 50  # optimizer steps between mid-epoch checkpoints (0 = epoch ends only)
    keep_checkpoints: int = 2
    max_steps: int = 0  # stop (with a checkpoint) after this many optimizer steps; 0 = run to the end
    eval_batch: int = 64
    progress: bool = True
    notes: str = ""

    # -----------------------------------------------------------------------------------------
    def validate(self) -> None:
        problems = []
        if not self.data:
            problems.append("--data is required")
        if self.batch_size < 1 or self.micro_batch < 1:
            problems.append("batch sizes must be positive")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1 or \
                self.val_fraction + self.test_fraction >= 1:
            problems.append("val_fraction + test_fraction must be in [0, 1)")
        if not 0 < self.rrc_min_area <= 1:
            problems.append("rrc_min_area must be in (0, 1]")
        if self.size < 32 or (self.low_res_size and self.low_res_size < 32):
            problems.append("input sizes must be >= 32")
        if self.epochs < 1:
            problems.append("epochs must be >= 1")
        if self.low_res_epochs > self.epochs:
            problems.append("low_res_epochs cannot exceed epochs")
        if not 0 <= self.framed <= 1:
            problems.append("framed must be in [0, 1]")
        if self.framed_long_side != 0 and self.framed_long_side < 64:
            problems.append("framed_long_side must be 0 (fitted to the input) or at least 64")
        if shard_source(self.data) and (self.limit or self.probe_init):
            problems.append("training from shards takes neither --limit nor --probe-init (both read every training "
                            "photo by path): pass --no-probe-init, and write fewer shards for a smaller run")
        if self.shuffle_buffer < 0:
            problems.append("shuffle_buffer must be >= 0")
        if self.init == "model" and (not self.pretrained_path or not self.fold_bn):
            problems.append("--init model needs --pretrained-path MODEL.onnx and --fold-bn (a model file's weights are folded)")
        if self.arch == "clip-vit-b16":
            if not self.init_weights:
                problems.append("--arch clip-vit-b16 needs --init-weights FILE (a local open_clip checkpoint)")
            if self.low_res_size and self.low_res_size != self.size:
                problems.append("--arch clip-vit-b16 trains at one input size (no --low-res-size)")
            if self.init == "model":
                problems.append("--arch clip-vit-b16 starts from --init-weights, not --init model")
        if not 0 < self.layer_decay <= 1:
            problems.append("layer_decay must be in (0, 1]")
        if self.teacher and (self.distill_alpha < 0 or self.distill_temperature <= 0):
            problems.append("distill_alpha must be >= 0 and distill_temperature > 0")
        if self.teacher and self.distill_targets == "photo" and shard_source(self.data):
            problems.append("--teacher needs photos read by path (its logits are cached per photo), not shards; "
                            "or --distill-targets crop")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    def size_for_epoch(self, epoch: int) -> int:
        if self.low_res_size and epoch < self.low_res_epochs:
            return self.low_res_size
        return self.size

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a saved dict; unknown keys (from a newer version) are an error, missing
        keys take today's defaults."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}")
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# -- flags -------------------------------------------------------------------------------------
def add_flags(parser: argparse.ArgumentParser, defaults: TrainConfig | None = None) -> None:
    """One ``--flag-name`` per field; bools get ``--x/--no-x``; Literals get ``choices``."""
    defaults = defaults or TrainConfig()
    hints = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        typ = hints[f.name]
        default = getattr(defaults, f.name)
        if typ is bool:
            parser.add_argument(flag, default=default, action=argparse.BooleanOptionalAction,
                                help=f"(default {default})")
        elif get_origin(typ) is Literal:
            parser.add_argument(flag, default=default, choices=list(get_args(typ)),
                                help=f"(default {default})")
        else:
            base = _scalar_type(typ)
            parser.add_argument(flag, type=base, default=default, help=f"(default {default!r})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def _scalar_type(typ: Any) -> type:
    if get_origin(typ) in (Union, types.UnionType):
        typ = next(a for a in get_args(typ) if a is not type(None))
    if typ in (int, float, str):
        return typ  # type: ignore[no-any-return]
    raise TypeError(f"TrainConfig field type {typ!r} has no flag parser")

