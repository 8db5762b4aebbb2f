"""`carvalue predict PHOTO... [--crop auto|full|x,y,w,h] [--sweep N] [--top K] [--json] [--model FILE]`.

Never imports Qt.  Exit codes: 0 all photos succeeded, 1 any photo failed (one line each on
stderr, the rest still run), 2 bad usage or an unusable model file, 3 the results cannot be
written (a closed pipe or standard output, a full disk: one line, no more photos estimated).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn, TextIO

from PIL import Image

from core.carprice import named_car, with_user_car
from core.framing import CropMode, WholeCar, parse_crop, whole_car_message
from core.geometry import Box
from core.modelfile import ModelFileError
from core.money import dollar_range, format_dollars
from core.names import printable
from core.output import OutputError, check_open, write
from core.predictor import MAX_SWEEP_POSITIONS, Prediction, Predictor, Sweep
from core.preprocess import ImageLoadError, load_photo
from core.pricing import CONDITIONS, PriceInputs
from core.report import PhotoResults, dumps, results_json, unknown_car_words


class UsageError(Exception):
    """Bad command-line usage (exit 2); ``str(e)`` is argparse's one-line message."""


class UsageParser(argparse.ArgumentParser):
    """Raises UsageError where ArgumentParser prints to sys.stderr and exits, so ``main``
    reports bad usage on its own error stream, in one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = UsageParser(
        prog="carvalue predict",
        description="Estimate a used car's price, make/model and year from photos (offline).",
    )
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="image files (JPEG, PNG, WebP, ...)")
    p.add_argument("--crop", type=_parse_crop, default=CropMode.AUTO, metavar="auto|full|X,Y,W,H",
                   help="auto (default): on the car the model finds in the photo; full: the whole photo; "
                        "or a box in original-image pixels")
    p.add_argument("--sweep", type=_sweep_positions, metavar="N",
                   help=f"also pan a half-width box across each photo at N positions "
                        f"(2 to {MAX_SWEEP_POSITIONS})")
    p.add_argument("--top", type=_positive_int, default=3, metavar="K",
                   help="how many make/models and years to show (default 3)")
    p.add_argument("--json", action="store_true",
                   help="one JSON result document per photo, one per line (docs/result-schema.md)")
    p.add_argument("--model", metavar="FILE", help="model file (default: the bundled model)")
    price = p.add_argument_group("price", "what you know about the car (the photo cannot show it)")
    price.add_argument("--year-of-sale", type=int, metavar="YEAR",
                       help="price the car as sold in YEAR (default: this year; ages count to it)")
    price.add_argument("--mileage", type=float, metavar="N", help="odometer reading, miles (kilometres with --km)")
    price.add_argument("--km", action="store_true", help="--mileage is in kilometres")
    price.add_argument("--condition", choices=CONDITIONS, help="condition as a seller would state it")
    price.add_argument("--car", metavar='"MAKE MODEL YEAR"',
                       help="price this car of the catalogue (e.g. \"Toyota Camry 2016\") instead of the photo's "
                            "answer, which is kept beside it (JSON: car_source \"user\")")
    return p


def _parse_crop(text: str) -> CropMode | Box:
    try:
        return parse_crop(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _sweep_positions(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 2 <= n <= MAX_SWEEP_POSITIONS:
        raise argparse.ArgumentTypeError(f"a sweep has 2 to {MAX_SWEEP_POSITIONS} positions, got {text!r}")
    return n


def attach_dash_values(argv: list[str]) -> list[str]:
    """``--crop -500,0,10,10`` as ``--crop=-500,0,10,10``: argparse takes a value that starts
    with '-' (other than a plain negative number) for an option and stops.  A box always has
    commas, which no option has."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--crop" and arg.startswith("-") and "," in arg:
            out[-1] = f"--crop={arg}"
        else:
            out.append(arg)
    return out


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _main(argv, out, err)
    except OutputError as e:
        print(f"carvalue: {e}", file=err)
        return EXIT_OUTPUT


EXIT_OUTPUT = 3  # the results cannot be written


def _main(argv: Sequence[str] | None, out: TextIO | None, err: TextIO) -> int:
    try:
        args = build_parser().parse_args(attach_dash_values(list(argv) if argv is not None else sys.argv[1:]))
    except UsageError as e:
        print(f"carvalue predict: error: {e} (see --help)", file=err)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    try:
        inputs = price_inputs(args)
        args.car_choice = named_car(args.car, inputs.year) if args.car else None
    except (ValueError, LookupError) as e:  # LookupError: a --car the catalogue lacks
        print(f"carvalue: {e}", file=err)
        return 2
    check_open(out)
    try:
        predictor = Predictor.load(args.model)
    except ModelFileError as e:
        print(f"carvalue: cannot load model: {printable(str(e))}", file=err)
        return 2
    predictor.price_inputs = inputs
    failed = 0
    for i, path in enumerate(args.photos):
        try:
            report = photo_report(path, args, predictor)
        except ImageLoadError as e:
            print(f"error: {printable(str(e))}", file=err)
            failed += 1
            continue
        except Exception as e:  # noqa: BLE001 - one photo's failure never stops the photos after it
            print(f"error: {printable(path)}: cannot estimate ({type(e).__name__}: {printable(' '.join(str(e).split()))})",
                  file=err)
            failed += 1
            continue
        write(out, report if args.json or not i else f"\n{report}")
    return 1 if failed else 0


