"""Model details from the model file's metadata, for a person: what the price means, what the
model may be used for (the data sources' licences), how it scored on held-out photos, and the
rest of the recorded provenance with rounded numbers."""

from __future__ import annotations

from html import escape
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from core.modelfile import ModelMetadata
from core.money import whole_dollars
from core.photo_price import describe, display_bounds
from core.pricing import PriceBin

LICENCE_KEYS = ("licence", "license", "data_licence", "data_license", "licence_note", "license_note")
# Held-out figures shown first, in this order: (metrics key, label).
HEADLINE = (("make_model_top1", "Make/model top-1"), ("make_model_top5", "Make/model top-5"),
            ("year_exact", "Model year exact"), ("year_within1", "Model year within ±1"),
            ("price_acc", "Price range accuracy"), ("median_mae_usd", "Price shown: mean error (MAE)"),
            ("median_mape", "Price shown: mean % error (MAPE)"))
MAX_DEPTH = 4
MAX_ITEMS = 40


def licences(meta: ModelMetadata) -> list[str]:
    """Every licence statement in the provenance (top level, each data set, the trunk), with
    the name of what it covers; a non-commercial flag first."""
    out: list[str] = []
    prov = meta.provenance
    if prov.get("non_commercial") is True:
        out.append("Non-commercial use only (a training data set's licence; see below).")

    def take(d: dict[str, Any], what: str) -> None:
        for k in LICENCE_KEYS:
            if isinstance(d.get(k), str) and d[k].strip():
                out.append(f"{what}: {d[k].strip()}" if what else d[k].strip())

    take(prov, "")
    for ds in prov.get("datasets") or []:
        if isinstance(ds, dict):
            take(ds, str(ds.get("name") or "a data set"))
    for key, part in prov.items():
        if key != "datasets" and isinstance(part, dict):
            take(part, key.replace("_", " ").capitalize())
    return out


def number(key: str, v: float | int) -> str:
    """A figure as a person reads it: shares as percentages, dollars with separators, others to
    four significant digits."""
    k = key.lower()
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if "usd" in k or "dollars" in k:
        return whole_dollars(v)
    if 0.0 <= v <= 1.0 and any(w in k for w in ("acc", "top", "exact", "within", "mape", "share",
                                                  "flagged", "fraction", "agree")):
        return f"{v:.1%}"
    if v == 0 or 1e-2 <= abs(v) < 1e6:
        return f"{v:.4g}"
    if abs(v) < 1e-3:
        return f"{v:.2e}"  # 3.64e-04, not 0.000364 ('.3g' writes six decimals down to 1e-4)
    return f"{v:.3g}"  # 0.00781, not 0.007812: at most three significant digits below 0.01


def readable(key: str, v: Any, depth: int = 0) -> str:
    """Nested metadata as HTML lists with rounded numbers (never a JSON dump)."""
    if isinstance(v, bool | int | float):
        return escape(number(key, v))
    if isinstance(v, str):
        return escape(v if len(v) <= 600 else v[:600] + "…")
    if v is None:
        return "—"
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(v, dict):
        if not v:
            return "—"
        items = list(v.items())
        rows = "".join(f"<li><b>{escape(str(k).replace('_', ' '))}</b>: {readable(str(k), x, depth + 1)}</li>"
                       for k, x in items[:MAX_ITEMS])
        more = f"<li>… {len(items) - MAX_ITEMS} more</li>" if len(items) > MAX_ITEMS else ""
        return f"<ul style='margin:0'>{rows}{more}</ul>"
    if isinstance(v, list | tuple):
        if all(isinstance(x, bool | int | float | str) for x in v):
            shown = ", ".join(readable(key, x, depth + 1) for x in v[:MAX_ITEMS])
            return shown + (f", … ({len(v)} in all)" if len(v) > MAX_ITEMS else "")
        rows = "".join(f"<li>{readable(key, x, depth + 1)}</li>" for x in v[:MAX_ITEMS])
        return f"<ul style='margin:0'>{rows}</ul>"
    return escape(str(v))


def whole_car_check(meta: ModelMetadata) -> str:
    """How the app decides "not a whole car", from what decides it: the framing head's thresholds
    when the file has one (the make/model confidence is then not used for it), else the
    confidence score's."""
    fr = meta.framing
    if fr is None:
        c = meta.confidence
        return (f"{c.method} score, flagged below {number('threshold', c.threshold)}"
                + (f" ({c.note})" if c.note else ""))
    words = [f"A whole-car head: a crop is flagged as not a whole car below a score of "
             f"{number('threshold', fr.threshold)} and marked unsure below {number('threshold', fr.unsure_below)}"]
    if fr.car_output:
        words.append(f"a car head says there is no car at all below {number('threshold', fr.car_threshold)}")
    text = "; ".join(words) + "."
    return f"{text} {fr.note[:1].upper()}{fr.note[1:]}." if fr.note else text


