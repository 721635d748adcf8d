"""Display safety: bidi overrides and other invisible format characters never reach another
player's screen; emoji sequences (ZWJ) and scripts that need ZWNJ survive."""

from __future__ import annotations

import unicodedata

from gamekit import Game
from hypothesis import given
from hypothesis import strategies as st

from gameserver.display import KEPT_FORMAT, REMOVED_CATEGORIES, safe_text

RLO = "\u202e"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "mi-khaham", ZWNJ inside


def test_the_room_never_sees_a_bidi_override(game: Game) -> None:
    alice, bob = game.login("Alice"), game.login("Bob")
    alice.say_ok(f"say invoice{RLO}fdp.exe and {FAMILY} {PERSIAN} \u200bzero\u2066width\u2069")
    (heard,) = bob.heard("say")
    assert RLO not in heard and "\u200b" not in heard and "\u2066" not in heard
    assert "invoicefdp.exe" in heard
    assert FAMILY in heard and PERSIAN in heard  # the joiners stay


def test_c1_controls_and_separators_go() -> None:
    assert safe_text("a\x85b\u2028c\u2029d\x9be") == "abcde"
    assert safe_text("plain ascii, unchanged") == "plain ascii, unchanged"


@given(st.text(max_size=200))
def test_nothing_unsafe_survives_and_safe_text_is_a_fixed_point(text: str) -> None:
    cleaned = safe_text(text)
    for char in cleaned:
        assert char in KEPT_FORMAT or unicodedata.category(char) not in REMOVED_CATEGORIES
    assert safe_text(cleaned) == cleaned
    kept = [
        c for c in text if c in KEPT_FORMAT or unicodedata.category(c) not in REMOVED_CATEGORIES
    ]
    assert cleaned == "".join(kept)
