"""Argument types the commands share: a positive finite number, and a comma list of counts.

Each turns bad input into argparse's one-line error (`error: argument --x: ...`). ``nan`` and
``inf`` are refused: ``float()`` takes them, and a NaN timeout passes every ``<= 0`` check,
then fails deep inside a socket call.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def positive(kind: type, *, zero: bool = False) -> Callable[[str], Any]:
    """A parser of one finite number of `kind`, above 0 (or at least 0, with `zero`)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError("must not be negative" if zero else "must be positive")
        return value

    return parse


def count_list(text: str) -> list[int]:
    """A comma list of counts, each at least 1 (``100,1000``), in the order given."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of integers such as 100,1000, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("every count must be at least 1")
    return values
