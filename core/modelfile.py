"""The model file: one ONNX file carrying the weights and a JSON metadata entry.

Writing (training/export side) and reading (app side) live here so the contract has one
definition.  Reading needs only onnxruntime; writing imports the ``onnx`` package lazily
(a training-side extra).  Every fault found while loading raises :class:`ModelFileError`
whose message names the file and the fault.
"""
# Over 400 lines: the model file's contract: metadata types, their parser and the writer

from __future__ import annotations

import functools
import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from core import graphcheck
from core.atomic import atomic_path
from core.money import PRICE_CEILING, whole_dollars
from core.pricing import PriceModel, PriceModelError

# 2: optional ``framing`` (where the car is, whole-car head) and ``price_model`` sections and
# their outputs; a version-1 file has neither and still loads (the full photo is its crop).
FORMAT_VERSION = 2
METADATA_KEY = "carvalue"
OUTPUT_NAMES = ("price_logits", "median", "make_model_logits", "year_logits")
UNKNOWN = "Unknown"
# Ranges a loaded file's numbers must lie in, so every prediction stays finite: no price is
# above PRICE_CEILING dollars (core/money.py; the median head's value is capped there too), and
# a softmax temperature outside TEMPERATURE_RANGE turns logits into inf or 0/0.
TEMPERATURE_RANGE = (1e-2, 1e2)
MAX_INPUT_SIZE = 4096
PART_SIGNAL_COUNT = 3  # core.framing.part_signals: whole-car logit, log top class probability, log car aspect


class ModelFileError(Exception):
    """A model file that cannot be used; the message names the file and the fault."""

    def __init__(self, path: str | os.PathLike[str], fault: str) -> None:
        self.path = str(path)
        self.fault = fault
        super().__init__(f"{self.path}: {fault}")


@dataclass(frozen=True)
class InputSpec:
    """How a crop becomes the network's input tensor (NCHW float32)."""

    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # "stretch": the crop box is resized to size x size (what the user boxes is what the model
    # sees).  "center_crop": short side to size / crop_fraction, then a central size x size.
    resize: str = "stretch"
    crop_fraction: float = 1.0
    # Flip test-time augmentation: every crop and its mirror in one batch, probabilities averaged.
    # Chosen per model on validation photos (training/framing/heads.py), so the file says whether it pays.
    flip_tta: bool = False


@dataclass(frozen=True)
class PriceSpec:
    """Price ranges (dollar cutoffs) and how the median head maps to dollars.

    The median head predicts ``z``; dollars = ``exp(z * log_std + log_mean)``.  The one place
    that scaling is written, both ways (:meth:`to_z` for training targets, :meth:`to_dollars`).
    """

    edges: tuple[float, ...] = (10e3, 15e3, 20e3, 25e3, 30e3, 35e3, 40e3, 50e3, 60e3)
    log_mean: float = math.log(20e3)
    log_std: float = 1.0
    currency: str = "USD"
    meaning: str = ""

    @property
    def num_bins(self) -> int:
        return len(self.edges) + 1

    def bounds(self) -> list[tuple[float, float | None]]:
        """(low, high) dollars per range; the first starts at 0, the last is open (None)."""
        lows = [0.0, *self.edges]
        highs: list[float | None] = [*self.edges, None]
        return list(zip(lows, highs, strict=True))

    def to_z(self, price: float) -> float:
        """The median head's target for ``price`` dollars (positive): ``(log price - log_mean) / log_std``."""
        return (math.log(price) - self.log_mean) / self.log_std

    @overload
    def to_dollars(self, z: float) -> float: ...
    @overload
    def to_dollars(self, z: np.ndarray) -> np.ndarray: ...
    def to_dollars(self, z: float | np.ndarray) -> float | np.ndarray:
        """Dollars for the head's ``z`` (a number, or each of an array's), at most PRICE_CEILING
        (a wild ``z`` cannot overflow); NaN where ``z`` is not finite (a broken head: the photo
        fails rather than showing the cap)."""
        v = np.asarray(z, dtype=np.float64)
        dollars = np.exp(np.minimum(v * self.log_std + self.log_mean, math.log(PRICE_CEILING)))
        dollars = np.where(np.isfinite(v), dollars, np.nan)
        return float(dollars) if dollars.ndim == 0 else dollars


