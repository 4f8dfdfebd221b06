"""Reading files: resolve (HEAD/GET with ranges), tree listings and paths-info."""

from __future__ import annotations

import base64
import bisect
import mimetypes
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hub.bodies import form_body, json_object
from hub.blobstream import StoreBlobResponse, bucket_redirect, presigning_store
from hub.deps import base_url, open_repo, principal_of, registry_of, repo_ref
from hub.serialize import file_item, folder_item
from hub.routes.xet import xet_headers
from registry.commits import CommitRecord
from registry.repos import RepoRecord, check_not_purged, count_download, counts_as_download, last_changes, load_version
from registry.core import Registry
from registry.errors import EntryNotFoundError, InvalidInputError
from registry.inspect import security_status
from registry.names import RepoRef, check_folder, check_path
from registry.trees import TreeEntry, folder_oid, list_dir
from registry.xet import store as xet_store

router = APIRouter()


class BlobResponse(FileResponse):
    """A FileResponse reading 1 MiB at a time: far fewer event-loop turns than Starlette's 64 KiB."""

    chunk_size = 1024 * 1024


def _locate(reg: Registry, ref: RepoRef, principal: Any, revision: str, path: str,
            method: str = "HEAD") -> tuple[RepoRecord, CommitRecord, TreeEntry]:
    repo = open_repo(reg, ref, principal)
    check_path(path)
    commit, tree = load_version(reg, repo, revision)
    entry = tree.get(path)
    if entry is None:
        raise EntryNotFoundError(ref.repo_id, path, revision)
    check_not_purged(reg, repo, entry, revision)
    if counts_as_download(method, path, tree):
        count_download(reg, repo)
    return repo, commit, entry


def _cache_headers(repo: RepoRecord, commit: CommitRecord, revision: str) -> dict[str, str]:
    """A file pinned by commit id never changes; a private one may only sit in the caller's own cache."""
    pinned = revision == commit.oid
    if not pinned:
        control = "private, max-age=0, must-revalidate"
    else:
        control = f"{'private' if repo.private else 'public'}, max-age=31536000, immutable"
    # Whether a private file is served at all depends on the token.
    return {"cache-control": control, "vary": "Authorization"} if repo.private else {"cache-control": control}


async def _resolve(request: Request, ref: RepoRef, revision: str, path: str) -> Response:
    reg = registry_of(request)
    repo, commit, entry = await run_in_threadpool(_locate, reg, ref, await principal_of(request), revision, path,
                                                  request.method)
    headers = {"x-repo-commit": commit.oid, "etag": f'"{entry.git_oid}"', **_cache_headers(repo, commit, revision)}
    if entry.lfs:
        headers["x-linked-etag"] = f'"{entry.oid}"'
        headers["x-linked-size"] = str(entry.size)
        # A file uploaded through Xet is also offered to Xet clients (they fetch it from the CAS, not here).
        headers.update(await run_in_threadpool(xet_headers, request, repo.ref.type, repo.ref.repo_id, commit.oid,
                                               entry.oid))
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    # As the Hub does, an LFS file is a redirect to storage (minted only now, after the read check); a small git
    # file is answered here, where it costs less than a second round trip.
    presign = presigning_store(reg, "download") if entry.lfs else None
    if presign is not None:
        return bucket_redirect(presign, entry.oid, ttl=reg.settings.s3_presign_ttl_s, filename=path.rsplit("/", 1)[-1],
                               media_type=media_type, headers=headers)
    local = reg.blobs.local_path(entry.oid)
    if local is None:  # S3 storage, not cached here: stream it (with its Range) rather than fetch it whole
        return StoreBlobResponse(reg.blobs, entry.oid, entry.size, headers=headers, media_type=media_type)
    return BlobResponse(local, headers=headers, media_type=media_type)


