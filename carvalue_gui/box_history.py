"""Undo/Redo of the crop box on the photo shown (Ctrl+Z / Ctrl+Shift+Z).

A drag, a drawn box, a run of arrow-key nudges or a reset is one step: the box's moves are
gathered until it has rested for ``SETTLE_MS``, then pushed as one command from where it was
before the first move to where it rests. Undo and redo put the box back through the window,
so the estimate follows as it does for any move. The history is the shown photo's: selecting
another photo starts a new one.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand, QUndoStack

from core.geometry import Box

SETTLE_MS = 300


class BoxMove(QUndoCommand):
    def __init__(self, history: BoxHistory, before: Box | None, after: Box | None) -> None:
        super().__init__("box reset" if after is None else "box move")
        self._history, self.before, self.after = history, before, after
        self._done = True  # pushed after the move happened: the first redo has nothing to do

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self._history.apply(self.after)

    def undo(self) -> None:
        self._history.apply(self.before)


class BoxHistory(QObject):
    """``moved(box)`` for each of the user's moves (None: the whole photo); ``placed(box)``
    when the app puts the box somewhere (a photo shown, a sweep position); ``apply`` is the
    window's way to put a box back."""

    def __init__(self, apply: Callable[[Box | None], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stack = QUndoStack(self)
        self._apply = apply
        self._rest: Box | None = None  # where the box rests (the start of the next step)
        self._applying = False
        self._timer = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._timer.timeout.connect(self._settle)
        self._latest: Box | None = None  # where the user's moves went, while ``_pending``
        self._pending = False
        self.changed: Callable[[], None] = lambda: None  # updates the actions (see ``actions``)

    def actions(self, parent: QObject) -> tuple[QAction, QAction]:
        """Undo (Ctrl+Z) and Redo (Ctrl+Shift+Z, Ctrl+Y) actions, enabled when there is a step."""
        undo = QAction("&Undo box move", parent)
        undo.setShortcuts([QKeySequence("Ctrl+Z")])
        undo.triggered.connect(self.undo)
        redo = QAction("&Redo box move", parent)
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        redo.triggered.connect(self.redo)

        def update() -> None:
            undo.setEnabled(self.stack.canUndo() or self._pending)
            redo.setEnabled(self.stack.canRedo() and not self._pending)

        self.changed = update  # called after each change of the stack (all of them are here)
        update()
        return undo, redo

    def undo(self) -> None:
        self._settle()  # a step still gathering is one step: pushed, then undone
        self.stack.undo()
        self.changed()

    def redo(self) -> None:
        self._settle()
        self.stack.redo()
        self.changed()

    def moved(self, box: Box | None) -> None:
        if self._applying:
            return
        self._latest, self._pending = box, True
        self._timer.start()
        self.changed()

    def placed(self, box: Box | None) -> None:
        """The app moved the box (not an edit of the user's): the next step starts here."""
        self._settle()
        self._rest = box

    def reset(self, box: Box | None) -> None:
        """Another photo is shown: forget the old photo's steps."""
        self._timer.stop()
        self._pending = False
        self.stack.clear()
        self._rest = box
        self.changed()

    def apply(self, box: Box | None) -> None:
        self._applying = True
        try:
            self._apply(box)
        finally:
            self._applying = False
        self._rest = box

    def _settle(self) -> None:
        if not self._pending:
            return
        self._timer.stop()
        after, self._pending = self._latest, False
        if after != self._rest:
            self.stack.push(BoxMove(self, self._rest, after))
        self._rest = after
        self.changed()
