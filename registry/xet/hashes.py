"""Xet hashes (docs/xet/hashing.md): chunk, xorb and file Merkle hashes, term verification, and their strings."""

from __future__ import annotations

import re
from collections.abc import Sequence

from blake3 import blake3

from registry.errors import InvalidInputError

DATA_KEY = bytes([
    102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
    157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
])
INTERNAL_NODE_KEY = bytes([
    1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
    93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
])
VERIFICATION_KEY = bytes([
    127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243,
    164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195,
])
ZERO_KEY = bytes(32)
# The Merkle tree's mean branching factor: a node closes after a child whose hash is 0 mod 4 (2 to 9 children).
_BRANCHING = 4
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


def hash_to_str(raw: bytes) -> str:
    """The API string of a 32-byte hash: each 8-byte group read as a little-endian u64, in hex."""
    return "".join(raw[i:i + 8][::-1].hex() for i in range(0, 32, 8))


def str_to_hash(text: str) -> bytes:
    """The raw 32 bytes of a hash's API string (InvalidInputError unless 64 lowercase hex characters)."""
    if not isinstance(text, str) or not _HEX_RE.match(text):
        raise InvalidInputError(f"Invalid Xet hash {text!r}: expected 64 lowercase hex characters.")
    raw = bytes.fromhex(text)
    return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))


def chunk_hash(data: bytes) -> bytes:
    """The hash of one chunk's (uncompressed) bytes."""
    return blake3(data, key=DATA_KEY).digest()


def _node(children: Sequence[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{hash_to_str(h)} : {size}\n" for h, size in children)
    return blake3(text.encode(), key=INTERNAL_NODE_KEY).digest(), sum(size for _, size in children)


def _cut(level: Sequence[tuple[bytes, int]], start: int) -> int:
    """End (exclusive) of the node starting at `start`."""
    remaining = len(level) - start
    if remaining <= 2:
        return len(level)
    end = min(2 * _BRANCHING + 1, remaining)
    for i in range(2, end):
        # The hash read as the last of its four little-endian u64 words.
        if int.from_bytes(level[start + i][0][24:32], "little") % _BRANCHING == 0:
            return start + i + 1
    return start + end


def merkle_root(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """The root of the aggregated Merkle tree over (chunk hash, chunk size) pairs; 32 zero bytes when empty."""
    if not chunks:
        return bytes(32)
    level = list(chunks)
    while len(level) > 1:
        parents, start = [], 0
        while start < len(level):
            end = _cut(level, start)
            parents.append(_node(level[start:end]))
            start = end
        level = parents
    return level[0][0]


def xorb_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """The hash of a xorb made of these (chunk hash, size) pairs."""
    return merkle_root(chunks)


def file_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """The hash of a file made of these (chunk hash, size) pairs."""
    if not chunks:
        return bytes(32)
    return blake3(merkle_root(chunks), key=ZERO_KEY).digest()


def verification_hash(chunk_hashes: Sequence[bytes]) -> bytes:
    """The verification hash of one reconstruction term: over its chunks' raw hashes, in order."""
    return blake3(b"".join(chunk_hashes), key=VERIFICATION_KEY).digest()
