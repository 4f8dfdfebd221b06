"""Pickle scanning by opcode walk: code-running globals are caught, plain torch state dicts pass."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from registry.pickles import IN_MEMORY_BYTES, UNRESOLVED_GLOBAL, is_pickle_path, scan_pickle_file

SYSTEM = f"{os.system.__module__}.system"  # posix.system here, nt.system on Windows


class RunsShell:
    """Unpickling this would run a shell command; the scanner must say so without unpickling it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    sd = dict(model.state_dict())
    sd["half"] = torch.ones(2, dtype=torch.float16)
    sd["bf16"] = torch.ones(2, dtype=torch.bfloat16)
    sd["ids"] = torch.arange(3)
    return sd


def _assert_flags_system(path: Path) -> None:
    scan = scan_pickle_file(path)
    assert SYSTEM in scan.globals
    assert SYSTEM in scan.unsafe and SYSTEM in scan.dangerous
    assert not scan.safe


@pytest.mark.parametrize("protocol", range(6))
def test_reduce_calling_os_system_is_flagged_at_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2], "x": RunsShell()}, protocol=protocol))
    _assert_flags_system(path)


def test_reduce_calling_os_system_inside_torch_zip_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    torch.save({"w": torch.zeros(2), "x": RunsShell()}, path)
    assert zipfile.is_zipfile(path)
    _assert_flags_system(path)


def test_reduce_calling_os_system_inside_legacy_torch_file_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "x": RunsShell()}, path, _use_new_zipfile_serialization=False)
    _assert_flags_system(path)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_plain_torch_state_dict_passes(tmp_path: Path, zip_format: bool) -> None:
    path = tmp_path / "pytorch_model.bin"
    torch.save(_state_dict(), path, _use_new_zipfile_serialization=zip_format)
    scan = scan_pickle_file(path)
    assert scan.unsafe == [] and scan.dangerous == [] and scan.error is None and scan.safe
    assert "torch._utils._rebuild_tensor_v2" in scan.globals
    assert "collections.OrderedDict" in scan.globals
    assert scan.pickles == (1 if zip_format else 5)  # legacy: magic, protocol, sys info, object, keys


def test_numpy_arrays_pass(tmp_path: Path) -> None:
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps({"a": np.arange(3.0), "s": np.float32(2)}, protocol=2))
    scan = scan_pickle_file(path)
    assert scan.safe, scan


def _raw_pickle(body: bytes, tmp_path: Path) -> Path:
    pickletools.dis(body, out=io.StringIO())  # well-formed, checked without executing it
    path = tmp_path / "crafted.pkl"
    path.write_bytes(body)
    return path


def test_stack_global_through_memo_is_resolved(tmp_path: Path) -> None:
    def short_unicode(s: str) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s.encode()

    body = (
        b"\x80\x04"
        + short_unicode("posix") + b"\x94"  # MEMOIZE -> memo[0]
        + short_unicode("system") + b"\x94"  # MEMOIZE -> memo[1]
        + b"00"  # POP both, so only the memo holds them
        + b"h\x00h\x01"  # BINGET 0, BINGET 1
        + b"\x93"  # STACK_GLOBAL
        + short_unicode("id") + b"\x85R."  # TUPLE1, REDUCE, STOP
    )  # fmt: skip
    assert scan_pickle_file(_raw_pickle(body, tmp_path)).unsafe == ["posix.system"]


def test_stack_global_with_unresolvable_operands_is_unsafe(tmp_path: Path) -> None:
    body = b"\x80\x04K\x01K\x02\x93."  # BININT1 1, BININT1 2, STACK_GLOBAL, STOP
    scan = scan_pickle_file(_raw_pickle(body, tmp_path))
    assert scan.unsafe == [UNRESOLVED_GLOBAL] and scan.dangerous == [UNRESOLVED_GLOBAL]


def test_python2_names_are_mapped_as_the_unpickler_maps_them(tmp_path: Path) -> None:
    body = b"\x80\x02c__builtin__\neval\nX\x03\x00\x00\x001+1\x85R."
    scan = scan_pickle_file(_raw_pickle(body, tmp_path))
    assert scan.unsafe == ["builtins.eval"] and scan.dangerous == ["builtins.eval"]


def test_every_pickle_in_a_file_is_scanned(tmp_path: Path) -> None:
    path = tmp_path / "two.pkl"
    path.write_bytes(pickle.dumps({"ok": 1}) + pickle.dumps(RunsShell()))
    scan = scan_pickle_file(path)
    assert scan.pickles == 2
    assert scan.unsafe == [SYSTEM]


def test_unknown_globals_are_unsafe_but_not_dangerous(tmp_path: Path) -> None:
    path = tmp_path / "args.bin"
    path.write_bytes(pickle.dumps(zipfile.ZipInfo("x")))
    scan = scan_pickle_file(path)
    assert scan.unsafe == ["zipfile.ZipInfo"] and scan.dangerous == []


def test_bad_crc_does_not_hide_a_zip_member(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"x": RunsShell()}, path)
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")  # first central directory entry: data.pkl
    data[central + 16 : central + 20] = struct.pack("<I", 0xDEADBEEF)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive, pytest.raises(zipfile.BadZipFile):
        archive.read(archive.infolist()[0])
    _assert_flags_system(path)


def test_not_a_pickle_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"\xc0\xff\xee garbage")
    scan = scan_pickle_file(path)
    assert scan.error is not None and scan.error.startswith("not a valid pickle")
    assert not scan.safe
    assert scan.to_json()["safe"] is False


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pytorch_model.bin", True), ("sub/model.PT", True), ("a.pth", True), ("last.ckpt", True),
        ("x.pkl", True), ("model.safetensors", False), ("config.json", False), ("README.md", False),
    ],
)  # fmt: skip
def test_is_pickle_path(path: str, expected: bool) -> None:
    assert is_pickle_path(path) is expected


def _pad_sparse(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)  # zeros without writing them: the scan must stop at the first non-pickle byte


def test_large_file_is_scanned_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(RunsShell()))
    _pad_sparse(path, IN_MEMORY_BYTES + 1)
    _assert_flags_system(path)


def test_lying_length_in_a_large_file_does_not_allocate_it(tmp_path: Path) -> None:
    path = tmp_path / "big.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**62))  # BINBYTES8 claiming 4 EiB
    _pad_sparse(path, IN_MEMORY_BYTES + 1)
    scan = scan_pickle_file(path)
    assert scan.error is not None and scan.error.startswith("not a valid pickle")
