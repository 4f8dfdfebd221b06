"""Admin-only routes: account management (users, organisations, their members) and the deployment's description."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of
from registry import accounts, deployment

router = APIRouter(prefix="/api/vitrine/admin")


@router.get("/accounts")
async def list_accounts(request: Request) -> dict[str, Any]:
    """Every user and organisation, with memberships (admins only)."""
    return await run_in_threadpool(accounts.list_accounts, registry_of(request), await principal_of(request))


@router.put("/orgs/{org}/members/{user}", openapi_extra=json_body_doc({
    "role": {"type": "string", "enum": ["read", "write", "admin"]}}, required=("role",)))
async def set_member(request: Request, org: str, user: str) -> dict[str, Any]:
    """Add `user` to `org`, or change their role (admins only)."""
    principal = accounts.require_admin(await principal_of(request))
    body = await json_object(request, what="membership body")
    role = body.get("role")
    await run_in_threadpool(lambda: accounts.set_member(registry_of(request), principal, org, user, role=str(role)))
    return {"org": org, "user": user, "role": role}


@router.delete("/orgs/{org}/members/{user}")
async def remove_member(request: Request, org: str, user: str) -> dict[str, Any]:
    """Take `user` out of `org` (admins only)."""
    await run_in_threadpool(accounts.remove_member, registry_of(request), await principal_of(request), org, user)
    return {"org": org, "user": user, "removed": True}


@router.get("/deployment")
async def describe_deployment(request: Request) -> dict[str, Any]:
    """This replica, its database and schema revision, its blob storage, and the shared job queue (admins only)."""
    return await run_in_threadpool(deployment.describe, registry_of(request), await principal_of(request))