@dataclass(frozen=True)
class ConfidenceSpec:
    """How the 'looks like a whole car' score is computed from the make/model logits.

    ``method``: "max_prob" (top make/model probability after temperature) or "energy"
    (logsumexp of the logits; mapped to 0..1 by a logistic centred on ``threshold``).
    A photo is flagged as not a whole car when the score is below ``threshold``.
    """

    method: str = "max_prob"
    threshold: float = 0.0
    scale: float = 1.0
    temperature: float = 1.0
    note: str = ""


@dataclass(frozen=True)
class FramingSpec:
    """Where the car is in a photo and whether a crop shows a whole car (format 2).

    ``box_output``: (N, 4) x0, y0, x1, y1 of the car as fractions of the network's input
    (the crop it was given).  ``whole_car_output``: (N,) logit that the crop shows one whole car;
    ``sigmoid(logit / temperature)`` is the whole-car score, flagged below ``threshold`` and
    "unsure" below ``unsure_below``.  ``found_margin``: fraction of the found box's size added on
    each side before predicting on it (negative: taken off; chosen on validation photos).  ``sources``: backgrounds and negatives it was trained on,
    each with its licence.
    """

    box_output: str = "car_box"
    whole_car_output: str = "whole_car_logit"
    temperature: float = 1.0
    threshold: float = 0.5
    unsure_below: float = 0.5
    found_margin: float = 0.0
    sources: tuple[dict[str, str], ...] = ()
    note: str = ""
    # Optional (training/framing/whole_car.py): an (N,) logit that the crop shows a car or part of one;
    # ``sigmoid(logit / temperature)`` below ``car_threshold`` is "no car".  "": the file cannot
    # tell no car from part of a car.
    car_output: str = ""
    car_threshold: float = 0.5
    # Optional (training/framing/part_rule.py): a crop judged whole is called part of a car when
    # ``part_weights . core.framing.part_signals(...) + part_bias < 0``; () = no such rule.
    part_weights: tuple[float, ...] = ()
    part_bias: float = 0.0
    # Optional (training/framing/second_look.py): where the first pass on a whole photo sees no
    # whole car, predict on the box the box head found anyway and let that crop's verdict stand
    # when it is a whole car (or unsure): a car small in a busy scene.  False: the first pass decides.
    second_look: bool = False
    # ... and only when that crop's top make/model probability is at least this (0: any).
    second_look_min_top: float = 0.0


