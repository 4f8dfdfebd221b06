"""Blobs in an S3-compatible bucket (boto3), verified before they appear, with a bounded local cache for files.

Layout under `s3://bucket/prefix/`: `sha256/ab/cd/<oid>` (the blobs, as in a local store), `tmp/<uuid>` (a finished
upload whose sha256 was not known in advance, before its server-side copy into place), `uploads/<oid>/<uuid>` (a
presigned multipart upload, kept where it landed once verified) and `touched/<oid>` (empty markers: S3 objects cannot
be re-dated, so `touch` dates a marker and `age_seconds` takes the newer of the two).

A write streams into a multipart upload, a few parts uploading at once (memory stays at about five parts whatever the
size), hashed in order as it goes. When the caller announced the sha256 (LFS), the upload goes straight to the blob's
key and is completed only once the bytes hash to it and the size matches; otherwise it is completed under `tmp/` and
copied into place. An interrupted write leaves an unfinished multipart upload or a `tmp/` object, never a visible
blob; `gc` aborts and deletes those once older than its grace period.

Presigned transfers (`VITRINE_S3_PRESIGN`) hand clients URLs straight to the bucket, never for a blob's key.
Downloads GET the blob's bytes. A presigned PUT lands at a `tmp/` key, and `adopt` re-hashes it as the bucket holds it
before a server-side copy makes it the blob (the PUT URL stays valid a while, so the bytes are copied out of its
reach). A presigned multipart upload lands under `uploads/`; the hub completes it, after which no URL can write it,
so `adopt_upload` only re-hashes it and then makes the blob's key a pointer to it: an empty object whose metadata
name the upload and its size. Every read follows a pointer; `delete` removes both.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from registry.blobs import CHUNK, SHA256_RE, StoredBlob, check_oid, git_blob_oid, storage_errors
from registry.errors import InvalidInputError, PayloadTooLargeError, StorageUnavailableError

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_MAX_PARTS = 10_000
# Parts of one write uploading at once: one stream to the bucket is slower than a few (SeaweedFS on loopback: 8 MiB
# parts one at a time 7.9 s per GiB, four at a time 5.9 s, as fast as boto3's ten; bench/bench_s3.py).
PARTS_IN_FLIGHT = 4
_COPY_PART = 64 * 1024 * 1024  # a verified upload's server-side copy into place, in parts this large, all at once
_HASH_READ = 4 * 1024 * 1024  # reads of an upload being re-hashed
_TEMP_NAME_RE = re.compile(r"^[0-9a-f]{32}$")
# A blob whose bytes came as a presigned multipart upload keeps them there: its own key is then an empty object with
# these metadata (the upload's key under the prefix, and the size), written only once the bytes hashed right.
_POINTER = "vitrine-pointer"
_POINTER_SIZE = "vitrine-size"
_BAD_PARTS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidRequest"}


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """Turn a bucket that cannot be reached or refuses the request into StorageUnavailableError."""
    try:
        yield
    except ClientError as exc:
        if _missing(exc):
            raise
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StorageUnavailableError(
            f"The hub's blob storage refused to {what} ({code}); nothing was changed. Retry later.") from exc
    except BotoCoreError as exc:  # connection refused, timeouts, missing credentials
        raise StorageUnavailableError(
            f"The hub's blob storage cannot be reached to {what} ({type(exc).__name__}). Retry later.") from exc


@dataclass
class _StaleObject:
    """A `tmp/` object left by an interrupted copy into place, or an `uploads/` object no blob points to."""

    store: S3BlobStore
    key: str

    def unlink(self, missing_ok: bool = False) -> None:
        """Delete it."""
        self.store.client.delete_object(Bucket=self.store.bucket, Key=self.key)


@dataclass
class _StaleUpload:
    """A multipart upload that never completed (the hub died or the client went away)."""

    store: S3BlobStore
    key: str
    upload_id: str

    def unlink(self, missing_ok: bool = False) -> None:
        """Abort it, which frees its parts."""
        try:
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id)
        except ClientError as exc:
            if not (missing_ok and _missing(exc)):
                raise


class _Write:
    """One blob being written: parts hashed in order and uploaded side by side, completed only once verified."""

    def __init__(self, store: S3BlobStore, *, expected_oid: str | None, max_size: int | None,
                 expected_size: int | None = None) -> None:
        self.store = store
        self.max_size = max_size
        # S3 takes at most 10,000 parts: a file known to be larger gets larger parts.
        biggest = expected_size if expected_size is not None else max_size or 0
        self.part_bytes = max(store.part_bytes, -(-biggest // _MAX_PARTS))
        self.direct = expected_oid is not None  # the final key is known: no copy needed
        self.key = store.key(expected_oid) if expected_oid is not None else f"{store.prefix}tmp/{uuid.uuid4().hex}"
        self.sha = hashlib.sha256()
        self.size = 0
        self.buf = bytearray()
        self.upload_id: str | None = None
        self.etags: dict[int, str] = {}
        self.numbered = 0  # parts handed out so far
        self.hashed = 0  # parts hashed so far: part n is hashed only after part n - 1
        self.turn = threading.Condition()
        self.inflight: list[Future[None]] = []

    def feed(self, chunk: bytes | bytearray) -> bytearray | None:
        """Take `chunk`; returns a full part when one is ready to upload."""
        self.size += len(chunk)
        if self.max_size is not None and self.size > self.max_size:
            raise PayloadTooLargeError(f"Upload exceeds the limit of {self.max_size} bytes.")
        self.buf += chunk
        if len(self.buf) < self.part_bytes:
            return None
        part, self.buf = self.buf, bytearray()  # handed over, not copied
        return part

    def submit(self, part: bytes | bytearray) -> Future[None] | None:
        """Start uploading `part` in the store's pool; returns the upload to wait for before the next part, if any.

        Every part's future is kept (so `finish` and `abort` wait for all); with `PARTS_IN_FLIGHT` of them possibly
        running, the caller waits for the oldest of those before reading more.
        """
        self.numbered += 1
        self.inflight.append(self.store._parts.submit(self.upload_part, self.numbered, part))
        return self.inflight[-PARTS_IN_FLIGHT] if len(self.inflight) >= PARTS_IN_FLIGHT else None

    def upload_part(self, number: int, part: bytes | bytearray) -> None:
        """Hash part `number` once every earlier part is hashed (opening the upload with part 1), then upload it."""
        client, bucket = self.store.client, self.store.bucket
        with self.turn:
            # Parts are submitted in order to a FIFO pool, so part n - 1 is running or done: this wait ends.
            self.turn.wait_for(lambda: self.hashed == number - 1)
            try:
                self.sha.update(part)
                if number == 1:
                    with _s3_errors("store an upload"):
                        self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=self.key)["UploadId"]
            finally:
                self.hashed = number
                self.turn.notify_all()
        if self.upload_id is None:
            raise StorageUnavailableError("The hub's blob storage did not open the upload; nothing was changed.")
        with _s3_errors("store an upload"):
            self.etags[number] = client.upload_part(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                                    PartNumber=number, Body=part)["ETag"]

    def finish(self, *, expected_oid: str | None, expected_size: int | None) -> StoredBlob:
        """Verify what arrived and only then make it the blob; raises InvalidInputError (and aborts) on a mismatch."""
        for f in self.inflight:
            f.result()
        rest = bytes(self.buf)
        self.buf.clear()
        self.sha.update(rest)
        oid = self.sha.hexdigest()
        if expected_size is not None and self.size != expected_size:
            raise InvalidInputError(f"Size mismatch: announced {expected_size} bytes, received {self.size}.")
        if expected_oid is not None and oid != expected_oid:
            raise InvalidInputError(f"sha256 mismatch: announced {expected_oid}, received content hashes to {oid}.")
        client, bucket, final = self.store.client, self.store.bucket, self.store.key(oid)
        with _s3_errors("store an upload"):
            if self.upload_id is None:  # it all fit in one part: one PUT straight to its name
                client.put_object(Bucket=bucket, Key=final, Body=rest)
            else:
                if rest:
                    number = self.numbered + 1
                    self.etags[number] = client.upload_part(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                                            PartNumber=number, Body=rest)["ETag"]
                parts = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self.etags.items())]
                client.complete_multipart_upload(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                                 MultipartUpload={"Parts": parts})
                self.upload_id = None
                if not self.direct:
                    if not self.store.exists(oid):
                        client.copy({"Bucket": bucket, "Key": self.key}, bucket, final, Config=self.store.transfer)
                    client.delete_object(Bucket=bucket, Key=self.key)
        return StoredBlob(oid, self.size)

    def abort(self) -> None:
        """Drop whatever was uploaded (best effort: `gc` aborts what this misses)."""
        for f in self.inflight:
            try:
                f.exception()  # wait: a part still uploading would outlive the abort
            except BaseException:  # it failed or was cancelled: either way it is over
                pass
        try:
            if self.upload_id is not None:
                self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key,
                                                         UploadId=self.upload_id)
        except Exception:
            pass


class _Cache:
    """Blobs materialised as local files for callers that need a path; bounded, least recently used evicted."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._total: int | None = None  # estimate; re-measured when it says the bound is passed

    def file(self, oid: str) -> Path:
        """Where blob `oid` lies in the cache (whether or not it does)."""
        return self.root / "sha256" / oid[:2] / oid[2:4] / oid

    def lookup(self, oid: str) -> Path | None:
        """The cached file of `oid`, marked as just used; None when not cached."""
        p = self.file(oid)
        try:
            os.utime(p)
        except OSError:
            return None
        return p

    def fetch(self, oid: str, download: Callable[[BinaryIO], None]) -> Path:
        """The cached file of `oid`, downloaded (to a temp file, verified, renamed) if not cached yet."""
        with self._guard:
            lock = self._locks.setdefault(oid, threading.Lock())
        with lock:
            hit = self.lookup(oid)
            if hit is not None:
                return hit
            final = self.file(oid)
            tmp = self.tmp / f"{uuid.uuid4().hex}.part"
            try:
                with storage_errors(), open(tmp, "wb") as fh:
                    download(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                if _hash_file(tmp) != oid:
                    raise StorageUnavailableError(f"Blob {oid} in the bucket does not hash to its name; run vitrine fsck.")
                added = tmp.stat().st_size
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        with self._guard:
            self._locks.pop(oid, None)
        self._evict(keep=oid, added=added)
        return final

    def drop(self, oid: str) -> None:
        """Forget the cached copy of `oid`."""
        self.file(oid).unlink(missing_ok=True)

    def stale(self, older_than: float) -> list[Path]:
        """Temp files of downloads that never finished."""
        cutoff = time.time() - older_than
        return [p for p in self.tmp.glob("*.part") if p.stat().st_mtime < cutoff]

    def _evict(self, *, keep: str, added: int) -> None:
        with self._guard:
            if self._total is not None:
                self._total += added
                if self._total <= self.max_bytes:
                    return
            files = []
            for p in (self.root / "sha256").glob("*/*/*"):
                try:
                    st = p.stat()
                except OSError:
                    continue  # evicted meanwhile by another process
                files.append((st.st_mtime, st.st_size, p))
            total = sum(size for _, size, _ in files)
            for _, size, p in sorted(files, key=lambda f: f[0]):
                if total <= self.max_bytes:
                    break
                if p.name == keep:
                    continue
                p.unlink(missing_ok=True)  # an open file stays readable to whoever holds it
                total -= size
            self._total = total


class _RangeStream:
    """A blob's bytes from some offset on, read in order; `read(n)` gives n bytes unless the blob ends first."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all that is left for -1); fewer only at the end."""
        if n < 0:
            return cast(bytes, self.body.read())
        out = bytearray()
        while len(out) < n:
            chunk = self.body.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def close(self) -> None:
        """Release the connection."""
        self.body.close()

    def __enter__(self) -> _RangeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class S3BlobStore:
    """Blobs in `s3://bucket/prefix/`; endpoint, region and credentials come from the usual `AWS_*` variables."""

    def __init__(self, bucket: str, prefix: str, *, cache_dir: Path, cache_bytes: int, part_bytes: int,
                 create_bucket: bool = False, presign_endpoint: str = "") -> None:
        self.bucket = bucket
        self.presign_endpoint = presign_endpoint
        self._presigner: Any = None
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.part_bytes = part_bytes
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
        self.client = boto3.session.Session().client(
            "s3", region_name=region,
            config=Config(max_pool_connections=32, retries={"max_attempts": 5, "mode": "standard"}),
        )
        self.transfer = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes)
        self.cache = _Cache(Path(cache_dir), cache_bytes)
        self._parts = ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-parts")
        self._check_bucket(create_bucket)

    def _check_bucket(self, create: bool) -> None:
        endpoint = self.client.meta.endpoint_url
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise StorageUnavailableError(
                    f"VITRINE_STORAGE_URL: bucket {self.bucket!r} at {endpoint} refused access ({code}); check "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy.") from exc
        except NoCredentialsError as exc:
            raise StorageUnavailableError(
                f"VITRINE_STORAGE_URL: no credentials for bucket {self.bucket!r}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY.") from exc
        except BotoCoreError as exc:
            raise StorageUnavailableError(
                f"VITRINE_STORAGE_URL: cannot reach the S3 endpoint {endpoint} for bucket {self.bucket!r} "
                f"({exc}); set AWS_ENDPOINT_URL to the S3 server's URL.") from exc
        if not create:
            raise StorageUnavailableError(
                f"VITRINE_STORAGE_URL: bucket {self.bucket!r} does not exist at {endpoint}. Create it (for instance "
                f"`aws s3 mb s3://{self.bucket}`) or set VITRINE_S3_CREATE_BUCKET=1.")
        with _s3_errors(f"create bucket {self.bucket!r}"):
            self.client.create_bucket(Bucket=self.bucket)

    def key(self, oid: str) -> str:
        """The object key of blob `oid`."""
        check_oid(oid)
        return f"{self.prefix}sha256/{oid[:2]}/{oid[2:4]}/{oid}"

    def upload_key(self, oid: str, name: str) -> str:
        """The key of presigned multipart upload `name` (32 hex digits) of blob `oid`, under `uploads/`.

        Once the hub completes it and it hashes to `oid`, it holds the blob's bytes for good, and the blob's key
        becomes a pointer to it (see `adopt`): no presigned URL can write it any more.
        """
        check_oid(oid)
        if not _TEMP_NAME_RE.match(name):
            raise InvalidInputError("Invalid upload name.")
        return f"{self.prefix}uploads/{oid}/{name}"

    def url(self, oid: str) -> str:
        """`s3://bucket/key` of blob `oid`'s bytes: where DuckDB and pyarrow read it by range, no copy."""
        found = self._location(oid)
        return f"s3://{self.bucket}/{found[0] if found is not None else self.key(oid)}"

    def _touch_key(self, oid: str) -> str:
        return f"{self.prefix}touched/{oid}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with _s3_errors("read a blob"):
                return cast(dict[str, Any], self.client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _pointee(self, oid: str, meta: dict[str, str]) -> tuple[str, int] | None:
        """Where a pointer's metadata says blob `oid`'s bytes lie, and their size; None if it is no pointer."""
        if _POINTER not in meta:
            return None
        target = f"{self.prefix}{meta[_POINTER]}"
        if not meta.get(_POINTER_SIZE, "").isdigit() or not target.startswith(f"{self.prefix}uploads/{oid}/"):
            raise StorageUnavailableError(f"Blob {oid} in the bucket is a pointer the hub did not write; run "
                                          "vitrine fsck.")
        return target, int(meta[_POINTER_SIZE])

    def _location(self, oid: str) -> tuple[str, int] | None:
        """The key holding blob `oid`'s bytes (its own, or its pointer's upload) and their size; None if absent."""
        head = self._head(self.key(oid))
        if head is None:
            return None
        return self._pointee(oid, head.get("Metadata") or {}) or (self.key(oid), int(head["ContentLength"]))

    # Reads.

    def path(self, oid: str) -> Path:
        """A local file holding blob `oid`, fetched into the cache if need be (FileNotFoundError if absent)."""

        def download(fh: BinaryIO) -> None:
            body = self._open(oid)
            with body:
                while chunk := body.read(CHUNK):
                    fh.write(chunk)

        return self.cache.fetch(oid, download)

    def local_path(self, oid: str) -> Path | None:
        """The cached file of blob `oid`, or None (then stream it with `open_range`)."""
        check_oid(oid)
        return self.cache.lookup(oid)

    def _get(self, key: str, oid: str, start: int = 0, end: int | None = None) -> dict[str, Any]:
        try:
            with _s3_errors("read a blob"):
                args: dict[str, Any] = {"Range": f"bytes={start}-{'' if end is None else end}"} \
                    if start or end is not None else {}
                return cast(dict[str, Any], self.client.get_object(Bucket=self.bucket, Key=key, **args))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"blob {oid} is not in the store") from None
            raise

    def _open(self, oid: str, start: int = 0, end: int | None = None) -> Any:
        """The body of a GET of blob `oid`'s bytes: one request, two when its key is a pointer."""
        try:
            got = self._get(self.key(oid), oid, start, end)
        except StorageUnavailableError as exc:  # a range past the end of a (zero-byte) pointer
            cause = exc.__cause__
            if not (isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "InvalidRange"):
                raise
            found = self._location(oid)
            if found is None or found[0] == self.key(oid):
                raise
            return self._get(found[0], oid, start, end)["Body"]
        pointee = self._pointee(oid, got.get("Metadata") or {})
        if pointee is None:
            return got["Body"]
        got["Body"].close()
        return self._get(pointee[0], oid, start, end)["Body"]

    def exists(self, oid: str) -> bool:
        """Whether blob `oid` is stored in the bucket."""
        return self._head(self.key(oid)) is not None

    def size(self, oid: str) -> int:
        """Size in bytes of blob `oid` (FileNotFoundError if absent)."""
        found = self._location(oid)
        if found is None:
            raise FileNotFoundError(f"blob {oid} is not in the store")
        return found[1]

    def open(self, oid: str) -> BinaryIO:
        """Open blob `oid` for reading (its cached file)."""
        return open(self.path(oid), "rb")

    def open_range(self, oid: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A stream of blob `oid` from byte `start` on (to `end`, inclusive, when given), straight from the bucket."""
        return cast(BinaryIO, _RangeStream(self._open(oid, start, end)))

    def read(self, oid: str) -> bytes:
        """Whole content of a (small) blob, through the cache."""
        return self.path(oid).read_bytes()

    def verify(self, oid: str) -> bool:
        """Re-hash blob `oid` as the bucket holds it (not the cache) and say whether it matches its name."""
        h, size = hashlib.sha256(), 0
        with _RangeStream(self._open(oid)) as body:
            while chunk := body.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest() == oid and size == self.size(oid)

    # Writes.

    def put_bytes(self, data: bytes, *, expected_oid: str | None = None) -> StoredBlob:
        """Store `data`; returns its sha256, size and git blob id."""
        oid = hashlib.sha256(data).hexdigest()
        if expected_oid is not None and oid != expected_oid:
            raise InvalidInputError(f"sha256 mismatch: announced {expected_oid}, received content hashes to {oid}.")
        with _s3_errors("store a blob"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(oid), Body=data)
        return StoredBlob(oid, len(data), git_blob_oid(data))

    def put_chunks(self, chunks: Iterable[bytes], *, expected_oid: str | None = None,
                   expected_size: int | None = None) -> StoredBlob:
        """Store the concatenation of `chunks`, streamed part by part and verified before it becomes visible."""
        write = _Write(self, expected_oid=expected_oid, max_size=None, expected_size=expected_size)
        try:
            for chunk in chunks:
                part = write.feed(chunk)
                if part is not None and (oldest := write.submit(part)) is not None:
                    oldest.result()
            return write.finish(expected_oid=expected_oid, expected_size=expected_size)
        except BaseException:
            write.abort()
            raise

    async def put_async_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_oid: str | None = None,
        expected_size: int | None = None,
        max_size: int | None = None,
    ) -> StoredBlob:
        """Store an ASGI request body, verified against the announced oid and size before it becomes visible.

        Parts upload in worker threads, a few side by side, while the next one arrives: memory holds at most
        `PARTS_IN_FLIGHT` + 1 parts whatever the size.
        """
        write = _Write(self, expected_oid=expected_oid, max_size=max_size, expected_size=expected_size)
        try:
            async for chunk in chunks:
                part = write.feed(chunk)
                if part is not None and (oldest := write.submit(part)) is not None:
                    await asyncio.wrap_future(oldest)
            done = self._parts.submit(write.finish, expected_oid=expected_oid, expected_size=expected_size)
            return await asyncio.wrap_future(done)
        except BaseException:
            # Also on cancellation (the client went away): abort in the background, never blocking the loop.
            self._parts.submit(write.abort)
            raise

    def delete(self, oid: str) -> None:
        """Remove blob `oid` (and its touch marker, the upload a pointer names, and its cached copy) if present."""
        found = self._location(oid)
        with _s3_errors("delete a blob"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(oid))
            if found is not None and found[0] != self.key(oid):
                self.client.delete_object(Bucket=self.bucket, Key=found[0])
            self.client.delete_object(Bucket=self.bucket, Key=self._touch_key(oid))
        self.cache.drop(oid)

    def iter_oids(self) -> Iterator[str]:
        """Every blob oid in the bucket."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}sha256/")
        with _s3_errors("list blobs"):
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"].rsplit("/", 1)[-1]
                    if SHA256_RE.match(name):
                        yield name

    def touch(self, oid: str) -> None:
        """Mark blob `oid` as just used (a dated marker object), so `gc` grants it a full grace period."""
        with _s3_errors("mark a blob used"):
            self.client.put_object(Bucket=self.bucket, Key=self._touch_key(oid), Body=b"")

    def age_seconds(self, oid: str) -> float:
        """Seconds since blob `oid` was last written or touched."""
        head = self._head(self.key(oid))
        if head is None:
            raise FileNotFoundError(f"blob {oid} is not in the store")
        newest = head["LastModified"].timestamp()
        marker = self._head(self._touch_key(oid))
        if marker is not None:
            newest = max(newest, marker["LastModified"].timestamp())
        return time.time() - newest

    def stale_temp_files(self, older_than: float) -> Sequence[_StaleObject | _StaleUpload | Path]:
        """Leftovers older than `older_than` s: unfinished uploads, `tmp/` objects, unclaimed `uploads/`, cache."""
        cutoff = time.time() - older_than
        found: list[_StaleObject | _StaleUpload | Path] = []
        with _s3_errors("list unfinished uploads"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                              Prefix=f"{self.prefix}tmp/"):
                found += [_StaleObject(self, o["Key"]) for o in page.get("Contents", [])
                          if o["LastModified"].timestamp() < cutoff]
            # A completed presigned upload that no pointer names: its check failed midway, or another won the race.
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                              Prefix=f"{self.prefix}uploads/"):
                for o in page.get("Contents", []):
                    oid = o["Key"][len(f"{self.prefix}uploads/"):].split("/", 1)[0]
                    if o["LastModified"].timestamp() < cutoff and not (
                            SHA256_RE.match(oid) and (self._location(oid) or ("",))[0] == o["Key"]):
                        found.append(_StaleObject(self, o["Key"]))
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                     Prefix=self.prefix):
                found += [_StaleUpload(self, u["Key"], u["UploadId"]) for u in page.get("Uploads", [])
                          if u["Initiated"].timestamp() < cutoff]
        return [*found, *self.cache.stale(older_than)]

    def unfinished_uploads(self) -> list[str]:
        """Keys of the multipart uploads not completed nor aborted (any age)."""
        with _s3_errors("list unfinished uploads"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
            return [u["Key"] for page in pages for u in page.get("Uploads", [])]

    # Presigned transfers: clients move the bytes to and from the bucket; the hub signs, then verifies uploads.

    def _signer(self) -> Any:
        """A client that only signs URLs (SigV4, for the endpoint clients reach); it never sends a request itself."""
        if self._presigner is None:
            endpoint = self.presign_endpoint or self.client.meta.endpoint_url
            self._presigner = boto3.session.Session().client(
                "s3", region_name=self.client.meta.region_name, endpoint_url=endpoint,
                config=Config(signature_version="s3v4"))
        return self._presigner

    def presign_get(self, oid: str, *, ttl: int, filename: str | None = None, content_type: str | None = None,
                    cache_control: str | None = None) -> str:
        """A URL that GETs blob `oid` (with `Range` if asked) from the bucket for `ttl` seconds."""
        found = self._location(oid)  # a pointer's upload, when the blob's key is one
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": found[0] if found is not None else self.key(oid)}
        if filename is not None:
            ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
            params["ResponseContentDisposition"] = (f"inline; filename*=UTF-8''{quote(filename)}; "
                                                    f'filename="{ascii_name}";')
        if content_type is not None:
            params["ResponseContentType"] = content_type
        if cache_control is not None:
            params["ResponseCacheControl"] = cache_control
        return cast(str, self._signer().generate_presigned_url("get_object", Params=params, ExpiresIn=ttl))

    def temp_key(self, name: str) -> str:
        """The key of upload `name` (32 hex digits) under `tmp/`, where bytes wait to be verified."""
        if not _TEMP_NAME_RE.match(name):
            raise InvalidInputError("Invalid upload name.")
        return f"{self.prefix}tmp/{name}"

    def presign_put(self, name: str, *, ttl: int) -> str:
        """A URL that PUTs one object at temp key `name` (never a blob's key) for `ttl` seconds."""
        return cast(str, self._signer().generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self.temp_key(name)}, ExpiresIn=ttl))

    def start_presigned_multipart(self, name: str, oid: str, parts: int, *, ttl: int) -> tuple[str, list[str]]:
        """Open multipart upload `name` of blob `oid` (at its `upload_key`): its id and a presigned URL per part."""
        key = self.upload_key(oid, name)
        with _s3_errors("start an upload"):
            upload_id = cast(str, self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"])
        signer = self._signer()
        urls = [cast(str, signer.generate_presigned_url("upload_part", Params={
            "Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}, ExpiresIn=ttl))
            for n in range(1, parts + 1)]
        return upload_id, urls

    def complete_presigned_multipart(self, name: str, oid: str, upload_id: str, etags: Sequence[str]) -> bool:
        """Complete multipart upload `name` of blob `oid` from its parts' ETags; False if it is no longer open.

        Raises:
            InvalidInputError: the ETags do not name the parts uploaded (the upload stays open for a retry).
        """
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
        key = self.upload_key(oid, name)
        try:
            with _s3_errors("complete an upload"):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        except StorageUnavailableError as exc:
            code = exc.__cause__.response.get("Error", {}).get("Code") if isinstance(exc.__cause__, ClientError) else None
            if code in _BAD_PARTS:
                raise InvalidInputError(f"The parts listed do not complete the upload ({code}): send each part's "
                                        "number and the ETag its upload answered.") from None
            raise
        return True

    def _check_hash(self, key: str, etag: str, oid: str) -> None:
        """Re-hash the object at `key` as the bucket holds it (version `etag` only); InvalidInputError if not `oid`."""
        h = hashlib.sha256()
        with _s3_errors("read an upload"):
            got = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=etag)["Body"]
        with _RangeStream(got) as body:
            while chunk := body.read(_HASH_READ):
                h.update(chunk)
        if h.hexdigest() != oid:
            raise InvalidInputError(f"sha256 mismatch: announced {oid}, received content hashes to {h.hexdigest()}.")

    def adopt(self, name: str, *, expected_oid: str, expected_size: int) -> StoredBlob | None:
        """Make the object a client put at temp key `name` blob `expected_oid`, only if it hashes to it; None if absent.

        The temp object is re-hashed as the bucket holds it while a multipart copy into the blob's key runs
        alongside; the copy is completed only once size and sha256 match, so the blob key never shows bytes that
        were not checked. The temp object is deleted either way.

        Raises:
            InvalidInputError: its size or sha256 is not the announced one (then nothing is left of it).
        """
        src = self.temp_key(name)
        head = self._head(src)
        if head is None:
            return None
        try:
            size = int(head["ContentLength"])
            if size != expected_size:
                raise InvalidInputError(f"Size mismatch: announced {expected_size} bytes, received {size}.")
            # Its presigned PUT stays valid a while: every read and copy is of this version (its ETag) or fails.
            etag = str(head["ETag"])
            final = self.key(expected_oid)
            copy = None if self.exists(expected_oid) else _Copy(self, src, final, size, etag)
            try:
                self._check_hash(src, etag, expected_oid)
                if copy is not None:
                    copy.complete()
            except BaseException as exc:
                if copy is not None:
                    copy.abort()
                cause = exc.__cause__ if isinstance(exc, StorageUnavailableError) else exc
                if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    raise InvalidInputError("The upload was overwritten while the hub checked it; upload it again.") \
                        from None
                raise
        finally:
            with _s3_errors("delete an upload"):
                self.client.delete_object(Bucket=self.bucket, Key=src)
        return StoredBlob(expected_oid, size)

    def adopt_upload(self, name: str, *, expected_oid: str, expected_size: int) -> StoredBlob | None:
        """Make completed multipart upload `name` blob `expected_oid` in place, if it hashes to it; None if absent.

        No URL can write the upload's key any more (its upload id is completed, and no other was signed for it), so
        nothing is copied: once size and sha256 match, the blob's key becomes a pointer to it, or, when the blob is
        there already, the upload is deleted. Anything else is deleted and refused.

        Raises:
            InvalidInputError: its size or sha256 is not the announced one (then nothing is left of it).
        """
        src = self.upload_key(expected_oid, name)
        head = self._head(src)
        if head is None:
            return None
        kept = False
        try:
            size = int(head["ContentLength"])
            if size != expected_size:
                raise InvalidInputError(f"Size mismatch: announced {expected_size} bytes, received {size}.")
            self._check_hash(src, str(head["ETag"]), expected_oid)
            if not self.exists(expected_oid):
                with _s3_errors("record an upload"):
                    self.client.put_object(Bucket=self.bucket, Key=self.key(expected_oid), Body=b"", Metadata={
                        _POINTER: src[len(self.prefix):], _POINTER_SIZE: str(size)})
                kept = True
        finally:
            if not kept:
                with _s3_errors("delete an upload"):
                    self.client.delete_object(Bucket=self.bucket, Key=src)
        return StoredBlob(expected_oid, size)


class _Copy:
    """A server-side multipart copy into `dst`, its parts started at once and completed only when told to."""

    def __init__(self, store: S3BlobStore, src: str, dst: str, size: int, etag: str) -> None:
        self.store, self.dst, self.etag = store, dst, etag
        self.upload_id: str | None = None
        self.small: dict[str, str] | None = None
        client, bucket = store.client, store.bucket
        if size <= _COPY_PART:  # one CopyObject, done once the hash is known
            self.small = {"Bucket": bucket, "Key": src}  # copied only if still at `etag`
            self.futures: list[Future[str]] = []
            return
        with _s3_errors("copy an upload into place"):
            self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=dst)["UploadId"]

        def part(n: int, first: int) -> str:
            last = min(first + _COPY_PART, size) - 1
            answer = client.upload_part_copy(Bucket=bucket, Key=dst, UploadId=self.upload_id, PartNumber=n,
                                             CopySource={"Bucket": bucket, "Key": src}, CopySourceIfMatch=etag,
                                             CopySourceRange=f"bytes={first}-{last}")
            return cast(str, answer["CopyPartResult"]["ETag"])

        self.futures = [store._parts.submit(part, n, first)
                        for n, first in enumerate(range(0, size, _COPY_PART), start=1)]

    def complete(self) -> None:
        """Make the copy visible (the source has been verified)."""
        client, bucket = self.store.client, self.store.bucket
        with _s3_errors("copy an upload into place"):
            if self.small is not None:
                client.copy_object(Bucket=bucket, Key=self.dst, CopySource=self.small, CopySourceIfMatch=self.etag)
                return
            parts = [{"PartNumber": n, "ETag": f.result()} for n, f in enumerate(self.futures, start=1)]
            client.complete_multipart_upload(Bucket=bucket, Key=self.dst, UploadId=self.upload_id,
                                             MultipartUpload={"Parts": parts})
            self.upload_id = None

    def abort(self) -> None:
        """Drop the copy's parts: nothing appears at `dst`."""
        for f in self.futures:
            f.cancel()
        for f in self.futures:
            try:
                f.exception()
            except BaseException:
                pass
        if self.upload_id is not None:
            try:
                self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.dst,
                                                         UploadId=self.upload_id)
            except (ClientError, BotoCoreError):
                pass


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
