"""The Xet protocol: access tokens on the hub's repo API, and the CAS (xorbs, shards, dedupe, reconstructions).

The CAS lives under `/api/xet` of the hub itself (the `casUrl` tokens name); its bearer is a Xet access token.
Routes newer clients try first and this hub does not implement (`/v2/...`) answer 404, so they fall back to v1.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hub.blobstream import presigning_store
from hub.bodies import read_body
from hub.deps import base_url, open_repo, principal_of, registry_of, repo_ref, token_of
from hub.errors import error_response
from hub.routes.vitrine import stats_of
from registry.core import Registry
from registry.discussions import check_can_participate
from registry.repos import load_version
from registry.errors import ForbiddenError, InvalidInputError, PayloadTooLargeError
from registry.xet import store, tokens
from registry.xet.hashes import str_to_hash
from registry.xet.shards import MAX_SHARD_BYTES
from registry.xet.xorbs import MAX_XORB_BODY, XorbInfo, XorbParser

router = APIRouter()

CAS = "/api/xet"

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


def cas_url(request: Request) -> str:
    """The CAS base URL clients are given (`casUrl`)."""
    return base_url(request) + CAS


def read_token_route(request: Request, repo_type: str, repo_id: str, revision: str) -> str:
    """The URL a downloader refreshes its read token at (what resolve advertises with `rel="xet-auth"`)."""
    return f"{base_url(request)}/api/{repo_type}s/{repo_id}/xet-read-token/{revision}"


async def _token(request: Request, plural: str, namespace: str, name: str, revision: str, *, write: bool) -> Response:
    reg, ref = registry_of(request), repo_ref(plural, namespace, name)
    principal = await principal_of(request)
    # An upload into a pull request needs only what opening one needs (a write-role token that can read the repo);
    # whether its files land anywhere is `registry.commits.commit()`'s to decide, as for LFS.
    pr = write and (request.query_params.get("create_pr", "").lower() in ("1", "true")
                    or revision == "None" or revision.startswith("refs/pr/"))
    repo = await run_in_threadpool(open_repo, reg, ref, principal, write=write and not pr)
    if pr:
        check_can_participate(principal)
    if not write:
        await run_in_threadpool(load_version, reg, repo, revision)  # a revision that does not exist is a 404
    token, expires = tokens.issue(reg, repo_pk=repo.pk, write=write, pr=pr,
                                  user=principal.user if principal is not None else None)
    cas = cas_url(request)
    headers = {"X-Xet-Cas-Url": cas, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": str(expires),
               "Cache-Control": "no-store"}
    return JSONResponse({"accessToken": token, "exp": expires, "casUrl": cas}, headers=headers)


@router.get("/api/{plural}/{namespace}/{name}/xet-write-token/{revision:path}")
async def xet_write_token(request: Request, plural: str, namespace: str, name: str, revision: str) -> Response:
    """A short-lived Xet token that may upload to this repo (`?create_pr=1`: for a pull request)."""
    return await _token(request, plural, namespace, name, revision, write=True)


@router.get("/api/{plural}/{namespace}/{name}/xet-read-token/{revision:path}")
async def xet_read_token(request: Request, plural: str, namespace: str, name: str, revision: str) -> Response:
    """A short-lived Xet token that may download this repo's Xet files."""
    return await _token(request, plural, namespace, name, revision, write=False)


def _grant(request: Request, *, write: bool = False) -> tokens.XetGrant:
    return tokens.check(registry_of(request), token_of(request), write=write)


def _check_prefix(prefix: str, expected: str) -> None:
    if prefix != expected:
        raise InvalidInputError(f"Unknown prefix {prefix!r}: expected {expected!r}.")


