"""One table from domain errors to HTTP, and the handlers that give every error the same shape."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from registry.errors import (
    ConflictError,
    EntryNotFoundError,
    ForbiddenError,
    GateRefusedError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    RegistryError,
    RepoNotFoundError,
    RevisionNotFoundError,
    StorageFullError,
    StorageUnavailableError,
    UnauthorizedError,
    UnsafeFileError,
)

log = logging.getLogger("vitrine.hub")

# Resolved along the error's MRO: a subclass answers like its nearest listed ancestor.
ERROR_TABLE: dict[type[RegistryError], tuple[int, str]] = {
    RegistryError: (400, "BadRequest"),
    InvalidInputError: (400, "BadRequest"),
    UnauthorizedError: (401, "Unauthorized"),
    ForbiddenError: (403, "Forbidden"),
    RepoNotFoundError: (404, "RepoNotFound"),
    RevisionNotFoundError: (404, "RevisionNotFound"),
    EntryNotFoundError: (404, "EntryNotFound"),
    NotFoundError: (404, "NotFound"),
    ConflictError: (409, "Conflict"),
    GateRefusedError: (409, "GateRefused"),
    PreconditionFailedError: (412, "PreconditionFailed"),
    PayloadTooLargeError: (413, "PayloadTooLarge"),
    UnsafeFileError: (422, "UnsafeFile"),
    StorageUnavailableError: (503, "ServiceUnavailable"),
    StorageFullError: (507, "InsufficientStorage"),
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Statuses answered by Starlette itself rather than by a domain error.
_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed"}
# Everything but printable ASCII gets escaped before it goes into a header: h11 refuses CR, LF and NUL outright.
_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e]")


def status_of(exc: RegistryError) -> tuple[int, str]:
    """The HTTP status and `X-Error-Code` of a domain error: the entry of its nearest class in ERROR_TABLE."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return ERROR_TABLE[RegistryError]  # pragma: no cover - RegistryError is in every subclass's MRO


def error_statuses() -> list[int]:
    """Every status an error response of this hub can have (the OpenAPI schema documents them all)."""
    return sorted({status for status, _ in ERROR_TABLE.values()} | set(_HTTP_CODES))


def header_safe(value: str, *, limit: int = 1000) -> str:
    """`value` as a header can carry it: printable ASCII, anything else backslash-escaped, at most `limit` chars."""
    escaped = _UNSAFE_HEADER_CHARS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    return escaped[:limit]


def request_id(request: Request) -> str:
    """The id of this request (set by the middleware, or made up for early failures)."""
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def error_response(request: Request, status: int, code: str, message: str, *,
                   headers: Mapping[str, str] | None = None, extra: Mapping[str, object] | None = None) -> Response:
    """The one error shape: `X-Error-Code`, `X-Error-Message`, `X-Request-Id` and `{"error": ...}` (+ `extra`)."""
    # Headers must be single-line latin-1 (ASCII here); the body keeps the full text.
    out = {header_safe(k, limit=100): header_safe(v) for k, v in (headers or {}).items()}
    out.update({"X-Error-Code": header_safe(code, limit=100), "X-Error-Message": header_safe(message),
                "X-Request-Id": header_safe(request_id(request), limit=128)})
    if request.method == "HEAD":
        return Response(status_code=status, headers=out)
    return JSONResponse({"error": message, **(extra or {})}, status_code=status, headers=out)


def _allowed_methods(request: Request) -> str:
    """The methods some route serves at this path (what a 405 lists in `Allow`)."""
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    @app.exception_handler(RegistryError)
    async def _registry_error(request: Request, exc: RegistryError) -> Response:
        status, code = status_of(exc)
        extra: dict[str, object] = {}
        if isinstance(exc, ConflictError) and exc.url:
            extra["url"] = exc.url
        if isinstance(exc, GateRefusedError):
            extra["gate"] = exc.gate
        if isinstance(exc, UnsafeFileError):
            extra["path"] = exc.path
            extra["details"] = exc.details
        return error_response(request, status, code, exc.message, extra=extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error_response(request, 400, "BadRequest", "Invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette lists only the methods of the first route it tried; the path may serve more.
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        code = _HTTP_CODES.get(exc.status_code, "Error")
        return error_response(request, exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("request %s failed", request_id(request))
        return error_response(request, 500, "InternalError", "Internal server error")
