"""Initialise the four heads from a linear probe on frozen trunk features.

Fine-tuning from randomly initialised heads spends its first epoch(s) pushing large, noisy
gradients through a pretrained trunk. Fitting the heads first on pooled features of the training
photos (evaluation view, no augmentation) starts the fine-tune from a model that already scores
like a linear probe. The heads are fit jointly with the same masked losses the run uses, by
full-batch L-BFGS with a small L2 penalty.
"""

from __future__ import annotations

import random
import time

import torch

from training.data.dataset import CarPhotos
from training.loop.metrics import LossWeights, label_counts, multitask_loss
from training.loop.run_state import Run


@torch.no_grad()
def extract_features(run: Run, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from torch.utils.data import DataLoader

    from training.data.dataset import collate

    model, cfg = run.model, run.cfg
    train = list(run.split.train)
    if 0 < cfg.probe_max_images < len(train):
        train = sorted(random.Random(cfg.seed).sample(train, cfg.probe_max_images))
    ds = CarPhotos([run.records[i] for i in train], run.labels, run.eval_spec)
    keys = [(i, -1, size) for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=cfg.eval_batch, sampler=keys, num_workers=cfg.workers,  # type: ignore[arg-type]
                        collate_fn=collate)
    model.eval()
    feats, cls, med = [], [], []
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ds), desc=f"probe features @{size}px", dynamic_ncols=True, mininterval=2.0)
    for x, c, m in loader:
        if bar is not None:
            bar.update(len(x))
        feats.append(model.forward_features(x.to(run.dist.device, memory_format=fmt)).float().cpu())
        cls.append(c)
        med.append(m)
    if bar is not None:
        bar.close()
    return torch.cat(feats), torch.cat(cls), torch.cat(med)


def init_heads_from_probe(run: Run) -> dict[str, float]:
    cfg = run.cfg
    l2 = cfg.probe_l2
    t0 = time.perf_counter()
    size = cfg.size_for_epoch(0)
    f, cls, med = extract_features(run, size)
    heads = [run.model.price_head, run.model.median_head, run.model.make_model_head, run.model.year_head]
    params = [torch.nn.Parameter(t.detach().cpu().clone().float()) for h in heads for t in (h.weight, h.bias)]
    weights = LossWeights(cfg.loss_price, cfg.loss_median, cfg.loss_make_model, cfg.loss_year)
    counts = label_counts(cls, med)
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.probe_steps, history_size=20,
                            line_search_fn="strong_wolfe")

    def outputs() -> tuple[torch.Tensor, ...]:
        pw, pb, mw, mb, cw, cb, yw, yb = params
        return (f @ pw.T + pb, (f @ mw.T + mb).squeeze(1), f @ cw.T + cb, f @ yw.T + yb)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss, _ = multitask_loss(outputs(), cls, med, counts, weights, 0.0)
        loss = loss + l2 * sum((p ** 2).sum() for p in params[0::2])
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        _, parts = multitask_loss(outputs(), cls, med, counts, weights, 0.0)
        acc = float((outputs()[2].argmax(1) == cls[:, 1]).float().mean())
        for h, (w, b) in zip(heads, zip(params[0::2], params[1::2], strict=True), strict=True):
            h.weight.copy_(w.to(h.weight.device))
            h.bias.copy_(b.to(h.bias.device))
    info = {"probe_seconds": round(time.perf_counter() - t0, 1), "probe_size": size,
            "probe_train_make_model_acc": round(acc, 4),
            **{f"probe_train_{k}": round(float(v), 4) for k, v in parts.items()}}
    print(f"linear-probe head init: {info}", flush=True)
    run.provenance["probe_init"] = info
    return info
