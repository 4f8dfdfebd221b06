"""The endpoints this hub process serves, as the console lists them; their lifecycle follows the app's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from hub.deps import principal_of, registry_of
from hub.endpoints.serving import EndpointHost


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    host: EndpointHost | None = getattr(app.state, "endpoints", None)
    if host is not None:
        await run_in_threadpool(host.close)


router = APIRouter(lifespan=_lifespan)


@router.get("/api/vitrine/endpoints")
async def list_endpoints(request: Request) -> dict[str, Any]:
    """Every endpoint started in this process whose repo the caller may read: alias, commit served, state."""
    host: EndpointHost = request.app.state.endpoints
    principal = await principal_of(request)
    registry_of(request)

    def visible() -> list[dict[str, Any]]:
        out = []
        for endpoint in host.running():
            try:
                endpoint.check_access(principal)
            except LookupError:
                continue
            out.append({**endpoint.status(), "url": f"/endpoints/{endpoint.ref.repo_id}"
                        + ("" if endpoint.alias == "production" else f"@{endpoint.alias}")})
        return out

    return {"endpoints": await run_in_threadpool(visible)}
