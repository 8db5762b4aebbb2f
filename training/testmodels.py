"""Write small CarValue model files with random weights for tests, benchmarks and screenshots
(docs/make_screenshot.py when there is no bundled model): training-side, it needs torch.

Never used for the bundled model (random weights must not ship).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from core.modelfile import (
    UNKNOWN,
    ConfidenceSpec,
    InputSpec,
    ModelMetadata,
    PriceSpec,
    write_model_file,
)

MAKE_MODELS = ("Acura TL Sedan 2012", "Audi TTS Coupe 2012", "Ford F-450 Super Duty Crew Cab 2012",
               "Geo Metro Convertible 1993", "Hyundai Sonata Hybrid Sedan 2012", UNKNOWN)
YEARS = ("1993", "2007", "2009", "2011", "2012", UNKNOWN)


def random_metadata(size: int = 224, make_models: tuple[str, ...] = MAKE_MODELS,
                    years: tuple[str, ...] = YEARS) -> ModelMetadata:
    return ModelMetadata(
        make_models=make_models,
        years=years,
        input=InputSpec(size=size),
        price=PriceSpec(meaning="TEST MODEL with random weights: the numbers mean nothing"),
        confidence=ConfidenceSpec(method="max_prob", threshold=0.3),
        name="random-test-model",
        provenance={"data": "none (random weights)"},
        created="2026-01-01T00:00:00Z",
    )


def make_model_file(path: str | Path, size: int = 224, seed: int = 0,
                    metadata: ModelMetadata | None = None, padding: str = "torch") -> tuple[Path, object]:
    """Export a randomly initialised CarValueNet with metadata; returns (path, torch model).

    ``padding="same"`` gives the bundled model's layout (a Keras-converted trunk).
    """
    import torch

    from core.model import CarValueNet, ModelConfig, export_onnx

    meta = metadata or random_metadata(size)
    torch.manual_seed(seed)
    net = CarValueNet(ModelConfig(meta.price.num_bins, len(meta.make_models), len(meta.years),
                                  padding=padding, bn_eps=1e-3 if padding == "same" else 1e-5))  # type: ignore[arg-type]
    # Random-but-not-degenerate weights so probabilities differ between crops: a fresh network's
    # BatchNorm statistics (mean 0, var 1) don't match its activations, and every feature
    # collapses to ~0.  Re-estimate them on random images, then scale the heads to give logits
    # of a few units.
    gen = torch.Generator().manual_seed(seed)
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 3, meta.input.size, meta.input.size, generator=gen) * 2 - 1)
        for head, std in ((net.price_head, 0.08), (net.make_model_head, 0.08), (net.year_head, 0.08),
                          (net.median_head, 0.01)):
            head.weight.normal_(0.0, std, generator=gen)
    net.eval()
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        export_onnx(net, str(raw), meta.input.size)
        write_model_file(raw, meta, path)
    return path, net


def make_framed_model_file(base: str | Path, out: str | Path, box: tuple[float, float, float, float],
                           logit: float, threshold: float = 0.3, unsure_below: float = 0.6,
                           flip_tta: bool | None = None, car_logit: float | None = None,
                           car_threshold: float = 0.5) -> Path:
    """``base`` with framing outputs of a known answer grafted in (training.framing.heads.graft): the
    car is always at ``box`` (x0, y0, x1, y1 as fractions of the input) and the whole-car logit
    is ``logit``; with ``car_logit``, also a car output (training/framing/whole_car.py) of that value."""
    import torch

    from training.framing.heads import graft

    class FixedFraming(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("box", torch.tensor(box))

        def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            zero = fmap.mean(dim=(1, 2, 3)) * 0.0
            return self.box[None, :] + zero[:, None], zero + logit

    graft(Path(base), FixedFraming(), {"threshold": threshold, "unsure_below": unsure_below,
                                       "sources": ({"name": "test", "licence": "none"},)}, Path(out), flip_tta)
    if car_logit is not None:
        add_car_output(Path(out), car_logit, car_threshold)
    return Path(out)


def add_car_output(path: Path, logit: float, threshold: float = 0.5) -> Path:
    """A framed model file with a ``car_logit`` output of constant value ``logit`` (one per
    batch row, computed from the whole-car logit times 0) and the framing spec naming it."""
    import dataclasses

    import onnx
    from onnx import helper, numpy_helper

    from core.modelfile import open_session

    _, meta = open_session(path, threads=1)
    assert meta.framing is not None
    model = onnx.load(str(path))
    g = model.graph
    g.initializer.extend([numpy_helper.from_array(np.zeros((), np.float32), "test/zero"),
                          numpy_helper.from_array(np.asarray(logit, np.float32), "test/car")])
    g.node.extend([helper.make_node("Mul", [meta.framing.whole_car_output, "test/zero"], ["test/zeros"]),
                   helper.make_node("Add", ["test/zeros", "test/car"], ["car_logit"])])
    g.output.append(helper.make_tensor_value_info("car_logit", onnx.TensorProto.FLOAT, ["batch"]))
    framing = dataclasses.replace(meta.framing, car_output="car_logit", car_threshold=threshold)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        onnx.save(model, str(raw))
        write_model_file(raw, dataclasses.replace(meta, framing=framing), path)
    return path


def whole_car_from_brightness(path: Path, scale: float = 4.0, out: Path | None = None) -> Path:
    """A framed model file whose whole-car logit is ``scale`` times the mean of its normalised
    input (a bright crop is a whole car, a dark one is not), in place of its fixed logit: so the
    whole photo and a crop of it get different verdicts (the second look's tests)."""
    import onnx
    from onnx import helper, numpy_helper

    from core.modelfile import open_session

    _, meta = open_session(path, threads=1)
    assert meta.framing is not None
    model = onnx.load(str(path))
    g = model.graph
    name = meta.framing.whole_car_output
    for n in g.node:  # the old logit goes on, read only where it was (the car output times 0)
        n.output[:] = ["test/fixed_whole" if o == name else o for o in n.output]
        n.input[:] = ["test/fixed_whole" if x == name else x for x in n.input]
    g.initializer.extend([numpy_helper.from_array(np.full((3, 1), scale / 3, np.float32), "test/bright_w"),
                          numpy_helper.from_array(np.asarray([1], np.int64), "test/axis1")])
    g.node.extend([helper.make_node("GlobalAveragePool", [g.input[0].name], ["test/gap"]),
                   helper.make_node("Flatten", ["test/gap"], ["test/flat"], axis=1),
                   helper.make_node("MatMul", ["test/flat", "test/bright_w"], ["test/bright"]),
                   helper.make_node("Squeeze", ["test/bright", "test/axis1"], [name])])
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        onnx.save(model, str(raw))
        write_model_file(raw, meta, out or path)
    return out or path
