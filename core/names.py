"""File names (and text holding them) made safe to print on a terminal or write as JSON.

A name can hold anything but "/" and NUL: escape sequences (ESC [ 2 J clears a terminal), other
control and format characters (a right-to-left override), and bytes that are not UTF-8, which
Python keeps as lone surrogates (U+DC80-U+DCFF) that no UTF-8 output can encode.
"""

from __future__ import annotations

import unicodedata


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of the name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control, format, surrogate or unassigned character written as a
    Python-style escape (``\\x1b``, ``\\u202e``, ``\\xff`` for a byte that is not UTF-8)."""
    return "".join(_escape(ch) if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def json_text(text: str) -> str:
    """``text`` encodable as UTF-8: a byte that is not UTF-8 (a lone surrogate) written as
    ``\\xNN``; everything else kept (JSON escapes control characters itself)."""
    if text.isascii() or not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):  # isascii: the fast common case
        return text
    return "".join(_escape(ch) if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
