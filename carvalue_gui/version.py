"""The app's version, from the installed package's metadata (pyproject.toml is its one home)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def app_version() -> str:
    try:
        return version("carvalue")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"
