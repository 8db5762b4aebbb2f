"""Writing a command's results to an output that may refuse them.

``carvalue predict ... | head``, ``| true``, ``> /dev/full`` or a closed standard output:
the write fails (BrokenPipeError, ENOSPC, no stream at all).  The commands then stop with one
line on stderr and their documented exit code, and :func:`discard` points the standard output
at the null device, so the interpreter's last flush of it cannot print a traceback either.
"""

from __future__ import annotations

import os
from typing import TextIO

# The version of the results' JSON schema (docs/result-schema.md): ``carvalue predict --json``,
# ``carvalue price --json`` and the app's File > Export write it.
SCHEMA_VERSION = 1


class OutputError(Exception):
    """The results cannot be written; ``str(e)`` is one line saying why."""


def write(out: TextIO | None, text: str) -> None:
    """``text`` and a newline to ``out``, flushed; OutputError if that fails."""
    if out is None:
        raise OutputError("cannot write the results: standard output is closed")
    try:
        out.write(text + "\n")
        out.flush()
    except (OSError, ValueError) as e:  # ValueError: a closed file object
        discard(out)
        raise OutputError(f"cannot write the results ({_reason(e)})") from None


def check_open(out: TextIO | None) -> None:
    """OutputError now when there is no output stream at all (started with stdout closed), so a
    command does no work whose results it cannot print."""
    if out is None:
        raise OutputError("cannot write the results: standard output is closed")


def discard(out: TextIO | None) -> None:
    """After a failed write: point ``out``'s descriptor at the null device (so buffered text
    still waiting in it goes nowhere, without an error at exit)."""
    if out is None:
        return
    try:
        fd = out.fileno()
    except (OSError, ValueError):
        return  # not a file (a test's StringIO) or already closed: nothing flushes it at exit
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def _reason(e: BaseException) -> str:
    if isinstance(e, BrokenPipeError):
        return "the reader closed the pipe"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return " ".join(str(e).split()) or type(e).__name__
