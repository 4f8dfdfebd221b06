"""Request-scoped helpers shared by routes: the registry, the caller, the repo named by the path."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from registry import auth
from registry.auth import Principal
from registry.core import Registry
from registry.errors import InvalidInputError
from registry.names import RepoRef, check_repo_type, parse_repo_id
from registry.repos import RepoRecord, open_repo

PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def registry_of(request: Request) -> Registry:
    """The app's Registry."""
    return request.app.state.registry  # type: ignore[no-any-return]


def token_of(request: Request) -> str | None:
    """The bearer token sent with the request, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def principal_of(request: Request) -> Principal | None:
    """The authenticated caller (None when anonymous); an unknown token is a 401."""
    if not hasattr(request.state, "principal"):
        request.state.principal = await run_in_threadpool(auth.authenticate, registry_of(request), token_of(request))
    return request.state.principal  # type: ignore[no-any-return]


def repo_ref(plural: str, namespace: str, name: str) -> RepoRef:
    """RepoRef from URL parts (`models`/`datasets`/`spaces`, namespace, name)."""
    repo_type = PLURALS.get(plural)
    if repo_type is None:
        raise InvalidInputError(f"Invalid repo type {plural!r}: expected models, datasets or spaces.")
    return parse_repo_id(f"{namespace}/{name}", check_repo_type(repo_type))


def base_url(request: Request) -> str:
    """The hub's external base URL, without trailing slash."""
    configured = registry_of(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def repo_url(request: Request, ref: RepoRef) -> str:
    """The repo's web URL, which huggingface_hub parses back into type and id."""
    return f"{base_url(request)}/{URL_PREFIX[ref.type]}{ref.repo_id}"


async def repo_for(request: Request, plural: str, namespace: str, name: str, *, write: bool = False) -> RepoRecord:
    """The repo named by the URL, checked against the caller (see `open_repo`), resolved off the event loop."""
    ref = repo_ref(plural, namespace, name)
    return await run_in_threadpool(open_repo, registry_of(request), ref, await principal_of(request), write=write)
