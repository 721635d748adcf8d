"""A store URL shown in a banner or a log never shows its password (compose's Redis has one)."""

from __future__ import annotations

import pytest

from gameserver.store import shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("redis://game:s3cret@h:1/0?prefix=x", "redis://game:***@h:1/0?prefix=x"),
        ("redis://:s3cret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("sqlite:////tmp/game.db", "sqlite:////tmp/game.db"),
        ("redis://[bad", "redis://[bad"),  # unparsable: shown as given, never an error
    ],
)
def test_the_password_is_starred(url: str, shown: str) -> None:
    assert shown_url(url) == shown
