"""transformers, datasets and the `hf` CLI, unmodified, against the hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import opaque_bytes
from huggingface_hub import HfApi

from tests.conftest import ENDPOINT


def _tiny_classifier(seed: int):  # type: ignore[no-untyped-def]
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "great"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32,
                        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    return BertForSequenceClassification(config).eval(), tokenizer


def test_transformers_push_and_load_two_revisions(hub, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    repo_id = f"acme/{repo_name}"
    m1, tok = _tiny_classifier(1)
    m1.push_to_hub(repo_id, token=hub.admin_token)
    tok.push_to_hub(repo_id, token=hub.admin_token)
    admin_api.create_tag(repo_id, tag="v1")
    m2, _ = _tiny_classifier(2)
    m2.push_to_hub(repo_id, token=hub.admin_token, commit_message="retrain")
    admin_api.create_tag(repo_id, tag="v2")

    loaded1 = AutoModelForSequenceClassification.from_pretrained(repo_id, revision="v1", cache_dir=tmp_path)
    loaded2 = AutoModelForSequenceClassification.from_pretrained(repo_id, revision="v2", cache_dir=tmp_path)
    for original, loaded in ((m1, loaded1), (m2, loaded2)):
        for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
            assert torch.equal(a, b), name
    assert not torch.equal(loaded1.classifier.weight, loaded2.classifier.weight)

    clf = pipeline("text-classification", model=repo_id, revision="v1",
                   tokenizer=AutoTokenizer.from_pretrained(repo_id, revision="v1", cache_dir=tmp_path),
                   model_kwargs={"cache_dir": tmp_path})
    out = clf("good movie")
    with torch.no_grad():
        enc = tok("good movie", return_tensors="pt")
        probs = m1(**enc).logits.softmax(-1)[0]
    assert out[0]["label"] == m1.config.id2label[int(probs.argmax())]
    assert out[0]["score"] == pytest.approx(float(probs.max()), abs=1e-5)


def test_datasets_load_parquet_repo(admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, repo_type="dataset")
    rows = {"text": [f"review {i}" for i in range(50)], "label": [i % 2 for i in range(50)]}
    pq.write_table(pa.table(rows), tmp_path / "train.parquet")
    admin_api.upload_file(path_or_fileobj=tmp_path / "train.parquet", path_in_repo="data/train-00000.parquet",
                          repo_id=repo_id, repo_type="dataset")
    ds = datasets.load_dataset(repo_id, cache_dir=str(tmp_path / "ds-cache"))
    assert ds["train"].num_rows == 50
    assert ds["train"][3] == {"text": "review 3", "label": 1}


def test_hf_cli_upload_and_download(hub, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text('{"a": 1}')
    (src / "sub" / "weights.bin").write_bytes(opaque_bytes(1024 * 1024))
    env = {**os.environ, "HF_ENDPOINT": ENDPOINT, "HF_TOKEN": hub.admin_token, "HF_HUB_DISABLE_XET": "1",
           "HF_HOME": str(tmp_path / "hf")}
    hf = str(Path(sys.executable).parent / "hf")
    up = subprocess.run([hf, "upload", repo_id, str(src), "."], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    dest = tmp_path / "out"
    down = subprocess.run([hf, "download", repo_id, "--local-dir", str(dest)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert (dest / "config.json").read_text() == '{"a": 1}'
    assert (dest / "sub" / "weights.bin").read_bytes() == (src / "sub" / "weights.bin").read_bytes()
