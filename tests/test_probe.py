"""The linear-probe helpers: held-out split, top-k, BatchNorm-statistics check."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from core.model import mobilenet_v2_features
from training.studies.probe import (
    batchnorm_agreement,
    bn_kind,
    holdout_split,
    summarise_bn,
    topk_accuracy,
)


def test_holdout_split_takes_n_per_class_seeded() -> None:
    labels = ["a"] * 10 + ["b"] * 7 + ["c"] * 6
    train, test = holdout_split(labels, 5, seed=3)
    assert Counter(labels[i] for i in test) == {"a": 5, "b": 5, "c": 5}
    assert set(train).isdisjoint(test) and len(train) + len(test) == len(labels)
    again_train, again_test = holdout_split(labels, 5, seed=3)
    assert list(again_test) == list(test)
    assert list(holdout_split(labels, 5, seed=4)[1]) != list(test)
    with pytest.raises(ValueError, match="cannot hold out 6"):
        holdout_split(labels, 6, seed=0)


def test_topk_accuracy() -> None:
    proba = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    y = np.array([1, 2, 0])
    assert topk_accuracy(proba, y, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(proba, y, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(proba, y, 3) == 1.0


def test_every_batchnorm_has_a_kind() -> None:
    trunk = mobilenet_v2_features()
    kinds = Counter(bn_kind(n) for n, m in trunk.named_modules() if isinstance(m, nn.BatchNorm2d))
    assert kinds == {"stem": 1, "expand": 16, "depthwise": 17, "project": 17, "final": 1}


def test_batchnorm_agreement_sees_matching_and_scrambled_statistics() -> None:
    torch.manual_seed(0)
    trunk = mobilenet_v2_features()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    for m in trunk.modules():  # statistics of exactly this input: agreement must be ~1
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    trunk.train()
    with torch.no_grad():
        trunk(x)
    rows = {r["layer"]: r for r in batchnorm_agreement(trunk, x)}
    early = [r for name, r in rows.items() if name.split(".")[0] in ("0", "1", "2", "3")]
    assert all(r["logvar_corr"] > 0.99 for r in early)
    assert all(r["mean_corr"] > 0.99 for r in early if r["kind"] != "expand")
    # an expansion layer's input is a BatchNorm output with beta = 0: zero mean, so its stored
    # mean is ~0 and the mean correlation says nothing (what the report explains)
    assert all(r["stored_abs_mean"] < 1e-5 for r in early if r["kind"] == "expand")
    assert summarise_bn(list(rows.values()))["depthwise"]["layers"] == 17
    bn = trunk[2].conv[1][1]  # scramble one layer's channels
    perm = torch.randperm(bn.num_features, generator=torch.Generator().manual_seed(1))
    bn.running_mean.copy_(bn.running_mean[perm])
    bn.running_var.copy_(bn.running_var[perm])
    scrambled = {r["layer"]: r for r in batchnorm_agreement(trunk, x)}
    assert scrambled["2.conv.1.1"]["mean_corr"] < 0.5 and scrambled["2.conv.1.1"]["logvar_corr"] < 0.5
