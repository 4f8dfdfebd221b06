"""The Git LFS batch API (basic transfer): signed upload links and verified uploads (Xet: hub/routes/xet.py).

With `VITRINE_S3_PRESIGN=upload` (or `all`) the links point at the bucket instead: one presigned PUT, or presigned
parts of a multipart upload (the `multipart` transfer huggingface_hub offers) whose completion comes back here. A PUT
lands at a `tmp/` key; the verify call re-hashes it there, and only then is it copied to the blob's key and linked to
the repo. A multipart upload is completed by the hub under `uploads/`, re-hashed there and kept in place: the blob's
key becomes a pointer to it, as no URL can write it any more.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.blobstream import presigning_store
from hub.bodies import json_body, json_body_doc, json_object
from hub.deps import base_url, open_repo, principal_of, registry_of, repo_ref
from hub.routes.vitrine import stats_of
from registry.discussions import check_can_participate
from registry.blobs import check_oid
from registry.core import Registry
from registry.errors import ForbiddenError, InvalidInputError, PayloadTooLargeError
from registry.lfs import link_uploaded, may_reference
from registry.names import RepoRef

if TYPE_CHECKING:
    from registry.s3store import S3BlobStore

router = APIRouter()


# A verify link outlives its upload link: it is used once the upload, however long, has finished.
VERIFY_TTL = 24 * 3600
# The largest object S3 takes in one PUT; a larger one goes in parts, or through the hub for a basic-only client.
MAX_PUT_BYTES = 5 * 1024**3
MAX_PARTS = 10_000


def _sign(reg: Registry, oid: str, size: int, expires: int, repo_pk: int, *, purpose: str = "") -> str:
    message = f"{purpose}{oid}:{size}:{expires}:{repo_pk}"
    return hmac.new(reg.secret, message.encode(), hashlib.sha256).hexdigest()


def _signed_query(reg: Registry, oid: str, size: int, expires: int, repo_pk: int, *, purpose: str = "") -> str:
    sig = _sign(reg, oid, size, expires, repo_pk, purpose=purpose)
    return f"size={size}&expires={expires}&repo={repo_pk}&sig={sig}"


def _check_link(reg: Registry, request: Request, oid: str, *, purpose: str = "") -> tuple[int, int]:
    """The (size, repo pk) a signed link was issued for; ForbiddenError if the link is forged, altered or expired."""
    q = request.query_params
    try:
        size, expires, repo_pk = int(q.get("size", "")), int(q.get("expires", "")), int(q.get("repo", ""))
    except ValueError:
        raise ForbiddenError("Invalid link: ask the LFS batch API for a new one.") from None
    valid = hmac.compare_digest(_sign(reg, oid, size, expires, repo_pk, purpose=purpose), q.get("sig", ""))
    if not valid or expires < time.time():
        raise ForbiddenError("Link is invalid or has expired; ask the LFS batch API for a new one.")
    return size, repo_pk


async def _lfs_batch(request: Request, ref: RepoRef) -> dict[str, Any]:
    reg = registry_of(request)
    principal = await principal_of(request)
    # Any write-role token that can read the repo may upload: a pull request's files go through here too, and
    # whether they land on a branch is `registry.commits.commit()`'s to decide.
    repo = await run_in_threadpool(open_repo, reg, ref, principal)
    check_can_participate(principal)
    body = await json_body(request, what="LFS batch body")
    if not isinstance(body, dict) or body.get("operation") != "upload" or not isinstance(body.get("objects"), list):
        raise InvalidInputError("Only LFS 'upload' batches with an 'objects' list are supported.")
    transfers = body.get("transfers") or ["basic"]
    if not isinstance(transfers, list) or "basic" not in transfers:
        raise InvalidInputError("This hub speaks the 'basic' LFS transfer only.")
    base, limit = base_url(request), reg.settings.max_upload_bytes
    expires = int(time.time()) + reg.settings.upload_url_ttl
    presign = presigning_store(reg, "upload")
    multipart = "multipart" in transfers
    objects = []
    chosen = "basic"
    for obj in body["objects"]:
        if not isinstance(obj, dict) or not isinstance(obj.get("size"), int) or obj["size"] < 0:
            raise InvalidInputError("Each LFS object needs an 'oid' and a non-negative integer 'size'.")
        oid, size = check_oid(str(obj.get("oid"))), obj["size"]
        item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        if size > limit:
            item["error"] = {"code": 413, "message": f"{oid}: {size} bytes exceeds the upload limit of {limit} bytes."}
        elif not await run_in_threadpool(_citable, reg, principal, repo.pk, oid, size):
            direct = None if presign is None else await run_in_threadpool(
                _presigned_actions, reg, presign, base, oid, size, expires, repo.pk, multipart)
            if direct is not None:
                item["actions"] = direct
                chosen = "multipart" if "chunk_size" in direct["upload"]["header"] else chosen
                objects.append(item)
                continue
            upload = _signed_query(reg, oid, size, expires, repo.pk)
            verify = _signed_query(reg, oid, size, expires + VERIFY_TTL, repo.pk, purpose="verify:")
            item["actions"] = {
                # The client PUTs here without its token, so the link itself carries the permission; the same
                # goes for the verify link (git-lfs sends only the headers given here).
                "upload": {"href": f"{base}/api/lfs/objects/{oid}?{upload}",
                           "header": {}, "expires_in": reg.settings.upload_url_ttl},
                "verify": {"href": f"{base}/api/lfs/objects/{oid}/verify?{verify}", "header": {}},
            }
        objects.append(item)
    return {"transfer": chosen, "objects": objects, "hash_algo": "sha256"}


def _presigned_actions(reg: Registry, store: S3BlobStore, base: str, oid: str, size: int, expires: int,
                       repo_pk: int, multipart: bool) -> dict[str, Any] | None:
    """Upload actions straight to the bucket (at a fresh `tmp/` key), or None when it takes the hub's own link."""
    name, ttl = uuid.uuid4().hex, reg.settings.upload_url_ttl
    verify = _signed_query(reg, oid, size, expires + VERIFY_TTL, repo_pk, purpose=f"verify:{name}:")
    actions: dict[str, Any] = {"verify": {"href": f"{base}/api/lfs/objects/{oid}/verify?{verify}&upload={name}",
                                          "header": {}}}
    chunk = max(reg.settings.s3_presign_part_mb * 1024 * 1024, -(-size // MAX_PARTS))
    if multipart and size > chunk:
        # Kept where it lands (no copy): once the hub completes it, no URL can write it any more.
        parts = -(-size // chunk)
        upload_id, urls = store.uploads.start_multipart(name, oid, parts, ttl=ttl)
        # The completion is posted without the token, like the parts: its link carries the permission.
        done = _signed_query(reg, oid, size, expires + VERIFY_TTL, repo_pk, purpose=f"complete:{name}:{upload_id}:")
        header = {"chunk_size": str(chunk), **{f"{n:05d}": url for n, url in enumerate(urls, start=1)}}
        actions["upload"] = {"href": f"{base}/api/lfs/objects/{oid}/complete?{done}&upload={name}"
                                     f"&upload_id={quote(upload_id, safe='')}",
                             "header": header, "expires_in": ttl}
    elif size <= MAX_PUT_BYTES:
        actions["upload"] = {"href": store.uploads.put_url(name, ttl=ttl), "header": {}, "expires_in": ttl}
    else:
        return None
    return actions


def _adopt(reg: Registry, store: S3BlobStore, name: str, oid: str, size: int, repo_pk: int, *,
           in_place: bool = False) -> int:
    """Verify upload `name` and make it blob `oid` of the repo; its size, 0 if absent.

    `name` is a temp object (copied into place), or with `in_place` a completed multipart upload kept where it is.
    """
    adopt = store.uploads.adopt_upload if in_place else store.uploads.adopt
    stored = adopt(name, expected_oid=oid, expected_size=size)
    if stored is None:
        return 0
    link_uploaded(reg, repo_pk, stored.oid)
    return stored.size


def _uploads_store(reg: Registry) -> S3BlobStore:
    store = presigning_store(reg, "upload")
    if store is None:
        raise ForbiddenError("This hub no longer takes uploads straight to its bucket; ask the LFS batch API for a "
                             "new link.")
    return store


def _citable(reg: Registry, principal: Any, repo_pk: int, oid: str, size: int) -> bool:
    """Whether the client may skip uploading `oid`: we have it, and it may cite it (see registry/lfs.py)."""
    if not (_present(reg, oid, size) and may_reference(reg, principal, repo_pk, oid)):
        return False
    reg.blobs.touch(oid)  # the client will not upload it again: keep gc off it until the commit lands
    return True


def _present(reg: Registry, oid: str, size: int) -> bool:
    return reg.blobs.exists(oid) and reg.blobs.size(oid) == size


_BATCH_DOC = json_body_doc({
    "operation": {"type": "string", "enum": ["upload", "download"]},
    "transfers": {"type": "array", "items": {"type": "string"}},
    "objects": {"type": "array", "items": {"type": "object", "required": ["oid", "size"], "properties": {
        "oid": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "size": {"type": "integer", "minimum": 0}}}},
}, required=("operation", "objects"))


@router.post("/{namespace}/{name}.git/info/lfs/objects/batch", openapi_extra=_BATCH_DOC)
async def lfs_batch_model(request: Request, namespace: str, name: str) -> dict[str, Any]:
    """LFS batch API of a model repo."""
    return await _lfs_batch(request, repo_ref("models", namespace, name))


@router.post("/{plural}/{namespace}/{name}.git/info/lfs/objects/batch", openapi_extra=_BATCH_DOC)
async def lfs_batch(request: Request, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """LFS batch API of a dataset or Space repo."""
    if plural not in ("datasets", "spaces"):
        raise InvalidInputError(f"Unknown repo type prefix {plural!r}.")
    return await _lfs_batch(request, repo_ref(plural, namespace, name))


@router.put("/api/lfs/objects/{oid}")
async def lfs_upload(request: Request, oid: str) -> dict[str, Any]:
    """Receive one LFS object through a signed link; stored only if its sha256 and size match."""
    reg = registry_of(request)
    check_oid(oid)
    size, repo_pk = _check_link(reg, request, oid)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise InvalidInputError(f"Size mismatch: announced {size} bytes, request body has {declared}.")
    if size > reg.settings.max_upload_bytes:
        raise PayloadTooLargeError(f"{size} bytes exceeds the upload limit of {reg.settings.max_upload_bytes} bytes.")
    stored = await reg.blobs.put_async_stream(
        request.stream(), expected_oid=oid, expected_size=size, max_size=size
    )
    await run_in_threadpool(link_uploaded, reg, repo_pk, stored.oid)
    stats_of(request).update(lfs_objects_received=1, lfs_bytes_received=stored.size)
    return {"oid": stored.oid, "size": stored.size}


def _verified(reg: Registry, repo_pk: int, oid: str, size: int) -> bool:
    # Only an object that reached this repo (or a public one) counts: a private object elsewhere stays unseen,
    # and its mtime (gc's grace) untouched.
    return _citable(reg, None, repo_pk, oid, size)


@router.post("/api/lfs/objects/{oid}/verify", openapi_extra=json_body_doc(
    {"oid": {"type": "string"}, "size": {"type": "integer"}}, required=("oid", "size")))
async def lfs_verify(request: Request, oid: str) -> dict[str, Any]:
    """Confirm an LFS object arrived whole, through the signed verify link the batch API gave for it."""
    reg = registry_of(request)
    check_oid(oid)
    name = request.query_params.get("upload")  # set when the object was put straight into the bucket
    signed_size, repo_pk = _check_link(reg, request, oid, purpose="verify:" if name is None else f"verify:{name}:")
    body = await json_object(request, what="LFS verify body")
    size = body.get("size")
    if body.get("oid") != oid or not isinstance(size, int) or size != signed_size:
        raise InvalidInputError("Verify body must repeat the object's 'oid' and the integer 'size' of its link.")
    if name is not None:
        # A retried verify finds the temp object gone (adopted already) and answers from the repo's links.
        received = await run_in_threadpool(_adopt, reg, _uploads_store(reg), name, oid, size, repo_pk)
        if received:
            stats_of(request).update(lfs_objects_received=1, lfs_bytes_received=received)
    if not await run_in_threadpool(_verified, reg, repo_pk, oid, size):
        raise InvalidInputError(f"Object {oid} ({size} bytes) has not been uploaded.")
    return {"oid": oid, "size": size}


@router.post("/api/lfs/objects/{oid}/complete", openapi_extra=json_body_doc({
    "oid": {"type": "string"},
    "parts": {"type": "array", "items": {"type": "object", "required": ["partNumber", "etag"], "properties": {
        "partNumber": {"type": "integer", "minimum": 1}, "etag": {"type": "string"}}}},
}, required=("oid", "parts")))
async def lfs_complete(request: Request, oid: str) -> dict[str, Any]:
    """Complete a multipart upload put straight into the bucket, through the signed link the batch API gave for it.

    The parts become one object under `uploads/`, which is re-hashed there; only an object of the announced size and
    sha256 becomes the blob (its key a pointer to it) and is linked to the repo, anything else is deleted and refused.
    """
    reg = registry_of(request)
    check_oid(oid)
    q = request.query_params
    name, upload_id = q.get("upload", ""), q.get("upload_id", "")
    size, repo_pk = _check_link(reg, request, oid, purpose=f"complete:{name}:{upload_id}:")
    store = _uploads_store(reg)
    body = await json_object(request, what="LFS completion body")
    parts = body.get("parts")
    if body.get("oid") != oid or not isinstance(parts, list) or not parts or not all(
            isinstance(p, dict) and p.get("partNumber") == n and isinstance(p.get("etag"), str) and p["etag"]
            for n, p in enumerate(parts, start=1)):
        raise InvalidInputError("Completion body must repeat the object's 'oid' and list its 'parts' in order, each "
                                "with its 'partNumber' (1, 2, ...) and the 'etag' its upload answered.")
    opened = await run_in_threadpool(store.uploads.complete_multipart, name, oid, upload_id,
                                     [p["etag"] for p in parts])
    received = await run_in_threadpool(_adopt, reg, store, name, oid, size, repo_pk, in_place=True) if opened else 0
    if received:
        stats_of(request).update(lfs_objects_received=1, lfs_bytes_received=received)
    elif not await run_in_threadpool(_verified, reg, repo_pk, oid, size):  # a retried completion: done already
        raise InvalidInputError(f"Object {oid} ({size} bytes) has no upload to complete; ask the LFS batch API for a "
                                "new link.")
    return {"oid": oid, "size": size}
