"""The model card (MODEL_CARD.md) of a model file, written from its metadata alone.

``export`` writes a first card beside the file it exports; the framing heads and their held-out
report (``framing_report --record``) add to the file's metadata afterwards, so the final card is
written again from the finished file:

    .venv/bin/python -m training.release.model_card runs/framing/carvalue.onnx \
        [--reference-reports training/reports/split-model/] [--out MODEL_CARD.md]

Nothing in it is typed by hand: what a card says comes from what the file records (its training
chain, held-out figures or its split run's, framing report, notes given to the training stages).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.modelfile import ModelMetadata
from training.formatting import missing, pct, usd
from training.release.held_out_reference import start_model_trainings, trunk_chain


def _median_rows(m: dict[str, Any], shown: dict[str, float], b: dict[str, Any]) -> list[str]:
    """Median-price rows of the card: the median the app shows, and the head alone."""
    base = f"{usd(b.get('train_median_mae_usd'))} / {pct(b.get('train_median_mape'))} (training median)"
    head = f"{usd(m['median_mae_usd'])} / {pct(m['median_mape'])}"
    if not shown:
        return [f"| median price MAE / MAPE | {head} | {base} |"]
    return [f"| median price shown (head kept in the likely range) MAE / MAPE | {usd(shown['shown_mae_usd'])} / "
            f"{pct(shown['shown_mape'])} | {base} |",
            f"| median head alone MAE / MAPE | {head} | |"]


def _flag_summary(method: str, conf: dict[str, Any]) -> str:
    if method == "energy":
        alt = conf["energy_alternative"]
        parts = [f"{k.removesuffix(' flagged_share').replace('_', ' ')}: {pct(v)}" for k, v in alt.items()
                 if k not in ("threshold", "scale") and not missing(v)]
        mp = [f"test cars {pct(conf['flagged_test'])}"] if not missing(conf["flagged_test"]) else []
        mp += [f"{k} {pct(v['flagged_share'])}" for k, v in conf.get("partial_views", {}).items()]
        mp += [f"{name} {pct(d['flagged_share'])}" for name, d in conf.get("non_car", {}).items()]
        return ("'Not a whole car' flags (energy score): " + "; ".join(parts) + ". The energy score was "
                "chosen over the top make/model probability (which flags: " + "; ".join(mp) + ") after "
                "comparing both on these same partial views and non-car images, so their flag rates here "
                "are optimistic estimates for unseen non-car photos.")
    tested = f"{pct(conf['flagged_test'])} of test car photos; " if not missing(conf["flagged_test"]) else ""
    return (f"'Not a whole car' flags (top probability): {tested}"
            + "; ".join(f"{k}: {pct(v['flagged_share'])}" for k, v in conf.get("partial_views", {}).items())
            + "".join(f"; {name}: {d['flagged']} of {d['photos']}" for name, d in conf.get("non_car", {}).items()) + ".")


def _start_line(trunk: dict[str, Any]) -> str:
    """Where the weights started: ImageNet, or a trained model file (and where that started)."""
    if trunk.get("init") == "model":
        chain = trunk_chain(trunk)  # this run's trunk, its start's, ... down to the ImageNet start
        first, stages = (chain[-1], len(chain) - 1) if len(chain) > 1 else ({}, 1)
        steps = (trunk.get("start_model_training") or {}).get("steps", "?")
        earlier = "" if stages == 1 else f", the last of {stages} training stages before this one"
        return (f"Start: the model file {trunk.get('start_model')} (sha256 `{trunk.get('start_model_sha256', '')[:16]}…`, "
                f"{steps} steps on the same split{earlier}), fine-tuned here; its ImageNet start: "
                f"{first.get('source', first.get('init', 'n/a'))}. {first.get('licence_note', '')}")
    return f"ImageNet start: {trunk.get('source', trunk.get('init', 'n/a'))}. {trunk.get('licence_note', '')}"


def _heads_start(c: dict[str, Any]) -> str:
    if c.get("init") == "model":
        return "from the start model"
    return "initialised from a linear probe" if c["probe_init"] else "random"


def _start_difference(diffs: Any, earlier: Any = None) -> str:
    """How the two runs' start models (and, for more than two stages, their starts) were
    trained, for a fine-tuned pair."""
    if diffs is None:
        return ""
    if isinstance(diffs, str):
        return f" ({diffs})"
    text = (", from start models trained the same way" if not diffs else
            f", from start models trained with {_settings_text(diffs)}")
    if isinstance(earlier, str):
        return text + f" ({earlier})"
    for n, stage in enumerate(earlier or [], start=2):
        text += f", and {n} stages back" + (" the same way" if not stage else f" with {_settings_text(stage)}")
    return text


def _settings_text(diffs: dict[str, Any]) -> str:
    """``{"lr": [1e-4, 3e-4]}`` -> ``lr 0.0001 vs 0.0003`` (this run's value, then the other's)."""
    return "; ".join(f"{k} {a!r} vs {c!r}" for k, (a, c) in diffs.items())


def _held_out_lines(meta: ModelMetadata, reference_reports: str = "") -> list[str]:
    """The card's held-out table: this model's test figures, or, for a model trained on every
    photo, those of the same recipe's split run (``held_out_reference``), said as such."""
    m, b = meta.metrics["test"], meta.metrics["baselines"]
    shown = meta.metrics.get("median_estimators", {}).get("test", {})
    lines = ["## Held-out metrics (test split)", ""]
    if m is None and "held_out_reference" not in meta.metrics:
        return ["## Held-out metrics", "", "None: this run held no photos out and no split run's figures were given "
                "(an intermediate model, a start for further training).", ""]
    if m is None:
        ref = meta.metrics["held_out_reference"]
        m, b, shown = ref["test"], ref.get("baselines", {}), ref.get("median_estimators_test", {})
        diffs = ref.get("recipe_differences") or {}
        counts = ref.get("counts") or {}
        lines = ["## Held-out metrics (the same recipe's split run)", "",
                 f"This model trained on every photo but the {meta.provenance['counts']['val']} validation ones "
                 "(which fit its temperatures and thresholds), so no photo is left to test it on. The figures below "
                 f"are those of the split run's model file (`{ref['model']}`"
                 + (f", reports in {reference_reports}" if reference_reports else "") + f"; sha256 `{ref['sha256'][:16]}…`, split sha256 "
                 f"`{(ref.get('split') or {}).get('sha256', '?')[:16]}…`), trained on {counts.get('train', '?')} photos "
                 f"with {counts.get('test', '?')} held out, "
                 + ("in the same way (no training setting differs)" if not diffs else "with these settings different "
                    "(this run, that run): " + _settings_text(diffs))
                 + _start_difference(ref.get("start_recipe_differences"), ref.get("earlier_recipe_differences"))
                 + ". More training photos should not make it worse; that is expected, not measured.", ""]
    lines += ["| metric | model | baseline |", "| --- | --- | --- |",
              f"| make/model top-1 | {pct(m['make_model_top1'])} | {pct(b.get('majority_make_model_top1'))} (majority) |",
              f"| make/model top-5 | {pct(m['make_model_top5'])} | |",
              f"| year exact / ±1 / ±2 | {pct(m['year_exact'])} / {pct(m['year_within1'])} / {pct(m['year_within2'])} "
              f"| {pct(b.get('majority_year_exact'))} / {pct(b.get('majority_year_within1'))} / |",
              f"| price range accuracy | {pct(m['price_acc'])} | {pct(b.get('majority_price_acc'))} |",
              *_median_rows(m, shown, b), ""]
    if meta.metrics["calibration"]:
        lines += ["Calibration (ECE, temperatures fit on validation): " + "; ".join(
            f"{h} {pct(e['before'])} -> {pct(e['after'])} (T={meta.temperatures.get(h, 1.0):.2f})"
            for h, e in meta.metrics["calibration"].items()) + ".", ""]
    else:
        lines += ["Temperatures fit on validation: " + "; ".join(
            f"{h} {v:.2f}" for h, v in meta.temperatures.items()) + " (no test photos to measure calibration on).", ""]
    return lines


