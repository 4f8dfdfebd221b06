"""Xorbs (docs/xet/xorb.md): chunks behind 8-byte headers, each stored raw, LZ4 or byte-grouped LZ4.

A xorb is checked while it streams in (`XorbParser`): every header is sane, every chunk decompresses to its
announced size, and the Merkle hash of the chunk hashes is the hash the client named. Reading one back
(`iter_chunks`) decompresses chunk by chunk, so no more than one chunk is ever held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import lz4.frame

from registry.errors import InvalidInputError
from registry.xet.hashes import chunk_hash, hash_to_str, xorb_hash

HEADER_SIZE = 8
MAX_CHUNK_BYTES = 128 * 1024
# LZ4 may grow incompressible input a little; clients then store the chunk raw, but allow the worst case.
MAX_COMPRESSED_BYTES = 2 * MAX_CHUNK_BYTES
MAX_XORB_BYTES = 64 * 1024 * 1024
MAX_XORB_CHUNKS = 16 * 1024
# The serialized limit: 64 MiB of chunk data plus the headers of as many chunks as a xorb may hold.
MAX_XORB_BODY = MAX_XORB_BYTES + HEADER_SIZE * MAX_XORB_CHUNKS
SCHEMES = {0: "none", 1: "lz4", 2: "bg4-lz4"}


@dataclass(frozen=True)
class ChunkInfo:
    """One chunk of a stored xorb: its hash, where its header starts, and its uncompressed size."""

    hash: bytes
    offset: int
    size: int


@dataclass(frozen=True)
class XorbInfo:
    """A verified xorb: its hash, chunks in order, and serialized length."""

    hash: bytes
    chunks: tuple[ChunkInfo, ...]
    length: int

    @property
    def unpacked_bytes(self) -> int:
        """Sum of the chunks' uncompressed sizes."""
        return sum(c.size for c in self.chunks)

    def chunk_end(self, index: int) -> int:
        """Byte offset just past chunk `index` (exclusive)."""
        return self.chunks[index + 1].offset if index + 1 < len(self.chunks) else self.length


def _ungroup(data: bytes) -> bytes:
    """Undo the 4-byte grouping: the first group holds bytes 0, 4, 8..., the second 1, 5, 9... and so on."""
    n = len(data)
    split, rem = divmod(n, 4)
    sizes = [split + (1 if rem > k else 0) for k in range(4)]
    out = bytearray(n)
    pos = 0
    for k, size in enumerate(sizes):
        out[k::4] = data[pos:pos + size]
        pos += size
    return bytes(out)


def _lz4(payload: bytes, size: int) -> bytes:
    decomp = lz4.frame.LZ4FrameDecompressor()
    try:
        data = decomp.decompress(payload, max_length=size + 1)
    except RuntimeError as exc:
        raise InvalidInputError(f"corrupt LZ4 data ({exc})") from None
    if len(data) != size or not decomp.eof or decomp.unused_data:
        raise InvalidInputError(f"LZ4 data does not decompress to the announced {size} bytes")
    return bytes(data)


def decompress(scheme: int, payload: bytes, size: int) -> bytes:
    """A chunk's bytes from its stored payload (InvalidInputError when it does not decompress to `size`)."""
    if scheme == 0:
        if len(payload) != size:
            raise InvalidInputError(f"uncompressed chunk holds {len(payload)} bytes, its header says {size}")
        return payload
    if scheme == 1:
        return _lz4(payload, size)
    if scheme == 2:
        return _ungroup(_lz4(payload, size))
    raise InvalidInputError(f"unknown compression scheme {scheme}")


def parse_header(header: bytes) -> tuple[int, int, int]:
    """(compressed size, scheme, uncompressed size) of an 8-byte chunk header, checked."""
    version, scheme = header[0], header[4]
    compressed = int.from_bytes(header[1:4], "little")
    size = int.from_bytes(header[5:8], "little")
    if version != 0:
        raise InvalidInputError(f"chunk header version {version}, expected 0")
    if scheme not in SCHEMES:
        raise InvalidInputError(f"unknown compression scheme {scheme}")
    if not 0 < size <= MAX_CHUNK_BYTES:
        raise InvalidInputError(f"chunk of {size} bytes (chunks hold 1 to {MAX_CHUNK_BYTES})")
    if not 0 < compressed <= MAX_COMPRESSED_BYTES:
        raise InvalidInputError(f"compressed chunk of {compressed} bytes")
    return compressed, scheme, size


class XorbParser:
    """Checks a xorb as its bytes arrive (`feed`), then its hash (`finish`); raises InvalidInputError naming the
    first problem, so the caller can abort the write before anything is visible."""

    def __init__(self, expected: bytes) -> None:
        self.expected = expected
        self._buf = bytearray()
        self._offset = 0
        self._chunks: list[ChunkInfo] = []

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body; every complete chunk is decompressed and hashed at once."""
        self._buf += data
        while len(self._buf) >= HEADER_SIZE:
            compressed, scheme, size = self._checked_header(bytes(self._buf[:HEADER_SIZE]))
            end = HEADER_SIZE + compressed
            if len(self._buf) < end:
                return
            try:
                raw = decompress(scheme, bytes(self._buf[HEADER_SIZE:end]), size)
            except InvalidInputError as exc:
                raise InvalidInputError(f"Invalid xorb: chunk {len(self._chunks)}: {exc}.") from None
            self._chunks.append(ChunkInfo(chunk_hash(raw), self._offset, size))
            if len(self._chunks) > MAX_XORB_CHUNKS:
                raise InvalidInputError(f"Invalid xorb: more than {MAX_XORB_CHUNKS} chunks.")
            del self._buf[:end]
            self._offset += end

    def _checked_header(self, header: bytes) -> tuple[int, int, int]:
        try:
            return parse_header(header)
        except InvalidInputError as exc:
            raise InvalidInputError(f"Invalid xorb: chunk {len(self._chunks)} at byte {self._offset}: {exc}.") from None

    def finish(self) -> XorbInfo:
        """The verified xorb; InvalidInputError if the body ended mid-chunk, was empty or hashes differently."""
        if self._buf:
            raise InvalidInputError(f"Invalid xorb: truncated chunk at byte {self._offset} ({len(self._buf)} bytes "
                                    "left over).")
        if not self._chunks:
            raise InvalidInputError("Invalid xorb: it holds no chunk.")
        actual = xorb_hash([(c.hash, c.size) for c in self._chunks])
        if actual != self.expected:
            raise InvalidInputError(f"Xorb hash mismatch: the URL names {hash_to_str(self.expected)}, the chunks hash "
                                    f"to {hash_to_str(actual)}.")
        return XorbInfo(actual, tuple(self._chunks), self._offset)


def iter_chunks(fh: BinaryIO, info: XorbInfo, start: int, end: int) -> Iterator[bytes]:
    """The uncompressed bytes of chunks [start, end) of a stored xorb, one chunk at a time; `fh` reads the xorb
    from chunk `start`'s header on (`BlobStore.open_range`)."""
    for index in range(start, end):
        header = fh.read(HEADER_SIZE)
        compressed, scheme, size = parse_header(header)
        data = decompress(scheme, fh.read(compressed), size)
        if chunk_hash(data) != info.chunks[index].hash:
            raise InvalidInputError(f"stored xorb {hash_to_str(info.hash)}: chunk {index} does not match its hash")
        yield data