@dataclass(frozen=True)
class MakeSpec:
    """Make and body type as outputs of their own, and whether the car is one the catalogue's
    classes know (optional; training/framing/make_head.py).

    ``make_output``: (N, len(makes)) logits of the car's make, read so that a car whose model or
    generation is not a class still gets its make; ``body_output``: (N, len(bodies)) logits of its
    body type ("" when the file has none).  ``known_threshold``: the photo shows a car of the
    classes (``known_car``) when its top make/model probability is at least this; below it, a car
    the classes lack.  Set on held-out photos of known classes, measured on held-out families.
    """

    makes: tuple[str, ...] = ()
    make_output: str = "make_logits"
    bodies: tuple[str, ...] = ()
    body_output: str = ""
    known_threshold: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class ModelMetadata:
    make_models: tuple[str, ...]
    years: tuple[str, ...]
    input: InputSpec = field(default_factory=InputSpec)
    price: PriceSpec = field(default_factory=PriceSpec)
    confidence: ConfidenceSpec = field(default_factory=ConfidenceSpec)
    architecture: str = "mobilenet_v2"
    name: str = "carvalue"
    temperatures: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    format_version: int = FORMAT_VERSION
    framing: FramingSpec | None = None
    # Format 2: how class probabilities become a price, as the file holds it (JSON; parsed once by
    # :attr:`parsed_price_model`, with core.pricing.PriceModel.from_dict).  None: the price head's value.
    price_model: dict[str, Any] | None = None
    # Optional: make and body outputs and the known-car threshold (None: the file has neither).
    make: MakeSpec | None = None

    @functools.cached_property
    def parsed_price_model(self) -> PriceModel | None:
        """The ``price_model`` section parsed and checked, once per metadata object (raises
        :class:`core.pricing.PriceModelError`; ``from_json`` has already checked it)."""
        if self.price_model is None:
            return None
        return PriceModel.from_dict(self.price_model, n_classes=len(self.make_models))

    def output_sizes(self) -> dict[str, int]:
        sizes = {
            "price_logits": self.price.num_bins,
            "median": 1,
            "make_model_logits": len(self.make_models),
            "year_logits": len(self.years),
        }
        if self.framing is not None:
            sizes[self.framing.box_output] = 4
            sizes[self.framing.whole_car_output] = 1
            if self.framing.car_output:
                sizes[self.framing.car_output] = 1
        if self.make is not None:
            sizes[self.make.make_output] = len(self.make.makes)
            if self.make.body_output:
                sizes[self.make.body_output] = len(self.make.bodies)
        return sizes

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=None, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike[str] = "<metadata>") -> ModelMetadata:
        try:
            d = json.loads(text, parse_constant=_non_finite, parse_float=_finite_float)
        except json.JSONDecodeError as e:
            raise ModelFileError(path, f"metadata is not valid JSON ({e})") from e
        except (ValueError, RecursionError) as e:  # NaN/Infinity/1e999, a 5000-digit integer, nesting
            raise ModelFileError(path, f"metadata is not valid JSON ({e})") from e
        if not isinstance(d, dict):
            raise ModelFileError(path, "metadata is not a JSON object")
        version = d.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ModelFileError(path, "metadata has no format_version (a positive integer)")
        if version > FORMAT_VERSION:
            raise ModelFileError(path, f"model file format {version} is newer than this app supports "
                                       f"({FORMAT_VERSION}); update CarValue")
        try:
            meta = cls(
                make_models=_strings(d["make_models"], "make_models"),
                years=_strings(d["years"], "years"),
                input=_build(InputSpec, d.get("input", {}), "input"),
                price=_build(PriceSpec, d.get("price", {}), "price"),
                confidence=_build(ConfidenceSpec, d.get("confidence", {}), "confidence"),
                architecture=_string(d.get("architecture", "mobilenet_v2"), "architecture"),
                name=_string(d.get("name", "carvalue"), "name"),
                temperatures=_temperatures(d.get("temperatures", {})),
                provenance=_object(d.get("provenance", {}), "provenance"),
                metrics=_object(d.get("metrics", {}), "metrics"),
                created=_string(d.get("created", ""), "created"),
                format_version=version,
                framing=_framing(d.get("framing")),
                price_model=_price_model(d.get("price_model")),
                make=_make(d.get("make")),
            )
        except KeyError as e:
            raise ModelFileError(path, f"metadata is missing {e.args[0]!r}") from e
        except (TypeError, ValueError) as e:
            raise ModelFileError(path, f"metadata has a malformed field ({e})") from e
        meta.validate(path)
        return meta

    def validate(self, path: str | os.PathLike[str] = "<metadata>") -> None:
        def fail(msg: str) -> None:
            raise ModelFileError(path, msg)

        if len(self.make_models) < 2 or self.make_models[-1] != UNKNOWN:
            fail(f"make/model vocabulary must have at least one class and end with {UNKNOWN!r}")
        if len(self.years) < 2 or self.years[-1] != UNKNOWN:
            fail(f"year vocabulary must have at least one year and end with {UNKNOWN!r}")
        if len(set(self.make_models)) != len(self.make_models):
            fail("make/model vocabulary has duplicates")
        price, spec, conf = self.price, self.input, self.confidence
        if not all(_is_number(v) for v in (*price.edges, price.log_mean, price.log_std, *spec.mean, *spec.std,
                                           spec.crop_fraction, conf.threshold, conf.scale, conf.temperature)):
            fail("metadata numbers must be finite (price, input and confidence)")
        edges = price.edges
        if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)) or edges[0] <= 0:
            fail("price edges must be positive and strictly increasing")
        if edges[-1] * 1.5 > PRICE_CEILING:  # the open top range is drawn to 1.5x its low edge
            fail(f"price edges must stay below {whole_dollars(PRICE_CEILING / 1.5)}")
        if not 0 < price.log_std <= 10 or not 0 <= price.log_mean <= math.log(PRICE_CEILING):
            fail(f"price.log_std must be in (0, 10] and price.log_mean in [0, {math.log(PRICE_CEILING):.1f}] "
                 f"(a median between $1 and {whole_dollars(PRICE_CEILING)})")
        if not (_is_int(spec.size) and 32 <= spec.size <= MAX_INPUT_SIZE and len(spec.mean) == 3
                and len(spec.std) == 3 and all(0 <= m <= 1 for m in spec.mean)
                and all(0.01 <= s <= 10 for s in spec.std)):
            fail(f"input spec is invalid (size 32..{MAX_INPUT_SIZE}, three means in [0, 1], "
                 "three stds in [0.01, 10])")
        if spec.resize not in ("stretch", "center_crop") or not 0 < spec.crop_fraction <= 1:
            fail(f"unknown input resize mode {spec.resize!r} or crop_fraction outside (0, 1]")
        if conf.method not in ("max_prob", "energy"):
            fail(f"unknown confidence method {conf.method!r}")
        low, high = TEMPERATURE_RANGE
        for key, t in {**self.temperatures, "confidence.temperature": conf.temperature}.items():
            if not (_is_number(t) and low <= t <= high):
                fail(f"temperature {key!r} must be a number in [{low:g}, {high:g}], got {t!r}")
        if not 1e-4 <= conf.scale <= 1e4 or abs(conf.threshold) > 1e6:
            fail("confidence.scale must be in [1e-4, 1e4] and confidence.threshold within +-1e6")
        fr = self.framing
        if fr is not None:
            numbers = (fr.temperature, fr.threshold, fr.unsure_below, fr.found_margin)
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
                fail("framing numbers must be finite")
            if fr.temperature <= 0 or not 0 < fr.threshold <= fr.unsure_below < 1 or not -0.25 <= fr.found_margin <= 0.5:
                fail("framing needs temperature > 0, 0 < threshold <= unsure_below < 1, -0.25 <= found_margin <= 0.5")
            if not fr.box_output or not fr.whole_car_output or fr.box_output == fr.whole_car_output:
                fail("framing needs two distinct output names")
            if fr.car_output:
                if fr.car_output in (fr.box_output, fr.whole_car_output):
                    fail("framing.car_output must differ from the box and whole-car outputs")
                if not (_is_number(fr.car_threshold) and 0 < fr.car_threshold < 1):
                    fail("framing.car_threshold must be a number in (0, 1)")
            if (fr.part_weights and len(fr.part_weights) != PART_SIGNAL_COUNT) \
                    or not all(abs(w) <= 1e3 for w in (*fr.part_weights, fr.part_bias)):
                fail(f"framing.part_weights must be {PART_SIGNAL_COUNT} numbers, each and part_bias within +-1000")
            if not (_is_number(fr.second_look_min_top) and 0 <= fr.second_look_min_top <= 1):
                fail("framing.second_look_min_top must be a number in [0, 1]")
        mk = self.make
        if mk is not None:
            taken = {*OUTPUT_NAMES, *((fr.box_output, fr.whole_car_output, fr.car_output) if fr else ())}
            if len(mk.makes) < 2 or len(set(mk.makes)) != len(mk.makes):
                fail("make.makes must name at least two makes, each once")
            if mk.body_output and (len(mk.bodies) < 2 or len(set(mk.bodies)) != len(mk.bodies)):
                fail("make.bodies must name at least two body types, each once")
            if not mk.make_output or mk.make_output in taken or mk.body_output in (*taken, mk.make_output):
                fail("make.make_output and make.body_output must be new output names")
            if not (_is_number(mk.known_threshold) and 0 <= mk.known_threshold <= 1):
                fail("make.known_threshold must be a number in [0, 1]")
        if self.price_model is not None:
            if self.format_version < 2:
                fail("a price_model section needs format_version 2")
            try:
                self.parsed_price_model  # noqa: B018  (parsed and checked here, once)
            except PriceModelError as e:
                fail(str(e))


