"""Live Gradio demos under /spaces/{owner}/{name}, the Space bundle of a model version, the loaded demos.

URL scheme of a live demo (everything below it is the Gradio app's own: config, gradio_api, assets):
- `/spaces/{owner}/{name}/`: the demo of the head of `main`;
- `/spaces/{owner}/{name}/revision/{rev}/`: pinned to a branch, tag or commit;
- `/spaces/{owner}/{name}/compare/{rev_a}/{rev_b}/`: both versions side by side on the same input;
- `/spaces/{owner}/{name}/?revision=R[&compare=C]` redirects to one of the two above.

A browser carries no bearer token (an iframe in the console, a link someone opens), so a caller who may read
the model asks `POST /api/vitrine/spaces/{owner}/{name}/link` for a signed link (registry/demolinks.py). Its
`?__sign=` token is taken once, set as an HttpOnly cookie scoped to that demo's path and dropped from the
URL by a redirect; the cookie then opens that demo's pages, assets and Gradio API calls, re-checked on
every request. Only this mount reads either; no other route accepts them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from hub.deps import base_url, open_repo, principal_of, registry_of, repo_ref, token_of
from hub.errors import error_response
from hub.spaces import host_of, render_model_bundle
from registry import auth
from registry.core import Registry
from registry.demolinks import open_demo_link, sign_demo_link
from registry.errors import DemoFailedError, RepoNotFoundError
from registry.names import RepoRef
from registry.repos import RepoRecord

_DEMO_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+)"
    r"(?P<mode>/revision/(?P<revision>[^/]+)|/compare/(?P<rev_a>[^/]+)/(?P<rev_b>[^/]+))?"
    r"(?P<rest>/.*)?$"
)


# The query parameter a signed link carries (the Hub's name) and the cookie it becomes.
SIGN_PARAM = "__sign"
COOKIE = "vitrine-demo"


class _RedactSignedLinks(logging.Filter):
    """Keeps signed demo tokens out of the access log: `?__sign=<token>` is logged as `?__sign=[redacted]`."""

    _pattern = re.compile(rf"({SIGN_PARAM}=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments (uvicorn logs the path with its query as one of them)."""
        if isinstance(record.args, tuple):
            record.args = tuple(self._pattern.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactSignedLinks) for f in access.filters):
        access.addFilter(_RedactSignedLinks())


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _redact_access_log()  # here, not at import: uvicorn has configured its loggers by the time the app starts
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


@router.post("/api/vitrine/spaces/{namespace}/{name}/link")
async def demo_link(request: Request, response: Response, namespace: str, name: str, revision: str = "main",
                    compare: str | None = None) -> dict[str, Any]:
    """A short-lived signed link to the model's live demo that a browser opens without a token (iframes, links).

    Anonymous callers of a public model get the plain URL (`expiresAt` null): they need no signature.
    """
    reg = registry_of(request)
    principal = await principal_of(request)
    repo = await run_in_threadpool(open_repo, reg, repo_ref("models", namespace, name), principal)
    await run_in_threadpool(host_of(request.app).resolve, repo, revision, compare)  # RevisionNotFound now, not later
    path = _demo_path(repo.ref.repo_id, revision, compare)
    bearer = token_of(request)
    response.headers["Cache-Control"] = "no-store"  # the answer is a credential
    if principal is None or bearer is None:
        return {"url": f"{base_url(request)}{path}", "path": path, "expiresAt": None, "signed": False}
    link = await run_in_threadpool(sign_demo_link, reg, repo, bearer, ttl=reg.settings.demo_link_ttl)
    signed = f"{path}?{urlencode({SIGN_PARAM: link.token})}"
    return {"url": f"{base_url(request)}{signed}", "path": signed, "expiresAt": link.expires, "signed": True}


