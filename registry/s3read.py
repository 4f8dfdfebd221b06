"""Parquet blobs in an S3 bucket read where they lie: pyarrow's S3 client, and the same as fsspec for DuckDB.

DuckDB (the dataset sandbox) and pyarrow read parquet blobs by byte range through pyarrow's own S3 client, on the
endpoint, region and credentials boto3 finds, so a query fetches the footer and the column chunks it needs instead of
the whole file into the blob cache. Sandbox workers build theirs from the environment they inherit.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.credentials import RefreshableCredentials
from fsspec.implementations.arrow import ArrowFSWrapper

_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE")


def arrow_filesystem() -> Any:
    """pyarrow's `S3FileSystem` on the bucket's endpoint (path-style on an own endpoint such as SeaweedFS or MinIO)."""
    return _arrow_filesystem(tuple(os.environ.get(k) for k in _AWS_ENV))


@lru_cache(maxsize=4)
def _arrow_filesystem(env: tuple[str | None, ...]) -> Any:
    import pyarrow.fs as pafs

    session = boto3.session.Session()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None  # as S3BlobStore does
    client = session.client("s3", region_name=region)
    options: dict[str, Any] = {"region": client.meta.region_name or "us-east-1", "connect_timeout": 10,
                               "request_timeout": 60}
    endpoint = urlsplit(client.meta.endpoint_url)
    if not (endpoint.hostname or "").endswith("amazonaws.com"):
        options.update(endpoint_override=endpoint.netloc + endpoint.path.rstrip("/"), scheme=endpoint.scheme or "https")
    credentials = session.get_credentials()
    # Static keys are handed over; refreshing ones (roles, SSO) are left to pyarrow's own AWS chain, which renews them.
    if credentials is not None and not isinstance(credentials, RefreshableCredentials):
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key)
        if frozen.token:
            options["session_token"] = frozen.token
    return pafs.S3FileSystem(**options)


def duckdb_filesystem() -> Any:
    """`arrow_filesystem` as fsspec, for `register_filesystem`: DuckDB's parquet reader then reads `s3://` by range."""
    return _duckdb_filesystem(tuple(os.environ.get(k) for k in _AWS_ENV))


@lru_cache(maxsize=4)
def _duckdb_filesystem(env: tuple[str | None, ...]) -> Any:
    return _DuckDBFileSystem(_arrow_filesystem(env))


class _DuckDBFileSystem(ArrowFSWrapper):  # type: ignore[misc]  # fsspec is untyped
    """pyarrow's S3 client as fsspec for DuckDB, read-only, each object opened as a `_SharedObject`.

    A query asks the size and date of each file several times (binding, then every thread): blobs never change, so
    what one `HEAD` said is kept (a bounded number of entries) instead of asking again.
    """

    _INFO_ENTRIES = 4096
    cachable = False  # one per environment already (`_duckdb_filesystem`); fsspec's own instance cache stays out

    def __init__(self, fs: Any, **kwargs: Any) -> None:
        super().__init__(fs, **kwargs)
        self._infos: dict[str, dict[str, Any]] = {}
        self._infos_lock = threading.Lock()

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Size, type and date of `path` (FileNotFoundError if absent), from one `HEAD` per object."""
        key = self._strip_protocol(path)
        with self._infos_lock:
            hit = self._infos.get(key)
        if hit is None:
            hit = super().info(path, **kwargs)  # a missing object raises, and is asked again next time
            with self._infos_lock:
                if len(self._infos) >= self._INFO_ENTRIES:
                    self._infos.clear()
                self._infos[key] = hit
        return dict(hit)

    def modified(self, path: str) -> Any:
        """When `path` was written."""
        return self.info(path)["mtime"]

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, seekable: bool = True,
              **kwargs: Any) -> _SharedObject:
        if mode != "rb":
            raise PermissionError(f"{path}: blobs are read-only here.")
        return _SharedObject(self.fs.open_input_file(path))


class _SharedObject:
    """An object in the bucket as DuckDB's threads read it at once: each thread seeks and reads at a position of its
    own (DuckDB shares one handle and calls `seek` then `read`, which would race on one position)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream  # a pyarrow RandomAccessFile: `read_at` is a ranged GET, safe from several threads
        self.size = int(stream.size())
        self._at = threading.local()

    def tell(self) -> int:
        """This thread's position."""
        return int(getattr(self._at, "pos", 0))

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move this thread's position."""
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        self._at.pos = base + offset
        return self.tell()

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes from this thread's position (to the end for -1), one ranged request."""
        at = self.tell()
        if n is None or n < 0:
            n = self.size - at
        data = bytes(self.stream.read_at(max(min(n, self.size - at), 0), at))
        self._at.pos = at + len(data)
        return data

    def readable(self) -> bool:
        """It is."""
        return True

    def seekable(self) -> bool:
        """It is."""
        return True

    @property
    def closed(self) -> bool:
        """Whether it was closed."""
        return bool(self.stream.closed)

    def close(self) -> None:
        """Release it."""
        self.stream.close()

    def __enter__(self) -> _SharedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
