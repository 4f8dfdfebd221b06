"""Request-scoped helpers shared by routes: the registry, the caller, the repo named by the path."""

from __future__ import annotations

from contextvars import ContextVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from registry import auth, repos
from registry.auth import Principal
from registry.core import Registry
from registry.errors import InvalidInputError, RepoNotFoundError
from registry.names import RepoRef, check_repo_type, parse_repo_id
from registry.repos import RepoMovedError, RepoRecord

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


# The request being answered: a repo found at its old name redirects to the same URL at its new one.
_current: ContextVar[Request | None] = ContextVar("vitrine_request", default=None)


async def principal_of(request: Request) -> Principal | None:
    """The authenticated caller (None when anonymous); an unknown token is a 401."""
    _current.set(request)
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


def moved_location(request: Request, moved: RepoMovedError) -> str | None:
    """The path (relative, as the Hub sends it: the client follows those on resolve) of `request` with the moved
    repo's old id replaced by its new one (None if the path has no id)."""
    path = request.url.path
    prefix = "" if moved.old.type == "model" else f"/{moved.old.type}s"
    for old in (f"/{moved.old.repo_id}", f"/{request.path_params.get('namespace')}/{request.path_params.get('name')}"):
        for start in ("/api" + ("/models" if moved.old.type == "model" else f"/{moved.old.type}s"), prefix):
            head = start + old
            if path.lower().startswith(head.lower()) and (len(path) == len(head) or path[len(head)] in "/."):
                new_start = start + f"/{moved.new.repo_id}"
                query = request.url.query
                return new_start + path[len(head):] + (f"?{query}" if query else "")
    return None


def open_repo(reg: Registry, ref: RepoRef, principal: Principal | None, *, write: bool = False) -> RepoRecord:
    """`registry.repos.open_repo`; a moved repo's old name answers a 307 redirect to the same URL at its new name."""
    try:
        return repos.open_repo(reg, ref, principal, write=write)
    except RepoMovedError as moved:
        request = _current.get()
        location = moved_location(request, moved) if request is not None else None
        if location is None:
            raise RepoNotFoundError(ref.repo_id, ref.type) from None
        raise HTTPException(307, detail=f"Repository moved to {moved.new.repo_id}",
                            headers={"Location": location}) from None


async def repo_for(request: Request, plural: str, namespace: str, name: str, *, write: bool = False) -> RepoRecord:
    """The repo named by the URL, checked against the caller (see `open_repo`), resolved off the event loop."""
    ref = repo_ref(plural, namespace, name)
    return await run_in_threadpool(open_repo, registry_of(request), ref, await principal_of(request), write=write)
