"""argparse types for the pipeline's numeric and template flags.

Each returns a checked value or raises ``argparse.ArgumentTypeError``, so a value that cannot
be right (``--timeout nan``, ``--short-side 0``, ``--max-photos -1``, a ``--listing-url`` with
a ``{field}`` other than ``{id}``) is a usage error, exit 2, before any file is opened.
"""

from __future__ import annotations

import argparse
import math
import string
from collections.abc import Callable

from core.dataset.listing_page import url_problem


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An integer from ``lo`` to ``hi`` inclusive."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo:,} to {hi:,}, got {text!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo:,} to {hi:,}, got {text!r}")
        return n

    parse.__name__ = "integer"
    return parse


def seconds(lo: float, hi: float, lo_open: bool = False) -> Callable[[str], float]:
    """A finite number of seconds from ``lo`` (excluded with ``lo_open``) to ``hi``."""
    low = f"more than {lo:g}" if lo_open else f"from {lo:g}"

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or x > hi or x < lo or (lo_open and x == lo):
            raise argparse.ArgumentTypeError(f"expected a number of seconds {low} to {hi:g}, got {text!r}")
        return x

    parse.__name__ = "seconds"
    return parse


def rate(text: str) -> float:
    """Requests per second: a finite number from 0 (unlimited) to 10,000."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or not 0 <= x <= 10_000:
        raise argparse.ArgumentTypeError(f"expected requests per second from 0 (unlimited) to 10000, got {text!r}")
    return x


def listing_url(text: str) -> str:
    """A listing URL template: ``{id}`` is its only field, and it gives an http(s) URL."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as e:  # a lone "{" or "}"
        raise argparse.ArgumentTypeError(f"not a URL template ({e}; write {{{{ and }}}} for braces), "
                                         f"got {text!r}") from None
    if "id" not in fields:
        raise argparse.ArgumentTypeError(f"the listing URL must contain {{id}}, got {text!r}")
    others = sorted({f for f in fields if f != "id"})
    if others:
        raise argparse.ArgumentTypeError(f"the listing URL may hold only the field {{id}}, not "
                                         f"{', '.join('{' + f + '}' for f in others)}: {text!r}")
    try:
        example = text.format(id=123456789)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise argparse.ArgumentTypeError(f"cannot fill in the listing URL ({e}): {text!r}") from None
    problem = url_problem(example)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"the listing URL is unusable ({problem}): {text!r}")
    return text


def refuse_empty_values(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error (exit 2) for an option given as ``--flag=--``: argparse takes the ``--`` out
    of the value and hands the option an empty list without calling its type, so ``--backoff=--``
    would run with a list for a number (hypothesis found it)."""
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its options here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                refuse_empty_values(chosen, args)
        elif isinstance(action, argparse._StoreAction) and action.option_strings and action.nargs is None \
                and isinstance(getattr(args, action.dest, None), list):  # noqa: SLF001
            parser.error(f"argument {'/'.join(action.option_strings)}: expected one value, got '--'")
