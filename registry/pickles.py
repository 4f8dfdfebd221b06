"""Find what a pickle would import, without unpickling it.

Why our own scanner rather than `picklescan`, `fickling` or `modelscan` from PyPI: all three
classify with deny-lists (anything not known to be bad passes or is merely "suspicious"), and
picklescan has had several bypasses from exactly that and from zip handling that differs from
torch's. We need the opposite stance, an allow-list mirroring `torch.load(weights_only=True)`,
and it takes ~250 lines of stdlib (`pickletools` never executes anything), with no new dependency.

How: walk every pickle's opcodes with `pickletools.genops`, keeping a symbolic stack and memo so
STACK_GLOBAL's module/name operands are resolved even when they come through the memo or DUP.
Operands we cannot resolve to literal strings are reported as unsafe, never guessed. Names are
resolved as the unpickler would (py2 -> py3 mapping for protocols < 3). Torch zip archives are
scanned member by member (every `*.pkl`), and legacy torch files exactly as far as `torch.load`
reads them (five pickles, then raw storage bytes). Not covered: TorchScript code inside `.pt`
archives, pickles inside `.npy`/`.npz`, and joblib's inline array buffers (reported as `error`).
"""

from __future__ import annotations

import io
import os
import pickletools
import struct
import zipfile
import zlib
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib"})

UNRESOLVED_GLOBAL = "<unresolved STACK_GLOBAL>"
IN_MEMORY_BYTES = 64 << 20  # smaller files are scanned from memory: much faster opcode reads
MAX_MEMBER_BYTES = 1 << 30  # torch's data.pkl is kilobytes; a bigger member is not worth decompressing

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PICKLES = 5  # magic, protocol, sys_info, the object, storage keys

