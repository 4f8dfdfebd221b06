"""Live demos on the hub: every task answers like `transformers.pipeline` on the same revision, through
gradio_client at /spaces/{owner}/{name}; rebuilt when main moves; kept in the Space repo; compare mode;
the LRU under a memory budget; private models; the info page of an unknown task."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from huggingface_hub import HfApi, SpaceCard, SpaceCardData, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

from apps.demo import TASKS
from apps.demo.tasks import pipeline_task
from tests.apps.checks import Media, assert_label_matches, check_demo, make_media
from tests.apps.hubmodels import push_task_model
from tests.conftest import Server, free_port, start_server
from tests.helpers import assert_hub_error

TEXT = "The service was slow and the food was awful"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """Sample image and audio inputs."""
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def task_repos(hub: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Every task's tiny model pushed to the hub: task -> (repo id, commit)."""
    api = HfApi(endpoint=hub.url, token=hub.admin_token)
    root = tmp_path_factory.mktemp("task-models")
    repos = {}
    for task in TASKS:
        repo_id = f"spaces-e2e/{task}"
        repos[task] = (repo_id, push_task_model(api, repo_id, task, root / task))
    return repos


def _pipeline(task: str, repo_id: str, sha: str) -> Any:
    from transformers import pipeline

    # Loaded through the hub (HF_ENDPOINT), pinned to the same commit as the demo.
    return pipeline(pipeline_task(task), model=repo_id, revision=sha)  # type: ignore[call-overload]


def _predict(url: str, *inputs: Any, token: str | None = None) -> Any:
    return Client(url, verbose=False, token=token).predict(*inputs, api_name="/predict")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_live_demo_matches_the_pipeline(
    hub: Server, task_repos: dict[str, tuple[str, str]], media: Media, task: str
) -> None:
    repo_id, sha = task_repos[task]
    page = httpx.get(f"{hub.url}/spaces/{repo_id}", follow_redirects=True, timeout=300)
    assert page.status_code == 200 and "<html" in page.text
    assert str(page.url) == f"{hub.url}/spaces/{repo_id}/"
    check_demo(task, f"{hub.url}/spaces/{repo_id}/", _pipeline(task, repo_id, sha), media)


def test_branch_move_rebuilds_and_the_space_repo_follows(hub: Server, admin_api: HfApi, tmp_path: Path) -> None:
    repo_id, url = "spaces-e2e/moving", f"{hub.url}/spaces/spaces-e2e/moving/"
    old = push_task_model(admin_api, repo_id, "text-classification", tmp_path / "v1", seed=0)
    before = _predict(url, TEXT)
    assert_label_matches(before, _pipeline("text-classification", repo_id, old)(TEXT, top_k=None))

    new = push_task_model(admin_api, repo_id, "text-classification", tmp_path / "v2", seed=1)
    after = _predict(url, TEXT)
    assert_label_matches(after, _pipeline("text-classification", repo_id, new)(TEXT, top_k=None))
    assert after != before
    loaded = httpx.get(f"{hub.url}/api/vitrine/spaces").json()
    assert {d["sha"] for d in loaded["demos"] if d["repo_id"] == repo_id} >= {new}

    # One bot commit per model commit that was visited, naming it; revisiting changes nothing.
    httpx.get(url, timeout=60).raise_for_status()
    commits = admin_api.list_repo_commits(repo_id, repo_type="space")
    assert [c.title for c in commits[:2]] == [f"Demo for {repo_id}@{new[:7]}", f"Demo for {repo_id}@{old[:7]}"]
    assert new in (commits[0].message or "")
    space = Path(snapshot_download(repo_id, repo_type="space", endpoint=hub.url))
    assert sorted(p.name for p in space.iterdir() if p.is_file()) == [
        ".gitattributes", "README.md", "app.py", "requirements.txt"]
    assert f"REVISION: str | None = '{new}'" in (space / "app.py").read_text()
    card = SpaceCard((space / "README.md").read_text())
    assert isinstance(card.data, SpaceCardData)
    assert (card.data.sdk, card.data.app_file, card.data.models) == ("gradio", "app.py", [repo_id])
    assert admin_api.space_info(repo_id).sdk == "gradio"


