"""Index safetensors weights from their headers alone: names, dtypes, shapes and parameter counts.

A safetensors file is an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
Everything here reads only the first two parts, so indexing costs the same for 10 KiB and 10 GiB.
The header is validated as strictly as the safetensors loader does, so a file we accept loads.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from registry.errors import InvalidInputError

if TYPE_CHECKING:
    from registry.storage import BlobStore

# The safetensors loader refuses headers above 100 MB; so do we, before reading one into memory.
MAX_HEADER_BYTES = 100_000_000

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as a safetensors header describes it (offsets relative to the data section)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """The validated header of one safetensors file."""

    name: str
    file_size: int
    header_size: int
    metadata: dict[str, str]
    tensors: tuple[TensorEntry, ...]

    @property
    def data_start(self) -> int:
        """Absolute file offset where tensor data begins."""
        return 8 + self.header_size

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form of the header."""
        return {
            "name": self.name,
            "file_size": self.file_size,
            "header_size": self.header_size,
            "metadata": dict(self.metadata),
            "tensors": [
                {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "data_offsets": [t.begin, t.end]}
                for t in self.tensors
            ],
        }


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a (possibly sharded) model, with where its bytes live."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: str
    offset: int
    nbytes: int

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class WeightsIndex:
    """Every tensor of a model version, and the parameter counts the Hub shows."""

    tensors: tuple[TensorInfo, ...]
    files: tuple[str, ...]
    parameters: dict[str, int]
    total: int
    total_bytes: int
    sharded: bool
    warnings: tuple[str, ...] = field(default=())

    def to_hub_json(self) -> dict[str, Any]:
        """The `safetensors` field of the Hub's model-info answer."""
        return {"parameters": dict(self.parameters), "total": self.total}

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {
            "parameters": dict(self.parameters),
            "total": self.total,
            "total_bytes": self.total_bytes,
            "sharded": self.sharded,
            "files": list(self.files),
            "warnings": list(self.warnings),
            "tensors": [
                {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "file": t.file} for t in self.tensors
            ],
        }


def read_safetensors_header(path: Path | str, *, name: str | None = None) -> SafetensorsHeader:
    """Read and validate a safetensors header without touching tensor data.

    Args:
        path: the local file.
        name: how to call the file in error messages (its path in the repo); defaults to the file name.

    Raises:
        InvalidInputError: the file is not a well-formed safetensors file; the message says why.
    """
    path = Path(path)
    with path.open("rb") as f:
        return parse_safetensors_header(f, os.fstat(f.fileno()).st_size, name or path.name)


def blob_safetensors_header(blobs: BlobStore, oid: str, size: int, *, name: str) -> SafetensorsHeader:
    """The header of safetensors blob `oid` (`size` bytes, as its tree says), read where it lies.

    A local file is read in place; a blob with no local copy (S3 storage, not cached) is read from the start of a
    stream of it, so only the header crosses the network, not the tensors.

    Raises:
        InvalidInputError: the blob is not a well-formed safetensors file.
    """
    local = blobs.local_path(oid)
    if local is not None:
        return read_safetensors_header(local, name=name)
    with blobs.open_range(oid) as f:
        return parse_safetensors_header(f, size, name)


def parse_safetensors_header(f: BinaryIO, file_size: int, label: str) -> SafetensorsHeader:
    """Read and validate the header at the start of `f`, a safetensors file of `file_size` bytes called `label`.

    Raises:
        InvalidInputError: the file is not a well-formed safetensors file; the message says why.
    """
    if file_size < 8:
        raise _bad(label, f"too short to be safetensors: {file_size} bytes, needs at least 8")
    (header_size,) = struct.unpack("<Q", f.read(8))
    if header_size == 0:
        raise _bad(label, "header length is 0")
    if header_size > MAX_HEADER_BYTES:
        raise _bad(label, f"header length {header_size} exceeds the {MAX_HEADER_BYTES}-byte limit")
    if 8 + header_size > file_size:
        raise _bad(
            label,
            f"truncated: header length says {header_size} bytes but only {file_size - 8} bytes follow it",
        )
    raw = f.read(header_size)
    header = _parse_header_json(label, raw)
    metadata: dict[str, str] = {}
    entries: list[TensorEntry] = []
    for key, value in header.items():
        if key == "__metadata__":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise _bad(label, "__metadata__ must map strings to strings")
            metadata = dict(value)
        else:
            entries.append(_parse_entry(label, key, value))
    data_end = _check_layout(label, entries)
    expected = 8 + header_size + data_end
    if file_size < expected:
        raise _bad(label, f"truncated: header says tensor data ends at byte {expected} but file has {file_size} bytes")
    if file_size > expected:
        raise _bad(
            label,
            f"{file_size - expected} bytes of trailing data: header says tensor data ends at byte {expected}"
            f" but file has {file_size} bytes",
        )
    return SafetensorsHeader(label, file_size, header_size, metadata, tuple(entries))


