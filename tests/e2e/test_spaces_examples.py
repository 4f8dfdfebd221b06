"""Demo examples come from the card's widget, else from the dataset the card links, if it may be shown."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from huggingface_hub import HfApi

from tests.apps.models import build_task_model


def _dataset(api: HfApi, repo_id: str, texts: list[str], *, private: bool = False) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"label": list(range(len(texts))), "review": texts}), buf)
    api.create_repo(repo_id, repo_type="dataset", private=private)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/train-00000.parquet", repo_id=repo_id,
                    repo_type="dataset")


def _model(api: HfApi, repo_id: str, tmp_path: Path, front: str) -> None:
    model_dir = build_task_model("text-classification", tmp_path / repo_id.replace("/", "-"))
    (model_dir / "README.md").write_text(f"---\npipeline_tag: text-classification\n{front}---\n# Model\n")
    api.create_repo(repo_id)
    api.upload_folder(folder_path=str(model_dir), repo_id=repo_id)


def _app_py(hub, repo_id: str) -> str:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{hub.url}/api/vitrine/spaces/{repo_id}/bundle",
                  headers={"authorization": f"Bearer {hub.admin_token}"})
    assert r.status_code == 200, r.text
    return r.json()["files"]["app.py"]  # type: ignore[no-any-return]


def test_examples_from_the_linked_dataset(hub, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    public, secret = f"shops/{repo_name}-reviews", f"vault/{repo_name}-secret"
    _dataset(admin_api, public, ["Lovely little cafe with kind staff", "", "Cold soup and a long wait"])
    _dataset(admin_api, secret, ["Confidential customer complaint"], private=True)

    _model(admin_api, f"shops/{repo_name}-linked", tmp_path, f"datasets:\n- {secret}\n- {public}\n")
    app = _app_py(hub, f"shops/{repo_name}-linked")
    assert "Lovely little cafe with kind staff" in app and "Cold soup and a long wait" in app
    assert "Confidential customer complaint" not in app  # a private dataset never leaks into a public demo

    _model(admin_api, f"shops/{repo_name}-widget", tmp_path,
           f"datasets: [{public}]\nwidget:\n- text: From the widget, not the dataset\n")
    app = _app_py(hub, f"shops/{repo_name}-widget")
    assert "From the widget, not the dataset" in app and "Lovely little cafe" not in app
