"""`vitrine space export` and `vitrine space publish` (filled in by the Spaces work)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add the `space` commands to the `vitrine` parser."""
    return None
