"""Branches, tags and history: list refs, create/delete branch and tag, list commits."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import base_url, registry_of, repo_for
from hub.serialize import commit_item, refs_body
from registry import refs
from registry.repos import commit_history
from registry.errors import InvalidInputError

router = APIRouter()


def _actor(request: Request) -> str:
    """Who is changing refs (the write check already authenticated them)."""
    principal = getattr(request.state, "principal", None)
    return principal.user if principal else ""


@router.get("/api/{plural}/{namespace}/{name}/refs")
async def list_refs(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Branches and tags of a repo with the commits they point at."""
    reg, repo = registry_of(request), await repo_for(request, plural, namespace, name)
    include_prs = request.query_params.get("include_prs") in ("1", "true", "True")
    return refs_body(await run_in_threadpool(refs.list_refs, reg, repo), include_prs=include_prs)


@router.post("/api/{plural}/{namespace}/{name}/branch/{branch:path}", openapi_extra=json_body_doc(
    {"startingPoint": {"type": "string"}, "emptyBranch": {"type": "boolean"}}, optional=True))
async def create_branch(request: Request, plural: str, namespace: str, name: str, branch: str) -> dict[str, Any]:
    """Create a branch at `startingPoint` (default: main); 409 if it exists."""
    reg, repo = registry_of(request), await repo_for(request, plural, namespace, name, write=True)
    body = await json_object(request, what="branch body", optional=True)
    start = body.get("startingPoint") or "main"
    if not isinstance(start, str):
        raise InvalidInputError("Field 'startingPoint' must be a string.")
    if body.get("emptyBranch"):
        raise InvalidInputError("Empty branches are not supported; create the branch from a revision.")
    made = await run_in_threadpool(lambda: refs.create_ref(reg, repo, "branch", branch, revision=start,
                                                           actor=_actor(request)))
    return {"name": made.name, "ref": made.full_ref, "targetCommit": made.commit_oid}


@router.delete("/api/{plural}/{namespace}/{name}/branch/{branch:path}")
async def delete_branch(request: Request, plural: str, namespace: str, name: str, branch: str) -> dict[str, Any]:
    """Delete a branch (not `main`)."""
    reg, repo = registry_of(request), await repo_for(request, plural, namespace, name, write=True)
    await run_in_threadpool(lambda: refs.delete_ref(reg, repo, "branch", branch, actor=_actor(request)))
    return {"deleted": branch}


@router.post("/api/{plural}/{namespace}/{name}/tag/{revision:path}", openapi_extra=json_body_doc(
    {"tag": {"type": "string"}, "message": {"type": "string"}}, required=("tag",)))
async def create_tag(request: Request, plural: str, namespace: str, name: str, revision: str) -> dict[str, Any]:
    """Tag `revision` with `tag`; 409 if the tag exists."""
    reg, repo = registry_of(request), await repo_for(request, plural, namespace, name, write=True)
    body = await json_object(request, what="tag body")
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise InvalidInputError("Field 'tag' must be a string.")
    made = await run_in_threadpool(lambda: refs.create_ref(reg, repo, "tag", tag, revision=revision,
                                                           actor=_actor(request)))
    return {"name": made.name, "ref": made.full_ref, "targetCommit": made.commit_oid}


@router.delete("/api/{plural}/{namespace}/{name}/tag/{tag:path}")
async def delete_tag(request: Request, plural: str, namespace: str, name: str, tag: str) -> dict[str, Any]:
    """Delete a tag."""
    reg, repo = registry_of(request), await repo_for(request, plural, namespace, name, write=True)
    await run_in_threadpool(lambda: refs.delete_ref(reg, repo, "tag", tag, actor=_actor(request)))
    return {"deleted": tag}


@router.get("/api/{plural}/{namespace}/{name}/commits/{revision:path}")
async def list_commits(request: Request, plural: str, namespace: str, name: str, revision: str) -> Response:
    """History from `revision`, newest first (`limit`/`p` pagination with a Link header)."""
    reg, repo = registry_of(request), await repo_for(request, plural, namespace, name)
    try:
        page = int(request.query_params.get("p", "0"))
        limit = min(int(request.query_params.get("limit", "500")), 1000)
    except ValueError:
        raise InvalidInputError("Query parameters 'p' and 'limit' must be integers.") from None
    if page < 0 or limit < 1:
        raise InvalidInputError("Query parameters 'p' must be >= 0 and 'limit' >= 1.")

    chain = await run_in_threadpool(
        lambda: commit_history(reg, repo, revision, limit=(page + 1) * limit + 1))
    formatted = "formatted" in request.query_params.getlist("expand[]")
    items = [commit_item(c, formatted=formatted) for c in chain[page * limit: (page + 1) * limit]]
    headers = {}
    if len(chain) > (page + 1) * limit:
        params = {**request.query_params, "p": str(page + 1)}
        headers["Link"] = f'<{base_url(request)}{request.url.path}?{urlencode(params)}>; rel="next"'
    return JSONResponse(items, headers=headers)
