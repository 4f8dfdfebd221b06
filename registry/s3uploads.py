"""Presigned uploads: URLs for clients to put bytes straight into the bucket, and the checks that make them blobs.

A URL is never signed for a blob's key. A presigned PUT lands at `tmp/<name>`; `adopt` re-hashes it as the bucket
holds it while a server-side copy into the blob's key runs alongside, completed only once size and sha256 match (the
PUT URL stays valid a while, so the bytes are copied out of its reach). A presigned multipart upload lands at
`uploads/<oid>/<name>`; the hub completes it, after which no URL can write it, so `adopt_upload` only re-hashes it
and then makes the blob's key a pointer to it (registry/s3io.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError

from registry.blobs import StoredBlob
from registry.errors import InvalidInputError, StorageUnavailableError
from registry.s3io import POINTER, POINTER_SIZE, UPLOAD_NAME_RE, RangeStream, is_missing, s3_errors

if TYPE_CHECKING:
    from registry.s3store import S3BlobStore

_COPY_PART = 64 * 1024 * 1024  # a verified upload's server-side copy into place, in parts this large, all at once
_HASH_READ = 4 * 1024 * 1024  # reads of an upload being re-hashed
_BAD_PARTS = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML", "InvalidRequest"}


class PresignedUploads:
    """The presigned-upload side of one S3 store (`store.uploads`)."""

    def __init__(self, store: S3BlobStore) -> None:
        self.store, self.client, self.bucket = store, store.client, store.bucket

    def temp_key(self, name: str) -> str:
        """The key of upload `name` (32 hex digits) under `tmp/`, where bytes wait to be verified."""
        if not UPLOAD_NAME_RE.match(name):
            raise InvalidInputError("Invalid upload name.")
        return f"{self.store.prefix}tmp/{name}"

    def put_url(self, name: str, *, ttl: int) -> str:
        """A URL that PUTs one object at temp key `name` (never a blob's key) for `ttl` seconds."""
        return cast(str, self.store.signer().generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self.temp_key(name)}, ExpiresIn=ttl))

    def start_multipart(self, name: str, oid: str, parts: int, *, ttl: int) -> tuple[str, list[str]]:
        """Open multipart upload `name` of blob `oid` (at its `upload_key`): its id and a presigned URL per part."""
        key = self.store.upload_key(oid, name)
        with s3_errors("start an upload"):
            upload_id = cast(str, self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"])
        signer = self.store.signer()
        urls = [cast(str, signer.generate_presigned_url("upload_part", Params={
            "Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": n}, ExpiresIn=ttl))
            for n in range(1, parts + 1)]
        return upload_id, urls

    def complete_multipart(self, name: str, oid: str, upload_id: str, etags: Sequence[str]) -> bool:
        """Complete multipart upload `name` of blob `oid` from its parts' ETags; False if it is no longer open.

        Raises:
            InvalidInputError: the ETags do not name the parts uploaded (the upload stays open for a retry).
        """
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
        key = self.store.upload_key(oid, name)
        try:
            with s3_errors("complete an upload"):
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
        except ClientError as exc:
            if is_missing(exc):
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
        with s3_errors("read an upload"):
            got = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=etag)["Body"]
        with RangeStream(got) as body:
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
        head = self.store.head(src)
        if head is None:
            return None
        try:
            size = int(head["ContentLength"])
            if size != expected_size:
                raise InvalidInputError(f"Size mismatch: announced {expected_size} bytes, received {size}.")
            # Its presigned PUT stays valid a while: every read and copy is of this version (its ETag) or fails.
            etag = str(head["ETag"])
            final = self.store.key(expected_oid)
            copy = None if self.store.exists(expected_oid) else _Copy(self.store, src, final, size, etag)
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
            with s3_errors("delete an upload"):
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
        src = self.store.upload_key(expected_oid, name)
        head = self.store.head(src)
        if head is None:
            return None
        kept = False
        try:
            size = int(head["ContentLength"])
            if size != expected_size:
                raise InvalidInputError(f"Size mismatch: announced {expected_size} bytes, received {size}.")
            self._check_hash(src, str(head["ETag"]), expected_oid)
            if not self.store.exists(expected_oid):
                with s3_errors("record an upload"):
                    pointer = {POINTER: src[len(self.store.prefix):], POINTER_SIZE: str(size)}
                    self.client.put_object(Bucket=self.bucket, Key=self.store.key(expected_oid), Body=b"",
                                           Metadata=pointer)
                kept = True
        finally:
            if not kept:
                with s3_errors("delete an upload"):
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
        with s3_errors("copy an upload into place"):
            self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=dst)["UploadId"]

        def part(n: int, first: int) -> str:
            last = min(first + _COPY_PART, size) - 1
            answer = client.upload_part_copy(Bucket=bucket, Key=dst, UploadId=self.upload_id, PartNumber=n,
                                             CopySource={"Bucket": bucket, "Key": src}, CopySourceIfMatch=etag,
                                             CopySourceRange=f"bytes={first}-{last}")
            return cast(str, answer["CopyPartResult"]["ETag"])

        self.futures = [store.pool.submit(part, n, first)
                        for n, first in enumerate(range(0, size, _COPY_PART), start=1)]

    def complete(self) -> None:
        """Make the copy visible (the source has been verified)."""
        client, bucket = self.store.client, self.store.bucket
        with s3_errors("copy an upload into place"):
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
