"""The Hub's human URLs (`/{owner}/{name}`, `/datasets/...`, `/tree/`, `/blob/`, `/commit/`): a browser is sent
to that page of the console; an API client (no text/html in Accept) never matches these routes and gets what
it got before."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import Scope

from hub.deps import registry_of

# First path segments that are never a model's owner: the API, and the other repo types' prefixes.
_RESERVED = frozenset({"api", "datasets", "spaces"})


class BrowserRoute(APIRoute):
    """A route that matches only a browser's GET (Accept names text/html) outside the API's own paths."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match as usual, but never for API clients, other methods or reserved first segments (`/api/...`)."""
        if scope.get("type") != "http" or scope.get("method") != "GET":
            return Match.NONE, {}
        if "text/html" not in Headers(scope=scope).get("accept", ""):
            return Match.NONE, {}
        match, child = super().matches(scope)
        if match is Match.FULL and child["path_params"].get("owner") in _RESERVED and self.path.startswith("/{owner}"):
            return Match.NONE, {}
        return match, child


router = APIRouter(route_class=BrowserRoute, include_in_schema=False)


def console_page(request: Request, page: str, repo_id: str, **params: str | None) -> RedirectResponse:
    """A redirect to the console's `page` for `repo_id`, with the other query parameters that are set."""
    base = registry_of(request).settings.console_url.rstrip("/")
    query: dict[str, Any] = {"page": page, "repo": repo_id, **{k: v for k, v in params.items() if v}}
    return RedirectResponse(f"{base}/?{urlencode(query)}", status_code=303)


@router.get("/datasets/{owner}/{name}")
@router.get("/datasets/{owner}/{name}/tree/{revision}")
@router.get("/datasets/{owner}/{name}/tree/{revision}/{path:path}")
@router.get("/datasets/{owner}/{name}/blob/{revision}/{path:path}")
@router.get("/datasets/{owner}/{name}/commit/{revision}")
async def dataset_page(request: Request, owner: str, name: str, revision: str | None = None,
                       path: str | None = None) -> RedirectResponse:
    """A dataset's page, at a revision or commit, in the console."""
    return console_page(request, "Datasets", f"{owner}/{name}", revision=revision, path=path)


@router.get("/{owner}/{name}")
@router.get("/{owner}/{name}/tree/{revision}")
@router.get("/{owner}/{name}/tree/{revision}/{path:path}")
@router.get("/{owner}/{name}/blob/{revision}/{path:path}")
@router.get("/{owner}/{name}/commit/{revision}")
async def model_page(request: Request, owner: str, name: str, revision: str | None = None,
                     path: str | None = None) -> RedirectResponse:
    """A model's page, at a revision or commit, in the console."""
    return console_page(request, "Models", f"{owner}/{name}", revision=revision, path=path)
