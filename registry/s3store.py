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

Presigned transfers (`VITRINE_S3_PRESIGN`) hand clients URLs straight to the bucket, never for a blob's key:
downloads GET the blob's bytes (`presign_get`); uploads go through `store.uploads` (registry/s3uploads.py). A blob
that came as a presigned multipart upload stays where it landed, and its own key is a pointer to it: an empty object
whose metadata name the upload and its size. Every read follows a pointer; `delete` removes both. The streamed write
is registry/s3write.py, the local cache registry/blobcache.py, what they share registry/s3io.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from registry.blobcache import BlobCache
from registry.blobs import CHUNK, SHA256_RE, StoredBlob, check_oid, git_blob_oid
from registry.errors import InvalidInputError, StorageUnavailableError
from registry.s3io import POINTER, POINTER_SIZE, UPLOAD_NAME_RE, RangeStream, is_missing, s3_errors
from registry.s3uploads import PresignedUploads
from registry.s3write import MultipartWrite


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
            if not (missing_ok and is_missing(exc)):
                raise


class S3BlobStore:
    """Blobs in `s3://bucket/prefix/`; endpoint, region and credentials come from the usual `AWS_*` variables."""

    def __init__(self, bucket: str, prefix: str, *, cache_dir: Path, cache_bytes: int, part_bytes: int,
                 create_bucket: bool = False, presign_endpoint: str = "") -> None:
        self.bucket = bucket
        self.presign_endpoint = presign_endpoint
        self._presigner: Any = None
        self._presigner_lock = threading.Lock()
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.part_bytes = part_bytes
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
        # One session for this store's clients: the signer made from it reuses its loaded service model, where a
        # session of its own would parse botocore's endpoint data again (0.1 s alone, over 0.5 s beside an upload).
        self._session = boto3.session.Session()
        self.client = self._session.client(
            "s3", region_name=region,
            # No CRC32 computed for what the hub sends: with no checksum, botocore signs each body's sha256 into SigV4
            # (over HTTPS too), so the bucket checks every part, and every blob is checked against its sha256 before it
            # is completed; the extra checksum cost the bucket and the hub about 0.2 CPU-seconds per GiB each over
            # HTTP. Over HTTPS botocore's default (a CRC32 trailer, payload unsigned) saved the hub 0.1 CPU-s per GiB
            # on SeaweedFS and the bucket nothing. Answers are still checked.
            config=Config(max_pool_connections=32, retries={"max_attempts": 5, "mode": "standard"},
                          request_checksum_calculation="when_required"),
        )
        self.transfer = TransferConfig(multipart_threshold=part_bytes, multipart_chunksize=part_bytes)
        self.cache = BlobCache(Path(cache_dir), cache_bytes)
        self.uploads = PresignedUploads(self)  # presigned uploads: their URLs, and the checks that make them blobs
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-parts")  # parts, copies, body reads
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
        with s3_errors(f"create bucket {self.bucket!r}"):
            self.client.create_bucket(Bucket=self.bucket)

    def key(self, oid: str) -> str:
        """The object key of blob `oid`."""
        check_oid(oid)
        return f"{self.prefix}sha256/{oid[:2]}/{oid[2:4]}/{oid}"

    def upload_key(self, oid: str, name: str) -> str:
        """The key of presigned multipart upload `name` (32 hex digits) of blob `oid`, under `uploads/`.

        Once the hub completes it and it hashes to `oid`, it holds the blob's bytes for good, and the blob's key
        becomes a pointer to it (`uploads.adopt_upload`): no presigned URL can write it any more.
        """
        check_oid(oid)
        if not UPLOAD_NAME_RE.match(name):
            raise InvalidInputError("Invalid upload name.")
        return f"{self.prefix}uploads/{oid}/{name}"

    def url(self, oid: str) -> str:
        """`s3://bucket/key` of blob `oid`'s bytes: where DuckDB and pyarrow read it by range, no copy."""
        found = self._location(oid)
        return f"s3://{self.bucket}/{found[0] if found is not None else self.key(oid)}"

    def _touch_key(self, oid: str) -> str:
        return f"{self.prefix}touched/{oid}"

    def head(self, key: str) -> dict[str, Any] | None:
        """The bucket's HEAD answer for object `key`, or None if there is none."""
        try:
            with s3_errors("read a blob"):
                return cast(dict[str, Any], self.client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def _pointee(self, oid: str, meta: dict[str, str]) -> tuple[str, int] | None:
        """Where a pointer's metadata says blob `oid`'s bytes lie, and their size; None if it is no pointer."""
        if POINTER not in meta:
            return None
        target = f"{self.prefix}{meta[POINTER]}"
        if not meta.get(POINTER_SIZE, "").isdigit() or not target.startswith(f"{self.prefix}uploads/{oid}/"):
            raise StorageUnavailableError(f"Blob {oid} in the bucket is a pointer the hub did not write; run "
                                          "vitrine fsck.")
        return target, int(meta[POINTER_SIZE])

    def _location(self, oid: str) -> tuple[str, int] | None:
        """The key holding blob `oid`'s bytes (its own, or its pointer's upload) and their size; None if absent."""
        head = self.head(self.key(oid))
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
            with s3_errors("read a blob"):
                args: dict[str, Any] = {"Range": f"bytes={start}-{'' if end is None else end}"} \
                    if start or end is not None else {}
                return cast(dict[str, Any], self.client.get_object(Bucket=self.bucket, Key=key, **args))
        except ClientError as exc:
            if is_missing(exc):
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
        return self.head(self.key(oid)) is not None

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
        return cast(BinaryIO, RangeStream(self._open(oid, start, end)))

    def read(self, oid: str) -> bytes:
        """Whole content of a (small) blob, through the cache."""
        return self.path(oid).read_bytes()

    def verify(self, oid: str) -> bool:
        """Re-hash blob `oid` as the bucket holds it (not the cache) and say whether it matches its name."""
        found = self._location(oid)  # where the bytes are, and the size the blob (or its pointer) announces
        if found is None:
            raise FileNotFoundError(f"blob {oid} is not in the store")
        h, size = hashlib.sha256(), 0
        with RangeStream(self._get(found[0], oid)["Body"]) as body:
            while chunk := body.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest() == oid and size == found[1]

    # Writes.

    def put_bytes(self, data: bytes, *, expected_oid: str | None = None) -> StoredBlob:
        """Store `data`; returns its sha256, size and git blob id."""
        oid = hashlib.sha256(data).hexdigest()
        if expected_oid is not None and oid != expected_oid:
            raise InvalidInputError(f"sha256 mismatch: announced {expected_oid}, received content hashes to {oid}.")
        with s3_errors("store a blob"):
            self.client.put_object(Bucket=self.bucket, Key=self.key(oid), Body=data)
        return StoredBlob(oid, len(data), git_blob_oid(data))

    def put_chunks(self, chunks: Iterable[bytes], *, expected_oid: str | None = None,
                   expected_size: int | None = None) -> StoredBlob:
        """Store the concatenation of `chunks`, streamed part by part and verified before it becomes visible."""
        write = MultipartWrite(self, expected_oid=expected_oid, max_size=None, expected_size=expected_size)
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
        `s3write.PARTS_IN_FLIGHT` + 1 parts whatever the size.
        """
        write = MultipartWrite(self, expected_oid=expected_oid, max_size=max_size, expected_size=expected_size)
        try:
            async for chunk in chunks:
                part = write.feed(chunk)
                if part is not None and (oldest := write.submit(part)) is not None:
                    await asyncio.wrap_future(oldest)
            done = self.pool.submit(write.finish, expected_oid=expected_oid, expected_size=expected_size)
            return await asyncio.wrap_future(done)
        except BaseException:
            # Also on cancellation (the client went away): abort in the background, never blocking the loop.
            self.pool.submit(write.abort)
            raise

    def delete(self, oid: str) -> None:
        """Remove blob `oid` (and its touch marker, the upload a pointer names, and its cached copy) if present."""
        found = self._location(oid)
        with s3_errors("delete a blob"):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(oid))
            if found is not None and found[0] != self.key(oid):
                self.client.delete_object(Bucket=self.bucket, Key=found[0])
            self.client.delete_object(Bucket=self.bucket, Key=self._touch_key(oid))
        self.cache.drop(oid)

    def iter_oids(self) -> Iterator[str]:
        """Every blob oid in the bucket."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}sha256/")
        with s3_errors("list blobs"):
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"].rsplit("/", 1)[-1]
                    if SHA256_RE.match(name):
                        yield name

    def touch(self, oid: str) -> None:
        """Mark blob `oid` as just used (a dated marker object), so `gc` grants it a full grace period."""
        with s3_errors("mark a blob used"):
            self.client.put_object(Bucket=self.bucket, Key=self._touch_key(oid), Body=b"")

    def age_seconds(self, oid: str) -> float:
        """Seconds since blob `oid` was last written or touched."""
        head = self.head(self.key(oid))
        if head is None:
            raise FileNotFoundError(f"blob {oid} is not in the store")
        newest = head["LastModified"].timestamp()
        marker = self.head(self._touch_key(oid))
        if marker is not None:
            newest = max(newest, marker["LastModified"].timestamp())
        return time.time() - newest

    def stale_temp_files(self, older_than: float) -> Sequence[_StaleObject | _StaleUpload | Path]:
        """Leftovers older than `older_than` s: unfinished uploads, `tmp/` objects, unclaimed `uploads/`, cache."""
        cutoff = time.time() - older_than
        found: list[_StaleObject | _StaleUpload | Path] = []
        with s3_errors("list unfinished uploads"):
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
        with s3_errors("list unfinished uploads"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
            return [u["Key"] for page in pages for u in page.get("Uploads", [])]

    # Presigned transfers: clients move the bytes to and from the bucket; the hub signs, then verifies uploads.

    def signer(self) -> Any:
        """A client that only signs URLs (SigV4, for the endpoint clients reach); it never sends a request itself."""
        with self._presigner_lock:  # a boto3 session makes clients one thread at a time
            if self._presigner is None:
                endpoint = self.presign_endpoint or self.client.meta.endpoint_url
                self._presigner = self._session.client(
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
        return cast(str, self.signer().generate_presigned_url("get_object", Params=params, ExpiresIn=ttl))

