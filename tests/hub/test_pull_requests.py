"""Pull requests and discussions through the stock client: open, comment, push, merge, conflicts, permissions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import Server
from tests.helpers import assert_hub_error, safetensors_bytes

HF = str(Path(sys.executable).parent / "hf")


def test_pr_round_trip(hub: Server, admin_api: HfApi, repo: str) -> None:
    """An outsider opens a PR, comments and pushes to it; a writer merges; the target has both files."""
    outsider = HfApi(endpoint=hub.url, token=hub.token("pr-contributor", "write"))
    info = outsider.create_commit(repo, [CommitOperationAdd("a.txt", b"first\n")], commit_message="Add a",
                                  commit_description="Two files for you", create_pr=True)
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert outsider.file_exists(repo, "a.txt", revision="refs/pr/1")
    assert not outsider.file_exists(repo, "a.txt")

    made = outsider.comment_discussion(repo, 1, "A second file is coming.")
    assert made.content == "A second file is coming." and made.author == "pr-contributor"
    outsider.create_commit(repo, [CommitOperationAdd("sub/b.txt", b"second\n"),
                                  CommitOperationAdd("model.safetensors", safetensors_bytes(2048))],
                           commit_message="Add b and weights", revision="refs/pr/1")

    files = outsider.list_repo_files(repo, revision="refs/pr/1")
    assert {"a.txt", "sub/b.txt", "keep.txt", "model.safetensors"} <= set(files)
    assert [p.path for p in outsider.get_paths_info(repo, ["a.txt"], revision="refs/pr/1")] == ["a.txt"]
    assert outsider.model_info(repo, revision="refs/pr/1").sha == outsider.list_repo_commits(
        repo, revision="refs/pr/1")[0].commit_id
    refs = outsider.list_repo_refs(repo, include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", files_head(outsider, repo))]
    assert not outsider.list_repo_refs(repo).pull_requests
    reader = HfApi(endpoint=hub.url, token=hub.token("pr-reader", "read"))
    with pytest.raises(HfHubHTTPError) as read_only:
        reader.create_commit(repo, [CommitOperationAdd("r.txt", b"r")], commit_message="No", create_pr=True)
    assert read_only.value.response.status_code == 403
    fs = HfFileSystem(endpoint=hub.url, token=False)
    assert fs.cat_file(f"{repo}@refs%2Fpr%2F1/sub/b.txt") == b"second\n"

    details = outsider.get_discussion_details(repo, 1)
    assert details.is_pull_request and details.status == "open" and details.target_branch == "refs/heads/main"
    assert details.conflicting_files == [] and details.title == "Add a"
    kinds = [e.type for e in details.events]
    assert kinds == ["comment", "commit", "comment", "commit"]
    assert details.events[0].content == "Two files for you"
    assert "+second" in (details.diff or "") and "b/a.txt" in (details.diff or "")

    with pytest.raises(HfHubHTTPError) as refused:
        outsider.merge_pull_request(repo, 1)
    assert refused.value.response.status_code == 403

    admin_api.merge_pull_request(repo, 1, comment="Thanks!")
    head = admin_api.list_repo_commits(repo)[0]
    assert head.title == "Add a (#1)"
    assert admin_api.hf_hub_download(repo, "sub/b.txt") and {"a.txt", "sub/b.txt", "model.safetensors"} <= set(
        admin_api.list_repo_files(repo))
    merged = admin_api.get_discussion_details(repo, 1)
    assert merged.status == "merged" and merged.merge_commit_oid == head.commit_id
    assert [e.type for e in merged.events][-1] == "status-change"

    with pytest.raises(HfHubHTTPError) as again:
        outsider.upload_file(path_or_fileobj=b"late", path_in_repo="late.txt", repo_id=repo, revision="refs/pr/1")
    assert again.value.response.status_code == 404


def files_head(api: HfApi, repo: str) -> str:
    """The commit at the head of PR 1."""
    return api.list_repo_commits(repo, revision="refs/pr/1")[0].commit_id


def test_merge_conflict_names_the_files(hub: Server, admin_api: HfApi, repo: str) -> None:
    """A PR changing a file the target changed since answers 409 naming it, and the details list it."""
    admin_api.create_commit(repo, [CommitOperationAdd("keep.txt", b"from the PR")], commit_message="Edit keep",
                            create_pr=True)
    admin_api.upload_file(path_or_fileobj=b"from main", path_in_repo="keep.txt", repo_id=repo)
    details = admin_api.get_discussion_details(repo, 1)
    assert details.conflicting_files == ["keep.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        admin_api.merge_pull_request(repo, 1)
    assert conflict.value.response.status_code == 409 and "keep.txt" in str(conflict.value)
    assert admin_api.hf_hub_download(repo, "keep.txt", force_download=True)
    assert Path(admin_api.hf_hub_download(repo, "keep.txt", force_download=True)).read_bytes() == b"from main"


def test_discussion_lifecycle(hub: Server, admin_api: HfApi, repo: str) -> None:
    """Open, list with filters, rename, edit and hide a comment, close and reopen a discussion."""
    user = HfApi(endpoint=hub.url, token=hub.token("talker", "write"))
    opened = user.create_discussion(repo, "Question", description="How do I load it?")
    assert opened.num == 1 and not opened.is_pull_request
    user.create_pull_request(repo, "Empty PR")
    listed = list(user.get_repo_discussions(repo))
    assert [d.num for d in listed] == [2, 1]
    assert [d.num for d in user.get_repo_discussions(repo, discussion_type="pull_request")] == [2]
    assert [d.num for d in user.get_repo_discussions(repo, author="nobody")] == []

    renamed = user.rename_discussion(repo, 1, "Loading question")
    assert (renamed.old_title, renamed.new_title) == ("Question", "Loading question")
    first = user.get_discussion_details(repo, 1).events[0]
    edited = user.edit_discussion_comment(repo, 1, first.id.upper(), "How do I load it in 4 bits?")
    assert edited.edited and edited.content == "How do I load it in 4 bits?"
    with pytest.warns(UserWarning):
        hidden = admin_api.hide_discussion_comment(repo, 1, first.id)
    assert hidden.hidden

    closed = user.change_discussion_status(repo, 1, "closed", comment="Solved")
    assert closed.new_status == "closed"
    assert [d.num for d in user.get_repo_discussions(repo, discussion_status="closed")] == [1]
    assert admin_api.change_discussion_status(repo, 1, "open").new_status == "open"
    stranger = HfApi(endpoint=hub.url, token=hub.token("stranger", "write"))
    with pytest.raises(HfHubHTTPError) as refused:
        stranger.change_discussion_status(repo, 1, "closed")
    assert refused.value.response.status_code == 403
    resp = httpx.get(f"{hub.url}/api/models/{repo}/discussions/99")
    assert_hub_error(resp, 404, "NotFound")


CALLERS = ("anonymous", "outsider", "read", "write", "admin")


@pytest.fixture(scope="module")
def talk_callers(hub: Server) -> dict[str, str | None]:
    """A token per kind of caller, and a public and a private repo of org `talkteam`."""
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "outsider": hub.token("talk-outsider", "write"),
        "read": hub.token("talk-reader", "read", org="talkteam"),
        "write": hub.token("talk-writer", "write", org="talkteam"),
        "admin": hub.admin_token,
    }
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    api.create_repo("talkteam/public-model")
    api.create_repo("talkteam/private-model", private=True)
    return tokens


# Opening a discussion: any write token on a repo it can read; a private repo is a 404 to outsiders.
OPEN = {
    "talkteam/public-model": {"anonymous": 401, "outsider": 200, "read": 403, "write": 200, "admin": 200},
    "talkteam/private-model": {"anonymous": 404, "outsider": 404, "read": 403, "write": 200, "admin": 200},
}
LIST = {
    "talkteam/public-model": {"anonymous": 200, "outsider": 200, "read": 200, "write": 200, "admin": 200},
    "talkteam/private-model": {"anonymous": 404, "outsider": 404, "read": 200, "write": 200, "admin": 200},
}


@pytest.mark.parametrize("repo_id", sorted(OPEN))
@pytest.mark.parametrize("caller", CALLERS)
def test_discussion_permissions(hub: Server, talk_callers: dict[str, str | None], repo_id: str, caller: str) -> None:
    """Who may open, list, read, comment, close and merge, on a public and a private repo."""
    token = talk_callers[caller]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    base = f"{hub.url}/api/models/{repo_id}/discussions"
    writer = {"authorization": f"Bearer {talk_callers['write']}"}
    num = httpx.post(base, json={"title": "By the writer", "pullRequest": True}, headers=writer).json()["num"]

    resp = httpx.post(base, json={"title": f"From {caller}"}, headers=headers)
    expected = OPEN[repo_id][caller]
    if expected == 200:
        assert resp.status_code == 200 and resp.json()["num"] > num
    else:
        assert_hub_error(resp, expected, "RepoNotFound" if expected == 404 else None)

    seen = LIST[repo_id][caller]
    for url in (base, f"{base}/{num}"):
        got = httpx.get(url, headers=headers)
        if seen == 200:
            assert got.status_code == 200, got.text
        else:
            assert_hub_error(got, 404, "RepoNotFound")

    comment = httpx.post(f"{base}/{num}/comment", json={"comment": "hi"}, headers=headers)
    assert comment.status_code == expected, comment.text
    may_merge = caller in ("write", "admin")
    closing = httpx.post(f"{base}/{num}/status", json={"status": "closed"}, headers=headers)
    assert closing.status_code == (200 if may_merge else expected if expected != 200 else 403), closing.text
    if may_merge:
        httpx.post(f"{base}/{num}/status", json={"status": "open"}, headers=headers).raise_for_status()
    merged = httpx.post(f"{base}/{num}/merge", headers=headers)
    assert merged.status_code == (200 if may_merge else expected if expected != 200 else 403), merged.text


def test_hf_discussions_cli(hub: Server, admin_api: HfApi, repo: str, tmp_path: Path) -> None:
    """`hf discussions list` shows an open PR."""
    admin_api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="Add c", create_pr=True)
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.admin_token, "HF_HUB_DISABLE_XET": "1",
           "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "PATH": str(Path(sys.executable).parent)}

    def hf(*args: str) -> str:
        out = subprocess.run([HF, "discussions", *args], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "Add c" in hf("list", repo)
    assert "+c" in hf("diff", repo, "1")
    hf("comment", repo, "1", "--body", "Looks good")
    assert "Looks good" in hf("info", repo, "1", "--format", "json")
    hf("merge", repo, "1", "--yes")
    assert admin_api.get_discussion_details(repo, 1).status == "merged"
    assert admin_api.file_exists(repo, "c.txt")
