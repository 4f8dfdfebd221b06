"""The caller's own tokens: list, create (the clear token answered once), revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of
from registry import tokens

router = APIRouter(prefix="/api/vitrine/tokens")


@router.get("")
async def list_tokens(request: Request) -> list[dict[str, Any]]:
    """Your tokens: id, name, role, creation time (never the tokens themselves)."""
    found = await run_in_threadpool(tokens.list_tokens, registry_of(request), await principal_of(request))
    return [t.to_json() for t in found]


@router.post("", openapi_extra=json_body_doc({
    "name": {"type": "string", "description": "A name you will recognise the token by."},
    "role": {"type": "string", "enum": ["read", "write"], "default": "read"},
}, required=("name",)))
async def create_token(request: Request) -> dict[str, Any]:
    """Create a token for yourself; the answer's `token` is the only time the hub shows it."""
    principal = tokens.require_signed_in(await principal_of(request))
    body = await json_object(request, what="token body")
    record, clear = await run_in_threadpool(lambda: tokens.issue_token(
        registry_of(request), principal, name=body.get("name", ""), role=body.get("role", "read")))
    return {**record.to_json(), "token": clear}


@router.delete("/{token_id}")
async def revoke_token(request: Request, token_id: int) -> dict[str, Any]:
    """Revoke one of your tokens."""
    await run_in_threadpool(tokens.revoke_token, registry_of(request), await principal_of(request), token_id)
    return {"deleted": token_id}
