"""Content-addressed blob store: sha256-named files, written atomically and verified before they appear."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from registry.errors import InvalidInputError, PayloadTooLargeError, StorageFullError, StorageUnavailableError

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024
WRITEBACK = 32 * CHUNK
"""A long upload asks the disk to write what it has every this many bytes, so the final fsync finds little left."""
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def check_oid(oid: str) -> str:
    """Return `oid` if it is a lowercase 64-hex sha256, else raise InvalidInputError."""
    if not isinstance(oid, str) or not SHA256_RE.match(oid):
        raise InvalidInputError(f"Invalid sha256 oid {oid!r}: expected 64 lowercase hex characters.")
    return oid


@dataclass(frozen=True)
class StoredBlob:
    """What a finished write produced."""

    oid: str
    size: int
    git_oid: str | None = None


class _PendingWrite:
    """A temp file being filled and hashed; becomes a blob only in `finish`."""

    def __init__(self, store: LocalBlobStore, *, max_size: int | None, git_size: int | None) -> None:
        self.store = store
        self.max_size = max_size
        self.tmp = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        self.fh: BinaryIO = open(self.tmp, "wb", buffering=0)  # callers write in slices of CHUNK or whole
        self.sha = hashlib.sha256()
        # The git blob id needs the size up front; only computed when the caller knows it (inline files).
        self.git = hashlib.sha1(b"blob %d\0" % git_size) if git_size is not None else None
        self.size = 0

    def write(self, chunk: bytes | bytearray) -> None:
        self.size += len(chunk)
        if self.max_size is not None and self.size > self.max_size:
            raise PayloadTooLargeError(f"Upload exceeds the limit of {self.max_size} bytes.")
        self.sha.update(chunk)
        if self.git is not None:
            self.git.update(chunk)
        view = memoryview(chunk)
        while view:  # an unbuffered file may take less than it was given
            written = self.fh.write(view)
            if not written:
                raise OSError(errno.EIO, "the disk took no bytes")
            view = view[written:]

    def write_back(self) -> None:
        """Write what has been received so far to disk (from a worker thread, while more arrives)."""
        try:
            os.fdatasync(self.fh.fileno())
        except (OSError, ValueError):  # closed meanwhile: the write failed or was aborted, and says so itself
            pass

    def finish(self, *, expected_oid: str | None, expected_size: int | None) -> StoredBlob:
        oid = self.sha.hexdigest()
        if expected_size is not None and self.size != expected_size:
            raise InvalidInputError(f"Size mismatch: announced {expected_size} bytes, received {self.size}.")
        if expected_oid is not None and oid != expected_oid:
            raise InvalidInputError(f"sha256 mismatch: announced {expected_oid}, received content hashes to {oid}.")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        final = self.store.path(oid)
        if final.exists():
            self.tmp.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, final)
            _fsync_dir(final.parent)
        return StoredBlob(oid, self.size, self.git.hexdigest() if self.git is not None else None)

    def abort(self) -> None:
        # Best effort: on a full or read-only disk closing (it flushes) and unlinking can fail too.
        try:
            self.fh.close()
        except OSError:
            pass
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError:
            pass


class LocalBlobStore:
    """Blobs under one directory: `sha256/ab/cd/<oid>`; partial writes live in `tmp/` until verified."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, oid: str) -> Path:
        """Local path of blob `oid` (whether or not it exists)."""
        check_oid(oid)
        return self.root / "sha256" / oid[:2] / oid[2:4] / oid

    def exists(self, oid: str) -> bool:
        """Whether blob `oid` is durably stored."""
        return self.path(oid).is_file()

    def size(self, oid: str) -> int:
        """Size in bytes of blob `oid` (FileNotFoundError if absent)."""
        return self.path(oid).stat().st_size

    def local_path(self, oid: str) -> Path | None:
        """Local path of blob `oid`: every blob of this store is one."""
        return self.path(oid)

    def open(self, oid: str) -> BinaryIO:
        """Open blob `oid` for reading."""
        return open(self.path(oid), "rb")

    def open_range(self, oid: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """Open blob `oid` for reading from byte `start` on (`end`, inclusive, is a hint a file does not need)."""
        fh = open(self.path(oid), "rb")
        fh.seek(start)
        return fh

    def read(self, oid: str) -> bytes:
        """Whole content of a (small) blob."""
        return self.path(oid).read_bytes()

    def put_bytes(self, data: bytes, *, expected_oid: str | None = None) -> StoredBlob:
        """Store `data`; returns its sha256, size and git blob id."""
        with self._pending(max_size=None, git_size=len(data)) as pending:
            pending.write(data)
            return pending.finish(expected_oid=expected_oid, expected_size=len(data))

    def put_chunks(self, chunks: Iterable[bytes], *, expected_oid: str | None = None,
                   expected_size: int | None = None) -> StoredBlob:
        """Store the concatenation of `chunks`, streamed (never held whole) and verified like any other write."""
        with self._pending(max_size=None, git_size=None) as pending:
            for chunk in chunks:
                pending.write(chunk)
            return pending.finish(expected_oid=expected_oid, expected_size=expected_size)

    async def put_async_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_oid: str | None = None,
        expected_size: int | None = None,
        max_size: int | None = None,
    ) -> StoredBlob:
        """Store an ASGI request body, verified against the announced oid and size before it becomes visible.

        Hashing happens in the event loop in 1 MiB slices: cheaper than a thread hop per small network chunk.
        Every `WRITEBACK` bytes a worker thread has the disk write what arrived, so the disk works while the
        network does, and the final fsync (also off the event loop) waits for the last slice only.
        """
        with self._pending(max_size=max_size, git_size=None) as pending:
            buf = bytearray()
            unsynced = 0
            syncing: asyncio.Future[None] | None = None
            async for chunk in chunks:
                buf += chunk
                if len(buf) >= CHUNK:
                    pending.write(buf)
                    unsynced += len(buf)
                    buf.clear()
                    if unsynced >= WRITEBACK and (syncing is None or syncing.done()):
                        syncing = asyncio.ensure_future(asyncio.to_thread(pending.write_back))
                        unsynced = 0
            if buf:
                pending.write(buf)
            if syncing is not None:
                await syncing
            return await asyncio.to_thread(pending.finish, expected_oid=expected_oid, expected_size=expected_size)

    @contextmanager
    def _pending(self, *, max_size: int | None, git_size: int | None) -> Iterator[_PendingWrite]:
        with storage_errors():
            pending = _PendingWrite(self, max_size=max_size, git_size=git_size)
            try:
                yield pending
            except BaseException:
                pending.abort()  # a failed or interrupted write leaves nothing behind
                raise

    def delete(self, oid: str) -> None:
        """Remove blob `oid` if present."""
        self.path(oid).unlink(missing_ok=True)

    def iter_oids(self) -> Iterator[str]:
        """Every stored blob oid."""
        base = self.root / "sha256"
        if not base.exists():
            return
        for p in base.glob("*/*/*"):
            if SHA256_RE.match(p.name):
                yield p.name

    def touch(self, oid: str) -> None:
        """Mark blob `oid` as just used, so `gc` grants it a full grace period (a commit may be about to cite it).

        Raises:
            StorageUnavailableError: the store is read-only.
        """
        with storage_errors():
            os.utime(self.path(oid))

    def age_seconds(self, oid: str) -> float:
        """Seconds since blob `oid` was last written."""
        return time.time() - self.path(oid).stat().st_mtime

    def stale_temp_files(self, older_than: float) -> list[Path]:
        """Partial uploads left behind (crash, disconnect) older than `older_than` seconds."""
        cutoff = time.time() - older_than
        return [p for p in self.tmp_dir.glob("*.part") if p.stat().st_mtime < cutoff]

    def verify(self, oid: str) -> bool:
        """Re-hash blob `oid` and say whether it still matches its name."""
        h = hashlib.sha256()
        with self.open(oid) as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        return h.hexdigest() == oid


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the OS errors of a full or read-only store into StorageFullError / StorageUnavailableError.

    Raises:
        StorageFullError: out of space or quota (ENOSPC, EDQUOT, EFBIG).
        StorageUnavailableError: read-only or not writable by the hub (EROFS, EACCES, EPERM).
    """
    try:
        yield
    except OSError as exc:
        # The message goes to clients: name the cause, not the server's paths.
        reason = os.strerror(exc.errno) if exc.errno is not None else str(exc)
        if exc.errno in _FULL:
            raise StorageFullError(
                f"The hub's blob storage is full ({reason}); nothing was stored. Retry once the operator has "
                "freed space."
            ) from exc
        if exc.errno in _UNWRITABLE:
            raise StorageUnavailableError(
                f"The hub's blob storage does not accept writes ({reason}); nothing was stored. Reads still work; "
                "retry later."
            ) from exc
        raise


def git_blob_oid(data: bytes) -> str:
    """The git blob sha1 of `data`, what the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-lfs pointer file standing for an LFS blob in the git tree."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