def test_compare_mode_runs_two_revisions_side_by_side(hub: Server, admin_api: HfApi, tmp_path: Path) -> None:
    repo_id = "spaces-e2e/compared"
    old = push_task_model(admin_api, repo_id, "text-classification", tmp_path / "v1", seed=0)
    admin_api.create_tag(repo_id, tag="v1", revision=old)
    new = push_task_model(admin_api, repo_id, "text-classification", tmp_path / "v2", seed=2)

    first, second = _predict(f"{hub.url}/spaces/{repo_id}/compare/v1/main/", TEXT)
    assert_label_matches(first, _pipeline("text-classification", repo_id, old)(TEXT, top_k=None))
    assert_label_matches(second, _pipeline("text-classification", repo_id, new)(TEXT, top_k=None))
    assert first != second

    pinned = _predict(f"{hub.url}/spaces/{repo_id}/revision/{old[:10]}/", TEXT)
    assert pinned == first
    jump = httpx.get(f"{hub.url}/spaces/{repo_id}/?revision=v1&compare=main")
    assert (jump.status_code, jump.headers["location"]) == (307, f"/spaces/{repo_id}/compare/v1/main/")
    jump = httpx.get(f"{hub.url}/spaces/{repo_id}/?revision=v1")
    assert jump.headers["location"] == f"/spaces/{repo_id}/revision/v1/"
    # Only main's demo is committed to a Space repo, and nobody visited main.
    with pytest.raises(RepositoryNotFoundError):
        admin_api.space_info(repo_id)


def test_unknown_task_gets_the_info_page(hub: Server, admin_api: HfApi) -> None:
    repo_id = "spaces-e2e/mystery"
    admin_api.create_repo(repo_id)
    admin_api.upload_file(path_or_fileobj=b"---\npipeline_tag: time-travel\n---\nA strange model.\n",
                          path_in_repo="README.md", repo_id=repo_id)
    config = httpx.get(f"{hub.url}/spaces/{repo_id}/config", timeout=120)
    assert config.status_code == 200
    assert "No demo was generated for this model" in config.text
    assert "Vitrine has no demo template for the task `time-travel`" in config.text


def test_private_model_demo_is_only_for_readers(hub: Server, admin_api: HfApi, tmp_path: Path) -> None:
    repo_id = "spaces-private/secret"
    push_task_model(admin_api, repo_id, "text-classification", tmp_path / "m", private=True)
    url = f"{hub.url}/spaces/{repo_id}/"
    assert_hub_error(httpx.get(url), 404, "RepoNotFound")
    outsider = hub.token("spaces-outsider", "read")
    assert_hub_error(httpx.get(url, headers={"authorization": f"Bearer {outsider}"}), 404, "RepoNotFound")
    reader = hub.token("spaces-reader", "read", org="spaces-private")
    assert _predict(url, TEXT, token=reader)["label"]
    assert admin_api.space_info(repo_id).private is True
    listed = httpx.get(f"{hub.url}/api/vitrine/spaces").json()["demos"]
    assert repo_id not in {d["repo_id"] for d in listed}


def test_unknown_model_and_space_files(hub: Server, task_repos: dict[str, tuple[str, str]]) -> None:
    assert_hub_error(httpx.get(f"{hub.url}/spaces/nobody/nothing/"), 404, "RepoNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/spaces/nobody/"), 404)
    repo_id, _ = task_repos["fill-mask"]
    httpx.get(f"{hub.url}/spaces/{repo_id}/", timeout=120).raise_for_status()
    # The Space repo's own file routes are not shadowed by the live demo.
    readme = httpx.get(f"{hub.url}/spaces/{repo_id}/resolve/main/README.md")
    assert readme.status_code == 200 and "sdk: gradio" in readme.text