@router.post(CAS + "/v1/xorbs/{prefix}/{xorb_hash}")
async def upload_xorb(request: Request, prefix: str, xorb_hash: str) -> dict[str, Any]:
    """Receive one xorb; stored only once every chunk decompresses and the chunks hash to `xorb_hash`."""
    reg = registry_of(request)
    grant = await run_in_threadpool(_grant, request, write=True)
    _check_prefix(prefix, "default")
    parser = XorbParser(str_to_hash(xorb_hash))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_XORB_BODY:
        raise PayloadTooLargeError(f"A xorb is at most {MAX_XORB_BODY} bytes; this one announces {declared}.")
    done: list[XorbInfo] = []

    async def verified() -> AsyncIterator[bytes]:
        received = 0
        async for piece in request.stream():
            received += len(piece)
            if received > MAX_XORB_BODY:
                raise PayloadTooLargeError(f"A xorb is at most {MAX_XORB_BODY} bytes.")
            parser.feed(piece)
            yield piece
        # Raised before the stream ends, a bad xorb aborts the pending blob: nothing of it is ever visible.
        done.append(parser.finish())

    stored = await reg.blobs.put_async_stream(verified(), max_size=MAX_XORB_BODY)
    inserted = await run_in_threadpool(store.record_xorb, reg, grant, done[0], stored.oid)
    stats_of(request).update(xet_xorbs_received=1, xet_xorb_bytes_received=stored.size,
                             xet_xorbs_inserted=int(inserted))
    return {"was_inserted": inserted}


def _link_sig(reg: Registry, xorb_hash: str, first: int, last: int, expires: int) -> str:
    message = f"xet-xorb:{xorb_hash}:{first}:{last}:{expires}"
    return hmac.new(reg.secret, message.encode(), hashlib.sha256).hexdigest()


def _xorb_link(request: Request, fetch: store.FetchRange, expires: int) -> str:
    sig = _link_sig(registry_of(request), fetch.xorb, fetch.first, fetch.last, expires)
    return (f"{cas_url(request)}/v1/xorbs/default/{fetch.xorb}?first={fetch.first}&last={fetch.last}"
            f"&expires={expires}&sig={sig}")


@router.get(CAS + "/v1/xorbs/{prefix}/{xorb_hash}")
async def download_xorb(request: Request, prefix: str, xorb_hash: str) -> Response:
    """Bytes of a xorb through a signed link a reconstruction gave (`Range` within the signed range)."""
    reg = registry_of(request)
    _check_prefix(prefix, "default")
    str_to_hash(xorb_hash)
    q = request.query_params
    try:
        first, last, expires = int(q.get("first", "")), int(q.get("last", "")), int(q.get("expires", ""))
    except ValueError:
        raise ForbiddenError("Invalid xorb link: ask the reconstruction API for a new one.") from None
    valid = hmac.compare_digest(_link_sig(reg, xorb_hash, first, last, expires), q.get("sig", ""))
    if not valid or expires < time.time():
        raise ForbiddenError("Xorb link is invalid or has expired; ask the reconstruction API for a new one.")
    asked = request.headers.get("range", f"bytes={first}-{last}")
    m = _RANGE_RE.match(asked.replace(" ", ""))
    if m is None or not m.group(2) or int(m.group(1)) < first or int(m.group(2)) > last:
        raise ForbiddenError(f"This link serves bytes {first}-{last} of the xorb only; send Range: bytes={first}-{last}.")
    blob = await run_in_threadpool(store.xorb_blob, reg, xorb_hash)
    if blob is None:
        raise store.XetNotFoundError(f"Xorb {xorb_hash} not found.")
    oid, length = blob
    start, end = int(m.group(1)), int(m.group(2))
    if end >= length:
        raise InvalidInputError(f"Range {asked!r} runs past the xorb's {length} bytes.")
    fh = await run_in_threadpool(reg.blobs.open_range, oid, start, end)

    def body() -> Iterator[bytes]:
        # Iterated in a worker thread by Starlette; a file or an S3 range read alike, 1 MiB at a time.
        with fh:
            left = end - start + 1
            while left > 0:
                piece = fh.read(min(left, 1 << 20))
                if not piece:
                    return
                left -= len(piece)
                yield piece

    return StreamingResponse(body(), status_code=206, media_type="application/octet-stream", headers={
        "Content-Range": f"bytes {start}-{end}/{length}", "Content-Length": str(end - start + 1),
        "Accept-Ranges": "bytes"})


@router.post(CAS + "/v1/shards")
async def upload_shard(request: Request) -> dict[str, Any]:
    """Register a shard's files: verified against stored xorbs, each rebuilt and checked against its sha256."""
    reg = registry_of(request)
    grant = await run_in_threadpool(_grant, request, write=True)
    data = await read_body(request, what="shard", limit=MAX_SHARD_BYTES)
    result = await run_in_threadpool(store.register_shard, reg, grant, data)
    stats_of(request).update(xet_shards_received=1)
    return {"result": result}


