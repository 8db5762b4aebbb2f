"""`carvalue price "Toyota Camry 2016" [--mileage N [--km]] [--condition C] [--year-of-sale Y] [--json]`
and `carvalue price --csv FILE [--json]`: a car's price without a photo (issue 28).

No photo, no network: this command imports neither Qt nor onnxruntime (a test checks), only
the catalogue, the depreciation and the dollars (core/carprice.py).  CSV columns (header row,
any order, case-insensitive): ``make``, ``model``, ``year``, and optionally ``mileage``, ``km``
(yes/no: the mileage is in kilometres), ``condition`` and ``year_of_sale``; an empty optional
cell takes the command line's value.  One result per row, in input order (JSON: one document
per line, with the same ``price`` block as ``carvalue predict --json``); a row that cannot be
priced (a car the catalogue lacks, a bad number) gets one line or document saying why and the
rest go on.  Exit codes: 0 every row priced, 1 any row not, 2 bad usage.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from core.carprice import price_data, price_many
from core.catalogue import CatalogueCar, NotInCatalogue
from core.money import dollar_range, format_dollars
from core.names import json_text, printable
from core.output import SCHEMA_VERSION
from core.pricing import CONDITIONS, PriceEstimate, PriceInputs

REQUIRED = ("make", "model", "year")
OPTIONAL = ("mileage", "km", "condition", "year_of_sale")
YES, NO = {"1", "y", "yes", "true", "km"}, {"", "0", "n", "no", "false", "mi", "miles"}
CHUNK = 512  # rows priced together


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="carvalue price", description="A car's used price without a photo (offline).")
    p.add_argument("car", nargs="?", metavar="CAR", help='make, model and model year, e.g. "Toyota Camry 2016"')
    p.add_argument("--csv", metavar="FILE", help="price every row of FILE (columns make, model, year; optionally "
                                                  "mileage, km, condition, year_of_sale); '-' reads stdin")
    p.add_argument("--json", action="store_true", help="one JSON document per car, one per line")
    p.add_argument("--year-of-sale", type=int, metavar="YEAR", help="price the car as sold in YEAR (default: this year)")
    p.add_argument("--mileage", type=float, metavar="N", help="odometer reading, miles (kilometres with --km)")
    p.add_argument("--km", action="store_true", help="--mileage is in kilometres")
    p.add_argument("--condition", choices=CONDITIONS, help="condition as a seller would state it")
    return p


@dataclass(frozen=True)
class Row:
    """One car to price: its name and what the user told us, or why it cannot be read."""

    label: str
    name: str
    year: int | None
    inputs: PriceInputs | None
    error: str = ""


def condition_of(text: str) -> str | None:
    """A condition as people write it ("Like New", "like_new"); None for an empty cell."""
    t = "-".join(text.strip().lower().replace("_", " ").replace("-", " ").split())
    if not t:
        return None
    if t not in CONDITIONS:
        raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {text.strip()!r}")
    return t


def _number(text: str, what: str) -> float | None:
    t = text.strip().replace(",", "").replace("_", "")
    if not t:
        return None
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text.strip()!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {text.strip()!r}")
    return v


def _year(text: str, what: str) -> int | None:
    v = _number(text, what)
    if v is None:
        return None
    if v != int(v):
        raise ValueError(f"{what} must be a whole year, got {text.strip()!r}")
    return int(v)


def csv_rows(text: Iterator[str] | io.TextIOBase, defaults: argparse.Namespace) -> Iterator[Row]:
    """The rows of a CSV file; raises UsageError when the header lacks a required column."""
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        raise UsageError("the CSV file is empty (it needs a header row: make,model,year)")
    cols = {h.strip().lower().lstrip("\ufeff"): i for i, h in enumerate(header)}
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise UsageError(f"the CSV header lacks {', '.join(missing)} (has {', '.join(h.strip() for h in header)})")
    for n, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = cols.get(name)
            return cells[i] if i is not None and i < len(cells) else ""

        name = " ".join(f"{cell('make')} {cell('model')}".split())
        label = f"row {n}"
        try:
            year = _year(cell("year"), "year")
            if year is None:
                raise ValueError("year is empty")
            yield Row(label, name, year, _inputs(cell, defaults))
        except ValueError as e:
            yield Row(label, f"{name} {cell('year').strip()}".strip(), None, None, str(e))


def _inputs(cell: Any, defaults: argparse.Namespace) -> PriceInputs:
    mileage = _number(cell("mileage"), "mileage")
    km_text = cell("km").strip().lower()
    if km_text not in YES | NO:
        raise ValueError(f"km must be yes or no, got {cell('km').strip()!r}")
    km = km_text in YES if km_text else (defaults.km and mileage is None)
    if mileage is None:
        mileage, km = defaults.mileage, defaults.km
    year_of_sale = _year(cell("year_of_sale"), "year_of_sale") or defaults.year_of_sale
    cond = condition_of(cell("condition")) or defaults.condition
    return PriceInputs.from_user(year_of_sale, mileage, km, cond)


def find_car(row: Row) -> CatalogueCar:
    """The row's catalogue car; raises NotInCatalogue / ValueError with a one-line reason."""
    if row.error or row.inputs is None:
        raise ValueError(row.error or "unreadable row")
    return price_data().catalogue.lookup(row.name, row.inputs.year, row.year)