@router.api_route("/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
async def resolve_model_file(request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
    """Download a model repo file at a revision (HEAD for metadata; `Range` supported)."""
    return await _resolve(request, repo_ref("models", namespace, name), revision, path)


@router.api_route("/{plural}/{namespace}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
async def resolve_file(request: Request, plural: str, namespace: str, name: str, revision: str, path: str) -> Response:
    """Download a dataset or Space repo file at a revision."""
    if plural not in ("datasets", "spaces"):
        raise InvalidInputError(f"Unknown repo type prefix {plural!r}.")
    return await _resolve(request, repo_ref(plural, namespace, name), revision, path)


# As the Hub pages a tree listing: 1,000 entries a page, 50 with `expand` (each entry then needs its last commit).
TREE_PAGE = 1000
TREE_PAGE_EXPANDED = 50


def _encode_cursor(path: str) -> str:
    """The opaque cursor after `path` (a page's last path, base64url): it says nothing its reader was not shown."""
    return base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        path = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        check_path(path)
    except ValueError:  # binascii.Error, UnicodeDecodeError and InvalidInputError are ValueErrors
        raise InvalidInputError("Invalid tree cursor: pass the `cursor` of the `Link: rel=\"next\"` URL the previous "
                                "page answered, or none for the first page.") from None
    return path


def _tree_limit(value: str | None, expand: bool) -> int:
    if not value:
        return TREE_PAGE_EXPANDED if expand else TREE_PAGE
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= TREE_PAGE:
        raise InvalidInputError(f"Query parameter 'limit' must be an integer from 1 to {TREE_PAGE}.")
    return limit


def _tree(reg: Registry, ref: RepoRef, principal: Any, revision: str, path: str, recursive: bool,
          expand: bool, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    repo = open_repo(reg, ref, principal)  # who may read is settled before the cursor is looked at
    folder = check_folder(path, root_ok=True)
    after = _decode_cursor(cursor) if cursor is not None else None
    commit, tree = load_version(reg, repo, revision)
    files, folders = list_dir(tree, folder, recursive=recursive)
    if folder and not files and not folders:
        raise EntryNotFoundError(ref.repo_id, folder, revision)
    listed = sorted([*((f, None) for f in folders), *((e.path, e) for e in files)], key=lambda item: item[0])
    start = bisect.bisect_right([p for p, _ in listed], after) if after is not None else 0
    page = listed[start:start + limit]
    # Only this page's entries pay for their last commit and folder id.
    last = last_changes(reg, repo, commit, [p for p, _ in page]) if expand else {}
    xet = xet_store.file_hashes(reg, (e.oid for _, e in page if e is not None and e.lfs))
    items = [folder_item(p, folder_oid(tree, p), last_commit=last.get(p)) if e is None else
             file_item(e, last_commit=last.get(p), security=security_status(reg, e) if expand else None,
                       xet_hash=xet.get(e.oid))
             for p, e in page]
    more = start + limit < len(listed)
    return items, (_encode_cursor(page[-1][0]) if more and page else None)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _next_page(request: Request, cursor: str) -> str:
    """This request's URL with `cursor`, its path as the client encoded it (a revision may hold `%2F`)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(request.url.path)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"] + [("cursor", cursor)]
    return f"{base_url(request)}{path}?{urlencode(params)}"


@router.get("/api/{plural}/{namespace}/{name}/tree/{revision}")
@router.get("/api/{plural}/{namespace}/{name}/tree/{revision}/{path:path}")
async def list_tree(request: Request, plural: str, namespace: str, name: str, revision: str, path: str = "") -> Response:
    """List files and folders under `path` (`recursive`, `expand` for last commits), a page at a time as the Hub does.

    `limit` entries a page (1 to 1000; default 1000, 50 with `expand`), in path order; the next page is the
    `Link: <url>; rel="next"` header's URL, whose `cursor` is opaque.
    """
    ref = repo_ref(plural, namespace, name)
    q = request.query_params
    expand = _flag(q.get("expand"))
    limit = _tree_limit(q.get("limit"), expand)
    items, cursor = await run_in_threadpool(
        _tree, registry_of(request), ref, await principal_of(request), revision, path, _flag(q.get("recursive")),
        expand, limit, q.get("cursor"),
    )
    headers = {"link": f'<{_next_page(request, cursor)}>; rel="next"'} if cursor else {}
    return JSONResponse(items, headers=headers)


def _paths_info(reg: Registry, repo: RepoRecord, revision: str, paths: list[str],
                expand: bool) -> list[dict[str, Any]]:
    commit, tree = load_version(reg, repo, revision)
    wanted = [check_folder(p, root_ok=True) for p in paths]
    found: list[tuple[str, TreeEntry | None]] = []
    for p in wanted:
        if p in tree:
            found.append((p, tree[p]))
        elif any(k.startswith(p + "/") for k in tree):
            found.append((p, None))
    last = last_changes(reg, repo, commit, [p for p, _ in found]) if expand else {}
    xet = xet_store.file_hashes(reg, (e.oid for _, e in found if e is not None and e.lfs))
    return [
        file_item(e, last_commit=last.get(p), xet_hash=xet.get(e.oid)) if e is not None else
        folder_item(p, folder_oid(tree, p), last_commit=last.get(p))
        for p, e in found
    ]


_PATHS_INFO_BODY = {"type": "object", "required": ["paths"], "properties": {
    "paths": {"type": "array", "items": {"type": "string"}}, "expand": {"type": "boolean"}}}


@router.post("/api/{plural}/{namespace}/{name}/paths-info/{revision}", openapi_extra={"requestBody": {
    "required": True, "content": {"application/x-www-form-urlencoded": {"schema": _PATHS_INFO_BODY},
                                  "application/json": {"schema": _PATHS_INFO_BODY}}}})
async def paths_info(request: Request, plural: str, namespace: str, name: str, revision: str) -> Response:
    """Info on the given paths that exist at `revision` (form or JSON body: `paths`, `expand`)."""
    reg, ref = registry_of(request), repo_ref(plural, namespace, name)
    # Whether the caller may read the repo is settled before its body is read.
    repo = await run_in_threadpool(open_repo, reg, ref, await principal_of(request))
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await json_object(request, what="paths-info body")
        paths, expand = body.get("paths", []), bool(body.get("expand"))
    else:
        form = await form_body(request, what="paths-info form")
        paths, expand = form.getlist("paths"), _flag(str(form.get("expand", "")))
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise InvalidInputError("'paths' must be a list of strings.")
    items = await run_in_threadpool(_paths_info, reg, repo, revision, paths, expand)
    return JSONResponse(items)
