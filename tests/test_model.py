"""The torch network: torchvision-compatible keys, Keras-style padding, heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.model import CarValueNet, ModelConfig, mobilenet_v2_features

# Facts about torchvision's mobilenet_v2().features (not importable here): 312 state_dict
# entries, 2,223,872 parameters, and these shapes.
TORCHVISION_SHAPES = {
    "0.0.weight": (32, 3, 3, 3),
    "0.1.running_var": (32,),
    "1.conv.0.0.weight": (32, 1, 3, 3),
    "1.conv.1.weight": (16, 32, 1, 1),
    "1.conv.2.weight": (16,),
    "2.conv.0.0.weight": (96, 16, 1, 1),
    "2.conv.1.0.weight": (96, 1, 3, 3),
    "2.conv.2.weight": (24, 96, 1, 1),
    "2.conv.3.running_mean": (24,),
    "17.conv.2.weight": (320, 960, 1, 1),
    "18.0.weight": (1280, 320, 1, 1),
    "18.1.num_batches_tracked": (),
}


def test_state_dict_matches_torchvision_layout() -> None:
    sd = mobilenet_v2_features().state_dict()
    assert len(sd) == 312
    assert sum(p.numel() for p in mobilenet_v2_features().parameters()) == 2_223_872
    for key, shape in TORCHVISION_SHAPES.items():
        assert tuple(sd[key].shape) == shape, key
    assert mobilenet_v2_features(padding="same").state_dict().keys() == sd.keys()


def test_same_padding_is_bottom_right_heavy_for_even_inputs() -> None:
    torch.manual_seed(0)
    f = mobilenet_v2_features(padding="same").eval()
    stem = f[0][0]
    x = torch.randn(1, 3, 32, 32)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), stem.weight, None, 2)
    assert torch.allclose(stem(x), ref, atol=1e-6)
    x_odd = torch.randn(1, 3, 33, 33)
    ref_odd = F.conv2d(F.pad(x_odd, (1, 1, 1, 1)), stem.weight, None, 2)
    assert torch.allclose(stem(x_odd), ref_odd, atol=1e-6)
    # torch padding: symmetric.
    g = mobilenet_v2_features(padding="torch")
    g.load_state_dict(f.state_dict())
    assert torch.allclose(g[0][0](x), F.conv2d(x, stem.weight, None, 2, 1), atol=1e-6)


def test_heads_and_output_shapes() -> None:
    cfg = ModelConfig(num_price_bins=10, num_make_models=197, num_years=17, padding="same", bn_eps=1e-3)
    net = CarValueNet(cfg).eval()
    out = net(torch.randn(3, 3, 96, 96))
    assert [tuple(o.shape) for o in out] == [(3, 10), (3,), (3, 197), (3, 17)]
    assert net.features[0][1].eps == 1e-3
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
