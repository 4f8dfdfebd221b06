"""Live Gradio demos under /spaces/{owner}/{name}, the Space bundle of a model version, the loaded demos.

URL scheme of a live demo (everything below it is the Gradio app's own: config, gradio_api, assets):
- `/spaces/{owner}/{name}/`: the demo of the head of `main`;
- `/spaces/{owner}/{name}/revision/{rev}/`: pinned to a branch, tag or commit;
- `/spaces/{owner}/{name}/compare/{rev_a}/{rev_b}/`: both versions side by side on the same input;
- `/spaces/{owner}/{name}/?revision=R[&compare=C]` redirects to one of the two above.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from hub.deps import open_repo, principal_of, registry_of, repo_ref
from hub.errors import error_response
from hub.spaces import host_of, render_model_bundle
from registry import auth
from registry.errors import DemoFailedError

_DEMO_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+)"
    r"(?P<mode>/revision/(?P<revision>[^/]+)|/compare/(?P<rev_a>[^/]+)/(?P<rev_b>[^/]+))?"
    r"(?P<rest>/.*)?$"
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    host_of(app)
    yield
    await host_of(app).close()


router = APIRouter(lifespan=_lifespan)


@router.get("/api/vitrine/spaces")
async def live_demos(request: Request) -> dict[str, Any]:
    """Demos loaded in this process (least recently used first), their memory estimates and the budget."""
    return await run_in_threadpool(host_of(request.app).snapshot, await principal_of(request))


@router.get("/api/vitrine/spaces/{namespace}/{name}/bundle")
async def bundle(request: Request, namespace: str, name: str, revision: str = "main",
                 compare: str | None = None) -> dict[str, Any]:
    """The Space files (app.py, requirements.txt, README.md) rendered for a model revision, or two compared."""
    reg = registry_of(request)
    repo = await run_in_threadpool(open_repo, reg, repo_ref("models", namespace, name), await principal_of(request))
    rendered = await run_in_threadpool(render_model_bundle, reg, repo, revision, compare=compare)
    return rendered.to_json()


@dataclass(frozen=True)
class _Target:
    owner: str
    name: str
    revision: str
    compare: str | None
    prefix: str  # the demo's mount point under /spaces
    rest: str | None  # the Gradio app's own path; None when the URL stops at the mount point


def _parse(path: str) -> _Target | None:
    match = _DEMO_PATH.match(path)
    if match is None:
        return None
    owner, name, mode = match["owner"], match["name"], match["mode"] or ""
    revision = match["revision"] or match["rev_a"] or "main"
    return _Target(owner, name, revision, match["rev_b"], f"/{owner}/{name}{mode}", match["rest"])


class LiveSpaces:
    """ASGI app mounted at /spaces: finds the model's live demo and hands it the request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Parse the demo URL, check the caller may read the model, dispatch to its demo."""
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        request = Request(scope, receive)
        target = _parse(scope["path"][len(scope.get("root_path", "")):])
        if target is None or (target.rest or "").startswith("/resolve/"):
            raise StarletteHTTPException(404, "Not Found")
        redirect = _redirect(request, target)
        if redirect is not None:
            await redirect(scope, receive, send)
            return
        reg, host = registry_of(request), host_of(scope["app"])
        ref = repo_ref("models", target.owner, target.name)
        principal = await run_in_threadpool(auth.authenticate, reg, _token(request))
        repo = await run_in_threadpool(open_repo, reg, ref, principal)
        key = await run_in_threadpool(host.resolve, repo, target.revision, target.compare)
        try:
            await host.serve(repo, key, scope, receive, send, prefix=target.prefix,
                             sync_space=target.prefix == f"/{target.owner}/{target.name}")
        except DemoFailedError as exc:
            await error_response(request, 500, "DemoFailed", exc.message)(scope, receive, send)


def _token(request: Request) -> str | None:
    # gradio_client sends its token as X-HF-Authorization, which is what the Hub's Spaces proxy reads.
    for header in ("authorization", "x-hf-authorization"):
        scheme, _, value = request.headers.get(header, "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def _redirect(request: Request, target: _Target) -> RedirectResponse | None:
    # Gradio resolves its assets relative to the page, so a demo lives at a URL ending in "/".
    base = request.scope.get("root_path", "")
    if target.rest is None:
        if request.method not in ("GET", "HEAD"):
            raise StarletteHTTPException(404, "Not Found")
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{base}{target.prefix}/{query}", status_code=307)
    params = parse_qs(request.url.query)
    if target.rest != "/" or target.prefix != f"/{target.owner}/{target.name}" or "revision" not in params:
        return None
    revision = params.pop("revision")[0]
    compare = params.pop("compare", [None])[0]
    mode = f"compare/{quote(revision, safe='')}/{quote(compare, safe='')}" if compare else \
        f"revision/{quote(revision, safe='')}"
    query = f"?{urlencode(params, doseq=True)}" if params else ""
    return RedirectResponse(f"{base}/{target.owner}/{target.name}/{mode}/{query}", status_code=307)


router.mount("/spaces", LiveSpaces(), name="live-spaces")
