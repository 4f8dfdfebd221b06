"""The smaller calls of huggingface_hub 2.x, through the stock client: exists checks, auth_check, squash, ignores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from tests.conftest import Server
from tests.helpers import assert_hub_error, safetensors_bytes

HF = str(Path(sys.executable).parent / "hf")


def test_exists_checks_answer_false(hub: Server, admin_api: HfApi, repo: str) -> None:
    """`repo_exists`, `revision_exists` and `file_exists` say False for missing and namespace-less ids."""
    for repo_id in ("gpt2", "acme/does-not-exist"):
        assert admin_api.repo_exists(repo_id) is False
        assert admin_api.revision_exists(repo_id, "main") is False
        assert admin_api.file_exists(repo_id, "config.json") is False
    assert admin_api.repo_exists("gpt2", repo_type="dataset") is False
    assert admin_api.repo_exists(repo) and admin_api.file_exists(repo, "keep.txt")
    assert not admin_api.revision_exists(repo, "nope") and not admin_api.file_exists(repo, "nope")
    assert_hub_error(httpx.get(f"{hub.url}/api/models/gpt2/tree/main"), 404, "RepoNotFound")


def test_auth_check(hub: Server, admin_api: HfApi) -> None:
    """`auth_check` passes for readers, and with `write=True` for writers only."""
    admin_api.create_repo("acme/checked-private", private=True)
    reader = HfApi(endpoint=hub.url, token=hub.token("checker", "read", org="acme"))
    outsider = HfApi(endpoint=hub.url, token=hub.token("check-outsider", "write"))
    admin_api.auth_check("acme/checked-private", write=True)
    reader.auth_check("acme/checked-private")
    with pytest.raises(HfHubHTTPError) as refused:
        reader.auth_check("acme/checked-private", write=True)
    assert refused.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        outsider.auth_check("acme/checked-private")


def test_formatted_commits_and_super_squash(admin_api: HfApi, repo: str) -> None:
    """`list_repo_commits(formatted=True)` has HTML titles; `super_squash_history` leaves one commit, same files."""
    admin_api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo, commit_message="Add <two>")
    commits = admin_api.list_repo_commits(repo, formatted=True)
    assert commits[0].formatted_title == "Add &lt;two&gt;" and len(commits) == 3
    assert admin_api.list_repo_commits(repo)[0].formatted_title is None
    files = set(admin_api.list_repo_files(repo))
    admin_api.super_squash_history(repo, commit_message="Squashed")
    squashed = admin_api.list_repo_commits(repo)
    assert [c.title for c in squashed] == ["Squashed"]
    assert set(admin_api.list_repo_files(repo)) == files


def test_gitignore_makes_upload_folder_skip_files(admin_api: HfApi, repo: str, tmp_path: Path) -> None:
    """A `.gitignore` in the folder, or already in the repo, makes preupload answer `shouldIgnore`."""
    (tmp_path / ".gitignore").write_text("*.log\ncache/\n")
    (tmp_path / "keep.md").write_text("kept")
    (tmp_path / "debug.log").write_text("noise")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "x.txt").write_text("cached")
    admin_api.upload_folder(folder_path=tmp_path, repo_id=repo)
    files = set(admin_api.list_repo_files(repo))
    assert {".gitignore", "keep.md"} <= files and not {"debug.log", "cache/x.txt"} & files
    (tmp_path / ".gitignore").unlink()
    (tmp_path / "other.log").write_text("more noise")
    admin_api.upload_folder(folder_path=tmp_path, repo_id=repo)  # the hosted .gitignore still applies
    assert "other.log" not in set(admin_api.list_repo_files(repo))


def test_create_tag_on_missing_revision_is_revision_not_found(admin_api: HfApi, repo: str) -> None:
    """The revision is looked up before the tag name is judged."""
    with pytest.raises(RevisionNotFoundError):
        admin_api.create_tag(repo, tag="bad..name", revision="nope")


def test_listing_sort_and_expand(hub: Server, admin_api: HfApi, repo: str) -> None:
    """Listings take `sort=downloads|likes`; an unknown `expand` is a 400, a known one is fine."""
    for sort in ("downloads", "likes"):
        assert repo in [m.id for m in admin_api.list_models(sort=sort, author="acme")]
    assert list(admin_api.list_models(author="acme", expand=["downloads", "likes"], limit=1))
    with pytest.raises(BadRequestError):
        list(admin_api.list_models(expand=["bogus"]))  # type: ignore[list-item]
    assert_hub_error(httpx.get(f"{hub.url}/api/models/{repo}", params={"expand[]": "bogus"}), 400, "BadRequest")
    assert admin_api.model_info(repo, expand=["sha", "siblings"]).sha


def test_validate_yaml_refuses_an_invalid_model_index(admin_api: HfApi, repo: str) -> None:
    """A README whose `model-index` does not parse is refused before the commit, as on the Hub."""
    bad = "---\nmodel-index:\n- name: x\n  results:\n  - task: {}\n---\n# Card\n"
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        admin_api.upload_file(path_or_fileobj=bad.encode(), path_in_repo="README.md", repo_id=repo)
    assert not admin_api.file_exists(repo, "README.md")
    good = ("---\nmodel-index:\n- name: x\n  results:\n  - task: {type: text-classification}\n"
            "    dataset: {type: imdb, name: IMDb}\n    metrics: [{type: accuracy, value: 0.9}]\n---\n# Card\n")
    admin_api.upload_file(path_or_fileobj=good.encode(), path_in_repo="README.md", repo_id=repo)
    assert admin_api.file_exists(repo, "README.md")


def test_duplicate_repo(hub: Server, admin_api: HfApi, repo: str) -> None:
    """`duplicate_repo` copies the files at `main` (LFS ones included) into a new repo of the caller."""
    admin_api.upload_file(path_or_fileobj=safetensors_bytes(2048), path_in_repo="model.safetensors", repo_id=repo)
    copy = admin_api.duplicate_repo(repo, f"{repo}-copy", private=True)
    assert copy.repo_id == f"{repo}-copy"
    assert admin_api.model_info(f"{repo}-copy").private
    assert set(admin_api.list_repo_files(f"{repo}-copy")) == set(admin_api.list_repo_files(repo))
    assert admin_api.list_repo_commits(f"{repo}-copy")[0].title == f"Duplicate from {repo}"
    with pytest.raises(HfHubHTTPError) as exists:
        admin_api.duplicate_repo(repo, f"{repo}-copy")
    assert exists.value.response.status_code == 409
    outsider = HfApi(endpoint=hub.url, token=hub.token("dup-outsider", "write"))
    mine = outsider.duplicate_repo(repo)  # into the caller's own namespace
    assert mine.repo_id == f"dup-outsider/{repo.split('/')[1]}"
    with pytest.raises(RepositoryNotFoundError):
        outsider.duplicate_repo(f"{repo}-copy", "dup-outsider/stolen")


def test_list_lfs_files_and_user_repos(hub: Server, admin_api: HfApi, repo: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`list_lfs_files` names each LFS object once; `list_user_repos` and `hf repos ls` list repos with storage."""
    weights = safetensors_bytes(4096)
    admin_api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo)
    admin_api.upload_file(path_or_fileobj=weights, path_in_repo="copy.safetensors", repo_id=repo)
    found = list(admin_api.list_lfs_files(repo))
    assert [(f.filename, f.size) for f in found] == [("model.safetensors", len(weights))]
    reader = HfApi(endpoint=hub.url, token=hub.token("lfs-reader", "read", org="acme"))
    with pytest.raises(HfHubHTTPError) as refused:
        list(reader.list_lfs_files(repo))
    assert refused.value.response.status_code == 403

    owner = HfApi(endpoint=hub.url, token=hub.token("storage-owner", "write", org="storeteam"))
    # Another account uploads the same bytes from a machine of its own: hf_xet must not cite the admin's upload.
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "owner-xet-cache"))
    owner.create_repo("storage-owner/mine")
    owner.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id="storage-owner/mine")
    owner.create_repo("storeteam/shared", repo_type="dataset", private=True)
    mine = {r.id: r for r in owner.list_user_repos()}
    assert set(mine) == {"storage-owner/mine"} and mine["storage-owner/mine"].storage >= len(weights)
    team = {r.id: r for r in owner.list_user_repos("storeteam")}
    assert team["storeteam/shared"].type == "dataset" and team["storeteam/shared"].visibility == "private"
    with pytest.raises(HfHubHTTPError):
        list(HfApi(endpoint=hub.url, token=hub.token("not-in-team", "write")).list_user_repos("storeteam"))
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token("storage-owner", "write"), "HF_HUB_DISABLE_XET": "1",
           "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "PATH": str(Path(sys.executable).parent)}
    out = subprocess.run([HF, "repos", "ls"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "storage-owner/mine" in out.stdout


def test_branch_may_share_a_tag_name(admin_api: HfApi, repo: str) -> None:
    """A tag and a branch of the same name coexist; the revision names the branch."""
    tagged = admin_api.list_repo_commits(repo)[0].commit_id
    admin_api.create_tag(repo, tag="release")
    admin_api.create_branch(repo, branch="release")
    admin_api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id=repo, revision="release")
    refs = admin_api.list_repo_refs(repo)
    assert [t.target_commit for t in refs.tags if t.name == "release"] == [tagged]
    assert admin_api.file_exists(repo, "b.txt", revision="release")
    with pytest.raises(HfHubHTTPError) as twice:
        admin_api.create_tag(repo, tag="release")
    assert twice.value.response.status_code == 409


def test_commit_scheduler_squashes_history(admin_api: HfApi, repo: str, tmp_path: Path) -> None:
    """`CommitScheduler(squash_history=True)` pushes, then squashes the branch to one commit."""
    from huggingface_hub import CommitScheduler

    (tmp_path / "log.txt").write_text("one")
    scheduler = CommitScheduler(repo_id=repo, folder_path=tmp_path, every=60, squash_history=True, hf_api=admin_api)
    try:
        scheduler.trigger().result()
        (tmp_path / "log2.txt").write_text("two")
        scheduler.trigger().result()
    finally:
        scheduler.stop()
    assert len(admin_api.list_repo_commits(repo)) == 1
    assert {"keep.txt", "log.txt", "log2.txt"} <= set(admin_api.list_repo_files(repo))


def test_deleting_a_folder_without_its_trailing_slash(admin_api: HfApi, repo: str) -> None:
    """`CommitOperationDelete("sub")` on a folder deletes the folder, as on the Hub; a missing path is still a 404."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.errors import RemoteEntryNotFoundError

    admin_api.create_commit(repo, [CommitOperationAdd("sub/a.txt", b"a"), CommitOperationAdd("sub/b/c.txt", b"c")],
                            commit_message="Add sub")
    admin_api.create_commit(repo, [CommitOperationDelete("sub")], commit_message="Drop sub")
    assert not [f for f in admin_api.list_repo_files(repo) if f.startswith("sub/")]
    with pytest.raises(RemoteEntryNotFoundError):
        admin_api.create_commit(repo, [CommitOperationDelete("nothing")], commit_message="Drop nothing")
