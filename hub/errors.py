"""One table from domain errors to HTTP, and the handlers that give every error the same shape."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.errors import (
    ConflictError,
    EntryNotFoundError,
    ForbiddenError,
    InvalidInputError,
    PayloadTooLargeError,
    PreconditionFailedError,
    RegistryError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnauthorizedError,
    UnsafeFileError,
)

log = logging.getLogger("vitrine.hub")

# Most specific first: the first class an error is an instance of decides.
ERROR_TABLE: list[tuple[type[RegistryError], int, str]] = [
    (RepoNotFoundError, 404, "RepoNotFound"),
    (RevisionNotFoundError, 404, "RevisionNotFound"),
    (EntryNotFoundError, 404, "EntryNotFound"),
    (PreconditionFailedError, 412, "PreconditionFailed"),
    (ConflictError, 409, "Conflict"),
    (UnauthorizedError, 401, "Unauthorized"),
    (ForbiddenError, 403, "Forbidden"),
    (UnsafeFileError, 422, "UnsafeFile"),
    (PayloadTooLargeError, 413, "PayloadTooLarge"),
    (InvalidInputError, 400, "BadRequest"),
]


def request_id(request: Request) -> str:
    """The id of this request (set by the middleware, or made up for early failures)."""
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def error_response(request: Request, status: int, code: str, message: str, **extra: object) -> Response:
    """The one error shape: `X-Error-Code`, `X-Error-Message`, `X-Request-Id` and `{"error": ...}`."""
    rid = request_id(request)
    # Headers must be latin-1 and single-line; the body keeps the full text.
    header_msg = message.replace("\n", " ").encode("latin-1", "replace").decode("latin-1")[:1000]
    headers = {"X-Error-Code": code, "X-Error-Message": header_msg, "X-Request-Id": rid}
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    @app.exception_handler(RegistryError)
    async def _registry_error(request: Request, exc: RegistryError) -> Response:
        for cls, status, code in ERROR_TABLE:
            if isinstance(exc, cls):
                extra: dict[str, object] = {}
                if isinstance(exc, ConflictError) and exc.url:
                    extra["url"] = exc.url
                if isinstance(exc, UnsafeFileError):
                    extra["path"] = exc.path
                    extra["details"] = exc.details
                return error_response(request, status, code, exc.message, **extra)
        return error_response(request, 400, "BadRequest", exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(request, 400, "BadRequest", "Invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "Error")
        return error_response(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("request %s failed", request_id(request))
        return error_response(request, 500, "InternalError", "Internal server error")
