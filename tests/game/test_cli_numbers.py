"""The commands' shared argument types: numbers and count lists, bad input a clear error."""

from __future__ import annotations

import argparse

import pytest

from engine.patterns import demo_cli
from gameserver.cli_numbers import count_list, positive


def test_positive_is_the_engines_one_definition() -> None:
    """The game's commands and the pattern demos refuse numbers alike: one `positive`, in the
    engine (its cases are in tests/patterns/test_demo_cli.py)."""
    assert positive is demo_cli.positive
    assert positive(int, zero=True)("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="expected a finite number, got 'nan'"):
        positive(float)("nan")


def test_count_lists() -> None:
    assert count_list("100, 1000,5000") == [100, 1000, 5000]
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        count_list("1,0")
    with pytest.raises(argparse.ArgumentTypeError, match="comma list of integers"):
        count_list("1,x")
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        count_list(",")
