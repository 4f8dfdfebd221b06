"""Vitrine's own API beyond the Hub's: process statistics (and later diff, eval, promote)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request

from hub.deps import principal_of
from registry.errors import ForbiddenError, UnauthorizedError

router = APIRouter()


def stats_of(request: Request) -> Counter[str]:
    """This process's counters (LFS bytes received, ...)."""
    return request.app.state.stats  # type: ignore[no-any-return]


@router.get("/api/vitrine/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Counters of this process (LFS objects and bytes received, commits made), for admins only.

    They count every repo, private ones included, so they would tell an outsider when a private repo moves.
    """
    principal = await principal_of(request)
    if principal is None:
        raise UnauthorizedError("Process statistics need an admin token.")
    if not principal.is_admin:
        raise ForbiddenError("Process statistics are for admins only.")
    counters = stats_of(request)
    return {key: counters.get(key, 0) for key in ("lfs_objects_received", "lfs_bytes_received", "commits")} | dict(counters)
