"""Text from outside (page fields, exception messages about them) made safe to store and print.

Python strings may hold lone surrogates (JSON spells them ``"\\ud800"``); UTF-8 cannot encode
them, so SQLite refuses the row and a terminal refuses the line.  An error message recorded in
the database or printed to the user must also be one line of bounded length.
"""

from __future__ import annotations


def storable(text: str) -> str:
    """``text`` with every lone surrogate replaced by "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


def one_line(text: str, limit: int = 300) -> str:
    """``text`` storable, its whitespace runs (newlines too) collapsed to one space, and cut to
    ``limit`` characters ("..." marks a cut)."""
    flat = " ".join(storable(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(e: BaseException, limit: int = 300) -> str:
    """One line naming an exception: ``"ValueError: Invalid IPv6 URL"``."""
    return one_line(f"{type(e).__name__}: {e}", limit)
