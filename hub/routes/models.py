"""Vitrine's model API: weights index, weight diff between two revisions, the (generated) model card."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.deps import base_url, registry_of, repo_for
from registry.versions import weights_index
from registry.errors import InvalidInputError
from registry.models import diff_revisions, model_card
from registry.repos import load_version

router = APIRouter(prefix="/api/vitrine/models/{namespace}/{name}")


@router.get("/weights")
async def weights(request: Request, namespace: str, name: str, revision: str = "main") -> dict[str, Any]:
    """Every tensor of the version's safetensors (name, dtype, shape, file) and parameter counts by dtype."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)

    def run() -> dict[str, Any]:
        commit, tree = load_version(reg, repo, revision)
        index = weights_index(reg, tree)
        if index is None:
            raise InvalidInputError(f"{repo.ref.repo_id}@{revision} has no .safetensors weights.")
        return {"sha": commit.oid, **index.to_json()}

    return await run_in_threadpool(run)


@router.get("/diff")
async def diff(request: Request, namespace: str, name: str, old: str, new: str) -> dict[str, Any]:
    """Compare the weights of revisions `old` and `new`: tensors added/removed/changed, per-layer summary."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)
    result = await run_in_threadpool(diff_revisions, reg, repo, old, new)
    return {"old": old, "new": new, **result.to_json()}


@router.get("/card")
async def card(request: Request, namespace: str, name: str, revision: str = "main") -> dict[str, Any]:
    """The version's README.md, or the card Vitrine renders for a version pushed without one."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)
    return await run_in_threadpool(lambda: model_card(reg, repo, revision, endpoint=base_url(request)))
