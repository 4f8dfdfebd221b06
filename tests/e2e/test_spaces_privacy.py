"""Live demos never leak a repo to a caller who cannot read it, and never touch a Space a person owns.

Each test replays a hole an outside probe found, through the real hub and the stock clients.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

from tests.apps.models import build_task_model
from tests.conftest import Server
from tests.helpers import assert_hub_error

SECRET = "SECRET-TOKEN-do-not-leak-4711"
ROW = "Confidential: customer 8812 was refunded twice"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _model(api: HfApi, repo_id: str, tmp_path: Path, *, private: bool = False, front: str = "") -> str:
    model_dir = build_task_model("text-classification", tmp_path / repo_id.replace("/", "-"))
    (model_dir / "README.md").write_text(f"---\npipeline_tag: text-classification\n{front}---\n# Model\n")
    api.create_repo(repo_id, private=private)
    return str(api.upload_folder(folder_path=str(model_dir), repo_id=repo_id).oid)


def _visit(hub: Server, repo_id: str, token: str | None = None) -> httpx.Response:
    r = httpx.get(f"{hub.url}/spaces/{repo_id}/config", headers=_bearer(token) if token else {}, timeout=300)
    assert r.status_code == 200, r.text
    return r


def test_a_visit_never_changes_a_space_a_person_owns(hub: Server, repo_name: str, tmp_path: Path) -> None:
    org = f"own{repo_name[-6:]}".replace("-", "")
    owner = HfApi(endpoint=hub.url, token=hub.token(f"{org}-owner", "write", org=org))
    reader = hub.token(f"{org}-reader", "read", org=org)
    anon = HfApi(endpoint=hub.url, token=False)

    # A private Space with a secret, and a public model of the same name: an anonymous visit to the demo.
    owner.create_repo(f"{org}/demo", repo_type="space", space_sdk="gradio", private=True)
    owner.upload_file(path_or_fileobj=f"TOKEN = '{SECRET}'\n".encode(), path_in_repo="app.py",
                      repo_id=f"{org}/demo", repo_type="space")
    before = [c.commit_id for c in owner.list_repo_commits(f"{org}/demo", repo_type="space")]
    _model(owner, f"{org}/demo", tmp_path)
    _visit(hub, f"{org}/demo")
    assert owner.space_info(f"{org}/demo").private is True
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{org}/demo", "app.py", repo_type="space", token=False, cache_dir=tmp_path / "c1")
    with pytest.raises(RepositoryNotFoundError):
        anon.space_info(f"{org}/demo")
    assert [c.commit_id for c in owner.list_repo_commits(f"{org}/demo", repo_type="space")] == before

    # A public Space, and a private model of that name: a read-only member's visit leaves it public.
    owner.create_repo(f"{org}/pm", repo_type="space", space_sdk="gradio")
    owner.upload_file(path_or_fileobj=b"print('mine')\n", path_in_repo="app.py", repo_id=f"{org}/pm",
                      repo_type="space")
    _model(owner, f"{org}/pm", tmp_path, private=True)
    _visit(hub, f"{org}/pm", reader)
    assert anon.space_info(f"{org}/pm").private is False
    assert [c.title for c in owner.list_repo_commits(f"{org}/pm", repo_type="space")][0] != "Demo for"


def test_the_managed_space_follows_the_model_visibility(hub: Server, admin_api: HfApi, repo_name: str,
                                                        tmp_path: Path) -> None:
    repo_id = f"follow/{repo_name}"
    _model(admin_api, repo_id, tmp_path)
    _visit(hub, repo_id)
    space = f"{hub.url}/spaces/{repo_id}/resolve/main/app.py"
    assert httpx.get(space).status_code == 200
    admin_api.update_repo_settings(repo_id, private=True)
    # The next request already sees it: the Space, its files and the demo are gone for anonymous callers.
    assert_hub_error(httpx.get(space), 404, "RepoNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/spaces/{repo_id}/config"), 404, "RepoNotFound")
    assert admin_api.space_info(repo_id).private is True
    admin_api.update_repo_settings(repo_id, private=False)
    assert httpx.get(space).status_code == 200


def _private_dataset(api: HfApi, repo_id: str) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"label": [0, 1], "text": [ROW, "Another private row"]}), buf)
    api.create_repo(repo_id, repo_type="dataset", private=True)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/train-00000-of-00001.parquet",
                    repo_id=repo_id, repo_type="dataset")


def test_private_rows_leave_the_demo_when_the_model_turns_public(hub: Server, admin_api: HfApi, repo_name: str,
                                                                tmp_path: Path) -> None:
    org = f"rows{repo_name[-6:]}".replace("-", "")
    member = hub.token(f"{org}-member", "read", org=org)
    _private_dataset(admin_api, f"{org}/secret-ds")
    model = f"{org}/m3"
    _model(admin_api, model, tmp_path, private=True, front=f"datasets:\n- {org}/secret-ds\n")

    # Everyone who can read the private model can read the private dataset of its namespace: rows are shown.
    assert ROW in _visit(hub, model, member).text
    admin_api.update_repo_settings(model, private=False)
    config = _visit(hub, model)  # anonymous, the very next request
    assert ROW not in config.text
    assert ROW not in httpx.get(f"{hub.url}/api/vitrine/spaces/{model}/bundle").text

    # The Space repo's history never held the rows: its bundle has only what the model repo says.
    commits = admin_api.list_repo_commits(model, repo_type="space")
    assert commits and all(c.title.startswith(("Demo for", "initial commit")) for c in commits)
    for c in commits:
        try:
            path = hf_hub_download(model, "app.py", repo_type="space", revision=c.commit_id, token=False,
                                   cache_dir=tmp_path / "space-cache")
        except EntryNotFoundError:
            continue
        assert ROW not in Path(path).read_text()


def test_demo_listing_counts_only_what_the_caller_may_read(hub: Server, admin_api: HfApi, repo_name: str,
                                                          tmp_path: Path) -> None:
    org = f"cnt{repo_name[-6:]}".replace("-", "")
    _model(admin_api, f"{org}/hidden", tmp_path, private=True)
    _visit(hub, f"{org}/hidden", hub.admin_token)
    anon = httpx.get(f"{hub.url}/api/vitrine/spaces").json()
    assert f"{org}/hidden" not in {d["repo_id"] for d in anon["demos"]}
    assert anon["used_bytes"] == sum(d["estimated_bytes"] for d in anon["demos"])
    assert "builds" not in anon and "failures" not in anon
    admin = httpx.get(f"{hub.url}/api/vitrine/spaces", headers=_bearer(hub.admin_token)).json()
    assert f"{org}/hidden" in {d["repo_id"] for d in admin["demos"]} and admin["builds"] >= 1