def model_card(meta: ModelMetadata, path: Path, size: int, reference_reports: str = "") -> str:
    """The card's export part: what the model is, its data, outputs, held-out figures, training
    and known limits (the framing section is added by ``card_text`` once it is recorded)."""
    prov = meta.provenance
    q = meta.metrics.get("quantization", {})
    conf = meta.metrics["confidence"]
    lines = [
        f"# Model card: {path.name}" + (f" ({meta.name})" if meta.name and meta.name != path.stem else ""), "",
        f"MobileNetV2 (width 1.0) with four heads, exported {meta.created} as ONNX ({prov['weights']}, "
        f"{size / 1e6:.1f} MB). Input {meta.input.size}x{meta.input.size} RGB, resize `{meta.input.resize}`, "
        f"normalised with mean {list(meta.input.mean)} and std {list(meta.input.std)}.", "",
        "## Data and licence", "",
    ]
    for d in prov["datasets"]:
        lines.append(f"- {d['name']}" + (f": {d['licence']}" if "licence" in d else ""))
    if prov.get("non_commercial"):
        lines += ["", "**This model is for non-commercial research use only** (Stanford Cars' terms)."]
    lines += ["", _start_line(prov.get("trunk") or {}), "",
              f"Photos: {prov['counts']['train']} train, {prov['counts']['val']} validation, {prov['counts']['test']} "
              f"test; split by car (Stanford: each photo is its own car), stratified by class, seed "
              f"{(prov.get('split') or {}).get('seed')}, sha256 `{(prov.get('split') or {}).get('sha256', '')}`.", "",
              "## What the outputs mean", "",
              f"- make/model: {prov['labels']['make_model']}; {prov['counts']['make_model_classes']} classes + Unknown.",
              f"- year: {prov['labels']['year']}; {prov['counts']['years']} years + Unknown.",
              f"- price: {meta.price.meaning}",
              f"- price ranges (USD cutoffs): {', '.join(f'{e / 1000:.0f}k' for e in meta.price.edges)}.",
              "- confidence: " + meta.confidence.note + f" (threshold {meta.confidence.threshold:.4f}).", "",
              *_held_out_lines(meta, reference_reports), _flag_summary(meta.confidence.method, conf), ""]
    if q.get("tried"):
        lines += [f"Quantisation: {q['reason']} (fp32 {q['fp32']['batch16_ms']:.0f} ms vs int8 {q['int8']['batch16_ms']:.0f} ms "
                  f"per batch of 16; top-1 {pct(q['fp32']['make_model_top1'])} vs {pct(q['int8']['make_model_top1'])} on "
                  f"{q['photos']} photos; "
                  f"{q['machine']}).", ""]
    par = meta.metrics.get("onnx_parity_fp32", {})
    if par:
        lines += [f"torch vs ONNX Runtime (fp32): largest output difference {par['max']:.1e} on {par['photos']} "
                  f"{'test' if meta.metrics['test'] is not None else 'validation'} photos.", ""]
    lines += ["## Training", "", *_training_lines(prov), "How to re-run: training/RECIPES.md.", ""]
    lines += ["## Known limits", "", *_known_limits(meta), ""]
    return "\n".join(lines)


