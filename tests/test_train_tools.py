"""`carvalue-train TOOL ...` reaches every pipeline tool's own main (its options, its --help)."""

from __future__ import annotations

import importlib

import pytest

from training.cli import TOOLS, main

NO_OPTIONS = {"negatives", "price-listing-names"}  # they take no arguments


@pytest.mark.parametrize("name", sorted(set(TOOLS) - NO_OPTIONS))
def test_each_tool_answers_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and TOOLS[name][0] in out  # the tool's own parser


@pytest.mark.parametrize("name", sorted(NO_OPTIONS))
def test_a_tool_without_options_refuses_arguments(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert callable(importlib.import_module(TOOLS[name][0]).main)
    assert main([name, "--surprise"]) == 2
    assert "takes no arguments" in capsys.readouterr().err


def test_the_tools_are_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in TOOLS)