def _framing(d: Any) -> FramingSpec | None:
    if d is None:
        return None
    spec = _build(FramingSpec, d, "framing")
    sources = tuple(dict(s) for s in spec.sources)
    return FramingSpec(**{**asdict(spec), "sources": sources})


def _make(d: Any) -> MakeSpec | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise TypeError("make must be an object")
    spec = _build(MakeSpec, {k: v for k, v in d.items() if k not in ("makes", "bodies")}, "make")
    return MakeSpec(**{**asdict(spec), "makes": _strings(d.get("makes", []), "make.makes"),
                       "bodies": _strings(d.get("bodies", []), "make.bodies")})


def _price_model(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise TypeError("price_model must be an object")
    return d


def _build(cls: type, d: Any, section: str = "") -> Any:
    """A spec dataclass from its JSON object, each field read as its annotation says (number,
    integer, string, list of numbers); a wrong type raises TypeError naming ``section.field``."""
    section = section or cls.__name__
    if not isinstance(d, dict):
        raise TypeError(f"{section} must be an object, got {_short(d)}")
    kwargs: dict[str, Any] = {}
    for name, f in cls.__dataclass_fields__.items():  # type: ignore[attr-defined]
        if name not in d:
            continue
        v, what, kind = d[name], f"{section}.{name}", str(f.type)
        if kind == "float":
            kwargs[name] = _number(v, what)
        elif kind == "int":
            if not _is_int(v):
                raise TypeError(f"{what} must be an integer, got {_short(v)}")
            kwargs[name] = v
        elif kind == "str":
            kwargs[name] = _string(v, what)
        elif kind == "bool":
            if not isinstance(v, bool):
                raise TypeError(f"{what} must be true or false, got {_short(v)}")
            kwargs[name] = v
        elif kind.startswith("tuple[float"):
            if not isinstance(v, list):
                raise TypeError(f"{what} must be a list of numbers, got {_short(v)}")
            kwargs[name] = tuple(_number(x, what) for x in v)
        else:
            kwargs[name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(v: Any, what: str) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise TypeError(f"{what} must be a number, got {_short(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"{what} is out of range") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} must be finite, got {f}")
    return f


def _string(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{what} must be a string, got {_short(v)}")
    return v


def _strings(v: Any, what: str) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise TypeError(f"{what} must be a list of strings, got {_short(v)}")
    return tuple(_string(s, what) for s in v)


def _object(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise TypeError(f"{what} must be an object, got {_short(v)}")
    return dict(v)


def _temperatures(v: Any) -> dict[str, float]:
    return {k: _number(t, f"temperatures.{k}") for k, t in _object(v, "temperatures").items()}


def _non_finite(token: str) -> Any:
    raise ValueError(f"{token} is not a finite number")


def _finite_float(token: str) -> float:
    f = float(token)
    if not math.isfinite(f):
        raise ValueError(f"{token} is out of range")
    return f


def write_model_file(onnx_in: str | os.PathLike[str], metadata: ModelMetadata,
                     out_path: str | os.PathLike[str]) -> None:
    """Attach ``metadata`` to an exported ONNX graph and write it atomically to ``out_path``."""
    import onnx  # training-side dependency

    metadata.validate(out_path)
    model = onnx.load(str(onnx_in))
    outputs = {o.name: o for o in model.graph.output}
    missing = [n for n in OUTPUT_NAMES if n not in outputs]
    if missing:
        raise ModelFileError(onnx_in, f"ONNX graph lacks outputs {missing}")
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    model.producer_name = "carvalue"
    with atomic_path(out_path) as tmp:
        onnx.save(model, str(tmp))


def check_file(path: str | os.PathLike[str]) -> Path:
    """Fail early with a clear message for files that are missing, empty or not ONNX at all."""
    p = Path(path)
    try:  # O_NONBLOCK: a FIFO in the file's place cannot hold the open
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ModelFileError(p, "model file not found") from None
    except OSError as e:
        raise ModelFileError(p, f"cannot read the model file ({e.strerror or e})") from None
    except ValueError as e:  # a NUL or an unencodable character in the path
        raise ModelFileError(p, f"not a usable file name ({e})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise ModelFileError(p, "is a folder, not a model file")
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(p, "not a regular file")
        if st.st_size == 0:
            raise ModelFileError(p, "model file is empty")
        try:
            head = f.read(16)
        except OSError as e:
            raise ModelFileError(p, f"cannot read the model file ({e.strerror or e})") from None
    # An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    if head[:1] != b"\x08":
        raise ModelFileError(p, "not an ONNX model file")
    return p


def open_session(path: str | os.PathLike[str], threads: int | None = None) -> tuple[Any, ModelMetadata]:
    """Load and check a model file: returns (onnxruntime.InferenceSession, metadata)."""
    # onnxruntime >= 1.32 on Linux/macOS records usage telemetry (a device id and an event store
    # under ~/.cache/Microsoft/DeveloperTools/.onnxruntime, uploaded to Microsoft when online).
    # This app is offline; the variable must be set before onnxruntime is first imported.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime as ort

    p = check_file(path)
    try:  # before ONNX Runtime, which constant-folds (allocates) while it loads
        graphcheck.check_model_file(p)
    except graphcheck.DamagedFile as e:
        raise ModelFileError(p, f"ONNX file is truncated or damaged ({e})") from None
    except graphcheck.GraphRefused as e:
        raise ModelFileError(p, f"not a CarValue model graph: {e}") from None
    except OSError as e:
        raise ModelFileError(p, f"cannot read it ({e.strerror or e})") from None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # errors reach the user through ModelFileError, not stderr
    try:
        session = ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises several unrelated types
        text = str(e)
        if "Protobuf parsing failed" in text or "INVALID_PROTOBUF" in text or "parse" in text.lower():
            raise ModelFileError(p, "ONNX file is truncated or damaged") from e
        raise ModelFileError(p, f"ONNX Runtime cannot load it ({text.splitlines()[0][:200]})") from e
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ModelFileError(p, f"ONNX file has no {METADATA_KEY!r} metadata (not a CarValue model)")
    meta = ModelMetadata.from_json(props[METADATA_KEY], p)
    _check_outputs(p, session, meta)
    return session, meta


def _check_outputs(path: Path, session: Any, meta: ModelMetadata) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, meta.input.size, meta.input.size]:
        shape = inputs[0].shape if inputs else None
        raise ModelFileError(path, f"input shape {shape} does not match input size {meta.input.size}")
    shapes = {o.name: o.shape for o in session.get_outputs()}
    for name, expected in meta.output_sizes().items():
        if name not in shapes:
            raise ModelFileError(path, f"ONNX graph lacks output {name!r}")
        got = shapes[name][1] if len(shapes[name]) > 1 else 1
        if got != expected:
            raise ModelFileError(path, f"output {name!r} has {got} values but the metadata implies {expected}")


@functools.cache
def physical_cores() -> int:
    """Physical core count (ONNX Runtime runs best with one thread per physical core)."""
    try:
        with open("/proc/cpuinfo") as f:
            cores = {line for line in f if line.startswith("core id")}
        # One "core id" per physical core per package; fall back when unreadable.
        n = len(cores) or os.cpu_count() or 1
    except OSError:
        n = os.cpu_count() or 1
    return max(1, min(n, os.cpu_count() or n))
