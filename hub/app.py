"""The FastAPI app factory: registry on `app.state`, request ids, error handlers, routers."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections import Counter
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.endpoints.app import EndpointDispatch
from hub.endpoints.serving import EndpointHost
from hub.errors import error_response, error_statuses, install_error_handlers
from hub.routes import (
    access, admin, aliases, commits, datasets, discussions, endpoints, evals, files, lfs, models, monitoring, refs, repos,
    spaces, tokens, vitrine, web, webhooks, xet,
)
from registry import auth
from registry.core import Registry
from registry.settings import Settings

log = logging.getLogger("vitrine.hub")

# A client's own request id is echoed back only when it is this tame.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# C0 controls, DEL and C1 controls: no file, repo or revision name holds one, and no header may carry one.
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class RequestGuard:
    """Outermost layer: gives every request an id (echoed as `X-Request-Id`), refuses paths with control characters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Tag the request, answer a control character in the decoded path with a 400, else pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = Headers(scope=scope).get("x-request-id", "")
        rid = sent if _REQUEST_ID_RE.fullmatch(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = rid
            await send(message)

        path = scope.get("path", "")
        if _CONTROL_CHARS_RE.search(path):
            response = error_response(Request(scope), 400, "BadRequest",
                                      f"Invalid URL path {path!r}: control characters are not allowed.")
            await response(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)


def _document_errors(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema, with the one error shape documented for every status an operation can answer."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "description": "What went wrong and, where it helps, what to do."}},
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            # Validation failures answer 400 in the error shape; 422 is an unsafe file.
            responses.pop("422", None)
            for status in error_statuses():
                responses.setdefault(str(status), {"description": HTTPStatus(status).phrase, "content": error})
    app.openapi_schema = schema
    return schema


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
    app.state.endpoints = EndpointHost(reg)
    app.add_middleware(EndpointDispatch, host=app.state.endpoints)
    app.add_middleware(RequestGuard)

    @app.get("/health")
    async def health() -> dict[str, object]:
        """Liveness probe; the pid tells a supervisor which process answered."""
        return {"status": "ok", "pid": os.getpid()}

    install_error_handlers(app)
    # `spaces` goes last: its catch-all under /spaces/{owner}/{name}/ must not shadow Space repo file routes.
    # `web` (browsers' human URLs) goes after it, so it never shadows an API route.
    # `discussions` goes before `files`: its routes at `refs/pr/N` would otherwise read as revision `refs`.
    # `access` goes after them all: it answers RepoNotFound only on paths no other route takes.
    for module in (vitrine, tokens, admin, aliases, endpoints, monitoring, webhooks, models, datasets, evals, repos, refs, discussions, commits, lfs, xet, files,
                   spaces, web, access):
        app.include_router(module.router)
    app.openapi = lambda: _document_errors(app)  # type: ignore[method-assign]
    return app