@router.get(CAS + "/v1/chunks/{prefix}/{chunk_hash}")
async def query_chunk(request: Request, prefix: str, chunk_hash: str) -> Response:
    """Global dedupe: a shard listing stored xorbs holding this chunk that the token may read, else 404."""
    reg = registry_of(request)
    grant = await run_in_threadpool(_grant, request)
    if prefix not in ("default", "default-merkledb"):  # hf_xet asks under `default`, the spec says the other
        raise InvalidInputError(f"Unknown prefix {prefix!r}: expected 'default-merkledb'.")
    shard = await run_in_threadpool(store.dedupe_shard, reg, grant, chunk_hash)
    stats_of(request).update(xet_dedupe_hits=1)
    return Response(shard, media_type="application/octet-stream")


@router.get(CAS + "/v1/reconstructions/{file_hash}")
async def get_reconstruction(request: Request, file_hash: str) -> Response:
    """How to rebuild a file (or the `Range` of it) from xorb ranges, each with a signed link."""
    reg = registry_of(request)
    grant = await run_in_threadpool(_grant, request)
    f = await run_in_threadpool(store.readable_file, reg, grant, file_hash)
    stats_of(request).update(xet_reconstructions=1)
    first, last = 0, f.size - 1
    asked = request.headers.get("range")
    if asked is not None:
        m = _RANGE_RE.match(asked.replace(" ", ""))
        if m is None:
            raise InvalidInputError(f"Invalid Range header {asked!r}: expected bytes=START-END.")
        first = int(m.group(1))
        last = min(int(m.group(2)), f.size - 1) if m.group(2) else f.size - 1
        if first > last and first < f.size:
            raise InvalidInputError(f"Invalid Range header {asked!r}: the end comes before the start.")
    if first >= f.size:
        return error_response(request, 416, "RangeNotSatisfiable",
                              f"Range starts at byte {first}; the file has {f.size} bytes.",
                              headers={"Content-Range": f"bytes */{f.size}"})
    offset, terms, fetches = await run_in_threadpool(store.reconstruction, reg, f, first, last)
    expires = int(time.time()) + reg.settings.xet_token_ttl_s
    # With presigned downloads, hf_xet fetches `url_range` of a xorb it may read whole straight from the bucket.
    bucket = presigning_store(reg, "download")
    direct = {} if bucket is None else await run_in_threadpool(store.whole_xorb_blobs, reg, grant,
                                                               [x.xorb for x in fetches])
    fetch_info: dict[str, list[dict[str, Any]]] = {}
    for fetch in fetches:
        fetch_info.setdefault(fetch.xorb, []).append({
            "range": {"start": fetch.start, "end": fetch.end},
            "url": _xorb_link(request, fetch, expires) if bucket is None or fetch.xorb not in direct else
            bucket.presign_get(direct[fetch.xorb], ttl=reg.settings.xet_token_ttl_s),
            "url_range": {"start": fetch.first, "end": fetch.last},
        })
    return JSONResponse({"offset_into_first_range": offset, "terms": terms, "fetch_info": fetch_info})


@router.api_route(CAS + "/{rest:path}", methods=["GET", "POST", "PUT", "HEAD"])
async def cas_other(request: Request, rest: str) -> Response:
    """Any other CAS route (`/v2/...`, xorb grants): a 404, so clients fall back to the v1 routes above."""
    return error_response(request, 404, "NotFound", f"{CAS}/{rest} is not implemented by this hub; use the v1 API.")


def xet_headers(request: Request, repo_type: str, repo_id: str, commit: str, sha256: str) -> dict[str, str]:
    """Headers resolve adds for a file uploaded through Xet: its Xet hash and where to get a read token."""
    f = store.file_by_sha256(registry_of(request), sha256)
    if f is None:
        return {}
    route = read_token_route(request, repo_type, repo_id, commit)
    return {"X-Xet-Hash": f.file_hash, "X-Xet-Refresh-Route": route, "Link": f'<{route}>; rel="xet-auth"'}

