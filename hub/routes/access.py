"""Access probes: `auth_check`, and RepoNotFound for repo ids without a namespace (`repo_exists("gpt2")`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.deps import PLURALS, principal_of, registry_of, repo_for
from registry.commits import check_can_write_repo
from registry.errors import RepoNotFoundError

router = APIRouter()


@router.get("/api/{plural}/{namespace}/{name}/auth-check")
async def auth_check(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """200 when the caller may read the repo, else the error reading it would answer."""
    await repo_for(request, plural, namespace, name)
    return {}


@router.get("/api/{plural}/{namespace}/{name}/auth-check/write")
async def auth_check_write(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """200 when the caller may commit to the repo's branches, else 401/403 (404 when it may not see it)."""
    repo = await repo_for(request, plural, namespace, name)
    await run_in_threadpool(check_can_write_repo, registry_of(request), await principal_of(request), repo)
    return {}


def _missing(request: Request, name: str) -> RepoNotFoundError:
    parts = request.url.path.split("/")
    return RepoNotFoundError(name, PLURALS.get(parts[2] if parts[1] == "api" else "models", "model"))


# Registered after every other router: only paths no real route takes reach these. They are answers, not
# operations, so the OpenAPI schema leaves them out.
@router.get("/api/models/{name}", include_in_schema=False)
@router.get("/api/datasets/{name}", include_in_schema=False)
@router.get("/api/spaces/{name}", include_in_schema=False)
@router.get("/api/models/{name}/revision/{revision:path}", include_in_schema=False)
@router.get("/api/datasets/{name}/revision/{revision:path}", include_in_schema=False)
@router.get("/api/spaces/{name}/revision/{revision:path}", include_in_schema=False)
@router.get("/api/models/{name}/tree/{rest:path}", include_in_schema=False)
@router.get("/api/datasets/{name}/tree/{rest:path}", include_in_schema=False)
@router.get("/api/spaces/{name}/tree/{rest:path}", include_in_schema=False)
async def repo_without_namespace(request: Request, name: str) -> dict[str, Any]:
    """A repo id without a namespace names no repo here: RepoNotFound, so `repo_exists` and friends say False."""
    raise _missing(request, name)


@router.api_route("/{name}/resolve/{rest:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def resolve_without_namespace(request: Request, name: str) -> dict[str, Any]:
    """A download from a model id without a namespace: RepoNotFound, so `file_exists` says False."""
    raise _missing(request, name)
