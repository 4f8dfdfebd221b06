"""Weight diffs between model versions: exactly the perturbed layer shows up, untouched tensors show 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from registry.errors import InvalidInputError
from registry.weightdiff import diff_weights, layer_of

PERTURBED = "encoder.layer.1"


def _tiny_bert(seed: int = 0) -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=120, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32,
    )  # fmt: skip
    return BertModel(config)


def _files(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.glob("*.safetensors"))}


def _index(root: Path) -> dict[str, object] | None:
    path = root / "model.safetensors.index.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("versions")
    model = _tiny_bert()
    model.save_pretrained(root / "v1")
    model.save_pretrained(root / "v1-sharded", max_shard_size="10KB")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith(PERTURBED + "."):
                param.add_(0.01 * torch.randn_like(param))
    model.save_pretrained(root / "v2")
    return {"v1": root / "v1", "v1-sharded": root / "v1-sharded", "v2": root / "v2"}


def test_one_perturbed_layer_is_exactly_the_changed_layer(versions: dict[str, Path]) -> None:
    diff = diff_weights(_files(versions["v1"]), _files(versions["v2"]))
    assert diff.changed_layers == [PERTURBED]
    old, new = load_file(versions["v1"] / "model.safetensors"), load_file(versions["v2"] / "model.safetensors")
    for t in diff.tensors:
        if t.name.startswith(PERTURBED + "."):
            assert t.status == "changed"
            delta = (new[t.name].double() - old[t.name].double()).flatten()
            old_norm = float(old[t.name].double().norm())
            if old_norm == 0:  # zero-initialised biases: relative change is undefined
                assert t.rel_l2 is None and t.l2 == pytest.approx(float(delta.norm()), rel=1e-9)
            else:
                assert t.rel_l2 == pytest.approx(float(delta.norm()) / old_norm, rel=1e-9)
            assert t.max_abs == pytest.approx(float(delta.abs().max()), rel=1e-9)
        else:
            assert t.status == "unchanged"
            assert (t.l2, t.rel_l2, t.max_abs) == (0.0, 0.0, 0.0)  # exactly zero, not merely small
    layer = next(layer for layer in diff.layers if layer.layer == PERTURBED)
    assert layer.changed == layer.tensors and layer.rel_l2 is not None and layer.rel_l2 > 0
    assert all(layer.rel_l2 == 0.0 for layer in diff.layers if layer.layer != PERTURBED)
    json.dumps(diff.to_json())


def test_sharded_against_single_file(versions: dict[str, Path]) -> None:
    sharded = versions["v1-sharded"]
    assert len(_files(sharded)) > 1
    same = diff_weights(_files(sharded), _files(versions["v1"]), old_index=_index(sharded))
    assert same.changed_layers == [] and {t.status for t in same.tensors} == {"unchanged"}
    diff = diff_weights(_files(sharded), _files(versions["v2"]), old_index=_index(sharded))
    assert diff.changed_layers == [PERTURBED]


def test_identical_versions_have_zero_change(versions: dict[str, Path]) -> None:
    diff = diff_weights(_files(versions["v2"]), _files(versions["v2"]))
    assert diff.to_json()["summary"]["unchanged"] == len(diff.tensors)
    assert all(t.rel_l2 == 0.0 and t.max_abs == 0.0 for t in diff.tensors)


@pytest.mark.parametrize(
    "dtype", [torch.bfloat16, torch.float16, torch.float8_e4m3fn, torch.float8_e5m2, torch.int8, torch.float64]
)
def test_low_precision_dtypes_are_compared_numerically(tmp_path: Path, dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    old = {"blocks.0.w": (torch.randn(64, 8) * 4).to(dtype), "blocks.1.w": (torch.randn(5) * 4).to(dtype)}
    new = {**old, "blocks.1.w": (old["blocks.1.w"].double() + 1.5).to(dtype)}
    save_file(old, tmp_path / "old.safetensors")
    save_file(new, tmp_path / "new.safetensors")
    diff = diff_weights(
        {"m.safetensors": tmp_path / "old.safetensors"}, {"m.safetensors": tmp_path / "new.safetensors"}
    )
    assert diff.changed_layers == ["blocks.1"]
    changed = next(t for t in diff.tensors if t.name == "blocks.1.w")
    delta = new["blocks.1.w"].double() - old["blocks.1.w"].double()
    assert changed.rel_l2 == pytest.approx(float(delta.norm() / old["blocks.1.w"].double().norm()), rel=1e-12)
    assert changed.max_abs == pytest.approx(float(delta.abs().max()), rel=1e-12)


def test_added_removed_reshaped_and_retyped_tensors(tmp_path: Path) -> None:
    torch.manual_seed(2)
    base = torch.randn(4, 4)
    save_file(
        {"keep": base, "gone": torch.zeros(2), "grow": torch.zeros(2, 2), "cast": base.clone()},
        tmp_path / "old.safetensors",
    )
    save_file(
        {"keep": base.clone(), "new": torch.zeros(3), "grow": torch.zeros(2, 3), "cast": base.half()},
        tmp_path / "new.safetensors",
    )
    diff = diff_weights({"m": tmp_path / "old.safetensors"}, {"m": tmp_path / "new.safetensors"})
    status = {t.name: t.status for t in diff.tensors}
    assert status == {
        "keep": "unchanged", "gone": "removed", "grow": "shape_changed", "cast": "dtype_changed", "new": "added",
    }  # fmt: skip
    cast = next(t for t in diff.tensors if t.name == "cast")
    assert cast.rel_l2 is not None and 0 < cast.rel_l2 < 1e-3  # fp32 -> fp16 rounding
    assert set(diff.changed_layers) == {"gone", "grow", "cast", "new"}
    body = diff.to_json()
    assert body["summary"] == {
        "added": 1, "removed": 1, "shape_changed": 1, "dtype_changed": 1, "changed": 0, "unchanged": 1,
    }  # fmt: skip
    assert next(t for t in body["tensors"] if t["name"] == "new")["old"] is None


def test_zero_tensor_that_changes_has_undefined_relative_change(tmp_path: Path) -> None:
    save_file({"bias": torch.zeros(3)}, tmp_path / "old.safetensors")
    save_file({"bias": torch.ones(3)}, tmp_path / "new.safetensors")
    (t,) = diff_weights({"m": tmp_path / "old.safetensors"}, {"m": tmp_path / "new.safetensors"}).tensors
    assert t.status == "changed" and t.rel_l2 is None and t.max_abs == 1.0


def test_duplicate_tensor_names_across_files_are_refused(tmp_path: Path) -> None:
    save_file({"w": torch.zeros(2)}, tmp_path / "a.safetensors")
    save_file({"w": torch.ones(2)}, tmp_path / "b.safetensors")
    files = {"a.safetensors": tmp_path / "a.safetensors", "b.safetensors": tmp_path / "b.safetensors"}
    with pytest.raises(InvalidInputError, match="tensor 'w' is in both a.safetensors and b.safetensors"):
        diff_weights(files, files)


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("encoder.layer.3.attention.self.query.weight", "encoder.layer.3"),
        ("model.layers.10.mlp.experts.7.w1", "model.layers.10"),
        ("h.0.attn.c_attn.weight", "h.0"),
        ("0.weight", "0"),
        ("embeddings.word_embeddings.weight", "embeddings.word_embeddings"),
        ("pooler.dense.bias", "pooler.dense"),
        ("logit_scale", "logit_scale"),
    ],
)
def test_layer_of(name: str, layer: str) -> None:
    assert layer_of(name) == layer
