"""Attach (or replace) the ``price_model`` section of a model file, leaving its graph and every
other metadata field as they are: ``python -m training.price_fit attach MODEL``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from core.modelfile import METADATA_KEY, ModelMetadata, check_file, write_model_file


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


def attach_price_model(model_path: Path, stanford_dir: Path, msrp_csv: Path, wheel: str | None = None,
                       report_dir: Path | None = None) -> Path:
    """Fit the price model for ``model_path``'s classes and write it into the file. The fit's
    report goes to ``report_dir`` only when given: attaching to a split or trial model must not
    overwrite the repository's training/reports/price.md."""
    from training.price_fit import fitted, write_report

    meta = read_metadata(model_path)
    section, report = fitted(stanford_dir, msrp_csv, wheel, make_models=meta.make_models)
    priced = sum(c["log_msrp"] is not None for c in section["classes"])
    report["attached_to"] = {"file": model_path.name, "classes": len(section["classes"]), "priced": priced}
    write_model_file(model_path, with_price_model(meta, section), model_path)
    if report_dir is not None:
        write_report(report, report_dir)
    print(f"{model_path}: price_model attached ({priced} of {len(section['classes'])} classes priced)")
    return model_path
