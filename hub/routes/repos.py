"""Repo lifecycle and info: whoami, create, delete, move, settings, info, listings, YAML validation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.errors import error_response
from hub.deps import base_url, open_repo, principal_of, registry_of, repo_for, repo_ref, repo_url
from hub.serialize import iso, repo_info, repo_summary
from registry import auth, repos
from registry.modelmeta import card_metadata_errors, parse_card
from registry.versions import read_version
from registry.errors import ForbiddenError, InvalidInputError, UnauthorizedError
from registry.names import check_expand, check_repo_type, parse_repo_id

router = APIRouter()


@router.get("/api/whoami-v2")
async def whoami(request: Request) -> dict[str, Any]:
    """Who the token belongs to, its role and the user's organisations."""
    principal = await principal_of(request)
    if principal is None:
        raise UnauthorizedError("Invalid credentials in Authorization header")
    return auth.whoami(registry_of(request), principal)


def _body_str(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"Field {key!r} must be a non-empty string.")
    return value


def _target(body: dict[str, Any], principal: auth.Principal) -> tuple[str, str]:
    name = _body_str(body, "name", required=True)
    assert name is not None
    organization = _body_str(body, "organization")
    # huggingface_hub sends `name` and `organization` apart; a `namespace/name` in `name` alone is accepted too.
    full = name
    if organization is None and "/" in name:
        organization, name = name.split("/", 1)  # an empty namespace is refused by parse_repo_id
    if "/" in name:
        raise InvalidInputError(f"Invalid name {full!r}: expected a repo name, or 'namespace/name' without "
                                "'organization'.")
    return (principal.user if organization is None else organization), name


async def _signed_in(request: Request, action: str) -> auth.Principal:
    """The caller, who must have sent a valid token; checked before any body is read."""
    principal = await principal_of(request)
    if principal is None:
        raise UnauthorizedError(f"You must be authenticated (HF_TOKEN) to {action}.")
    return principal


_REPO_FIELDS = {"name": {"type": "string"}, "organization": {"type": "string"},
                "type": {"type": "string", "enum": ["model", "dataset", "space"]}}
_VISIBILITY_FIELDS = {"private": {"type": "boolean"}, "visibility": {"type": "string", "enum": ["private", "public"]}}


def _visibility(body: dict[str, Any]) -> bool | None:
    """Requested privacy: `visibility` ("private"/"public", sent by huggingface_hub 1.x+) or legacy `private`."""
    if body.get("visibility") is not None:
        if body["visibility"] not in ("private", "public"):
            raise InvalidInputError("Field 'visibility' must be 'private' or 'public'.")
        return bool(body["visibility"] == "private")
    private = body.get("private")
    if private is not None and not isinstance(private, bool):
        raise InvalidInputError("Field 'private' must be a boolean.")
    return private


@router.post("/api/repos/create", openapi_extra=json_body_doc(
    {**_REPO_FIELDS, **_VISIBILITY_FIELDS, "sdk": {"type": "string"}}, required=("name",)))
async def create_repo(request: Request) -> Response:
    """Create a model, dataset or Space repo (409 with its `url` if it exists)."""
    principal = await _signed_in(request, "create a repo")
    body = await json_object(request, what="repo creation body")
    namespace, name = _target(body, principal)
    ref = parse_repo_id(f"{namespace}/{name}", check_repo_type(body.get("type")))
    auth.check_can_write(principal, ref.namespace)
    private = _visibility(body)
    url = repo_url(request, ref)
    await run_in_threadpool(
        lambda: repos.create_repo(registry_of(request), ref, author=principal.user, private=bool(private),
                                  sdk=body.get("sdk"), url=url, seed_readme=True)
    )
    return JSONResponse({"url": url, "name": ref.repo_id, "id": ref.repo_id})


@router.post("/api/{plural}/{namespace}/{name}/duplicate", openapi_extra=json_body_doc(
    {"repository": {"type": "string"}, **_VISIBILITY_FIELDS}, required=("repository",)))
