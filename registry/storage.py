"""What every caller may ask of a blob store, and the one place that builds the store `VITRINE_STORAGE_URL` names.

Two stores keep the same content-addressed layout (`sha256/ab/cd/<oid>`): `LocalBlobStore` (files under the home,
the embedded default) and `S3BlobStore` (an S3-compatible bucket, for several replicas). Callers that need a local
file (model loading, inspection) ask `path()`; an S3 store then materialises the blob in a bounded local cache.
Parquet read with DuckDB or pyarrow goes through `scan_location` instead: a bucket's blob is read by byte range where
it lies, never copied whole. Resolve asks `local_path()` first and streams `open_range()` when no local copy is at hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from registry.blobs import LocalBlobStore, StoredBlob
from registry.errors import InvalidInputError
from registry.settings import Settings


class StaleTemp(Protocol):
    """A leftover of an interrupted write (a temp file, a temp object, an unfinished multipart upload)."""

    def unlink(self, missing_ok: bool = False) -> None:
        """Remove it."""


class BlobStore(Protocol):
    """The methods callers use; `LocalBlobStore` and `S3BlobStore` both provide them."""

    def path(self, oid: str) -> Path:
        """A local file holding blob `oid` (an S3 store fetches it into its cache first)."""
        ...

    def local_path(self, oid: str) -> Path | None:
        """A local file holding blob `oid` if one is at hand without fetching, else None."""
        ...

    def exists(self, oid: str) -> bool:
        """Whether blob `oid` is durably stored."""
        ...

    def size(self, oid: str) -> int:
        """Size in bytes of blob `oid` (FileNotFoundError if absent)."""
        ...

    def open(self, oid: str) -> BinaryIO:
        """Open blob `oid` for reading (seekable)."""
        ...

    def open_range(self, oid: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A stream of blob `oid` from byte `start` on, up to `end` (inclusive) when given (read it in order)."""
        ...

    def read(self, oid: str) -> bytes:
        """Whole content of a (small) blob."""
        ...

    def put_bytes(self, data: bytes, *, expected_oid: str | None = None) -> StoredBlob:
        """Store `data`; returns its sha256, size and git blob id."""
        ...

    def put_chunks(self, chunks: Iterable[bytes], *, expected_oid: str | None = None,
                   expected_size: int | None = None) -> StoredBlob:
        """Store the concatenation of `chunks`, streamed and verified."""
        ...

    async def put_async_stream(self, chunks: AsyncIterable[bytes], *, expected_oid: str | None = None,
                               expected_size: int | None = None, max_size: int | None = None) -> StoredBlob:
        """Store an ASGI request body, verified against the announced oid and size before it becomes visible."""
        ...

    def delete(self, oid: str) -> None:
        """Remove blob `oid` if present."""
        ...

    def iter_oids(self) -> Iterator[str]:
        """Every stored blob oid."""
        ...

    def touch(self, oid: str) -> None:
        """Mark blob `oid` as just used, so `gc` grants it a full grace period."""
        ...

    def age_seconds(self, oid: str) -> float:
        """Seconds since blob `oid` was last written or touched."""
        ...

    def stale_temp_files(self, older_than: float) -> Sequence[StaleTemp]:
        """Leftovers of interrupted writes older than `older_than` seconds."""
        ...

    def verify(self, oid: str) -> bool:
        """Re-hash blob `oid` and say whether it still matches its name."""
        ...


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store `settings.storage_url` names: `file://DIR` (or unset: the home's `blobs/`) or `s3://BUCKET/PREFIX`.

    Raises:
        InvalidInputError: the URL has another scheme or no bucket.
        StorageUnavailableError: the bucket cannot be reached or does not exist (and may not be created).
    """
    url = settings.storage_url
    if not url or url.startswith("file://"):
        return LocalBlobStore(settings.blobs_dir)
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise InvalidInputError(f"VITRINE_STORAGE_URL={url!r}: expected file:///path or s3://bucket/prefix.")
    if not parts.netloc:
        raise InvalidInputError(f"VITRINE_STORAGE_URL={url!r}: name a bucket, as in s3://bucket/prefix.")
    from registry.s3store import S3BlobStore  # boto3 is imported only by hubs that use S3

    return S3BlobStore(parts.netloc, parts.path.strip("/"), cache_dir=settings.home / "blob-cache",
                       cache_bytes=settings.blob_cache_mb * 1024 * 1024, part_bytes=settings.s3_part_mb * 1024 * 1024,
                       create_bucket=settings.s3_create_bucket, presign_endpoint=settings.s3_presign_endpoint)


def scan_location(store: BlobStore, oid: str) -> str | Path:
    """Where DuckDB and pyarrow read blob `oid` in place: its file in a local store, `s3://bucket/key` in a bucket.

    A bucket's blob is then read by byte range (`arrow_source`, the sandbox's DuckDB), never copied whole into the
    local cache; a local store's is its own file, as `path()` gives it.
    """
    if isinstance(store, LocalBlobStore):
        return store.path(oid).resolve()
    from registry.s3store import S3BlobStore

    if isinstance(store, S3BlobStore):
        return store.url(oid)
    return store.path(oid)


def arrow_source(location: str | Path) -> tuple[str, Any]:
    """A `scan_location` as pyarrow opens it: the path, and the filesystem it lies on (None: the local one)."""
    text = str(location)
    if text.startswith("s3://"):
        from registry.s3read import arrow_filesystem

        return text.removeprefix("s3://"), arrow_filesystem()
    return text, None
