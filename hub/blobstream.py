"""Serving a blob that has no local file (S3 storage, not cached): Starlette's FileResponse, reading from the store.

Everything about ranges (`Range`, `If-Range`, 206, 416, multipart/byteranges) stays Starlette's; only where the bytes
come from changes: each seek opens a stream of the blob from that offset, read in a worker thread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

import anyio
from fastapi.responses import FileResponse
from starlette.types import Send

from registry.storage import BlobStore


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
