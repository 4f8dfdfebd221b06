"""Shards (docs/xet/shard.md): the file reconstructions and xorb listings a client uploads, and the dedupe answer.

All integers are little-endian; every entry is 48 bytes; each section ends with a bookend (32 bytes of 0xFF).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from registry.errors import InvalidInputError
from registry.xet.hashes import hash_to_str

HEADER_TAG = bytes([72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123,
                    129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])
HEADER_VERSION = 2
FOOTER_VERSION = 1
FOOTER_SIZE = 200
ENTRY = 48
BOOKEND = b"\xff" * 32
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA_EXT = 1 << 30
# A shard is a manifest, not data: this bounds the files and terms one upload may register.
MAX_SHARD_BYTES = 64 * 1024 * 1024
MAX_TERMS = 1 << 20


@dataclass(frozen=True)
class Term:
    """Chunks [start, end) of one xorb, `size` bytes once unpacked."""

    xorb: bytes
    size: int
    start: int
    end: int


@dataclass(frozen=True)
class ShardFile:
    """One file's reconstruction as a shard states it."""

    hash: bytes
    terms: tuple[Term, ...]
    verification: tuple[bytes, ...] | None
    sha256: bytes | None

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return sum(t.size for t in self.terms)


@dataclass(frozen=True)
class ShardXorb:
    """A xorb the shard lists: its hash and (chunk hash, byte offset, size) per chunk."""

    hash: bytes
    chunks: tuple[tuple[bytes, int, int], ...]


@dataclass(frozen=True)
class Shard:
    """A parsed upload shard."""

    files: tuple[ShardFile, ...]
    xorbs: tuple[ShardXorb, ...]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def entry(self, what: str) -> bytes:
        if self.pos + ENTRY > len(self.data):
            raise InvalidInputError(f"Invalid shard: truncated in the {what} at byte {self.pos}.")
        out = self.data[self.pos:self.pos + ENTRY]
        self.pos += ENTRY
        return out


def parse_shard(data: bytes) -> Shard:
    """Parse an uploaded shard (its footer, if any, is ignored); InvalidInputError naming what is malformed."""
    if len(data) < ENTRY or data[:32] != HEADER_TAG:
        raise InvalidInputError("Invalid shard: it does not start with the shard header tag.")
    version, footer_size = struct.unpack_from("<QQ", data, 32)
    if version != HEADER_VERSION:
        raise InvalidInputError(f"Invalid shard: header version {version}, expected {HEADER_VERSION}.")
    if footer_size not in (0, FOOTER_SIZE) or footer_size > len(data) - ENTRY:
        raise InvalidInputError(f"Invalid shard: footer size {footer_size}.")
    reader = _Reader(data[:len(data) - footer_size])
    reader.pos = ENTRY
    files: list[ShardFile] = []
    terms_seen = 0
    while True:
        head = reader.entry("file info section")
        if head[:32] == BOOKEND:
            break
        flags, count = struct.unpack_from("<II", head, 32)
        terms_seen += count
        if count == 0 or terms_seen > MAX_TERMS:
            raise InvalidInputError(f"Invalid shard: file {hash_to_str(head[:32])} has {count} terms.")
        terms = []
        for _ in range(count):
            e = reader.entry("file terms")
            _flags, size, start, end = struct.unpack_from("<IIII", e, 32)
            if end <= start or size == 0:
                raise InvalidInputError(f"Invalid shard: file {hash_to_str(head[:32])} has an empty term "
                                        f"[{start}, {end}).")
            terms.append(Term(e[:32], size, start, end))
        verification = None
        if flags & FLAG_VERIFICATION:
            verification = tuple(reader.entry("verification entries")[:32] for _ in range(count))
        sha256 = reader.entry("metadata extension")[:32] if flags & FLAG_METADATA_EXT else None
        files.append(ShardFile(head[:32], tuple(terms), verification, sha256))
    xorbs: list[ShardXorb] = []
    while True:
        head = reader.entry("xorb info section")
        if head[:32] == BOOKEND:
            break
        _flags, count, _unpacked, _on_disk = struct.unpack_from("<IIII", head, 32)
        chunks = []
        for _ in range(count):
            e = reader.entry("xorb chunk entries")
            offset, size = struct.unpack_from("<II", e, 32)
            chunks.append((e[:32], offset, size))
        xorbs.append(ShardXorb(head[:32], tuple(chunks)))
    if reader.pos != len(reader.data):
        raise InvalidInputError(f"Invalid shard: {len(reader.data) - reader.pos} bytes after the xorb info bookend.")
    if files and any(f.verification is None for f in files):
        raise InvalidInputError("Invalid shard: every file needs verification entries.")
    return Shard(tuple(files), tuple(xorbs))


@dataclass(frozen=True)
class DedupeXorb:
    """A stored xorb offered for deduplication: its hash, chunks (hash, offset, size), serialized length."""

    hash: bytes
    chunks: Sequence[tuple[bytes, int, int]]
    length: int


def build_dedupe_shard(xorbs: Sequence[DedupeXorb], *, valid_for_s: int) -> bytes:
    """A shard holding no file and these xorbs' chunk listings, with its lookup tables and footer."""
    out = bytearray(HEADER_TAG + struct.pack("<QQ", HEADER_VERSION, FOOTER_SIZE))
    file_info_offset = len(out)
    out += BOOKEND + bytes(16)
    xorb_info_offset = len(out)
    xorb_lookup: list[tuple[int, int]] = []
    chunk_lookup: list[tuple[int, int, int]] = []
    index = 0
    for x in sorted(xorbs, key=lambda x: x.hash):
        xorb_lookup.append((int.from_bytes(x.hash[:8], "little"), index))
        unpacked = sum(size for _, _, size in x.chunks)
        out += x.hash + struct.pack("<IIII", 0, len(x.chunks), unpacked, x.length)
        for i, (h, offset, size) in enumerate(x.chunks):
            out += h + struct.pack("<II", offset, size) + bytes(8)
            chunk_lookup.append((int.from_bytes(h[:8], "little"), index, i))
        index += 1 + len(x.chunks)
    out += BOOKEND + bytes(16)
    file_lookup_offset = len(out)
    xorb_lookup_offset = len(out)
    for key, idx in xorb_lookup:
        out += struct.pack("<QI", key, idx)
    chunk_lookup_offset = len(out)
    for key, idx, i in sorted(chunk_lookup):
        out += struct.pack("<QII", key, idx, i)
    footer_offset = len(out)
    now = int(time.time())
    stored = sum(x.length for x in xorbs)
    materialized = sum(size for x in xorbs for _, _, size in x.chunks)
    out += struct.pack("<QQQQQQQQQ", FOOTER_VERSION, file_info_offset, xorb_info_offset, file_lookup_offset, 0,
                       xorb_lookup_offset, len(xorb_lookup), chunk_lookup_offset, len(chunk_lookup))
    out += bytes(32)  # no HMAC key: the caller may read every xorb listed
    out += struct.pack("<QQ", now, now + valid_for_s)
    out += bytes(48)
    out += struct.pack("<QQQQ", stored, materialized, materialized, footer_offset)
    assert len(out) - footer_offset == FOOTER_SIZE
    return bytes(out)