def _stage_text(c: dict[str, Any]) -> str:
    """One training stage's settings, from its config."""
    return (f"{c['epochs']} epochs "
            + (f"(the first {c['low_res_epochs']} at {c['low_res_size']} px, then {c['size']} px)" if c.get("low_res_epochs")
               else f"at {c['size']} px")
            + f", batch {c['batch_size']} (micro-batches of {c['micro_batch']}), AdamW lr {c['lr']} wd "
            f"{c['weight_decay']}, warmup {c['warmup_steps']} steps + cosine, label smoothing {c['label_smoothing']}, "
            f"BatchNorm {'folded (frozen statistics)' if c['fold_bn'] else 'trained'}, features[:{c['freeze_blocks']}] "
            f"frozen, heads {_heads_start(c)}, seed {c['seed']}"
            + (f", {c['framed']:.0%} of samples framed (the car pasted into a larger picture and cropped to a "
               f"box around it, each side jittered by up to {c['framed_box_jitter']:.0%})" if c.get("framed") else "")
            + (", bf16 autocast on the CPU" if c.get("cpu_amp") else ""))


def _training_lines(prov: dict[str, Any]) -> list[str]:
    """Every training stage from the ImageNet start to this file, first to last, with its steps
    and training-loop minutes (log.csv)."""
    stages = [*reversed(start_model_trainings(prov)), prov["training"]]
    lines = []
    for n, st in enumerate(stages, start=1):
        c = st["config"]
        minutes = f"; {st['train_seconds'] / 60:.0f} minutes of training loop" if st.get("train_seconds") else ""
        label = f"Stage {n} of {len(stages)}: " if len(stages) > 1 else ""
        lines.append(f"- {label}{st.get('steps', '?')} optimizer steps on {st.get('world_size', 1)} process(es): "
                     f"{_stage_text(c)}{minutes}.")
    lines.append("")
    total = [st.get("train_seconds") for st in stages]
    if len(stages) > 1 and all(isinstance(s, (int, float)) for s in total):
        lines += [f"Training loops, all stages: {sum(total) / 60:.0f} minutes (exports, the framing heads and "  # type: ignore[arg-type]
                  "reports come on top; training/RECIPES.md times the whole recipe).", ""]
    return lines


