"""Compare two versions of a model's safetensors weights, tensor by tensor and layer by layer.

Memory stays bounded by one chunk, not by the model or even its largest tensor: both sides are
memory-mapped and read in chunks of `CHUNK_ELEMENTS` at offsets from headers that
`registry.weights` has already validated, and each chunk's pages are released (MADV_DONTNEED)
once used. We do not use `safetensors.safe_open`: its mapped pages stay resident, and in RSS,
until the handle closes, so peak memory grows to both models' size (measured in
bench/bench_diff.py); it also cannot give bf16 to numpy. Decoding raw bytes ourselves handles
every float dtype the same way (bf16 and fp8 included).

Bytes are compared before any arithmetic: identical tensors report exactly 0 without a float
operation, and ||old|| (for relative change) is computed only in layers where something changed.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InvalidInputError
from registry.weights import TensorInfo, WeightsIndex, index_weights

CHUNK_ELEMENTS = 1 << 19

_NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "u1", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
    "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8", "C64": "<c8",
    "BF16": "<u2", "F8_E5M2": "u1", "F8_E4M3": "u1", "F8_E8M0": "u1",
}  # fmt: skip
_LAYER = re.compile(r"^((?:[^.]+\.)*?\d+)(?:\.|$)")


def _f8_e4m3_table() -> np.ndarray:
    bits = np.arange(256, dtype=np.int64)
    sign = np.where(bits & 0x80, -1.0, 1.0)
    exp, man = (bits >> 3) & 0xF, bits & 0x7
    normal = (1 + man / 8) * np.exp2(exp - 7.0)
    subnormal = (man / 8) * 2.0**-6
    values = sign * np.where(exp == 0, subnormal, normal)
    values[(bits & 0x7F) == 0x7F] = np.nan  # E4M3FN has no infinities, only NaN
    return values


_F8_E4M3 = _f8_e4m3_table()
_F8_E8M0 = np.where(np.arange(256) == 255, np.nan, np.exp2(np.arange(256, dtype=np.float64) - 127))


@dataclass(frozen=True)
class TensorDiff:
    """How one tensor changed; numbers are None where they are undefined or not comparable."""

    name: str
    layer: str
    status: str  # added | removed | shape_changed | dtype_changed | changed | unchanged
    old_dtype: str | None
    new_dtype: str | None
    old_shape: tuple[int, ...] | None
    new_shape: tuple[int, ...] | None
    l2: float | None = None
    rel_l2: float | None = None
    max_abs: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {
            "name": self.name,
            "layer": self.layer,
            "status": self.status,
            "old": None if self.old_dtype is None else {"dtype": self.old_dtype, "shape": list(self.old_shape or ())},
            "new": None if self.new_dtype is None else {"dtype": self.new_dtype, "shape": list(self.new_shape or ())},
            "l2": _finite(self.l2),
            "rel_l2": _finite(self.rel_l2),
            "max_abs": _finite(self.max_abs),
        }


@dataclass(frozen=True)
class LayerDiff:
    """A layer (`encoder.layer.3`, or a module path) and how much its tensors changed together."""

    layer: str
    tensors: int
    changed: int
    rel_l2: float | None
    max_abs: float | None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {
            "layer": self.layer,
            "tensors": self.tensors,
            "changed": self.changed,
            "rel_l2": _finite(self.rel_l2),
            "max_abs": _finite(self.max_abs),
        }


@dataclass(frozen=True)
class WeightDiff:
    """Every tensor's change between two versions, and the per-layer summary."""

    tensors: list[TensorDiff]
    layers: list[LayerDiff]

    def names(self, status: str) -> list[str]:
        """Names of the tensors with the given status."""
        return [t.name for t in self.tensors if t.status == status]

    @property
    def changed_layers(self) -> list[str]:
        """Layers with at least one tensor added, removed or changed."""
        return [layer.layer for layer in self.layers if layer.changed]

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        statuses = ("added", "removed", "shape_changed", "dtype_changed", "changed", "unchanged")
        return {
            "summary": {s: len(self.names(s)) for s in statuses},
            "changed_layers": self.changed_layers,
            "layers": [layer.to_json() for layer in self.layers],
            "tensors": [t.to_json() for t in self.tensors],
        }


def layer_of(name: str) -> str:
    """The layer a tensor belongs to: up to its first numeric index, else its module path."""
    match = _LAYER.match(name)
    if match:
        return match.group(1)
    return name.rpartition(".")[0] or name