def car_json(car: CatalogueCar) -> dict[str, Any]:
    return {"make": car.make, "model": car.model, "year": car.year, "body": car.body,
            "new_price": car.new_price.msrp, "new_price_how": car.new_price.how}


def document(row: Row, car: CatalogueCar | None, est: PriceEstimate | None, error: str) -> dict[str, Any]:
    """One row's JSON document (docs/result-schema.md, "carvalue price")."""
    query = row.name if row.year is None or str(row.year) in row.name else f"{row.name} {row.year}"
    # user text (a CSV read from stdin may carry bytes that are not UTF-8) made valid UTF-8 here,
    # so the document is dumped directly (core.report.dumps walks every string: 2x slower)
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "input": row.label, "query": json_text(query)}
    if error:
        return {**doc, "error": json_text(error)}
    assert car is not None and est is not None
    return {**doc, "car": car_json(car), "price": est.to_dict()}


def text(row: Row, car: CatalogueCar | None, est: PriceEstimate | None, error: str) -> str:
    if error:  # it may quote the user's text: control characters escaped for the terminal
        return f"{row.label}: not priced: {printable(error)}"
    assert car is not None and est is not None
    w = est.words()
    lines = [f"{car.name}" + ("" if row.label == "command line" else f"  ({row.label})"),
             f"  car           {car.name}, {car.body}",
             f"  price         {format_dollars(est.median)}  (likely {dollar_range(*est.likely, sep=' - ')}; "
             f"80% range {dollar_range(*est.range80, sep=' - ')})",
             f"  price ranges  {w['ranges']}", f"  price means   {w['what']}", f"  price inputs  {w['inputs_used']}"]
    lines += [f"  price note    {n}" for n in w["notes"]]
    lines.append(f"  price         {w['not_seen']}")
    return "\n".join(lines)


def run(rows: Iterator[Row], as_json: bool, out: TextIO) -> int:
    """Price ``rows`` in chunks (numbers computed for a chunk at once), printing in input order."""
    failed = 0
    first = True
    for chunk in _chunks(rows, CHUNK):
        found: list[tuple[Row, CatalogueCar | None, str]] = []
        for row in chunk:
            try:
                found.append((row, find_car(row), ""))
            except (NotInCatalogue, ValueError) as e:
                found.append((row, None, str(e)))
        priced = iter(price_many([(car, row.inputs) for row, car, _ in found
                                  if car is not None and row.inputs is not None], "user"))
        lines = []
        for row, car, error in found:
            est = next(priced) if car is not None else None
            failed += bool(error)
            if as_json:
                lines.append(_dumps(document(row, car, est, error)))
            else:
                if not first and not error:
                    lines.append("")
                lines.append(text(row, car, est, error))
            first = False
        print("\n".join(lines), file=out)
    return 1 if failed else 0


def _dumps(doc: dict[str, Any]) -> str:
    """Strict JSON (a number that is not finite is a ValueError, never ``NaN`` written)."""
    return json.dumps(doc, allow_nan=False)


def _chunks(rows: Iterator[Row], n: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else sys.argv[1:])
        if (args.car is None) == (args.csv is None):
            raise UsageError('give one car ("Toyota Camry 2016") or --csv FILE')
        if args.km and args.mileage is None:
            raise UsageError("--km needs --mileage")
        defaults = PriceInputs.from_user(args.year_of_sale, args.mileage, args.km, args.condition)
        if args.car is not None:
            return run(iter([Row("command line", args.car, None, defaults)]), args.json, out)
        if args.csv == "-":
            return run(csv_rows(stdin or sys.stdin, args), args.json, out)
        with open(args.csv, newline="", encoding="utf-8-sig") as f:
            return run(csv_rows(f, args), args.json, out)
    except UsageError as e:
        print(f"carvalue price: error: {e} (see --help)", file=err)
        return 2
    except ValueError as e:  # an option's value (mileage, year of sale)
        print(f"carvalue price: error: {e}", file=err)
        return 2
    except OSError as e:
        print(f"carvalue price: error: cannot read {e.filename or 'the CSV file'}: {e.strerror or e}", file=err)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)


def defaults_of(args: Mapping[str, Any]) -> argparse.Namespace:
    """For callers without a command line (tests, benchmarks): the CSV's defaults."""
    return argparse.Namespace(**{"km": False, "mileage": None, "year_of_sale": None, "condition": None, **args})


if __name__ == "__main__":
    sys.exit(main())