async def duplicate_repo(request: Request, plural: str, namespace: str, name: str) -> Response:
    """Copy a repo's files at `main` into a new repo `repository` (`duplicate_repo`); 409 with its `url` if it exists."""
    source = await repo_for(request, plural, namespace, name)
    principal = await _signed_in(request, "duplicate a repo")
    body = await json_object(request, what="duplicate body")
    target_id = body.get("repository")
    if not isinstance(target_id, str):
        raise InvalidInputError("Field 'repository' must be a string 'namespace/name'.")
    target = parse_repo_id(target_id, source.ref.type)
    url = repo_url(request, target)
    await run_in_threadpool(lambda: repos.duplicate_repo(registry_of(request), source, target, principal,
                                                         private=_visibility(body), url=url))
    return JSONResponse({"url": url})


@router.get("/api/{plural}/{namespace}/{name}/lfs-files")
async def list_lfs_files(request: Request, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
    """The LFS objects the repo keeps, with the path and time each first arrived (writers only, as on the Hub)."""
    repo = await repo_for(request, plural, namespace, name, write=True)
    found = await run_in_threadpool(repos.lfs_files, registry_of(request), repo)
    return [{"fileOid": f.oid, "oid": f.git_oid, "filename": f.path, "size": f.size, "pushedAt": iso(f.pushed_at),
             "ref": None} for f in found]


@router.post("/api/{plural}/{namespace}/{name}/lfs-files/batch", openapi_extra=json_body_doc(
    {"deletions": {"type": "object", "properties": {"sha": {"type": "array", "items": {"type": "string"}},
                                                    "rewriteHistory": {"type": "boolean"}}}},
    required=("deletions",)))
async def delete_lfs_files(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Permanently delete LFS objects from every revision of the repo (`permanently_delete_lfs_files`); writers only."""
    repo = await repo_for(request, plural, namespace, name, write=True)
    body = await json_object(request, what="LFS files deletion body")
    deletions = body.get("deletions")
    shas = deletions.get("sha") if isinstance(deletions, dict) else None
    if not isinstance(shas, list) or not all(isinstance(s, str) for s in shas):
        raise InvalidInputError("Field 'deletions.sha' must be a list of sha256 strings.")
    freed = await run_in_threadpool(repos.permanently_delete_lfs_files, registry_of(request), repo, shas)
    return {"deleted": len(shas), "freed": len(freed)}


@router.post("/api/{plural}/{namespace}/{name}/like")
async def like(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Like a repo the caller can read (`HfApi.like`)."""
    principal = await _signed_in(request, "like a repo")
    repo = await repo_for(request, plural, namespace, name)
    await run_in_threadpool(repos.like, registry_of(request), repo, principal.user)
    return {"liked": True}


@router.delete("/api/{plural}/{namespace}/{name}/like")
async def unlike(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Stop liking a repo (`HfApi.unlike`)."""
    principal = await _signed_in(request, "unlike a repo")
    repo = await repo_for(request, plural, namespace, name)
    await run_in_threadpool(repos.unlike, registry_of(request), repo, principal.user)
    return {"liked": False}


@router.get("/api/{plural}/{namespace}/{name}/likers")
async def list_likers(request: Request, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
    """Users who like the repo (`HfApi.list_repo_likers`)."""
    repo = await repo_for(request, plural, namespace, name)
    users = await run_in_threadpool(repos.likers, registry_of(request), repo)
    return [{"user": u, "fullname": u, "type": "user", "isPro": False, "avatarUrl": ""} for u in users]


@router.get("/api/users/{user}/likes")
async def list_liked_repos(request: Request, user: str) -> list[dict[str, Any]]:
    """The repos `user` likes that the caller may see (`HfApi.list_liked_repos`)."""
    found = await run_in_threadpool(repos.liked_repos, registry_of(request), user, await principal_of(request))
    return [{"createdAt": iso(at), "repo": {"name": r.ref.repo_id, "type": r.ref.type}} for r, at in found]


async def _storage_listing(request: Request, namespace: str) -> list[dict[str, Any]]:
    reg, principal = registry_of(request), await _signed_in(request, "list your repos")
    if not principal.may_read_namespace(namespace):
        raise ForbiddenError(f"User {principal.user!r} is not a member of {namespace!r}.")

    def run() -> list[dict[str, Any]]:
        found = [r for t in ("model", "dataset", "space")
                 for r in repos.list_repos(reg, t, viewer=principal, author=namespace)]
        return [{"id": r.ref.repo_id, "type": r.ref.type, "updatedAt": iso(r.updated_at),
                 "visibility": "private" if r.private else "public", "storage": repos.storage_of(reg, r)}
                for r in found]

    return await run_in_threadpool(run)


@router.get("/api/settings/repositories")
async def list_my_repos(request: Request) -> list[dict[str, Any]]:
    """The caller's own repos with the storage each keeps (`list_user_repos`, `hf repos ls`)."""
    principal = await _signed_in(request, "list your repos")
    return await _storage_listing(request, principal.user)


@router.get("/api/organizations/{namespace}/settings/repositories")
async def list_org_repos(request: Request, namespace: str) -> list[dict[str, Any]]:
    """An organisation's repos with the storage each keeps; for its members."""
    return await _storage_listing(request, namespace)


@router.delete("/api/repos/delete", openapi_extra=json_body_doc(_REPO_FIELDS, required=("name",)))
async def delete_repo(request: Request) -> dict[str, Any]:
    """Delete a repo."""
    principal = await _signed_in(request, "delete a repo")
    body = await json_object(request, what="repo deletion body")
    namespace, name = _target(body, principal)
    ref = parse_repo_id(f"{namespace}/{name}", check_repo_type(body.get("type")))
    reg = registry_of(request)
    await run_in_threadpool(open_repo, reg, ref, principal, write=True)
    await run_in_threadpool(repos.delete_repo, reg, ref)
    return {"deleted": ref.repo_id}


@router.post("/api/repos/move", openapi_extra=json_body_doc(
    {"fromRepo": {"type": "string"}, "toRepo": {"type": "string"}, "type": _REPO_FIELDS["type"]},
    required=("fromRepo", "toRepo")))
async def move_repo(request: Request) -> dict[str, Any]:
    """Rename a repo (`fromRepo` -> `toRepo`)."""
    principal = await _signed_in(request, "move a repo")
    body = await json_object(request, what="repo move body")
    repo_type = check_repo_type(body.get("type"))
    src = parse_repo_id(_body_str(body, "fromRepo", required=True) or "", repo_type)
    dst = parse_repo_id(_body_str(body, "toRepo", required=True) or "", repo_type)
    reg = registry_of(request)
    await run_in_threadpool(open_repo, reg, src, principal, write=True)
    auth.check_can_write(principal, dst.namespace)
    await run_in_threadpool(repos.move_repo, reg, src, dst, url=repo_url(request, dst))
    return {"url": repo_url(request, dst)}


@router.put("/api/{plural}/{namespace}/{name}/settings", openapi_extra=json_body_doc(
    {**_VISIBILITY_FIELDS, "gated": {"type": "boolean"}}))
async def update_settings(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Change repo settings: visibility (`private` or `visibility`); `gated` is accepted only as false."""
    ref = repo_ref(plural, namespace, name)
    reg = registry_of(request)
    principal = await _signed_in(request, "change repo settings")
    await run_in_threadpool(open_repo, reg, ref, principal, write=True)
    body = await json_object(request, what="repo settings body")
    private = _visibility(body)
    if body.get("gated") not in (None, False):
        raise InvalidInputError("Gated repos are not supported by this hub.")
    if private is not None:
        await run_in_threadpool(repos.set_private, reg, ref, private)
        request.app.state.endpoints.forget_repo(ref)  # its endpoints check every caller again from now on
    return {"private": private}


def _expand_params(request: Request) -> list[str]:
    # Repeated values, once each and in the order asked: `expand=a&expand=b` or `expand[]=a&expand[]=b`.
    return list(dict.fromkeys([*request.query_params.getlist("expand"), *request.query_params.getlist("expand[]")]))


def _info(reg: Any, ref: Any, principal: Any, revision: str, expand: list[str]) -> dict[str, Any]:
    repo = open_repo(reg, ref, principal)
    return repo_info(repo, read_version(reg, repo, revision), expand=expand)


@router.get("/api/{plural}/{namespace}/{name}")
async def info(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Repo info at `main`; with `expand`, only those properties (and `_id`, `id`)."""
    ref = repo_ref(plural, namespace, name)
    expand = check_expand(ref.type, _expand_params(request))
    return await run_in_threadpool(_info, registry_of(request), ref, await principal_of(request), "main", expand)


@router.get("/api/{plural}/{namespace}/{name}/revision/{revision:path}")
async def info_at(request: Request, plural: str, namespace: str, name: str, revision: str) -> dict[str, Any]:
    """Repo info at any branch, tag or commit; with `expand`, only those properties (and `_id`, `id`)."""
    ref = repo_ref(plural, namespace, name)
    expand = check_expand(ref.type, _expand_params(request))
    return await run_in_threadpool(_info, registry_of(request), ref, await principal_of(request), revision, expand)


def _int_param(request: Request, key: str, default: int | None) -> int | None:
    raw = request.query_params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"Query parameter {key!r} must be an integer.") from None
    if value < 0:
        raise InvalidInputError(f"Query parameter {key!r} must be >= 0.")
    return value


def _listing(reg: Any, plural: str, principal: Any, request: Request) -> tuple[list[dict[str, Any]], bool]:
    params = request.query_params
    repo_type = check_repo_type(plural)
    expand = check_expand(repo_type, _expand_params(request))
    filters = [f for f in params.getlist("filter") for f in f.split(",") if f]
    limit = _int_param(request, "limit", None)
    offset = _int_param(request, "offset", 0) or 0
    page = min(limit, 1000) if limit is not None else 1000
    direction = params.get("direction")
    rows = repos.list_repos(
        reg, repo_type, viewer=principal, search=params.get("search"), author=params.get("author"),
        sort=params.get("sort"), descending=direction != "1",
    )
    found = []
    for repo in rows:
        head = read_version(reg, repo, "main")
        if filters and not all(f in head.tags or f == head.meta.pipeline_tag for f in filters):
            continue
        found.append((repo, head))
    # Only the page is serialised: an expanded listing may ask for every repo's `siblings`.
    return ([repo_summary(repo, head, expand=expand) for repo, head in found[offset: offset + page]],
            len(found) > offset + page)


@router.get("/api/{plural}")
async def list_repos(request: Request, plural: str) -> Response:
    """List repos the caller may see (`search`, `author`, `filter`, `sort`, `limit`, `expand`...), Link-paginated."""
    if plural not in ("models", "datasets", "spaces"):
        raise InvalidInputError(f"Unknown listing {plural!r}.")
    reg = registry_of(request)
    items, more = await run_in_threadpool(_listing, reg, plural, await principal_of(request), request)
    headers = {}
    if more:
        # Every value of a repeated parameter (`expand`, `filter`) carries over to the next page.
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        params.append(("offset", str((_int_param(request, "offset", 0) or 0) + len(items))))
        headers["Link"] = f'<{base_url(request)}/api/{plural}?{urlencode(params)}>; rel="next"'
    return JSONResponse(items, headers=headers)


@router.post("/api/validate-yaml", openapi_extra=json_body_doc(
    {"content": {"type": "string"}, "repoType": {"type": "string"}}, required=("content",)))
async def validate_yaml(request: Request) -> Response:
    """Check a README's YAML header the way the Hub does before a commit that touches it (400 on invalid metadata)."""
    body = await json_object(request, what="validate-yaml body")
    content = body.get("content")
    repo_type = body.get("repoType") or "model"
    if not isinstance(content, str) or not isinstance(repo_type, str):
        raise InvalidInputError("Fields 'content' and 'repoType' must be strings.")
    card = parse_card(content)
    errors = card_metadata_errors(card.data, repo_type=check_repo_type(repo_type))
    if errors:
        return error_response(request, 400, "BadRequest", " ".join(errors),
                              extra={"errors": [{"message": e} for e in errors], "warnings": []})
    # Like the Hub, a broken header is a warning here; the commit still goes through and the card shows it.
    return JSONResponse({"errors": [], "warnings": [{"message": card.error}] if card.error else []})
