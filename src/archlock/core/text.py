"""What counts as a control character in a value we check, for every checker alike."""

from __future__ import annotations

import unicodedata

# C0/C1 controls (\n, \r, \x85 ...), format characters, and the Unicode line/paragraph
# separators: each of them can end a line for some reader (str.splitlines among them).
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def has_control(text: str) -> bool:
    """True when `text` holds a character that could start a new line or hide one."""
    return any(unicodedata.category(char) in CONTROL_CATEGORIES for char in text)
