"""Safetensors indexing from headers: agrees with a full load, refuses malformed files with a precise reason."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from registry.errors import InvalidInputError
from registry.weights import index_weights, read_safetensors_header

TORCH_TO_ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def _tiny_bert(seed: int = 0) -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, id2label={0: "neg", 1: "pos"},
    )  # fmt: skip
    return BertForSequenceClassification(config)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    model = _tiny_bert()
    model.save_pretrained(root / "single")
    model.save_pretrained(root / "sharded", max_shard_size="10KB")
    return {"single": root / "single", "sharded": root / "sharded"}


def _write_raw(path: Path, header: dict[str, object], data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _expected(files: list[Path]) -> dict[str, tuple[str, tuple[int, ...]]]:
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for f in files:
        for name, tensor in load_file(f).items():
            out[name] = (TORCH_TO_ST[tensor.dtype], tuple(tensor.shape))
    return out


def _counts(expected: dict[str, tuple[str, tuple[int, ...]]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dtype, shape in expected.values():
        counts[dtype] = counts.get(dtype, 0) + int(torch.Size(shape).numel())
    return counts


def test_single_file_matches_full_load(saved: dict[str, Path]) -> None:
    path = saved["single"] / "model.safetensors"
    index = index_weights({"model.safetensors": path})
    expected = _expected([path])
    assert {t.name: (t.dtype, t.shape) for t in index.tensors} == expected
    assert {t.file for t in index.tensors} == {"model.safetensors"}
    assert index.parameters == _counts(expected)
    assert index.total == sum(p.numel() for p in load_file(path).values())
    assert index.total_bytes == sum(p.numel() * p.element_size() for p in load_file(path).values())
    assert index.to_hub_json() == {"parameters": _counts(expected), "total": index.total}
    assert not index.sharded
    json.dumps(index.to_json())


def test_sharded_model_matches_full_load(saved: dict[str, Path]) -> None:
    root = saved["sharded"]
    index_json = json.loads((root / "model.safetensors.index.json").read_text())
    shards = sorted(root.glob("*.safetensors"))
    assert len(shards) > 1
    index = index_weights({p.name: p for p in shards}, index_json=index_json)
    expected = _expected(shards)
    assert {t.name: (t.dtype, t.shape) for t in index.tensors} == expected
    assert {t.name: t.file for t in index.tensors} == index_json["weight_map"]
    assert index.sharded and set(index.files) == {p.name for p in shards}
    assert index.parameters == _counts(expected)
    assert index.total == index_json["metadata"]["total_parameters"]
    assert index.total_bytes == index_json["metadata"]["total_size"]
    assert index.warnings == ()


def test_index_ignores_files_the_weight_map_does_not_name(saved: dict[str, Path]) -> None:
    root = saved["sharded"]
    index_json = json.loads((root / "model.safetensors.index.json").read_text())
    files = {p.name: p for p in root.glob("*.safetensors")}
    files["consolidated.safetensors"] = saved["single"] / "model.safetensors"
    index = index_weights(files, index_json=index_json)
    assert "consolidated.safetensors" not in index.files
    assert index.total == index_json["metadata"]["total_parameters"]


def test_mixed_dtypes_are_counted_per_dtype(tmp_path: Path) -> None:
    tensors = {
        "a": torch.zeros(3, 4, dtype=torch.bfloat16),
        "b": torch.zeros(5, dtype=torch.float16),
        "ids": torch.arange(7),
        "scalar": torch.tensor(1.0),
    }
    save_file(tensors, tmp_path / "m.safetensors")
    index = index_weights({"m.safetensors": tmp_path / "m.safetensors"})
    assert index.to_hub_json() == {"parameters": {"BF16": 12, "F16": 5, "I64": 7, "F32": 1}, "total": 25}
    assert {t.name: t.shape for t in index.tensors}["scalar"] == ()


def test_sparse_10_gib_file_is_indexed_from_its_header(tmp_path: Path) -> None:
    numel = 10 * 2**30 // 4
    header = json.dumps({"huge": {"dtype": "F32", "shape": [numel], "data_offsets": [0, numel * 4]}}).encode()
    path = tmp_path / "huge.safetensors"
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + numel * 4)  # sparse: no data blocks are written
    index = index_weights({"huge.safetensors": path})
    assert index.to_hub_json() == {"parameters": {"F32": numel}, "total": numel}
    assert index.total_bytes == 10 * 2**30


def test_truncated_file_is_refused_with_the_byte_counts(saved: dict[str, Path], tmp_path: Path) -> None:
    data = (saved["single"] / "model.safetensors").read_bytes()
    cut = tmp_path / "model.safetensors"
    cut.write_bytes(data[:-100])
    with pytest.raises(InvalidInputError) as info:
        read_safetensors_header(cut)
    assert str(info.value) == (
        f"model.safetensors: truncated: header says tensor data ends at byte {len(data)}"
        f" but file has {len(data) - 100} bytes"
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\x01\x02", "too short to be safetensors"),
        (struct.pack("<Q", 1000) + b"{}", "truncated: header length says 1000 bytes but only 2 bytes follow it"),
        (struct.pack("<Q", 9) + b"{not json", "header is not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "header is not a JSON object"),
        (struct.pack("<Q", 2) + b"\xff\xfe", "header is not valid UTF-8"),
        (struct.pack("<Q", 10**12) + b"{}", "exceeds the 100000000-byte limit"),
    ],
)
def test_malformed_header_bytes_are_refused(tmp_path: Path, raw: bytes, problem: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    with pytest.raises(InvalidInputError, match="^bad.safetensors: ") as info:
        read_safetensors_header(path)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("header", "data", "problem"),
    [
        ({"t": {"dtype": "F32", "shape": [2]}}, b"", "tensor 't': missing 'data_offsets'"),
        ({"t": {"dtype": "F17", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "tensor 't': unknown dtype 'F17'"),
        ({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "shape must be a list"),
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8), "data_offsets must be [begin, end]"),
        ({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "span 8 bytes but F32 with shape [3] needs 12"),
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
            bytes(12), "tensors 'a' and 'b' overlap",
        ),
        (
            {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}},
            bytes(12), "gap of 4 bytes in tensor data after tensor 'a'",
        ),
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(10), "2 bytes of trailing data"),
        ({"__metadata__": {"format": 1}}, b"", "__metadata__ must map strings to strings"),
    ],
)  # fmt: skip
def test_inconsistent_headers_are_refused(tmp_path: Path, header: dict[str, object], data: bytes, problem: str) -> None:
    path = _write_raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(InvalidInputError) as info:
        read_safetensors_header(path, name="weights/bad.safetensors")
    assert str(info.value).startswith("weights/bad.safetensors: ")
    assert problem in str(info.value)


def test_duplicate_tensor_names_in_a_header_are_refused(tmp_path: Path) -> None:
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    raw = f'{{"t": {entry}, "t": {entry}}}'.encode()
    path = tmp_path / "dup.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4))
    with pytest.raises(InvalidInputError, match="duplicate key 't'"):
        read_safetensors_header(path)


def test_index_and_shards_must_agree(saved: dict[str, Path]) -> None:
    root = saved["sharded"]
    index_json = json.loads((root / "model.safetensors.index.json").read_text())
    files = {p.name: p for p in root.glob("*.safetensors")}
    missing = max(files)
    with pytest.raises(InvalidInputError, match=f"weight_map names shard '{missing}'"):
        index_weights({k: v for k, v in files.items() if k != missing}, index_json=index_json)
    ghost = {**index_json, "weight_map": {**index_json["weight_map"], "ghost.weight": min(files)}}
    with pytest.raises(InvalidInputError, match="places 'ghost.weight' in"):
        index_weights(files, index_json=ghost)
    with pytest.raises(InvalidInputError, match="no 'weight_map'"):
        index_weights(files, index_json={"metadata": {}})