def _demo_path(repo_id: str, revision: str, compare: str | None) -> str:
    if compare is not None:
        return f"/spaces/{repo_id}/compare/{quote(revision, safe='')}/{quote(compare, safe='')}/"
    return f"/spaces/{repo_id}/" + ("" if revision == "main" else f"revision/{quote(revision, safe='')}/")


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
        if SIGN_PARAM in request.query_params:
            await (await _enter(request, reg, ref, target))(scope, receive, send)
            return
        bearer = _token(request)
        principal = await run_in_threadpool(auth.authenticate, reg, bearer)
        repo = None if bearer else await run_in_threadpool(_from_cookie, reg, request, ref)
        if repo is None:
            repo = await run_in_threadpool(open_repo, reg, ref, principal)
        if repo.private or COOKIE in request.cookies:
            send = _private_answers(send)
        key = await run_in_threadpool(host.resolve, repo, target.revision, target.compare)
        try:
            await host.serve(repo, key, _without_cookie(scope), receive, send, prefix=target.prefix,
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


async def _enter(request: Request, reg: Registry, ref: RepoRef, target: _Target) -> RedirectResponse:
    # A signed link: its token becomes this demo's cookie, and the browser goes on to the URL without it,
    # so the token is neither in the page's URL (history, Referer) nor seen by the demo's code.
    token = request.query_params[SIGN_PARAM]
    _, _, link = await run_in_threadpool(open_demo_link, reg, token, ref)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != SIGN_PARAM]
    clean = request.url.path + (f"?{urlencode(params)}" if params else "")
    response = RedirectResponse(clean, status_code=303)
    https = request.url.scheme == "https" or reg.settings.public_url.startswith("https://")
    # Lax is enough for an iframe of a console on the same site; across sites a browser sends the cookie to an
    # iframe only as SameSite=None, which needs https (Partitioned: keyed to the embedding site, as CHIPS asks).
    same_site = "SameSite=None; Secure; Partitioned" if https else "SameSite=Lax"
    max_age = max(0, link.expires - int(time.time()))
    response.headers.append("set-cookie", f"{COOKIE}={link.token}; Path=/spaces/{target.owner}/{target.name}/; "
                                          f"Max-Age={max_age}; HttpOnly; {same_site}")
    response.headers["cache-control"] = "private, no-store"
    response.headers["referrer-policy"] = "no-referrer"
    return response


def _from_cookie(reg: Registry, request: Request, ref: RepoRef) -> RepoRecord | None:
    # A cookie that no longer opens the repo (expired, revoked, signed for another) is ignored, not an error:
    # the request goes on as anonymous, so a public demo still answers and a private one is a 404.
    for value in _cookie_values(request.headers.get("cookie", "")):
        try:
            return open_demo_link(reg, value, ref)[1]
        except RepoNotFoundError:
            continue
    return None


def _cookie_values(header: str) -> list[str]:
    # Every value of our cookie: a browser may send several of one name (set on different paths).
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return [value.strip() for name, _, value in pairs if name.strip() == COOKIE]


def _without_cookie(scope: Scope) -> Scope:
    # The demo's code has no business with the signed token either (see hub.spaces.host._child_scope).
    headers = []
    for key, value in scope["headers"]:
        if key == b"cookie":
            kept = [c for c in value.decode("latin-1").split(";") if c.strip().partition("=")[0].strip() != COOKIE]
            if not kept:
                continue
            value = ";".join(kept).strip().encode("latin-1")
        headers.append((key, value))
    return dict(scope, headers=headers)


def _private_answers(send: Send) -> Send:
    # A private demo's answers are for one viewer: never kept by a shared cache, never named in a Referer.
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            kept = [d.strip() for d in headers.get("cache-control", "").split(",")
                    if d.strip() and d.strip().lower() != "public"]
            if not any(d.lower() in ("private", "no-store") for d in kept):
                kept.insert(0, "private")
            headers["Cache-Control"] = ", ".join(kept)
            headers["Referrer-Policy"] = "no-referrer"
        await send(message)

    return wrapped


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