_STORAGES = [
    "BFloat16", "Bool", "Byte", "Char", "ComplexDouble", "ComplexFloat", "Double", "Float", "Half",
    "Int", "Long", "Short", "QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8",
]  # fmt: skip
_TENSOR_TYPES = ["BFloat16", "Bool", "Byte", "Char", "Double", "Float", "Half", "Int", "Long", "Short"]
_DTYPES = [
    "bfloat16", "bool", "complex128", "complex32", "complex64", "float16", "float32", "float64",
    "float4_e2m1fn_x2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
    "float8_e8m0fnu", "qint32", "qint8", "quint2x4", "quint4x2", "quint8", "bits16", "bits1x8",
    "bits2x4", "bits4x2", "bits8", "half", "float", "double", "long", "int", "short", "cfloat", "cdouble",
    *(f"int{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)),
    *(f"uint{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64)),
]  # fmt: skip
_REBUILDERS = [
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
    "_rebuild_nested_tensor", "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
]  # fmt: skip

# What `torch.load(weights_only=True)` accepts, plus numpy's array/scalar rebuilders (which only
# build arrays from bytes; object arrays pickle their items inline, so those are scanned too).
SAFE_GLOBALS: frozenset[str] = frozenset(
    {
        "collections.OrderedDict", "collections.Counter", "_codecs.encode",
        "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.complex", "builtins.slice",
        "torch.Size", "torch.Tensor", "torch.device", "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout", "torch._tensor._rebuild_from_type_v2",
        "torch.storage.TypedStorage", "torch.storage.UntypedStorage", "torch.UntypedStorage",
        "torch.per_tensor_affine", "torch.per_tensor_symmetric", "torch.per_channel_affine",
        "torch.per_channel_symmetric", "torch.per_channel_affine_float_qparams",
        "numpy.ndarray", "numpy.dtype",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    }
    | {f"torch._utils.{f}" for f in _REBUILDERS}
    | {f"torch.{d}" for d in _DTYPES}
    | {f"{m}.{s}Storage" for m in ("torch", "torch.cuda") for s in _STORAGES}
    | {f"{m}.{t}Tensor" for m in ("torch", "torch.cuda", "torch.sparse", "torch.cuda.sparse") for t in _TENSOR_TYPES}
)  # fmt: skip

# Not allowed is already unsafe; these are the ones that run code, so a policy may refuse them outright.
_DANGEROUS_MODULES = frozenset(
    {
        "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "socket", "shutil", "runpy", "pty",
        "webbrowser", "importlib", "ctypes", "pickle", "_pickle", "marshal", "code", "codeop", "types",
        "multiprocessing", "asyncio", "pip", "setuptools", "timeit", "pdb", "bdb", "signal", "ssl",
        "http", "urllib", "requests", "httpx", "torch.hub", "torch.jit", "torch._C", "torch._dynamo",
    }
)  # fmt: skip
_DANGEROUS_NAMES = frozenset(
    {
        *(f"builtins.{n}" for n in ("eval", "exec", "compile", "open", "__import__", "getattr", "setattr",
                                   "delattr", "globals", "locals", "vars", "breakpoint", "input", "exit")),
        "operator.attrgetter", "operator.methodcaller", "functools.reduce",
        "torch.load", "torch.storage._load_from_bytes", "torch.serialization.load",
        "numpy.load", "numpy.testing._private.utils.runstring", UNRESOLVED_GLOBAL,
    }
)  # fmt: skip

_STRING_OPS = frozenset(
    {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
# zipfile raises all of these on corrupt archives; each means "could not read it", never a crash.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    NotImplementedError,
    ValueError,
    OSError,
    EOFError,
    RuntimeError,
    zlib.error,
    struct.error,
)
_MARK = object()
_UNKNOWN = object()


@dataclass(frozen=True)
class PickleScan:
    """The globals a pickle file would import, and which of them are not on the allow-list."""

    path: str
    globals: list[str]
    unsafe: list[str]
    dangerous: list[str]
    pickles: int
    error: str | None = None

    @property
    def safe(self) -> bool:
        """True when the file was read completely and imports only allow-listed globals."""
        return not self.unsafe and self.error is None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for the API."""
        return {
            "path": self.path,
            "safe": self.safe,
            "globals": list(self.globals),
            "unsafe": list(self.unsafe),
            "dangerous": list(self.dangerous),
            "pickles": self.pickles,
            "error": self.error,
        }


def is_pickle_path(path_in_repo: str) -> bool:
    """Whether a repo path has an extension that pickle-based formats use."""
    return PurePosixPath(path_in_repo).suffix.lower() in PICKLE_SUFFIXES


def is_dangerous_global(name: str) -> bool:
    """Whether a resolved global is known to run code or reach the system (a subset of unsafe)."""
    if name in _DANGEROUS_NAMES:
        return True
    parts = name.split(".")
    return any(".".join(parts[:i]) in _DANGEROUS_MODULES for i in range(1, len(parts)))


def scan_pickle_file(path: Path | str, *, name: str | None = None) -> PickleScan:
    """List the globals a pickle or torch archive imports, without unpickling it.

    Args:
        path: the local file (plain pickle, legacy torch file, or torch zip archive).
        name: how to call the file in the result (its path in the repo); defaults to the file name.
    """
    path = Path(path)
    found: list[str] = []
    with path.open("rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # the test torch.load itself uses
        f.seek(0)
        if is_zip:
            count, error = _scan_zip(f, found)
        elif os.fstat(f.fileno()).st_size <= IN_MEMORY_BYTES:
            count, error = _scan_stream(io.BytesIO(f.read()), found)  # BytesIO never over-allocates
        else:
            count, error = _scan_stream(cast(IO[bytes], _ClampedReader(f)), found)
    names = sorted(set(found))
    unsafe = [g for g in names if g not in SAFE_GLOBALS]
    dangerous = [g for g in unsafe if is_dangerous_global(g)]
    return PickleScan(name or path.name, names, unsafe, dangerous, count, error)


def _scan_zip(f: IO[bytes], found: list[str]) -> tuple[int, str | None]:
    try:
        archive = zipfile.ZipFile(f)
    except _ZIP_ERRORS as e:
        return 0, f"unreadable zip archive: {e}"
    count = 0
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".pkl"):
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                return count, f"{info.filename} in zip archive is too large to scan ({info.file_size} bytes)"
            data: bytes | None
            try:
                data = archive.read(info)
            except zipfile.BadZipFile:
                # torch's reader does not check CRCs, so a bad CRC must not hide the member from us.
                data = _read_member_raw(f, info)
            except _ZIP_ERRORS as e:
                return count, f"cannot read {info.filename} in zip archive: {e}"
            if data is None:
                return count, f"cannot read {info.filename} in zip archive"
            n, error = _scan_stream(io.BytesIO(data), found)
            count += n
            if error:
                return count, f"{info.filename}: {error}"
    return count, None


def _read_member_raw(f: IO[bytes], info: zipfile.ZipInfo) -> bytes | None:
    try:
        return _read_local_entry(f, info)
    except _ZIP_ERRORS:
        return None


def _read_local_entry(f: IO[bytes], info: zipfile.ZipInfo) -> bytes | None:
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        return None
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    f.seek(info.header_offset + 30 + name_len + extra_len)
    raw = f.read(info.compress_size)
    if info.compress_type == zipfile.ZIP_STORED:
        return raw
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return zlib.decompressobj(-15).decompress(raw, MAX_MEMBER_BYTES)
    return None


class _ClampedReader:
    """A file whose reads stop at its end: pickletools allocates whatever length a pickle claims."""

    MAX_LINE = 16 << 20  # text-protocol lines; a longer one ends the scan with an error

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._size = os.fstat(f.fileno()).st_size
        self._pos = f.tell()  # tracked here: asking the file costs a syscall per opcode

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > 4096:  # only a large claimed length could over-allocate
            n = max(0, min(self._size - self._pos, n if n >= 0 else self._size))
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self._f.readline(self.MAX_LINE if limit < 0 else min(limit, self.MAX_LINE))
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._f.seek(offset, whence)
        return self._pos


def _scan_stream(stream: IO[bytes], found: list[str]) -> tuple[int, str | None]:
    """Scan consecutive pickles until EOF or until what follows is raw data, not a pickle."""
    count = 0
    legacy_torch = False
    while stream.read(1):
        stream.seek(-1, io.SEEK_CUR)
        try:
            saw_magic = _scan_one(stream, found)
        except (ValueError, EOFError, OverflowError, struct.error) as e:
            if count == 0:
                return 0, f"not a valid pickle: {e}"
            break  # raw bytes (tensor storages, array buffers) after the last pickle
        count += 1
        legacy_torch = legacy_torch or (count == 1 and saw_magic)
        if legacy_torch and count == _TORCH_LEGACY_PICKLES:
            break
    if count == 0:
        return 0, "empty file"
    return count, None


def _scan_one(stream: IO[bytes], found: list[str]) -> bool:
    """Walk one pickle's opcodes, appending each global it imports; True if it holds torch's magic."""
    stack: list[object] = []
    memo: dict[int, object] = {}
    proto = 0
    saw_magic = False
    for op, raw_arg, _pos in pickletools.genops(stream):
        arg: Any = raw_arg
        name = op.name
        if name == "PROTO":
            proto = int(arg)
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            found.append(_resolve(module, attr, proto))
            if name == "INST":
                _pop_to_mark(stack)
            stack.append(_UNKNOWN)
        elif name == "STACK_GLOBAL":
            top, below = _pop(stack), _pop(stack)
            ok = isinstance(below, str) and isinstance(top, str)
            found.append(_resolve(str(below), str(top), proto) if ok else UNRESOLVED_GLOBAL)
            stack.append(_UNKNOWN)
        elif name in ("EXT1", "EXT2", "EXT4"):
            found.append(f"<extension code {arg}>")  # copyreg's registry can name any global
            stack.append(_UNKNOWN)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = stack[-1] if stack else _UNKNOWN
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else _UNKNOWN
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(int(arg), _UNKNOWN))
        elif name == "DUP":
            stack.append(stack[-1] if stack else _UNKNOWN)
        elif name == "MARK":
            stack.append(_MARK)
        elif name in _STRING_OPS:
            stack.append(arg if isinstance(arg, str) else _UNKNOWN)
        else:
            saw_magic = saw_magic or (name.startswith("LONG") and arg == _TORCH_LEGACY_MAGIC)
            _apply_generic(op, stack)
    return saw_magic


def _apply_generic(op: pickletools.OpcodeInfo, stack: list[object]) -> None:
    before = op.stack_before
    if pickletools.markobject in before:
        _pop_to_mark(stack)
        for _ in range(before.index(pickletools.markobject)):
            _pop(stack)
    else:
        for _ in before:
            _pop(stack)
    stack.extend(_UNKNOWN for _ in op.stack_after)


def _pop(stack: list[object]) -> object:
    # A malformed pickle may underflow; the unpickler would fail there too, so just carry on.
    return stack.pop() if stack else _UNKNOWN


def _pop_to_mark(stack: list[object]) -> None:
    while stack and stack.pop() is not _MARK:
        pass


def _resolve(module: str, name: str, proto: int) -> str:
    """The dotted name the unpickler would import (it maps py2 names for protocols < 3)."""
    if proto < 3:
        if (module, name) in NAME_MAPPING:
            module, name = NAME_MAPPING[(module, name)]
        elif module in IMPORT_MAPPING:
            module = IMPORT_MAPPING[module]
    return f"{module}.{name}"