def index_weights(files: Mapping[str, Path | Callable[[], SafetensorsHeader]], *,
                  index_json: Mapping[str, Any] | None = None) -> WeightsIndex:
    """Index a model's safetensors weights: one file, or shards listed by `model.safetensors.index.json`.

    Args:
        files: path in repo -> local path of each safetensors file, or a function reading its header.
        index_json: the parsed `*.safetensors.index.json`; when given, only the shards its
            `weight_map` names are indexed (other files, e.g. a consolidated copy, are ignored).

    Raises:
        InvalidInputError: a file is malformed, or the index and the shards disagree.
    """
    if not files:
        raise InvalidInputError("no safetensors files to index")
    warnings: list[str] = []
    weight_map: dict[str, str] | None = None
    if index_json is not None:
        weight_map = _parse_weight_map(index_json)
        names = list(dict.fromkeys(weight_map.values()))
        for shard in names:
            if shard not in files:
                raise InvalidInputError(f"weight_map names shard {shard!r}, which is not among the files")
    else:
        names = list(files)
    tensors: list[TensorInfo] = []
    seen: dict[str, str] = {}
    for file_name in names:
        source = files[file_name]
        header = source() if callable(source) else read_safetensors_header(source, name=file_name)
        for t in header.tensors:
            if weight_map is not None:
                if t.name in seen:
                    raise InvalidInputError(f"tensor {t.name!r} is in both {seen[t.name]} and {file_name}")
                if weight_map.get(t.name) != file_name:
                    warnings.append(f"{file_name} holds {t.name!r}, which weight_map does not place there")
            seen.setdefault(t.name, file_name)
            tensors.append(TensorInfo(t.name, t.dtype, t.shape, file_name, header.data_start + t.begin, t.nbytes))
    if weight_map is not None:
        for tensor_name, shard in weight_map.items():
            if tensor_name not in seen:
                raise InvalidInputError(f"weight_map places {tensor_name!r} in {shard}, which has no such tensor")
    parameters: dict[str, int] = {}
    for info in tensors:
        parameters[info.dtype] = parameters.get(info.dtype, 0) + info.numel
    return WeightsIndex(
        tensors=tuple(tensors),
        files=tuple(names),
        parameters=parameters,
        total=sum(parameters.values()),
        total_bytes=sum(info.nbytes for info in tensors),
        sharded=weight_map is not None,
        warnings=tuple(warnings),
    )


def _bad(label: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"{label}: {problem}")


def _parse_header_json(label: str, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(label, f"header is not valid UTF-8 ({e.reason} at byte {8 + e.start})") from None
    if not text.startswith("{"):
        raise _bad(label, "header is not a JSON object (does not start with '{')")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise _bad(label, f"header has duplicate key {k!r}")
            out[k] = v
        return out

    try:
        header = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as e:
        raise _bad(label, f"header is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(header, dict):
        raise _bad(label, "header is not a JSON object")
    return header


def _is_uint(value: Any) -> bool:
    # bool is an int subclass; `true` is not a dimension.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_entry(label: str, key: str, value: Any) -> TensorEntry:
    if not isinstance(value, dict):
        raise _bad(label, f"tensor {key!r}: expected an object with dtype, shape and data_offsets")
    for required in ("dtype", "shape", "data_offsets"):
        if required not in value:
            raise _bad(label, f"tensor {key!r}: missing {required!r}")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _bad(label, f"tensor {key!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        raise _bad(label, f"tensor {key!r}: shape must be a list of non-negative integers, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_uint(o) for o in offsets)) or (
        offsets[0] > offsets[1]
    ):
        raise _bad(label, f"tensor {key!r}: data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}")
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if bits % 8:
        raise _bad(label, f"tensor {key!r}: {dtype} with shape {shape} is not a whole number of bytes")
    span = offsets[1] - offsets[0]
    if span != bits // 8:
        raise _bad(
            label,
            f"tensor {key!r}: data_offsets {offsets} span {span} bytes but {dtype} with shape {shape}"
            f" needs {bits // 8} bytes",
        )
    return TensorEntry(key, dtype, tuple(shape), offsets[0], offsets[1])


def _check_layout(label: str, entries: list[TensorEntry]) -> int:
    """Check tensors tile the data section with no gap or overlap; return where the data ends."""
    position = 0
    previous: TensorEntry | None = None
    for t in sorted(entries, key=lambda e: (e.begin, e.end)):
        if t.begin > position:
            where = f"after tensor {previous.name!r}" if previous else "before the first tensor"
            raise _bad(label, f"gap of {t.begin - position} bytes in tensor data {where} (at {t.name!r})")
        if t.begin < position:
            assert previous is not None
            raise _bad(label, f"tensors {previous.name!r} and {t.name!r} overlap in the data section")
        position = t.end
        if t.nbytes:
            previous = t
    return position


def _parse_weight_map(index_json: Mapping[str, Any]) -> dict[str, str]:
    weight_map = index_json.get("weight_map") if isinstance(index_json, Mapping) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise InvalidInputError("safetensors index has no 'weight_map' object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise InvalidInputError("safetensors index 'weight_map' must map tensor names to file names")
    return weight_map
