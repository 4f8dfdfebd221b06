"""The FastAPI app factory: registry on `app.state`, request ids, error handlers, routers."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hub.errors import install_error_handlers
from collections import Counter

from hub.routes import commits, files, lfs, models, refs, repos, spaces, vitrine
from registry import auth
from registry.core import Registry
from registry.settings import Settings

log = logging.getLogger("vitrine.hub")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the hub app for `settings` (default: from the environment); usable with `uvicorn --factory`."""
    settings = settings or Settings.from_env()
    reg = Registry(settings)
    if settings.admin_token:
        auth.create_token(reg, "admin", role="write", token=settings.admin_token, name="admin", is_admin=True)
    app = FastAPI(title="Vitrine", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.registry = reg
    app.state.settings = settings
    app.state.stats = Counter()

    @app.middleware("http")
    async def _request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid
        response = await call_next(request)
        response.headers["X-Request-Id"] = rid
        return response

    @app.get("/health")
    async def health() -> dict[str, object]:
        """Liveness probe; the pid tells a supervisor which process answered."""
        return {"status": "ok", "pid": os.getpid()}

    install_error_handlers(app)
    # `spaces` goes last: its catch-all under /spaces/{owner}/{name}/ must not shadow Space repo file routes.
    for module in (vitrine, models, repos, refs, commits, lfs, files, spaces):
        app.include_router(module.router)
    return app