def diff_weights(
    old: Mapping[str, Path],
    new: Mapping[str, Path],
    *,
    old_index: Mapping[str, Any] | None = None,
    new_index: Mapping[str, Any] | None = None,
) -> WeightDiff:
    """Diff two versions' safetensors weights, reading one chunk of each tensor at a time.

    Args:
        old, new: path in repo -> local path of each side's safetensors files.
        old_index, new_index: each side's parsed `model.safetensors.index.json` when sharded.

    Raises:
        InvalidInputError: a file is malformed, or a tensor name appears in two files of one side.
    """
    before = _by_name(index_weights(old, index_json=old_index), "old")
    after = _by_name(index_weights(new, index_json=new_index), "new")
    files = _Files(old, new)
    try:
        rows = [_compare(name, before.get(name), after.get(name), files) for name in before]
        rows += [_compare(name, None, t, files) for name, t in after.items() if name not in before]
        # ||old|| matters only for layers that changed; skipping it elsewhere saves all float work there.
        touched = {row.diff.layer for row in rows if row.diff.status != "unchanged"}
        for row in rows:
            if row.old_sq is None:
                row.old_sq = _old_norm_sq(files, row.old) if row.diff.layer in touched else 0.0
    finally:
        files.close()
    layers: dict[str, list[_Row]] = {}
    for row in rows:
        layers.setdefault(row.diff.layer, []).append(row)
    return WeightDiff([row.diff for row in rows], [_summarise(k, v) for k, v in layers.items()])


@dataclass
class _Row:
    """A tensor's diff plus its squared norms, which layer totals add up (old_sq None: not read yet)."""

    diff: TensorDiff
    old: TensorInfo | None = None
    diff_sq: float = 0.0
    old_sq: float | None = 0.0


class _Files:
    """Both sides' files, memory-mapped; each read drops the previous chunk's pages from our RSS."""

    def __init__(self, old: Mapping[str, Path], new: Mapping[str, Path]) -> None:
        self._paths = {"old": old, "new": new}
        self._maps: dict[Path, mmap.mmap] = {}
        self._last: dict[Path, tuple[int, int]] = {}

    def read(self, side: str, t: TensorInfo, start: int, size: int) -> np.ndarray:
        """A zero-copy uint8 view of `size` bytes of tensor `t`, from byte `start` of its data."""
        path = self._paths[side][t.file]
        if path not in self._maps:
            with path.open("rb") as f:
                self._maps[path] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        mm = self._maps[path]
        if t.offset + t.nbytes > len(mm):  # the file shrank after its header was validated
            raise InvalidInputError(f"{t.file}: file is shorter than its header says")
        self._drop(path)
        self._last[path] = (t.offset + start, size)
        return np.frombuffer(mm, dtype=np.uint8, count=size, offset=t.offset + start)

    def _drop(self, path: Path) -> None:
        # Mapped pages we touched count in RSS until unmapped; the page cache keeps them for others.
        if path in self._last and hasattr(mmap, "MADV_DONTNEED"):
            begin, size = self._last[path]
            aligned = begin - begin % mmap.PAGESIZE
            if size:
                self._maps[path].madvise(mmap.MADV_DONTNEED, aligned, size + begin - aligned)

    def close(self) -> None:
        """Unmap everything (views still alive elsewhere keep their map open until collected)."""
        for mm in self._maps.values():
            try:
                mm.close()
            except BufferError:
                pass


def _by_name(index: WeightsIndex, side: str) -> dict[str, TensorInfo]:
    out: dict[str, TensorInfo] = {}
    for t in index.tensors:
        if t.name in out:
            raise InvalidInputError(f"{side} weights: tensor {t.name!r} is in both {out[t.name].file} and {t.file}")
        out[t.name] = t
    return out


