"""What every S3 module shares: the bucket's errors turned into the hub's, whole reads of a body, the key layout.

Layout under `s3://bucket/prefix/` (see registry/s3store.py): blobs at `sha256/ab/cd/<oid>`, uploads waiting for their
check at `tmp/<name>`, presigned multipart uploads at `uploads/<oid>/<name>`, and pointers: a blob whose bytes stay in
such an upload has an empty object at its own key, with metadata naming the upload (`POINTER`) and its size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from registry.errors import StorageUnavailableError

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
UPLOAD_NAME_RE = re.compile(r"^[0-9a-f]{32}$")
# A blob whose bytes came as a presigned multipart upload keeps them there: its own key is then an empty object with
# these metadata (the upload's key under the prefix, and the size), written only once the bytes hashed right.
POINTER = "vitrine-pointer"
POINTER_SIZE = "vitrine-size"


def is_missing(exc: ClientError) -> bool:
    """Whether the bucket answered that the key (or upload) does not exist."""
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Turn a bucket that cannot be reached or refuses the request into StorageUnavailableError."""
    try:
        yield
    except ClientError as exc:
        if is_missing(exc):
            raise
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StorageUnavailableError(
            f"The hub's blob storage refused to {what} ({code}); nothing was changed. Retry later.") from exc
    except BotoCoreError as exc:  # connection refused, timeouts, missing credentials
        raise StorageUnavailableError(
            f"The hub's blob storage cannot be reached to {what} ({type(exc).__name__}). Retry later.") from exc


class RangeStream:
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

    def __enter__(self) -> RangeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
