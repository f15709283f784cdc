"""THE version parser: PEP 440 through packaging, with "not a version" as an answer."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def release(text: str | None) -> Version | None:
    """`text` as a version; None when it is empty or not a version (an unreadable driver: ":")."""
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def version_tuple(text: str) -> tuple[int, ...]:
    """'570.26' -> (570, 26); '2.10.0+cpu' -> (2, 10, 0): the release parts; () if no version."""
    parsed = release(text)
    return parsed.release if parsed else ()


def below(have: str, floor: str) -> bool | None:
    """Whether `have` is older than `floor`; None when either is not a version (say so, never
    guess "too old")."""
    mine, least = release(have), release(floor)
    if mine is None or least is None:
        return None
    return mine < least


def minor(text: str | None) -> str | None:
    """'3.11.4' -> '3.11'."""
    parsed = release(text)
    return f"{parsed.major}.{parsed.minor}" if parsed else None
