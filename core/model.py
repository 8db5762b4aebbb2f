"""The CarValue network: a MobileNetV2 trunk and four linear heads.

The trunk's ``state_dict`` keys and shapes equal torchvision's ``mobilenet_v2().features`` so
torchvision ImageNet weights load directly (written here because torchvision is not importable
beside the CPU torch build this project pins).  Only training and export import this module.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Padding = Literal["torch", "same"]

# (expand ratio, output channels, repeats, first stride): MobileNetV2 paper, table 2.
_INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
FEATURE_DIM = 1280


class _Conv(nn.Conv2d):
    """Conv2d that can pad like TensorFlow's ``"same"`` (bottom/right heavy) for stride 2.

    Keras-trained weights expect that asymmetric padding; torchvision pads all sides. The
    parameters (and so the state_dict keys) are exactly those of ``nn.Conv2d``.
    """

    def __init__(self, *args: object, same_padding: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.same_padding = same_padding and self.stride[0] > 1
        # Set only while exporting (see ``static_same_padding``): pads as Python ints, so the
        # traced graph holds constant pads that ``simplify_onnx`` folds into the Conv, instead
        # of a Shape/Gather/Sub/Div/Concat/Pad chain per stride-2 conv that also kept ONNX
        # Runtime out of its blocked (NCHWc) layout: ~30% of the bundled model's CPU forward.
        self.frozen_pads: list[int] | None = None

    def same_pads(self, height: int, width: int) -> list[int]:
        """F.pad order (left, right, top, bottom) for TensorFlow "same" padding of this size."""
        pads: list[int] = []
        for size, k, s in ((width, self.kernel_size[1], self.stride[1]), (height, self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same_padding:
            return super().forward(x)
        pads = self.frozen_pads if self.frozen_pads is not None else self.same_pads(x.shape[2], x.shape[3])
        x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv_bn_relu(cin: int, cout: int, stride: int, groups: int, padding: Padding, eps: float) -> nn.Sequential:
    same = padding == "same" and stride > 1
    conv = _Conv(cin, cout, 3 if groups > 1 or cin == 3 else 1, stride,
                 padding=0 if same else (1 if groups > 1 or cin == 3 else 0),
                 groups=groups, bias=False, same_padding=same)
    return nn.Sequential(conv, nn.BatchNorm2d(cout, eps=eps), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, padding: Padding, eps: float) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_pointwise_bn_relu(cin, hidden, eps))
        layers += [
            _conv_bn_relu(hidden, hidden, stride, hidden, padding, eps),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout, eps=eps),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


def _pointwise_bn_relu(cin: int, cout: int, eps: float) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=eps), nn.ReLU6(inplace=True))


def mobilenet_v2_features(padding: Padding = "torch", bn_eps: float = 1e-5) -> nn.Sequential:
    """MobileNetV2 (width 1.0) feature extractor, keys identical to torchvision's ``.features``."""
    stem = _Conv(3, 32, 3, 2, padding=0 if padding == "same" else 1, bias=False, same_padding=padding == "same")
    layers: list[nn.Module] = [nn.Sequential(stem, nn.BatchNorm2d(32, eps=bn_eps), nn.ReLU6(inplace=True))]
    cin = 32
    for expand, cout, repeats, first_stride in _INVERTED_RESIDUAL_SETTING:
        for i in range(repeats):
            layers.append(InvertedResidual(cin, cout, first_stride if i == 0 else 1, expand, padding, bn_eps))
            cin = cout
    layers.append(_pointwise_bn_relu(cin, FEATURE_DIM, bn_eps))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class ModelConfig:
    """What it takes to rebuild the network; stored in checkpoints and the model file."""

    num_price_bins: int
    num_make_models: int
    num_years: int
    padding: Padding = "torch"
    bn_eps: float = 1e-5
    dropout: float = 0.2
    architecture: str = "mobilenet_v2"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ModelConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})  # type: ignore[arg-type]


OUTPUT_NAMES = ("price_logits", "median", "make_model_logits", "year_logits")


