"""Atomic file writes: the one home of "temp file beside the target, then ``os.replace``".

A reader sees the old file or the new one, never half of either; a crash or an error leaves the
old file as it was and no temp file behind (a SIGKILL can leave a ``.<name>.*.tmp`` beside it,
which no reader takes for the file).  Each write:

1. creates a temp file with a unique name (``.<name>.<pid>-<random>.tmp``) in the target's
   folder (or ``temp_dir``, which must be on the same file system), so two writers never share
   one;
2. writes, flushes and fsyncs it;
3. gives it the existing file's permission bits, or for a new file what a plain ``open`` would
   give (``0o666`` less the umask: ``0o644`` under the usual umask 022);
4. ``os.replace``s it over the target (or, with ``replace=False``, links it there only if
   nothing is there yet) and fsyncs the folder where the platform allows.

``atomic_write`` writes bytes or text; ``atomic_open`` yields a file object; ``atomic_path``
yields the temp file's path for libraries that write by name (ONNX, safetensors, tarfile,
SQLite); ``PendingFile`` is the same for a write that spans more than one block of code;
``atomic_link`` publishes a hard link to an existing file the same way.

Leaf module: standard library only, imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PathLike = str | os.PathLike[str]


def current_umask() -> int:
    """The process's umask (read from /proc where there is one: setting it to read it back is
    not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass  # not Linux: read it the portable way below
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode() -> int:
    return 0o666 & ~current_umask()


def fsync_folder(folder: PathLike) -> None:
    """Make a rename in ``folder`` durable where the platform allows (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder: the rename stands anyway
    finally:
        os.close(fd)


def _temp_name(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"


class PendingFile:
    """A temp file that becomes ``path`` on ``commit()`` and disappears on ``discard()``.

    Write to ``tmp`` (by name, or through ``open()``); then ``commit()``.  The temp file exists
    from construction (created exclusively, so its name is ours alone).
    """

    def __init__(self, path: PathLike, *, temp_dir: PathLike | None = None, mkdir: bool = True) -> None:
        self.path = Path(path)
        folder = Path(temp_dir) if temp_dir is not None else self.path.parent
        if mkdir:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = folder / _temp_name(self.path)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            os.close(fd)
            break
        self.tmp = tmp
        self.done = False

    def open(self, mode: str = "w", **kwargs: Any) -> IO[Any]:
        """The temp file opened for writing (``mode`` "w", "wb", "a"...)."""
        return open(self.tmp, mode, **kwargs)

    def commit(self, *, replace: bool = True) -> bool:
        """Publish the temp file as ``path``; True when it was published.  With
        ``replace=False`` an existing ``path`` is left as it is (and False returned)."""
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                mode = stat.S_IMODE(os.stat(self.path).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                mode = _new_file_mode()
            os.chmod(self.tmp, mode)
            if replace:
                os.replace(self.tmp, self.path)
                published = True
            else:
                try:
                    os.link(self.tmp, self.path)
                    published = True
                except FileExistsError:
                    published = False
            fsync_folder(self.path.parent)
        finally:
            self.discard()
        return published

    def discard(self) -> None:
        """Remove the temp file (if it is still there); the target is untouched."""
        self.done = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


@contextlib.contextmanager
def atomic_path(path: PathLike, *, temp_dir: PathLike | None = None,
                replace: bool = True) -> Iterator[Path]:
    """Yield a temp path to write by name; published as ``path`` when the block ends without
    an error, removed when it raises."""
    pending = PendingFile(path, temp_dir=temp_dir)
    try:
        yield pending.tmp
    except BaseException:
        pending.discard()
        raise
    pending.commit(replace=replace)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", *, encoding: str | None = None,
                newline: str | None = None, temp_dir: PathLike | None = None) -> Iterator[IO[Any]]:
    """Yield a file opened for writing ("w" for text, UTF-8 unless told; "wb" for bytes);
    published as ``path`` when the block ends without an error."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', not {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, temp_dir=temp_dir) as tmp:
        with open(tmp, mode, encoding=encoding, newline=newline) as f:
            yield f


def atomic_write(path: PathLike, data: bytes | str, *, encoding: str = "utf-8",
                 newline: str | None = None, temp_dir: PathLike | None = None) -> None:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically."""
    if isinstance(data, str):
        with atomic_open(path, "w", encoding=encoding, newline=newline, temp_dir=temp_dir) as f:
            f.write(data)
    else:
        with atomic_open(path, "wb", temp_dir=temp_dir) as f:
            f.write(data)


def atomic_link(source: PathLike, path: PathLike, *, temp_dir: PathLike | None = None) -> None:
    """Hard-link ``source`` as ``path``: linked under a unique temp name (in ``temp_dir``, on the
    same file system), then ``os.replace``d over ``path``, so a reader sees the old file or the
    new one.  ``os.link``'s OSError is raised as it is (EXDEV: another file system; the caller
    copies instead); no temp link is left behind."""
    path = Path(path)
    folder = Path(temp_dir) if temp_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder / _temp_name(path)
    os.link(source, tmp)
    try:
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
