"""The commands' shared argument types: numbers and count lists, bad input a clear error."""

from __future__ import annotations

import argparse

import pytest

from gameserver.cli_numbers import count_list, positive


def test_positive_numbers() -> None:
    assert positive(int)("3") == 3 and positive(float)("0.5") == 0.5
    assert positive(int, zero=True)("0") == 0
    for parse, text, why in (
        (positive(int), "0", "must be positive"),
        (positive(int, zero=True), "-1", "must not be negative"),
        (positive(int), "two", "expected a number, got 'two'"),
        (positive(float), "nan", "expected a finite number, got 'nan'"),
        (positive(float, zero=True), "inf", "expected a finite number, got 'inf'"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            parse(text)


def test_count_lists() -> None:
    assert count_list("100, 1000,5000") == [100, 1000, 5000]
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        count_list("1,0")
    with pytest.raises(argparse.ArgumentTypeError, match="comma list of integers"):
        count_list("1,x")
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        count_list(",")
