"""Argument types the commands share: a positive finite number, and a comma list of counts.

Each turns bad input into argparse's one-line error (`error: argument --x: ...`). `positive` is
the engine's (`engine.patterns.demo_cli`, which the pattern demos use too), re-exported here so
that the game's commands and the demos refuse a number in the same words from one definition;
it lives in the engine because the engine may import nothing of the game.
"""

from __future__ import annotations

import argparse

from engine.patterns.demo_cli import positive

__all__ = ["count_list", "positive"]


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
