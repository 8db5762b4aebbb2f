"""A model file's metadata read without an inference session, and the same metadata carrying a
(new) ``price_model`` section; ``training.price.model_fit.attach_price_model`` (``python -m
training.price.model_fit attach MODEL``) writes it back, leaving the graph and every other field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from core.modelfile import METADATA_KEY, ModelMetadata, check_file


def read_metadata(path: Path) -> ModelMetadata:
    import onnx  # training-side dependency

    model = onnx.load(str(check_file(path)), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(f"{path}: no {METADATA_KEY!r} metadata (not a CarValue model file)")
    return ModelMetadata.from_json(props[METADATA_KEY], path)


def with_price_model(meta: ModelMetadata, section: dict[str, Any]) -> ModelMetadata:
    """``meta`` carrying ``section`` (format 2 at least: version-1 readers refuse it clearly)."""
    return dataclasses.replace(meta, price_model=json.loads(json.dumps(section)),
                               format_version=max(meta.format_version, 2))