class CarValueNet(nn.Module):
    """MobileNetV2 trunk, global average pool, and four heads.

    Outputs (in ``OUTPUT_NAMES`` order): price-range logits, the median-price head (a
    normalised log price; the model file says how to turn it into dollars), make/model logits
    (last class = Unknown), year logits (last class = Unknown).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.features = mobilenet_v2_features(config.padding, config.bn_eps)
        self._add_heads(FEATURE_DIM)

    def _add_heads(self, dim: int) -> None:
        """Dropout and the four heads on ``dim`` pooled features (a subclass with another trunk,
        training/loop/clip_arch.py, calls this after setting its ``features``)."""
        config = self.config
        self.dropout = nn.Dropout(config.dropout)
        self.price_head = nn.Linear(dim, config.num_price_bins)
        self.median_head = nn.Linear(dim, 1)
        self.make_model_head = nn.Linear(dim, config.num_make_models)
        self.year_head = nn.Linear(dim, config.num_years)
        for head in (self.price_head, self.median_head, self.make_model_head, self.year_head):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d trunk features."""
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward_head(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.dropout(f)
        return (self.price_head(f), self.median_head(f).squeeze(1), self.make_model_head(f), self.year_head(f))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


@contextlib.contextmanager
def static_same_padding(model: nn.Module, input_size: int) -> Iterator[None]:
    """Fix every "same"-padded conv's pads for one square input size while the block runs.

    The model file's input size is fixed (only the batch axis is dynamic), so the pads are
    constants there; one forward pass records each conv's input size.
    """
    convs = [m for m in model.modules() if isinstance(m, _Conv) and m.same_padding]

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        assert isinstance(module, _Conv)
        module.frozen_pads = module.same_pads(int(args[0].shape[2]), int(args[0].shape[3]))

    hooks = [c.register_forward_pre_hook(record) for c in convs]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
    try:
        yield
    finally:
        for c in convs:
            c.frozen_pads = None


def export_onnx(model: CarValueNet, path: str, input_size: int, opset: int = 17) -> None:
    """Export to ONNX (fp32) with a dynamic batch axis. Metadata is added by ``core.modelfile``.

    The traced graph is then constant-folded and each zero Pad folded into the Conv after it
    (ONNX Conv takes asymmetric pads), leaving a plain Conv/Clip/Add/Gemm graph.
    """
    model = model.eval()
    dummy = torch.zeros(2, 3, input_size, input_size)
    dyn = {"input": {0: "batch"}} | {name: {0: "batch"} for name in OUTPUT_NAMES}
    # The TorchScript exporter (deprecated, still in the pinned torch 2.13): the torch.export
    # one (dynamo=True, dynamic_shapes) was tried on 2026-11-25 and gives the same plain graph
    # after simplify_onnx (GlobalAveragePool as ReduceMean) with parity ~1e-15, but took
    # 6.5-8.4 s per export against 0.6-1.1 s here, which the test suite pays on every model
    # file it writes.  Switch when the pin moves to a torch without this exporter.
    with torch.no_grad(), static_same_padding(model, input_size):
        torch.onnx.export(model, (dummy,), path, input_names=["input"], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=dyn, opset_version=opset, dynamo=False)
    simplify_onnx(path)


def simplify_onnx(path: str) -> None:
    """Constant-fold the file in place and fuse zero padding into convolutions (onnxscript)."""
    import onnx
    from onnxscript import ir, optimizer, rewriter
    from onnxscript.rewriter.rules.common import fuse_pad_into_conv_rule

    graph = ir.serde.deserialize_model(onnx.load(path))
    optimizer.optimize_ir(graph)
    # onnxscript keeps ConstantOfShape unfolded (to keep files small); the one torch emits for
    # the pads is tiny, and folding it is what makes the pads constant.
    optimizer.fold_constants_ir(graph, should_fold=lambda node: True if node.op_type == "ConstantOfShape" else None)
    rewriter.rewrite(graph, pattern_rewrite_rules=[fuse_pad_into_conv_rule])
    optimizer.remove_unused_nodes(graph)
    proto = ir.serde.serialize_model(graph)
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


class FramingHeads(nn.Module):
    """Where the car is, and whether the input shows one whole car, from the trunk's feature map.

    Box: every cell of the (S x S) map scores how much it is the car's centre and says how far
    the car reaches from it (left, top, right, bottom, as fractions of the input); the box is the
    score-weighted mean of the cells' boxes (softmax over cells), so one differentiable box comes
    out with no non-maximum suppression and no thresholds.  Chosen over scoring many candidate
    boxes with the classifier (measured before: ~0.5 s per photo on 2 cores and a median IoU of
    0.5) because it costs a few small convolutions on the first forward pass.  Each cell sees its
    5x5 neighbourhood (a 1x1 reduction to ``hidden`` channels, then two 3x3 convolutions): on the
    bundled model's validation samples the median IoU was 0.82 with 1x1 convolutions only, 0.86
    with one 3x3 and 0.87 with two, where one 3x3 convolution on all 1280 channels (~5x the
    multiply-adds of both) reached 0.85.

    Whole car: a small MLP on the pooled features (the same vector the classifier reads), trained
    with non-car images and partial views as negatives.
    """

    def __init__(self, hidden: int = 128, whole_hidden: int = 64) -> None:
        super().__init__()
        self.box_hidden = nn.Sequential(nn.Conv2d(FEATURE_DIM, hidden, 1), nn.ReLU(),
                                        nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(hidden, hidden, 3, padding=1))
        self.box_out = nn.Conv2d(hidden, 5, 1)
        self.whole = nn.Sequential(nn.Linear(FEATURE_DIM, whole_hidden), nn.ReLU(), nn.Linear(whole_hidden, 1))

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``fmap`` (N, 1280, S, S) -> box (N, 4: x0, y0, x1, y1 in 0..1), whole-car logit (N,)."""
        n, _, h, w = fmap.shape
        out = self.box_out(F.relu(self.box_hidden(fmap)))
        weights = torch.softmax(out[:, 0].reshape(n, h * w), dim=1)
        reach = torch.sigmoid(out[:, 1:5]).reshape(n, 4, h * w)
        ys = (torch.arange(h, dtype=fmap.dtype) + 0.5) / h
        xs = (torch.arange(w, dtype=fmap.dtype) + 0.5) / w
        cy = ys[:, None].expand(h, w).reshape(1, h * w)
        cx = xs[None, :].expand(h, w).reshape(1, h * w)
        cells = torch.stack([cx - reach[:, 0], cy - reach[:, 1], cx + reach[:, 2], cy + reach[:, 3]], dim=1)
        box = (cells.clamp(0.0, 1.0) * weights[:, None, :]).sum(dim=2)
        whole = self.whole(fmap.mean(dim=(2, 3))).squeeze(1)
        return box, whole
