"""argparse value types shared by the verbs: bad values are usage errors, before any work."""

from __future__ import annotations

import argparse


def count(text: str) -> int:
    """A whole number >= 0 (line counts, limits): `--tail-lines -5` is a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


def seconds(text: str) -> float:
    """A time limit in seconds, > 0 and finite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 1e7:
        raise argparse.ArgumentTypeError(f"{text} is not a time limit; give seconds above 0")
    return value
