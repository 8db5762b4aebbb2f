"""Training step speed on CPU for the settings the CPU recipe chose (training/RECIPES.md).

Prints one JSON object: images per second of a full optimizer step (batch 32: forward,
backward, AdamW) for the recipe's settings and for each setting switched off in turn, measured
in this process on the same synthetic batch (no data loading), so the ratios are meaningful on
a noisy machine. Random trunk weights (speed does not depend on them). The bf16 rows
(``--cpu-amp``, not in the recipe) are measured only where the CPU runs bf16 natively (AMX /
AVX512-BF16).

    .venv/bin/python -m benchmarks.bench_train [--steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from core.model import CarValueNet, ModelConfig
from training.config import TrainConfig
from training.loop.metrics import LossWeights, autocast_context, label_counts, multitask_loss
from training.loop.modeling import fold_batchnorm, freeze_blocks, set_train_mode
from training.loop.train import cpu_has_native_bf16, make_optimizer

RECIPE = {"size": 224, "channels_last": True, "fold_bn": True, "micro_batch": 8, "freeze_blocks": 4,
          "bf16": False}
VARIANTS = {
    "recipe": {},
    "no channels_last": {"channels_last": False},
    "BatchNorm not folded": {"fold_bn": False},
    "no micro-batching": {"micro_batch": 32},
    "full fine-tune": {"freeze_blocks": 0},
    "160 px": {"size": 160},
    "288 px": {"size": 288},
    "bf16 (--cpu-amp)": {"bf16": True},
    "bf16 (--cpu-amp), no micro-batching": {"bf16": True, "micro_batch": 32},
}


def images_per_second(size: int, channels_last: bool, fold_bn: bool, micro_batch: int, freeze: int,
                      steps: int, bf16: bool = False, batch: int = 32) -> float:
    torch.manual_seed(0)
    cfg = TrainConfig(data="-", fold_bn=fold_bn, channels_last=channels_last, micro_batch=micro_batch,
                      freeze_blocks=freeze)
    model = CarValueNet(ModelConfig(10, 197, 17, padding="same", bn_eps=1e-3))
    if fold_bn:
        fold_batchnorm(model)
    freeze_blocks(model, freeze)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)  # type: ignore[call-overload]
    opt = make_optimizer(model, cfg)
    set_train_mode(model, cfg)
    x = torch.randn(batch, 3, size, size)
    cls = torch.stack([torch.randint(0, 10, (batch,)), torch.randint(0, 197, (batch,)),
                       torch.randint(0, 17, (batch,))], 1)
    med = torch.randn(batch)
    counts = label_counts(cls, med)

    def step() -> None:
        for s in range(0, batch, micro_batch):
            with autocast_context(torch.device("cpu"), False, cpu=bf16):
                out = model(x[s:s + micro_batch].contiguous(memory_format=fmt))
            loss, _ = multitask_loss(out, cls[s:s + micro_batch], med[s:s + micro_batch], counts, LossWeights(), 0.1)
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    native_bf16 = cpu_has_native_bf16()
    results = {}
    for name, change in VARIANTS.items():
        s = {**RECIPE, **change}
        if s["bf16"] and not native_bf16:
            continue  # emulated bf16 is slower than fp32: nothing to learn
        results[name] = round(images_per_second(s["size"], s["channels_last"], s["fold_bn"], s["micro_batch"],
                                                s["freeze_blocks"], args.steps, s["bf16"]), 1)
    base = results["recipe"]
    print(json.dumps({"threads": torch.get_num_threads(), "batch": 32, "steps": args.steps,
                      "native_bf16": native_bf16,
                      "images_per_s": results,
                      "recipe_speedup_over": {k: round(base / v, 2) for k, v in results.items() if k != "recipe"}},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
