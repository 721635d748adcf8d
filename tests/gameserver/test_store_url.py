"""A store URL shown in a banner or a log never shows its password (compose's Redis has one)."""

from __future__ import annotations

from pathlib import Path

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


def test_a_relative_sqlite_path_shows_where_it_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sqlite:///srv/game.db` opens srv/game.db under the working directory (three slashes,
    then a relative path): the banner said only the URL, so a user meaning /srv never knew."""
    monkeypatch.chdir(tmp_path)
    shown = shown_url("sqlite:///srv/game.db")
    assert shown.startswith("sqlite:///srv/game.db (relative: ")
    assert str(tmp_path / "srv" / "game.db") in shown
