"""Every model commit is understood: weights index, pickle safety, task and card, weight diff (issue 4)."""

from __future__ import annotations

import os
import pickle
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from safetensors.numpy import load_file

from tests.conftest import VITRINE, Server, start_server
from tests.helpers import safetensors_bytes


def tiny_bert(seed: int = 0, **config_kwargs):  # type: ignore[no-untyped-def]
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16,
                        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
                        **config_kwargs)
    return BertForSequenceClassification(config).eval()


def raw_info(hub: Server, repo_id: str, revision: str = "main") -> dict:  # type: ignore[type-arg]
    r = httpx.get(f"{hub.url}/api/models/{repo_id}/revision/{revision}",
                  headers={"authorization": f"Bearer {hub.admin_token}"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("shard", [None, "20KB"])
def test_weights_index_matches_a_full_load(hub, admin_api: HfApi, repo_name: str, tmp_path: Path, shard) -> None:  # type: ignore[no-untyped-def]
    repo_id = f"acme/{repo_name}"
    model = tiny_bert()
    out = tmp_path / "model"
    model.save_pretrained(out, **({"max_shard_size": shard} if shard else {}))
    shards = sorted(out.glob("*.safetensors"))
    assert (len(shards) > 1) == bool(shard)
    admin_api.create_repo(repo_id)
    admin_api.upload_folder(folder_path=out, repo_id=repo_id)

    loaded = {k: v for f in shards for k, v in load_file(f).items()}
    expected_params: dict[str, int] = {}
    for tensor in loaded.values():
        key = {"float32": "F32", "int64": "I64"}[str(tensor.dtype)]
        expected_params[key] = expected_params.get(key, 0) + int(tensor.size)
    info = admin_api.model_info(repo_id)
    assert info.safetensors.parameters == expected_params
    assert info.safetensors.total == sum(expected_params.values())

    index = httpx.get(f"{hub.url}/api/vitrine/models/{repo_id}/weights").json()
    assert {t["name"]: tuple(t["shape"]) for t in index["tensors"]} == {k: v.shape for k, v in loaded.items()}
    assert index["sharded"] == bool(shard)


class Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def test_unsafe_pickle_refused_plain_state_dict_accepted(hub, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    before = admin_api.model_info(repo_id).sha
    with pytest.raises(HfHubHTTPError) as exc:
        admin_api.upload_file(path_or_fileobj=pickle.dumps(Exploit()), path_in_repo="model.pkl", repo_id=repo_id)
    assert exc.value.response.status_code == 422
    assert "posix.system" in str(exc.value) and "model.pkl" in str(exc.value)
    assert admin_api.model_info(repo_id).sha == before

    torch.save(tiny_bert().state_dict(), tmp_path / "pytorch_model.bin")
    admin_api.upload_file(path_or_fileobj=tmp_path / "pytorch_model.bin", path_in_repo="pytorch_model.bin",
                          repo_id=repo_id)
    files = {f.path: f for f in admin_api.list_repo_tree(repo_id, expand=True)}
    assert files["pytorch_model.bin"].security.status == "safe"
    assert raw_info(hub, repo_id)["vitrine"]["unsafeFiles"] == []


@pytest.fixture(scope="module")
def lenient_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub whose operator lets unsafe pickles in."""
    server = start_server(tmp_path_factory.mktemp("lenient"), VITRINE_ALLOW_UNSAFE_PICKLES="1")
    yield server
    server.stop()


def test_operator_flag_lets_unsafe_pickles_in_marked_unsafe(lenient_hub: Server) -> None:
    api = HfApi(endpoint=lenient_hub.url, token=lenient_hub.admin_token)
    api.create_repo("acme/risky")
    api.upload_file(path_or_fileobj=pickle.dumps(Exploit()), path_in_repo="model.pkl", repo_id="acme/risky")
    unsafe = raw_info(lenient_hub, "acme/risky")["vitrine"]["unsafeFiles"]
    assert unsafe == [{"path": "model.pkl", "unsafeGlobals": ["posix.system"]}]
    status = {f.path: f for f in api.list_repo_tree("acme/risky", expand=True)}["model.pkl"].security
    assert status.status == "unsafe" and not status.safe


def test_malformed_safetensors_refused_with_reason(admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    good = safetensors_bytes(40_000)
    with pytest.raises(HfHubHTTPError) as exc:
        admin_api.upload_file(path_or_fileobj=good[:-100], path_in_repo="model.safetensors", repo_id=repo_id)
    assert exc.value.response.status_code == 400
    assert "model.safetensors" in str(exc.value) and "truncated" in str(exc.value)
    with pytest.raises(HfHubHTTPError) as exc:
        admin_api.upload_file(path_or_fileobj=b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all", repo_id=repo_id,
                              path_in_repo="bad.safetensors")
    assert "bad.safetensors" in str(exc.value)
    assert admin_api.list_repo_files(repo_id) == [".gitattributes"]


def _configs():  # type: ignore[no-untyped-def]
    from transformers import BertConfig, GPT2Config, T5Config, ViTConfig

    small = {"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 8}
    return {
        "text-classification": BertConfig(architectures=["BertForSequenceClassification"],
                                          id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}, **small),
        "token-classification": BertConfig(architectures=["BertForTokenClassification"],
                                           id2label={0: "O", 1: "B-PER"}, label2id={"O": 0, "B-PER": 1}, **small),
        "text-generation": GPT2Config(architectures=["GPT2LMHeadModel"], n_embd=8, n_layer=1, n_head=2),
        "text2text-generation": T5Config(architectures=["T5ForConditionalGeneration"], d_model=8, num_layers=1),
        "fill-mask": BertConfig(architectures=["BertForMaskedLM"], **small),
        "image-classification": ViTConfig(architectures=["ViTForImageClassification"],
                                          id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1}, **small),
        "feature-extraction": BertConfig(architectures=["BertModel"], **small),
    }


def test_task_detection_through_model_info(hub, admin_api: HfApi, repo_name: str) -> None:  # type: ignore[no-untyped-def]
    for task, config in _configs().items():
        repo_id = f"acme/{repo_name}-{task}"
        admin_api.create_repo(repo_id)
        admin_api.upload_file(path_or_fileobj=config.to_json_string().encode(), path_in_repo="config.json",
                              repo_id=repo_id)
        info = admin_api.model_info(repo_id)
        assert info.pipeline_tag == task, (task, info.pipeline_tag)
        assert info.library_name == "transformers"
        labels = raw_info(hub, repo_id)["vitrine"]["labels"]
        assert labels == ([*config.id2label.values()] if task in ("text-classification", "token-classification",
                                                                  "image-classification") else [])
    # The card's metadata wins over the config.
    repo_id = f"acme/{repo_name}-text-classification"
    admin_api.upload_file(path_or_fileobj=b"---\npipeline_tag: zero-shot-classification\ntags: [nli]\n---\n# NLI\n",
                          path_in_repo="README.md", repo_id=repo_id)
    info = admin_api.model_info(repo_id)
    assert info.pipeline_tag == "zero-shot-classification" and "nli" in info.tags
    assert [m.id for m in admin_api.list_models(filter="zero-shot-classification", search=repo_name)] == [repo_id]


def test_generated_card_is_served_not_committed_until_asked(hub, admin_api: HfApi, repo_name: str,
                                                            tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    model = tiny_bert()
    model.save_pretrained(tmp_path / "m")
    admin_api.create_repo(repo_id)
    admin_api.upload_folder(folder_path=tmp_path / "m", repo_id=repo_id, commit_message="weights only")
    head = admin_api.model_info(repo_id).sha
    assert admin_api.model_info(repo_id).card_data is None

    card = httpx.get(f"{hub.url}/api/vitrine/models/{repo_id}/card").json()
    assert card["generated"] is True and card["sha"] == head
    assert "pipeline_tag: text-classification" in card["card"]
    assert f'AutoModelForSequenceClassification.from_pretrained("{repo_id}", revision="{head}")' in card["card"]
    assert "NEGATIVE" in card["card"] and "POSITIVE" in card["card"]
    # Reading the card changed nothing: the branch head is still the user's last commit.
    assert admin_api.model_info(repo_id).sha == head

    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token}
    out = subprocess.run([VITRINE, "card", "write", repo_id], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    info = admin_api.model_info(repo_id)
    assert info.sha != head and info.card_data["pipeline_tag"] == "text-classification"
    commit = next(iter(admin_api.list_repo_commits(repo_id)))
    assert commit.title == "Add model card generated by Vitrine" and commit.authors == ["admin"]
    again = subprocess.run([VITRINE, "card", "write", repo_id], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already has a README.md" in again.stderr


def test_invalid_card_yaml_is_reported_not_fatal(hub, admin_api: HfApi, repo_name: str) -> None:  # type: ignore[no-untyped-def]
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    admin_api.upload_file(path_or_fileobj=b"---\nlicense: [mit\n---\n# Broken header\n", path_in_repo="README.md",
                          repo_id=repo_id)
    info = raw_info(hub, repo_id)
    assert info["cardData"] is None
    assert "YAML" in info["vitrine"]["cardError"]
    assert admin_api.model_info(repo_id).id == repo_id


def test_weight_diff_names_exactly_the_finetuned_layer(hub, admin_api: HfApi, repo_name: str) -> None:  # type: ignore[no-untyped-def]
    import torch

    repo_id = f"acme/{repo_name}"
    model = tiny_bert()
    model.push_to_hub(repo_id, token=hub.admin_token)
    admin_api.create_tag(repo_id, tag="v1")
    with torch.no_grad():
        for p in model.bert.encoder.layer[1].parameters():
            p.add_(torch.randn_like(p) * 0.01)
    model.push_to_hub(repo_id, token=hub.admin_token, commit_message="fine-tune layer 1")
    admin_api.create_tag(repo_id, tag="v2")

    diff = httpx.get(f"{hub.url}/api/vitrine/models/{repo_id}/diff", params={"old": "v1", "new": "v2"}).json()
    assert diff["changed_layers"] == ["bert.encoder.layer.1"]
    changed = {t["name"] for t in diff["tensors"] if t["status"] == "changed"}
    assert changed and all(n.startswith("bert.encoder.layer.1.") for n in changed)
    assert diff["summary"]["added"] == diff["summary"]["removed"] == 0

    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token, "COLUMNS": "200"}
    out = subprocess.run([VITRINE, "diff", repo_id, "v1", "v2"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "bert.encoder.layer.1" in out.stdout and "bert.encoder.layer.0" not in out.stdout
    missing = httpx.get(f"{hub.url}/api/vitrine/models/{repo_id}/diff", params={"old": "v1", "new": "nope"})
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "RevisionNotFound"


def test_weight_diff_cli_names_every_added_removed_and_reshaped_tensor(hub: Server, admin_api: HfApi,
                                                                       repo_name: str) -> None:
    import numpy as np
    from safetensors.numpy import save

    repo_id = f"acme/{repo_name}"
    rng = np.random.default_rng(0)
    kept = rng.standard_normal((4, 4), dtype=np.float32)
    v1 = {"encoder.layer.0.weight": kept, "encoder.layer.1.weight": kept, "head.weight": np.ones((2, 4), np.float32),
          "old_pooler.bias": np.zeros(3, np.float32)}
    v2 = {"encoder.layer.0.weight": kept, "encoder.layer.1.weight": kept + 0.01,
          "head.weight": np.ones((3, 4), np.float32), "new_adapter.lora_A": np.zeros((2, 4), np.float16)}
    admin_api.create_repo(repo_id)
    for tag, tensors in (("v1", v1), ("v2", v2)):
        admin_api.upload_file(path_or_fileobj=save(tensors), path_in_repo="model.safetensors", repo_id=repo_id)
        admin_api.create_tag(repo_id, tag=tag)

    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token, "COLUMNS": "60"}
    out = subprocess.run([VITRINE, "diff", repo_id, "v1", "v2"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert "added (1):" in lines and "+ new_adapter.lora_A  F16 [2, 4]" in lines
    assert "removed (1):" in lines and "- old_pooler.bias  F32 [3]" in lines
    assert "reshaped (1):" in lines and "~ head.weight  F32 [2, 4] -> F32 [3, 4]" in lines
    assert not any("encoder.layer.0.weight" in line for line in lines)