def photo_report(path: str, args: argparse.Namespace, predictor: Predictor) -> str:
    """One photo's JSON line or table.  Every number must be finite: the JSON is strict, so a
    NaN from the model is this photo's error, never a ``NaN`` printed."""
    with warnings.catch_warnings():
        # Pillow warns about a photo above its own pixel limit; load_photo refuses one above
        # ours in one line, and allows one below it.  This command decodes on one thread.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        photo = load_photo(path)
    pred = predictor.predict(photo, args.crop, top_k=args.top)
    if getattr(args, "car_choice", None) is not None:
        pred = with_user_car(pred, args.car_choice, predictor.price_inputs)
    sweep = (predictor.sweep(photo, n=args.sweep, top_k=args.top, around=sweep_car(pred, photo.original_size))
             if args.sweep else None)
    # The result document of docs/result-schema.md, one photo per line; made for the table too,
    # so a number that is not finite fails the photo either way.
    size = pred.photo_size or photo.original_size
    line = dumps(results_json([PhotoResults(path, size, pred, None, sweep)], predictor.metadata,
                              str(predictor.path), top=args.top))
    if args.json:
        return line
    table = format_prediction(path, pred, predictor)
    return table if sweep is None else f"{table}\n{format_sweep(sweep)}"


def sweep_car(pred: Prediction, size: tuple[int, int]) -> Box | None:
    """The car a sweep's window is sized to: the crop estimated (the car found, the whole photo
    or the user's box) when it shows a car; none (half-width strips) when no car was seen."""
    return pred.crop.clamp(size) if pred.looks_like_car else None


def format_prediction(path: str, p: Prediction, predictor: Predictor) -> str:
    meta = predictor.metadata
    lines = [printable(path)]  # a name's escape sequences never reach the terminal
    c = p.crop
    lines.append(f"  crop          {c.x:.0f},{c.y:.0f},{c.w:.0f},{c.h:.0f}")
    judged = p.whole_car
    if not p.priced:  # no car: no price, no make/model as if they were an answer
        lines.append("  price         none: no car found" + ("" if p.covers_photo else " in the crop"))
        lines.append(f"  whole car     {whole_car_message(judged, p.covers_photo, reset='--crop auto')}")
        return "\n".join(lines)
    if judged is WholeCar.NO:
        lines.append("  price         (for part of a car: unreliable, see the whole-car line)")
    if p.unknown_car:  # the closest class's price is not this car's
        lines.append(f"  car           {unknown_car_words(p)}")
        lines.append(f"  price         (if it were {p.make_models[0].label}: not this car's price; "
                     "name the car with --car)")
    lines += price_lines(p)
    for label, items in (("make", p.makes[:len(p.make_models)]), ("body", p.bodies[:1]), ("make/model", p.make_models),
                         ("year", p.years)):
        for j, lp in enumerate(items):
            shown = p.year_words if label == "year" and j == 0 else lp.label
            lines.append(f"  {label if j == 0 else '':<13} {lp.probability:6.1%}  {shown}")
    lines.append(f"  whole car     {whole_car_message(judged, p.covers_photo, reset='--crop auto')}")
    if p.found_box is not None:
        f = p.found_box
        lines.append(f"  car found at  {f.x:.0f},{f.y:.0f},{f.w:.0f},{f.h:.0f}")
    if p.price is None and meta.price.meaning:
        lines.append(f"  price means   {meta.price.meaning}")
    return "\n".join(lines)


def price_inputs(args: argparse.Namespace) -> PriceInputs:
    """The CLI's price inputs; ValueError (one line) for values that cannot be right."""
    if args.km and args.mileage is None:
        raise ValueError("--km needs --mileage")
    return PriceInputs.from_user(args.year_of_sale, args.mileage, args.km, args.condition)


def price_lines(p: Prediction) -> list[str]:
    """The price block of the table: the numbers, then the words core.pricing gives them."""
    if p.price is None:
        return [f"  price         {format_dollars(p.median_price)}  (likely {dollar_range(p.price_low, p.price_high, ' - ')})"]
    e = p.price
    words = e.words()
    lines = [f"  price         {format_dollars(e.median)}  (likely {dollar_range(*e.likely, sep=' - ')}; "
             f"80% range {dollar_range(*e.range80, sep=' - ')})",
             f"  price ranges  {words['ranges']}",
             f"  price means   {words['what']}",
             f"  price inputs  {words['inputs_used']}"]
    lines += [f"  price note    {n}" for n in words["notes"]]
    lines.append(f"  price         {words['not_seen']}")
    return lines


def format_sweep(sweep: Sweep) -> str:
    lines = ["  sweep  position   median price   top make/model"]
    for pos, p in zip(sweep.positions, sweep.predictions, strict=True):
        top = p.make_models[0]
        judged = p.whole_car
        if not judged.priced:
            lines.append(f"         {pos:8.2f}   {'no car':>12}")
        elif judged is WholeCar.YES:
            lines.append(f"         {pos:8.2f}   {format_dollars(p.median_price):>12}   {top.label} ({top.probability:.0%})")
        else:
            lines.append(f"         {pos:8.2f}   {format_dollars(p.median_price):>12}   ({judged.value}) {top.label}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
