"""Blobs of a remote store materialised as local files for callers that need a path (models, demos, evaluations)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from registry.blobs import CHUNK, storage_errors
from registry.errors import StorageUnavailableError


class BlobCache:
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
                if hash_file(tmp) != oid:
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


def hash_file(path: Path) -> str:
    """sha256 hex of the file at `path`."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
