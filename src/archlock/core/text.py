"""Text rules for every checker and report alike: what counts as a control character, and how
a byte count is shown."""

from __future__ import annotations

import unicodedata

# C0/C1 controls (\n, \r, \x85 ...), format characters, and the Unicode line/paragraph
# separators: each of them can end a line for some reader (str.splitlines among them).
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def has_control(text: str) -> bool:
    """True when `text` holds a character that could start a new line or hide one."""
    return any(unicodedata.category(char) in CONTROL_CATEGORIES for char in text)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.2f} {unit}"
        value /= 1000
    return f"{size} B"
