"""``carvalue-train``: train, evaluate and export CarValue models.

    carvalue-train train --data ../shared/data/stanford-cars-train --out runs/stanford
    torchrun --nproc_per_node 8 -m training.cli train --data listings.sqlite --images-root store/ ...
    carvalue-train evaluate runs/stanford
    carvalue-train export runs/stanford --out resources/models/carvalue.onnx
    carvalue-train whole-car-head build --features runs/whole-car --model M.onnx --out N.onnx

Besides train, evaluate and export, every other training tool is a subcommand (the list below);
``carvalue-train TOOL --help`` shows its own options.

A run folder holds everything: checkpoints (config inside), log.csv, curves.png, split.json.
Running ``train`` again with the same flags resumes it from its last checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from training.config import add_flags, config_from_args

# Every other tool of the pipeline: subcommand -> (module with main(argv), what it does).
TOOLS: dict[str, tuple[str, str]] = {
    "pretrained": ("training.loop.pretrained", "convert and cache the ImageNet MobileNetV2 trunk (once)"),
    "labels": ("training.data.labels.build", "price labels of the Stanford classes, and their report"),
    "negatives": ("training.data.negatives", "list the installed non-car images per split"),
    "framing": ("training.framing.heads", "teach a model file where the car is and whether it is whole"),
    "framing-report": ("training.framing.report", "held-out report on photos framed as people take them"),
    "whole-car": ("training.framing.whole_car", "extract features for the natural-photo whole-car head"),
    "whole-car-head": ("training.framing.whole_car_head", "train, threshold and graft the whole-car head"),
    "whole-car-eval": ("training.framing.whole_car_eval", "measure the whole-car check as the app runs it"),
    "whole-car-vehicles": ("training.framing.vehicles_cv", "other vehicles, by leave-category-out"),
    "make-head": ("training.framing.make_head", "make and body heads and known_car; leave-family-out"),
    "model-card": ("training.release.model_card", "write a model file's MODEL_CARD.md from its metadata"),
    "price-model": ("training.price.model_fit", "fit the per-photo price model of a model file"),
    "price-check": ("training.price.check", "a model file's prices on held-out photos against MSRP"),
    "price": ("training.price.build", "fit, calibrate, test and write the every-make price model"),
    "price-catalogue": ("training.price.catalogue_build", "build resources/price/catalogue.json"),
    "price-listing-names": ("training.price.listing_names", "write the listing-spelling test fixture"),
    "probe": ("training.studies.probe", "linear probe of the converted trunk"),
    "studies": ("training.studies.run_all", "run the four robustness studies"),
    "distill-eval": ("training.studies.distill_eval", "measure the distillation study's two runs"),
}


def run_tool(name: str, argv: list[str]) -> int:
    """Run a pipeline tool's own main with its arguments (its --help is its own)."""
    import importlib

    module = importlib.import_module(TOOLS[name][0])
    return int(module.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        return run_tool(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="carvalue-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train or resume a run (flags = TrainConfig fields)")
    add_flags(p_train)
    p_eval = sub.add_parser("evaluate", help="held-out report of a run (JSON + Markdown + plots)")
    p_eval.add_argument("run", help="run folder (or a checkpoint folder)")
    p_eval.add_argument("--out", default="", help="report folder (default: <run>/eval)")
    p_eval.add_argument("--model-file", default="", help="exported model file to check torch-vs-ONNX on")
    p_eval.add_argument("--batch", type=int, default=64)
    p_eval.add_argument("--limit", type=int, default=0, help="evaluate only the first N test photos")
    p_exp = sub.add_parser("export", help="write the ONNX model file (+ MODEL_CARD.md) of a run")
    p_exp.add_argument("run", help="run folder (or a checkpoint folder)")
    p_exp.add_argument("--out", required=True, help="model file path (.onnx)")
    p_exp.add_argument("--eval-dir", default="", help="evaluation folder (default: <run>/eval)")
    p_exp.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=True,
                       help="try int8 dynamic quantisation and keep it only when it is faster and "
                            "within 1 point of top-1")
    p_exp.add_argument("--confidence", choices=["max_prob", "energy"], default="max_prob",
                       help="whole-car score stored in the model file (both are calibrated by evaluate)")
    p_exp.add_argument("--reference", default=None,
                       help="for a run with no test part: the model file of the same recipe's split run, "
                            "whose held-out figures it records as its own stand-in")
    p_exp.add_argument("--unmeasured", action="store_true",
                       help="for a run with no test part and no reference: a start model for further "
                            "training, whose card says it has no held-out figures")
    p_exp.add_argument("--name", default=None,
                       help="the model's name in its metadata, card and the app's model dialog (default: the run folder's)")
    for name, (_module, what) in TOOLS.items():
        sub.add_parser(name, help=what, add_help=False)  # dispatched above, before parsing
    args = parser.parse_args(argv)
    from core.dataset.clip_model import ClipWeightsError
    from training.loop.checkpoint import CheckpointError
    from training.loop.distill import TeacherError

    try:
        return _run(parser, args)
    except (CheckpointError, TeacherError, ClipWeightsError) as e:  # one line, never a traceback
        print(f"carvalue-train: {e}", file=sys.stderr)
        return 2


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "train":
        from training.loop.train import train

        cfg = config_from_args(args)
        try:
            cfg.validate()
        except ValueError as e:
            parser.error(str(e))
        out = train(cfg)
        print(f"run folder: {out}")
        return 0
    if args.command == "evaluate":
        from training.release.evaluate import evaluate_run

        report = evaluate_run(args.run, args.out or None, args.model_file or None, args.batch, args.limit)
        print(f"report: {report}")
        return 0
    if args.command == "export":
        from training.release.export import ExportRefused, export_run

        try:
            path = export_run(args.run, args.out, args.eval_dir or None, quantize=args.quantize,
                              confidence_method=args.confidence, reference=args.reference,
                              unmeasured=args.unmeasured, name=args.name)
        except ExportRefused as e:
            print(f"carvalue-train: {e}", file=sys.stderr)
            return 2
        print(f"model file: {path}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
