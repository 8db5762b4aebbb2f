"""Eliding that keeps what a narrow place must still show: a make/model's year ("Acura RL Se… 2012"
rather than "Acura RL Sedan 20…")."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics

TRAILING_YEAR = re.compile(r"^(.*\S)(\s+(?:19|20)\d\d)$")


def elide_keep_year(text: str, fm: QFontMetrics, width: int) -> str:
    """``text`` as it fits in ``width`` pixels: whole when it fits; a text ending in a model year
    loses the middle of the name and keeps the year; any other text ends with "…"."""
    if fm.horizontalAdvance(text) <= width:
        return text
    m = TRAILING_YEAR.match(text)
    if m is None:
        return fm.elidedText(text, Qt.TextElideMode.ElideRight, width)
    name, year = m.group(1), m.group(2)
    room = width - fm.horizontalAdvance(year)
    head = fm.elidedText(name, Qt.TextElideMode.ElideRight, room) if room > 0 else ""
    if not head.rstrip("…"):  # not even a letter of the name fits: the year alone, as far as it goes
        return fm.elidedText(year.strip(), Qt.TextElideMode.ElideLeft, width)
    return head + year
