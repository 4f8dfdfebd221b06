"""Serving a blob that has no local file (S3 storage, not cached): Starlette's FileResponse, reading from the store.

Everything about ranges (`Range`, `If-Range`, 206, 416, multipart/byteranges) stays Starlette's; only where the bytes
come from changes: each seek opens a stream of the blob from that offset, read in a worker thread.

With `VITRINE_S3_PRESIGN`, the bytes need not pass through the hub at all: `presigning_store` says whether a
direction goes straight to the bucket, and `bucket_redirect` answers the Hub's way, a 302 to a short-lived URL.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

import anyio
from fastapi.responses import FileResponse, Response
from starlette.types import Send

from registry.core import Registry
from registry.storage import BlobStore

if TYPE_CHECKING:
    from registry.s3store import S3BlobStore


class _StoreFile:
    """The async file FileResponse reads: `seek` then `read` in order, from a stream the store opens."""

    def __init__(self, blobs: BlobStore, oid: str) -> None:
        self.blobs = blobs
        self.oid = oid
        self.stream: BinaryIO | None = None

    async def seek(self, offset: int) -> None:
        await self.aclose()
        self.stream = await anyio.to_thread.run_sync(self.blobs.open_range, self.oid, offset)

    async def read(self, size: int) -> bytes:
        if self.stream is None:
            await self.seek(0)
        assert self.stream is not None
        return await anyio.to_thread.run_sync(self.stream.read, size)

    async def aclose(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            await anyio.to_thread.run_sync(stream.close)


class StoreBlobResponse(FileResponse):
    """Blob `oid` of `size` bytes streamed from the blob store, 1 MiB at a time; HEAD touches no storage."""

    chunk_size = 1024 * 1024

    def __init__(self, blobs: BlobStore, oid: str, size: int, *, headers: Mapping[str, str] | None = None,
                 media_type: str | None = None) -> None:
        self.blobs = blobs
        self.oid = oid
        # The size is the tree's; no modification time: the etag (the content's hash) is what If-Range compares.
        fake = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, size, 0, 0, 0))
        super().__init__(oid, headers=headers, media_type=media_type or "application/octet-stream", stat_result=fake)

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        """Only the length: the caller's etag stands, and a blob has no meaningful date."""
        self.headers.setdefault("content-length", str(stat_result.st_size))

    def _should_use_range(self, http_if_range: str) -> bool:
        return not http_if_range.startswith("W/") and http_if_range == self.headers.get("etag")

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        file = _StoreFile(self.blobs, self.oid)
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        # There is no path to hand to the server.
        await super()._handle_simple(send, send_header_only, False)


def presigning_store(reg: Registry, direction: str) -> S3BlobStore | None:
    """The S3 store when `VITRINE_S3_PRESIGN` sends `direction` ("download" or "upload") straight to the bucket."""
    if reg.settings.s3_presign not in (direction, "all"):
        return None
    from registry.s3store import S3BlobStore  # boto3 is imported only by hubs that use S3

    return reg.blobs if isinstance(reg.blobs, S3BlobStore) else None


def bucket_redirect(store: S3BlobStore, oid: str, *, ttl: int, filename: str, media_type: str,
                    headers: Mapping[str, str]) -> Response:
    """A 302 to a presigned GET of blob `oid`, carrying resolve's own headers (clients read them off the redirect).

    The bucket answers the bytes (and `Range`) with the file's name, type and caching; the redirect itself is never
    cached, as its URL expires.
    """
    url = store.presign_get(oid, ttl=ttl, filename=filename, content_type=media_type,
                            cache_control=headers.get("cache-control"))
    return Response(status_code=302, headers={**headers, "location": url, "cache-control": "no-store"})
