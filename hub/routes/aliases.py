"""Aliases of a model repo, their audit log, promotion through the repo's gate, and rollback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of, repo_for
from registry import aliases, promotion
from registry.errors import InvalidInputError

router = APIRouter()
MAX_HISTORY = 1000


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise InvalidInputError(f"Field {key!r} must be a{' non-empty' if default is None else ''} string.")
    return value


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInputError(f"Field {key!r} must be true or false.")
    return value


@router.get("/api/models/{namespace}/{name}/aliases")
async def list_aliases(request: Request, namespace: str, name: str) -> dict[str, Any]:
    """Every alias of a model repo and the commit it points at (`?history=1` adds the audit log)."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)
    found = await run_in_threadpool(aliases.list_aliases, reg, repo)
    body: dict[str, Any] = {"aliases": [a.to_json() for a in found]}
    if request.query_params.get("history") in ("1", "true"):
        events = await run_in_threadpool(aliases.history, reg, repo, None, limit=MAX_HISTORY)
        body["history"] = [e.to_json() for e in events]
    return body


@router.get("/api/models/{namespace}/{name}/aliases/{alias}/history")
async def alias_history(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """The audit log of one alias, newest first: who moved it, when, from, to, why, and the gate's evidence."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)
    aliases.check_alias_name(alias)
    events = await run_in_threadpool(aliases.history, reg, repo, alias, limit=MAX_HISTORY)
    return {"alias": alias, "history": [e.to_json() for e in events]}


@router.put("/api/models/{namespace}/{name}/aliases/{alias}", openapi_extra=json_body_doc(
    {"revision": {"type": "string"}, "reason": {"type": "string"}, "protected": {"type": "boolean"}},
    required=("revision",)))
async def set_alias(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Point an alias at a revision without the gate (logged as `set`); `protected` changes its protection too."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    principal = await principal_of(request)
    body = await json_object(request, what="alias body")
    revision, reason = _text(body, "revision"), _text(body, "reason", "")
    if "protected" in body:
        await run_in_threadpool(aliases.set_protected, reg, principal, repo, alias, _flag(body, "protected"))
    event = await run_in_threadpool(lambda: aliases.move_alias(reg, principal, repo, alias, revision, reason=reason))
    return {"event": event.to_json()}


@router.put("/api/models/{namespace}/{name}/aliases/{alias}/protection", openapi_extra=json_body_doc(
    {"protected": {"type": "boolean"}}, required=("protected",)))
async def protect_alias(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Protect an alias (only the organisation's admins move it) or lift that; organisation admins only."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    body = await json_object(request, what="protection body")
    protected = _flag(body, "protected")
    await run_in_threadpool(aliases.set_protected, reg, await principal_of(request), repo, alias, protected)
    return {"alias": alias, "protected": await run_in_threadpool(aliases.is_protected, reg, repo, alias)}


@router.delete("/api/models/{namespace}/{name}/aliases/{alias}")
async def delete_alias(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Remove an alias (logged)."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    principal = await principal_of(request)
    reason = request.query_params.get("reason", "")
    event = await run_in_threadpool(lambda: aliases.delete_alias(reg, principal, repo, alias, reason=reason))
    return {"event": event.to_json()}


@router.post("/api/models/{namespace}/{name}/promote", openapi_extra=json_body_doc(
    {"revision": {"type": "string"}, "alias": {"type": "string"}, "reason": {"type": "string"},
     "force": {"type": "boolean"}, "dryRun": {"type": "boolean"}}, required=("revision",)))
async def promote(request: Request, namespace: str, name: str) -> JSONResponse:
    """Move an alias (default `production`) to a revision through the repo's gate.

    200 with the event once promoted; 202 while the gate's evaluations run (call again); 409 `GateRefused`
    with every check's numbers when the candidate fails; `dryRun` answers the verdict alone.
    """
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    principal = await principal_of(request)
    body = await json_object(request, what="promotion body")
    revision, alias = _text(body, "revision"), _text(body, "alias", "production") or "production"
    reason, force, dry_run = _text(body, "reason", ""), _flag(body, "force"), _flag(body, "dryRun")
    outcome = await run_in_threadpool(lambda: promotion.promote(reg, principal, repo, revision, alias, reason=reason,
                                                                force=force, dry_run=dry_run))
    return JSONResponse(outcome, status_code=202 if outcome["status"] == "pending" else 200)


@router.post("/api/models/{namespace}/{name}/rollback", openapi_extra=json_body_doc(
    {"alias": {"type": "string"}, "reason": {"type": "string"}}))
async def rollback(request: Request, namespace: str, name: str) -> dict[str, Any]:
    """Return an alias (default `production`) to its previous target, without the gate (it served before)."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    principal = await principal_of(request)
    body = await json_object(request, what="rollback body", optional=True)
    alias, reason = _text(body, "alias", "production") or "production", _text(body, "reason", "")
    event = await run_in_threadpool(lambda: aliases.rollback(reg, principal, repo, alias, reason=reason))
    return {"event": event.to_json()}