def _framing_figures(meta: ModelMetadata) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(this file's framing report, the report its car rows come from: its own or its split run's)."""
    own = meta.metrics.get("framing") if isinstance(meta.metrics, dict) else None
    ref = (meta.metrics.get("held_out_reference") or {}).get("framing") if isinstance(meta.metrics, dict) else None
    if not isinstance(own, dict):
        return None, None
    return own, own if "tight" in own else ref


def _known_limits(meta: ModelMetadata) -> list[str]:
    prov = meta.provenance
    lines = ["- Trained on Stanford Cars photos, which are tight crops of one car, mostly side/front three-quarter "
             "views of US-market cars of model years 1991-2012; other makes, newer models and unusual views map to "
             "the nearest known class or to a low confidence." if prov.get("non_commercial") else
             "- Trained on scraped listings; see the data set's notes."]
    own, cars = _framing_figures(meta)
    configs = [prov["training"]["config"], *(t["config"] for t in start_model_trainings(prov))]
    ref = meta.metrics.get("held_out_reference")
    if meta.metrics.get("test") is None and isinstance(ref, dict):
        same = not ref.get("recipe_differences") and not ref.get("start_recipe_differences") and \
            not any(ref.get("earlier_recipe_differences") or [])
        stages = len(configs)
        lines.append(f"- This model trained on every photo but the {prov['counts']['val']} validation ones, so its "
                     "accuracy cannot be measured here: the held-out figures in this card are those of the same "
                     "recipe's split run (above; " + (f"all {stages} training stages' settings equal" if same else
                                                      "the settings that differ are listed there") + ")."
                     + (" Only the non-car figures below are this model's own (those images are held out from every "
                        "run)." if own else ""))
    lines.append("- The price is a derived estimate for the class (make/model/year), not for the individual car: it "
                 "takes mileage and condition when given, but trim, options, accident history and region are "
                 "invisible to it.")
    if meta.framing is not None and cars is not None and "framed" in cars:
        cells = meta.input.size // 32
        ious = [f"{d['found_iou_median']:.2f} (car at {cov} of the frame)" for cov, d in cars["framed"].items()
                if "found_iou_median" in d]
        whose = "the split run's" if cars is not own else "its"
        lines.append("- The whole-car check and the found box learnt from composites (tight crops pasted into other "
                     "pictures) and a few dozen background photos; real street photos with several cars, occlusion "
                     f"or unusual framing were not measured. The found box is coarse ({cells}x{cells} feature map at "
                     f"{meta.input.size} px): {whose} median IoU with the true box on held-out composites was "
                     + " and ".join(ious) + ".")
    elif isinstance(whole := meta.metrics.get("whole_car"), dict) and isinstance(whole.get("by_kind"), dict):
        kinds = whole["by_kind"]
        few = [f"{k} ({d['photos']})" for k, d in sorted(kinds.items()) if d.get("photos", 0) < 50]
        weak = [f"{k}: {100 * d['flagged']:.0f}%" for k, d in sorted(kinds.items())
                if not k.startswith("whole") and d.get("photos", 0) >= 50 and d["flagged"] < 0.9]
        lines.append("- The whole-car check is a small head on the trunk's features, not a detector: it is wrong on "
                     "some photos of every kind (table below)."
                     + (" Parts of cars it flags least often: " + "; ".join(weak) + "." if weak else "")
                     + (" Kinds held out in too few photos to say much: " + ", ".join(few) + "." if few else ""))
    else:
        lines.append("- The 'not a whole car' flag is a confidence threshold, not a car detector: confident mistakes "
                     "on non-car photos happen (see the counts above).")
    non = (own or {}).get("non_car_flagged") or {}
    photos, others = non.get("photo"), [v["flagged"] for k, v in non.items() if k not in ("all", "photo")]
    if isinstance(photos, dict) and photos.get("images", 0) < 50 and others:
        lines.append(f"- Held-out non-car *photos* are few ({photos['images']}; "
                     f"{round(photos['flagged'] * photos['images'])} of them flagged by this model); graphics and "
                     f"drawn images are flagged {100 * min(others):.0f}-{100 * max(others):.0f}% of the time.")
    notes = list(dict.fromkeys(c.get("notes") for c in configs if isinstance(c, dict) and c.get("notes")))
    lines += [f"- {n}" for n in notes]
    return lines


def card_text(model: Path, reference_reports: str = "") -> str:
    """The whole card of a finished model file: export's part, then the framing section when the
    file records its framing report."""
    from training.framing.report import card_section
    from training.price.attach import read_metadata  # the metadata only: no inference session

    meta = read_metadata(model)
    text = model_card(meta, model, model.stat().st_size, reference_reports)
    own, cars = _framing_figures(meta)
    if own is not None and meta.framing is not None:
        text += "\n\n" + card_section(own, meta.framing.sources, cars if cars is not own else None)
    whole = meta.metrics.get("whole_car") if isinstance(meta.metrics, dict) else None
    if isinstance(whole, dict) and "by_kind" in whole:
        from training.framing.whole_car_eval import card_section as whole_car_section

        text += "\n" + whole_car_section(whole, meta.framing.sources if meta.framing is not None else (),
                                          meta.metrics.get("part_rule"), meta.metrics.get("second_look"),
                                          meta.metrics.get("vehicles_leave_category_out"))
    make = meta.metrics.get("make") if isinstance(meta.metrics, dict) else None
    if isinstance(make, dict) and "known" in make:
        from training.framing.make_head import card_section as make_section

        text += "\n" + make_section(make, meta.metrics.get("make_leave_family_out"))
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.release.model_card", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="default: MODEL_CARD.md beside the model file")
    ap.add_argument("--reference-reports", default="",
                    help="where the split run's reports are kept (named in the held-out section)")
    a = ap.parse_args(argv)
    out = a.out or a.model.parent / "MODEL_CARD.md"
    out.write_text(card_text(a.model, a.reference_reports))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