def _compare(name: str, a: TensorInfo | None, b: TensorInfo | None, files: _Files) -> _Row:
    """Classify one tensor; compute its numbers unless its bytes are identical on both sides.

    Tensors with no numeric comparison (added, removed, reshaped) add nothing to the layer's
    norms; the layer still counts them as changed.
    """
    layer = layer_of(name)
    if a is None or b is None:
        if a is None:
            assert b is not None
            return _Row(TensorDiff(name, layer, "added", None, b.dtype, None, b.shape))
        return _Row(TensorDiff(name, layer, "removed", a.dtype, None, a.shape, None))
    base = TensorDiff(name, layer, "unchanged", a.dtype, b.dtype, a.shape, b.shape)
    if a.shape != b.shape:
        return _Row(_replace(base, status="shape_changed"))
    comparable = a.dtype in _NUMPY_DTYPES and b.dtype in _NUMPY_DTYPES
    if a.dtype == b.dtype and _bytes_equal(files, a, b):
        return _Row(_replace(base, l2=0.0, rel_l2=0.0, max_abs=0.0), a, old_sq=None if comparable else 0.0)
    status = "changed" if a.dtype == b.dtype else "dtype_changed"
    if not comparable:  # sub-byte formats: only byte equality is meaningful
        return _Row(_replace(base, status=status))
    diff_sq, old_sq, max_abs = 0.0, 0.0, 0.0
    size_a, size_b = a.nbytes // max(a.numel, 1), b.nbytes // max(b.numel, 1)
    for start in range(0, a.numel, CHUNK_ELEMENTS):
        count = min(CHUNK_ELEMENTS, a.numel - start)
        raw_a = files.read("old", a, start * size_a, count * size_a)
        raw_b = files.read("new", b, start * size_b, count * size_b)
        va = _decode(raw_a, a.dtype)
        old_sq += _sum_sq(np.abs(va) if va.dtype.kind == "c" else va)
        if a.dtype == b.dtype and np.array_equal(raw_a, raw_b):
            continue  # identical bytes: exactly zero change, and no arithmetic to round
        delta = np.abs(_decode(raw_b, b.dtype) - va)
        diff_sq += _sum_sq(delta)
        max_abs = max(max_abs, float(delta.max()))
    l2 = math.sqrt(diff_sq)
    rel = l2 / math.sqrt(old_sq) if old_sq > 0 else (0.0 if diff_sq == 0 else None)
    if status == "changed" and diff_sq == 0:
        status = "unchanged"  # different bytes, equal values (e.g. -0.0 vs 0.0)
    return _Row(_replace(base, status=status, l2=l2, rel_l2=rel, max_abs=max_abs), a, diff_sq, old_sq)


def _bytes_equal(files: _Files, a: TensorInfo, b: TensorInfo) -> bool:
    step = CHUNK_ELEMENTS * 4
    for start in range(0, a.nbytes, step):
        size = min(step, a.nbytes - start)
        if not np.array_equal(files.read("old", a, start, size), files.read("new", b, start, size)):
            return False
    return True


def _old_norm_sq(files: _Files, t: TensorInfo | None) -> float:
    if t is None:
        return 0.0
    total, size = 0.0, t.nbytes // max(t.numel, 1)
    for start in range(0, t.numel, CHUNK_ELEMENTS):
        va = _decode(files.read("old", t, start * size, min(CHUNK_ELEMENTS, t.numel - start) * size), t.dtype)
        total += _sum_sq(np.abs(va) if va.dtype.kind == "c" else va)
    return total


def _decode(raw: np.ndarray, dtype: str) -> np.ndarray:
    """Raw little-endian bytes (a uint8 array) of a safetensors dtype -> float64 (complex128 for C64)."""
    arr = raw.view(_NUMPY_DTYPES[dtype])
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "F8_E5M2":  # the top byte of an IEEE half
        return (arr.astype(np.uint16) << 8).view(np.float16).astype(np.float64)
    if dtype in ("F8_E4M3", "F8_E8M0"):
        table: np.ndarray = _F8_E4M3 if dtype == "F8_E4M3" else _F8_E8M0
        looked_up: np.ndarray = table[arr]
        return looked_up
    if dtype == "C64":
        return arr.astype(np.complex128)
    return arr.astype(np.float64)


def _sum_sq(values: np.ndarray) -> float:
    # einsum stays single-threaded: BLAS dot spins up threads that crawl on a busy 2-core box.
    return float(np.einsum("i,i->", values, values))


def _summarise(layer: str, rows: list[_Row]) -> LayerDiff:
    changed = sum(1 for row in rows if row.diff.status != "unchanged")
    diff_sq = sum(row.diff_sq for row in rows)
    old_sq = sum(row.old_sq or 0.0 for row in rows)
    rel = math.sqrt(diff_sq) / math.sqrt(old_sq) if old_sq > 0 else (0.0 if diff_sq == 0 else None)
    maxes = [row.diff.max_abs for row in rows if row.diff.max_abs is not None]
    return LayerDiff(layer, len(rows), changed, rel, max(maxes) if maxes else None)


def _replace(diff: TensorDiff, **changes: Any) -> TensorDiff:
    return dataclasses.replace(diff, **changes)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