def metadata_html(meta: ModelMetadata, path: str, year_of_sale: int | None = None) -> str:
    """The dialog's text; the price's meaning is core.pricing's for ``year_of_sale`` (this year
    by default), the ranges those the estimates carry (the price model's when the file has one)."""
    def row(k: str, v: str) -> str:
        return f"<tr><th align='left' valign='top'>{escape(k)}</th><td>{v}</td></tr>"

    def table(rows: list[str]) -> str:
        return "<table cellspacing='4'>" + "".join(rows) + "</table>"

    ranges = ", ".join(PriceBin(lo, hi, 0.0).label() for lo, hi in display_bounds(meta))
    about = [
        row("Name", escape(meta.name)),
        row("File", escape(path)),
        row("Created", escape(meta.created or "unknown")),
        row("Architecture", escape(meta.architecture)),
        row("Price", escape(describe(meta, year_of_sale))),
        row("Price ranges", escape(f"{ranges} ({meta.price.currency})")),
        row("Make/models", f"{len(meta.make_models) - 1} classes + Unknown"),
        row("Years", escape(f"{len(meta.years) - 1} years + Unknown ({_span(meta.years)})")),
        row("Input", escape(f"{meta.input.size} px, {meta.input.resize}")),
        row("'Whole car' check", escape(whole_car_check(meta))),
    ]
    found = licences(meta)
    use = ("<ul style='margin:0'>" + "".join(f"<li>{escape(x)}</li>" for x in found) + "</ul>" if found
           else "<i>No licence is stated in the model file: ask whoever gave it to you.</i>")
    datasets = [ds for ds in meta.provenance.get("datasets") or [] if isinstance(ds, dict)]
    data_rows = [row(str(ds.get("name") or "data set"),
                     readable("", {k: v for k, v in ds.items() if k not in ("name", *LICENCE_KEYS)})
                     if set(ds) - {"name", *LICENCE_KEYS} else "licence above")
                 for ds in datasets]
    if isinstance(meta.provenance.get("counts"), dict):
        data_rows.append(row("Photos and classes", readable("counts", meta.provenance["counts"])))
    test, shown, results_title = held_out_results(meta)
    if isinstance(shown, dict):  # the price the app shows (the head's value moved into the range)
        for key in ("mae_usd", "mape"):
            if isinstance(shown.get(f"shown_{key}"), int | float):
                test[f"median_{key}"] = shown[f"shown_{key}"]
    scores = [row(label, escape(number(key, test[key]))) for key, label in HEADLINE
              if isinstance(test.get(key), int | float)]
    rest_prov = {k: v for k, v in meta.provenance.items() if k not in ("datasets", "counts", "non_commercial")}
    rest_metrics = {k: v for k, v in meta.metrics.items() if k != "test" or not scores}
    parts = [
        table(about),
        "<h3>Use and licences</h3>", use,
        "<h3>Training data</h3>", table(data_rows) if data_rows else "<i>none recorded in the model file</i>",
        f"<h3>{escape(results_title)}</h3>", table(scores) if scores else "<i>none recorded in the model file</i>",
        "<h3>More details</h3>", readable("", {"provenance": rest_prov, "evaluation": rest_metrics}),
    ]
    return "".join(parts)


def held_out_results(meta: ModelMetadata) -> tuple[dict[str, Any], Any, str]:
    """(test figures, the shown median's errors, heading): the model's own, or for a model trained
    on every photo, those of the same recipe's split run that its file records as a stand-in."""
    m = meta.metrics
    if isinstance(m.get("test"), dict):
        est = m.get("median_estimators")
        return dict(m["test"]), est.get("test") if isinstance(est, dict) else None, "Held-out results"
    ref = m.get("held_out_reference")
    if isinstance(ref, dict) and isinstance(ref.get("test"), dict):
        return (dict(ref["test"]), ref.get("median_estimators_test"),
                "Held-out results of the same recipe trained without the test photos "
                "(this model trained on them too)")
    return {}, None, "Held-out results"


def _span(years: tuple[str, ...]) -> str:
    known = [y for y in years[:-1]]
    return f"{known[0]}–{known[-1]}" if known else "none"


class ModelDialog(QDialog):
    def __init__(self, meta: ModelMetadata, path: str, parent: QWidget | None = None,
                 year_of_sale: int | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model: {meta.name}")
        self.resize(680, 600)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setHtml(metadata_html(meta, path, year_of_sale))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
