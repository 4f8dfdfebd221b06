"""Compare two versions of a model's safetensors weights, tensor by tensor and layer by layer.

Memory stays bounded by one chunk, not by the model or even its largest tensor: both sides are
read with `os.pread` in chunks of `CHUNK_ELEMENTS`, at offsets from headers that
`registry.weights` has already validated. We do not go through `safetensors.safe_open`: it maps
the whole file, and the mapped pages it touches stay resident (and in RSS) until it closes, so
peak memory grows to both models' size; it also cannot give bf16 to numpy. Decoding raw bytes
ourselves handles every float dtype the same way (bf16 and fp8 included).
"""

from __future__ import annotations

import dataclasses
import math
import os
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
    fds: dict[Path, int] = {}
    try:
        results = [_diff_one(name, before.get(name), after.get(name), old, new, fds) for name in before]
        results += [_diff_one(name, None, t, old, new, fds) for name, t in after.items() if name not in before]
    finally:
        for fd in fds.values():
            os.close(fd)
    layers: dict[str, list[tuple[TensorDiff, float, float]]] = {}
    for diff, diff_sq, old_sq in results:
        layers.setdefault(diff.layer, []).append((diff, diff_sq, old_sq))
    return WeightDiff([r[0] for r in results], [_summarise(k, v) for k, v in layers.items()])


def _by_name(index: WeightsIndex, side: str) -> dict[str, TensorInfo]:
    out: dict[str, TensorInfo] = {}
    for t in index.tensors:
        if t.name in out:
            raise InvalidInputError(f"{side} weights: tensor {t.name!r} is in both {out[t.name].file} and {t.file}")
        out[t.name] = t
    return out


def _diff_one(
    name: str,
    a: TensorInfo | None,
    b: TensorInfo | None,
    old: Mapping[str, Path],
    new: Mapping[str, Path],
    fds: dict[Path, int],
) -> tuple[TensorDiff, float, float]:
    """One tensor's diff, plus its squared diff norm and squared old norm for the layer totals.

    Tensors with no numeric comparison (added, removed, reshaped) add nothing to the layer's
    norms; the layer still counts them as changed.
    """
    layer = layer_of(name)
    if a is None or b is None:
        status = "added" if a is None else "removed"
        t = b if a is None else a
        assert t is not None
        dtypes, shapes = ((None, t.dtype), (None, t.shape)) if a is None else ((t.dtype, None), (t.shape, None))
        return TensorDiff(name, layer, status, dtypes[0], dtypes[1], shapes[0], shapes[1]), 0.0, 0.0
    base = TensorDiff(name, layer, "unchanged", a.dtype, b.dtype, a.shape, b.shape)
    if a.shape != b.shape:
        return _replace(base, status="shape_changed"), 0.0, 0.0
    fd_a, fd_b = _fd(old[a.file], fds), _fd(new[b.file], fds)
    comparable = a.dtype in _NUMPY_DTYPES and b.dtype in _NUMPY_DTYPES
    if not comparable:  # sub-byte formats: only byte equality is meaningful
        same = a.dtype == b.dtype and _read(fd_a, a.offset, a.nbytes) == _read(fd_b, b.offset, b.nbytes)
        status = "unchanged" if same else ("dtype_changed" if a.dtype != b.dtype else "changed")
        zero = 0.0 if same else None
        return _replace(base, status=status, l2=zero, rel_l2=zero, max_abs=zero), 0.0, 0.0
    diff_sq, old_sq, max_abs = 0.0, 0.0, 0.0
    size_a, size_b = a.nbytes // max(a.numel, 1), b.nbytes // max(b.numel, 1)
    for start in range(0, a.numel, CHUNK_ELEMENTS):
        count = min(CHUNK_ELEMENTS, a.numel - start)
        raw_a = _read(fd_a, a.offset + start * size_a, count * size_a)
        raw_b = _read(fd_b, b.offset + start * size_b, count * size_b)
        va = _decode(raw_a, a.dtype)
        old_sq += _sum_sq(np.abs(va) if va.dtype.kind == "c" else va)
        if a.dtype == b.dtype and raw_a == raw_b:
            continue  # identical bytes: exactly zero change, and no arithmetic to round
        delta = np.abs(_decode(raw_b, b.dtype) - va)
        diff_sq += _sum_sq(delta)
        max_abs = max(max_abs, float(delta.max()))
    l2 = math.sqrt(diff_sq)
    rel = l2 / math.sqrt(old_sq) if old_sq > 0 else (0.0 if diff_sq == 0 else None)
    if a.dtype != b.dtype:
        status = "dtype_changed"
    else:
        status = "changed" if diff_sq > 0 or math.isnan(diff_sq) else "unchanged"
    return _replace(base, status=status, l2=l2, rel_l2=rel, max_abs=max_abs), diff_sq, old_sq


def _decode(raw: bytes, dtype: str) -> np.ndarray:
    """Raw little-endian bytes of a safetensors dtype -> float64 (complex128 for C64)."""
    arr = np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype])
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "F8_E5M2":  # the top byte of an IEEE half
        return (arr.astype(np.uint16) << 8).view(np.float16).astype(np.float64)
    if dtype == "F8_E4M3":
        return _F8_E4M3[arr]
    if dtype == "F8_E8M0":
        return _F8_E8M0[arr]
    if dtype == "C64":
        return arr.astype(np.complex128)
    return arr.astype(np.float64)


def _sum_sq(values: np.ndarray) -> float:
    # einsum stays single-threaded: BLAS dot spins up threads that crawl on a busy 2-core box.
    return float(np.einsum("i,i->", values, values))


def _summarise(layer: str, rows: list[tuple[TensorDiff, float, float]]) -> LayerDiff:
    changed = sum(1 for d, _, _ in rows if d.status != "unchanged")
    diff_sq = sum(sq for _, sq, _ in rows)
    old_sq = sum(sq for _, _, sq in rows)
    rel = math.sqrt(diff_sq) / math.sqrt(old_sq) if old_sq > 0 else (0.0 if diff_sq == 0 else None)
    maxes = [d.max_abs for d, _, _ in rows if d.max_abs is not None]
    return LayerDiff(layer, len(rows), changed, rel, max(maxes) if maxes else None)


def _fd(path: Path, fds: dict[Path, int]) -> int:
    if path not in fds:
        fds[path] = os.open(path, os.O_RDONLY)
    return fds[path]


def _read(fd: int, offset: int, size: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:  # the file shrank after its header was validated
        raise InvalidInputError(f"short read: wanted {size} bytes at offset {offset}, got {len(data)}")
    return data


def _replace(diff: TensorDiff, **changes: Any) -> TensorDiff:
    return dataclasses.replace(diff, **changes)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
