"""A MiniLM sentiment classifier in two versions that differ in quality, and a review dataset to judge them.

`good` is the sample classifier fine-tuned briefly; `flipped` is the same model with its two output
rows swapped, so it predicts the opposite class: a real, loadable version that is measurably worse.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scripts.sample_data import build_sentiment, reviews

TRAIN_STEPS = 12


def build_versions(root: Path) -> tuple[Path, Path]:
    """(good, flipped) model folders under `root`."""
    from safetensors.torch import load_file, save_file

    good = build_sentiment(root / "good", steps=TRAIN_STEPS)
    flipped = root / "flipped"
    shutil.copytree(good, flipped)
    weights = load_file(str(flipped / "model.safetensors"))
    for name in ("classifier.weight", "classifier.bias"):
        weights[name] = weights[name].flip(0).contiguous()
    save_file(weights, str(flipped / "model.safetensors"), metadata={"format": "pt"})
    return good, flipped


def push_versions(api: Any, repo_id: str, good: Path, flipped: Path, *, private: bool) -> tuple[str, str]:
    """Create `repo_id` and commit `good` (tag v1) then `flipped` (tag v2); their commit ids."""
    api.create_repo(repo_id, private=private)
    v1 = api.upload_folder(folder_path=str(good), repo_id=repo_id, commit_message="v1: fine-tuned").oid
    api.create_tag(repo_id, tag="v1", revision=v1)
    v2 = api.upload_folder(folder_path=str(flipped), repo_id=repo_id, commit_message="v2: new head").oid
    api.create_tag(repo_id, tag="v2", revision=v2)
    return v1, v2


def push_reviews(api: Any, repo_id: str, *, rows: int = 64, private: bool) -> dict[str, list[object]]:
    """A dataset repo with a `test` split of sample reviews; its rows."""
    data = reviews(rows, seed=5)
    api.create_repo(repo_id, repo_type="dataset", private=private)
    buf = io.BytesIO()
    pq.write_table(pa.table(data), buf)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=repo_id, repo_type="dataset")
    return data


def build_short_context(good: Path, out: Path, *, positions: int = 16) -> Path:
    """`good` cut to `positions` position embeddings: it loads and warms up, and raises on any longer input."""
    import json

    from safetensors.torch import load_file, save_file

    shutil.copytree(good, out)
    weights = load_file(str(out / "model.safetensors"))
    key = next(k for k in weights if k.endswith("position_embeddings.weight"))
    weights[key] = weights[key][:positions].contiguous()
    weights = {k: v for k, v in weights.items() if not k.endswith("position_ids")}
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["max_position_embeddings"] = positions
    (out / "config.json").write_text(json.dumps(config))
    return out