def test_space_repo_edited_by_a_person_is_left_alone(hub: Server, admin_api: HfApi) -> None:
    repo_id = "spaces-e2e/handmade"
    admin_api.create_repo(repo_id)

    def push_card(text: bytes) -> None:
        admin_api.upload_file(path_or_fileobj=b"---\npipeline_tag: none-yet\n---\n" + text,
                              path_in_repo="README.md", repo_id=repo_id)
        httpx.get(f"{hub.url}/spaces/{repo_id}/", timeout=120).raise_for_status()

    push_card(b"First words.")
    assert [c.title for c in admin_api.list_repo_commits(repo_id, repo_type="space")][0].startswith("Demo for")
    admin_api.upload_file(path_or_fileobj=b"# Notes", path_in_repo="NOTES.md", repo_id=repo_id, repo_type="space",
                          commit_message="Hand-written notes")
    push_card(b"Second words.")
    assert admin_api.list_repo_commits(repo_id, repo_type="space")[0].title == "Hand-written notes"


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second hub whose 1 MiB demo budget holds no demo at all, and which accepts unsafe pickles."""
    port = free_port()
    server = start_server(tmp_path_factory.mktemp("small-hub"), port, VITRINE_DEMO_MEMORY_MB="1",
                          VITRINE_ALLOW_UNSAFE_PICKLES="1", HF_ENDPOINT=f"http://127.0.0.1:{port}")
    yield server
    server.stop()


def test_lru_evicts_least_recently_used_demo_over_budget(small_hub: Server) -> None:
    api = HfApi(endpoint=small_hub.url, token=small_hub.admin_token)
    for name in ("first", "second"):
        api.create_repo(f"lru/{name}")
        api.upload_file(path_or_fileobj=b"---\npipeline_tag: none-yet\n---\n", path_in_repo="README.md",
                        repo_id=f"lru/{name}")

    admin = {"authorization": f"Bearer {small_hub.admin_token}"}  # the process counters are for admins

    def visit(name: str) -> dict[str, Any]:
        httpx.get(f"{small_hub.url}/spaces/lru/{name}/", timeout=120).raise_for_status()
        return httpx.get(f"{small_hub.url}/api/vitrine/spaces", headers=admin).json()  # type: ignore[no-any-return]

    start = httpx.get(f"{small_hub.url}/api/vitrine/spaces", headers=admin).json()
    state = visit("first")
    # Only the demo being visited stays loaded, even though it alone is over the budget.
    assert [d["repo_id"] for d in state["demos"]] == ["lru/first"]
    assert state["budget_bytes"] == 1024 * 1024 and state["used_bytes"] > state["budget_bytes"]
    state = visit("second")
    assert [d["repo_id"] for d in state["demos"]] == ["lru/second"]
    state = visit("first")
    assert [d["repo_id"] for d in state["demos"]] == ["lru/first"]
    assert state["builds"] - start["builds"] == 3
    assert state["evictions"] - start["evictions"] == 2
    # The evicted demos were closed cleanly.
    assert "Traceback" not in small_hub.log.read_text()


def test_concurrent_first_visits_share_one_build(small_hub: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = HfApi(endpoint=small_hub.url, token=small_hub.admin_token)
    api.create_repo("crowd/model")
    api.upload_file(path_or_fileobj=b"---\npipeline_tag: none-yet\n---\n", path_in_repo="README.md",
                    repo_id="crowd/model")
    admin = {"authorization": f"Bearer {small_hub.admin_token}"}
    before = httpx.get(f"{small_hub.url}/api/vitrine/spaces", headers=admin).json()["builds"]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: httpx.get(f"{small_hub.url}/spaces/crowd/model/config", timeout=120)
                              .status_code, range(4)))
    assert codes == [200] * 4
    assert httpx.get(f"{small_hub.url}/api/vitrine/spaces", headers=admin).json()["builds"] == before + 1


def test_model_with_unsafe_pickle_gets_no_live_demo(small_hub: Server) -> None:
    api = HfApi(endpoint=small_hub.url, token=small_hub.admin_token)
    api.create_repo("risky/model")
    api.upload_file(path_or_fileobj=pickle.dumps(_Exploit()), path_in_repo="pytorch_model.bin",
                    repo_id="risky/model")
    api.upload_file(path_or_fileobj=b"---\npipeline_tag: text-classification\n---\n", path_in_repo="README.md",
                    repo_id="risky/model")
    assert_hub_error(httpx.get(f"{small_hub.url}/spaces/risky/model/"), 422, "UnsafeFile",
                     contains="pytorch_model.bin imports unsafe globals")


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))
