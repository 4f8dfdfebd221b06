"""`vitrine space export` writes a bundle that runs as `python app.py`; `vitrine space publish` uploads it to
another Hub-compatible endpoint (a second Vitrine hub here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from huggingface_hub import HfApi, SpaceCard, SpaceCardData, snapshot_download

from tests.apps.checks import assert_label_matches
from tests.apps.hubmodels import push_task_model
from tests.apps.servers import running_app_py
from tests.conftest import VITRINE, Server, start_server

TEXT = "I love this movie, it was wonderful"


def _vitrine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VITRINE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def versions(hub: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """(repo id, v1 commit, v2 commit) of a text-classification model; tag v1 names the first."""
    api = HfApi(endpoint=hub.url, token=hub.admin_token)
    root, repo_id = tmp_path_factory.mktemp("cli-models"), "spaces-cli/sentiment"
    old = push_task_model(api, repo_id, "text-classification", root / "v1", seed=0)
    api.create_tag(repo_id, tag="v1", revision=old)
    new = push_task_model(api, repo_id, "text-classification", root / "v2", seed=3)
    return repo_id, old, new


def test_exported_bundle_runs_as_app_py(hub: Server, versions: tuple[str, str, str], tmp_path: Path) -> None:
    from transformers import pipeline

    repo_id, old, _ = versions
    out = tmp_path / "acme-sentiment"
    done = _vitrine("space", "export", repo_id, "--revision", "v1", "--out", str(out), "--endpoint", hub.url)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'app.py'}" in done.stdout
    assert f"Exported {repo_id}@{old[:7]} (task text-classification) to {out}" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "app.py", "requirements.txt"]

    card = SpaceCard((out / "README.md").read_text(encoding="utf-8"))
    assert isinstance(card.data, SpaceCardData)
    assert (card.data.sdk, card.data.app_file, card.data.models) == ("gradio", "app.py", [repo_id])
    assert old in card.text

    with running_app_py(out, {"HF_ENDPOINT": hub.url}) as url:
        result = Client(url, verbose=False).predict(TEXT, api_name="/predict")
    assert_label_matches(result, pipeline("text-classification", model=repo_id, revision=old)(TEXT, top_k=None))


def test_export_of_a_comparison_pins_both_commits(hub: Server, versions: tuple[str, str, str],
                                                   tmp_path: Path) -> None:
    repo_id, old, new = versions
    done = _vitrine("space", "export", repo_id, "--revision", "v1", "--compare", "main", "--out", str(tmp_path),
                    "--endpoint", hub.url)
    assert done.returncode == 0, done.stderr
    app_py = (tmp_path / "app.py").read_text(encoding="utf-8")
    assert f"REVISION: str | None = '{old}'" in app_py
    assert f"COMPARE_REVISION: str | None = '{new}'" in app_py


def test_export_explains_a_missing_repo(hub: Server, tmp_path: Path) -> None:
    done = _vitrine("space", "export", "nobody/nothing", "--out", str(tmp_path / "x"), "--endpoint", hub.url)
    assert done.returncode == 1
    assert "Repository models/nobody/nothing not found. Check the name" in done.stderr
    assert not (tmp_path / "x").exists()


def test_publish_uploads_the_space_to_another_hub(
    hub: Server, versions: tuple[str, str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    repo_id, _, new = versions
    target = start_server(tmp_path_factory.mktemp("publish-target"))
    try:
        done = _vitrine("space", "publish", repo_id, "--to", target.url, "--token", target.admin_token,
                        "--space-id", "showcase/sentiment-demo", "--endpoint", hub.url)
        assert done.returncode == 0, done.stderr
        assert f"Published {repo_id}@{new[:7]} as Space showcase/sentiment-demo" in done.stdout

        api = HfApi(endpoint=target.url, token=target.admin_token)
        assert api.space_info("showcase/sentiment-demo").sdk == "gradio"
        commit = api.list_repo_commits("showcase/sentiment-demo", repo_type="space")[0]
        assert commit.title == f"Demo for {repo_id}@{new[:7]}"
        folder = Path(snapshot_download("showcase/sentiment-demo", repo_type="space", endpoint=target.url,
                                        token=target.admin_token))
        expected = httpx.get(f"{hub.url}/api/vitrine/spaces/{repo_id}/bundle").json()
        assert expected["sha"] == new
        for name, text in expected["files"].items():
            assert (folder / name).read_text(encoding="utf-8") == text

        # Publishing the same version again is a no-op on the target's files.
        again = _vitrine("space", "publish", repo_id, "--to", target.url, "--token", target.admin_token,
                         "--space-id", "showcase/sentiment-demo", "--endpoint", hub.url)
        assert again.returncode == 0, again.stderr
    finally:
        target.stop()
