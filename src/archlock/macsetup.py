"""The `setup-mac` verb (issue 5). The work lives in the `archlock.mac` package."""

from __future__ import annotations

from archlock.mac.cli import register, run

__all__ = ["register", "run"]
