"""Display safety: what a player types is shown on other players' screens, so it must not be
able to reorder, hide or fake text there.

Unicode's format characters (category Cf) are invisible and some rearrange what follows: a
right-to-left override (U+202E) makes ``txt.exe`` read as ``exe.txt``, zero-width spaces split a
word a filter would catch, tag characters smuggle invisible text. They are removed, except the
two joiners real writing needs: ZWJ (U+200D, which builds emoji sequences such as family or
profession emoji) and ZWNJ (U+200C, needed by Persian and Indic scripts). C1 controls (Cc, which
the protocol's ASCII-only check lets through) and the line/paragraph separators (Zl, Zp) go too:
a terminal may act on them.
"""

from __future__ import annotations

import unicodedata

#: Format characters that are kept: without them emoji sequences and some scripts break.
KEPT_FORMAT = frozenset({"\u200c", "\u200d"})
#: Categories removed from player text (Cf minus KEPT_FORMAT).
REMOVED_CATEGORIES = frozenset({"Cf", "Cc", "Zl", "Zp"})


def is_unsafe(char: str) -> bool:
    return char not in KEPT_FORMAT and unicodedata.category(char) in REMOVED_CATEGORIES


def safe_text(text: str) -> str:
    """`text` without invisible format, control and separator characters (see module doc)."""
    if text.isascii():
        # The common case, and ASCII's only unsafe characters are C0 controls and DEL, which
        # the protocol already refuses; keep this path allocation-free.
        return text if text.isprintable() else "".join(c for c in text if c.isprintable())
    return "".join(c for c in text if not is_unsafe(c))
