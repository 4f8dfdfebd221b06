"""Request bodies read by hand: bounded before they are read, parsed into 400s that name the problem."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from hub.deps import registry_of
from registry.errors import InvalidInputError, PayloadTooLargeError


def parse_json(raw: bytes | str, *, what: str) -> Any:
    """Parse `raw` as JSON.

    Raises:
        InvalidInputError: not JSON, not UTF-8, or nested deeper than the parser goes; the message names `what`.
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidInputError(f"Malformed {what}: JSON nested too deeply.") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"Malformed {what}: not UTF-8 ({exc.reason} at byte {exc.start}).") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise InvalidInputError(f"Malformed {what}: {exc}.") from None


async def read_body(request: Request, *, what: str, limit: int | None = None) -> bytes:
    """The whole request body, at most `limit` bytes (default: the `max_json_bytes` setting).

    A `Content-Length` over the limit is refused before any byte is read; a body without one is read until it
    passes the limit, and no further.

    Raises:
        PayloadTooLargeError: the body is larger than `limit`.
        InvalidInputError: the `Content-Length` header is not a number.
    """
    limit = registry_of(request).settings.max_json_bytes if limit is None else limit
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise InvalidInputError(f"Invalid Content-Length header {declared!r}.")
        if int(declared) > limit:
            raise PayloadTooLargeError(f"The {what} is {int(declared)} bytes; this hub accepts at most {limit}.")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLargeError(f"The {what} exceeds {limit} bytes, the most this hub accepts.")
    return bytes(buf)


async def json_body(request: Request, *, what: str) -> Any:
    """The request body parsed as JSON, bounded like `read_body` (None for an empty body)."""
    raw = await read_body(request, what=what)
    return parse_json(raw, what=what) if raw.strip() else None


async def json_object(request: Request, *, what: str, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; with `optional`, an empty body or `null` reads as `{}`.

    Raises:
        InvalidInputError: the body is missing (unless `optional`), malformed, or not an object.
        PayloadTooLargeError: the body is larger than the `max_json_bytes` setting.
    """
    body = await json_body(request, what=what)
    if body is None and optional:
        return {}
    if body is None:
        raise InvalidInputError(f"Missing {what}: expected a JSON object.")
    if not isinstance(body, dict):
        raise InvalidInputError(f"The {what} must be a JSON object, not {type(body).__name__}.")
    return body


async def form_body(request: Request, *, what: str) -> FormData:
    """The request body as a form (urlencoded or multipart), bounded like `read_body`.

    Raises:
        InvalidInputError: a malformed multipart body.
        PayloadTooLargeError: the body is larger than the `max_json_bytes` setting.
    """
    raw = await read_body(request, what=what)

    async def once() -> AsyncGenerator[bytes, None]:
        yield raw
        yield b""  # the parsers finalise on an empty chunk

    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await MultiPartParser(request.headers, once()).parse()
        return await FormParser(request.headers, once()).parse()
    except MultiPartException as exc:
        raise InvalidInputError(f"Malformed {what}: {exc.message}") from None


def json_body_doc(properties: dict[str, Any], *, required: tuple[str, ...] = (), optional: bool = False,
                  ) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON object body itself (after checking the caller)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"requestBody": {"required": not optional, "content": {"application/json": {"schema": schema}}}}
