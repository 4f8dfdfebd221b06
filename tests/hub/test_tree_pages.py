"""The tree listing pages as the Hub's does (`limit`, opaque `cursor`, `Link: rel="next"`), and the stock clients
still see every entry of a repo larger than a page."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem
from huggingface_hub.hf_api import RepoFile, RepoFolder

from tests.conftest import Server
from tests.helpers import assert_hub_error, bearer, org_callers

N_FILES = 1210  # more than one page of 1,000, in three folders and the root
ORG = "treepages"
PRIVATE = f"{ORG}/private-tree"


def _paths(n: int) -> list[str]:
    return [f"d{i % 3}/f{i:05d}.txt" if i % 4 else f"top{i:05d}.txt" for i in range(n)]


@pytest.fixture(scope="module")
def big(admin_api: HfApi) -> dict[str, Any]:
    """A public model repo with 1,210 small files in one commit (and `.gitattributes`), plus an open PR."""
    repo_id = "acme/tree-pages-big"
    admin_api.create_repo(repo_id, exist_ok=True)
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=p.encode()) for p in _paths(N_FILES)]
    admin_api.create_commit(repo_id, ops, commit_message="many files")
    pr = admin_api.create_commit(repo_id, [CommitOperationAdd(path_in_repo="d0/from-pr.txt", path_or_fileobj=b"x")],
                                 commit_message="one more", create_pr=True)
    files = {f.path for f in admin_api.list_repo_tree(repo_id, recursive=True) if isinstance(f, RepoFile)}
    return {"repo": repo_id, "files": files, "pr": pr.pr_revision}


def _get(hub: Server, url: str, token: str | None = None, **params: Any) -> httpx.Response:
    return httpx.get(url if url.startswith("http") else f"{hub.url}{url}", params=params or None,
                     headers=bearer(token), timeout=60)


def test_list_repo_tree_returns_every_entry_of_a_repo_larger_than_a_page(hub: Server, big: dict[str, Any]) -> None:
    api = HfApi(endpoint=hub.url)
    expected = set(_paths(N_FILES))
    assert big["files"] == expected | {".gitattributes"}
    entries = list(api.list_repo_tree(big["repo"], recursive=True))
    assert len(entries) == len(expected) + 1 + 3  # .gitattributes and the folders d0, d1, d2
    assert {e.path for e in entries if isinstance(e, RepoFolder)} == {"d0", "d1", "d2"}
    assert len({e.path for e in entries}) == len(entries)  # no entry twice across pages
    root = list(api.list_repo_tree(big["repo"]))  # not recursive: the root's own files and folders, over two pages
    assert len(root) == len([p for p in expected if "/" not in p]) + 1 + 3
    # A revision whose name the client percent-encodes (`refs%2Fpr%2F1`) pages too.
    at_pr = {e.path for e in api.list_repo_tree(big["repo"], recursive=True, revision=big["pr"])
             if isinstance(e, RepoFile)}
    assert at_pr == big["files"] | {"d0/from-pr.txt"}


def test_expand_pages_by_fifty_and_still_lists_everything(hub: Server, big: dict[str, Any]) -> None:
    api = HfApi(endpoint=hub.url)
    first = _get(hub, f"/api/models/{big['repo']}/tree/main/d1", expand="true")
    assert first.status_code == 200 and len(first.json()) == 50 and 'rel="next"' in first.headers["link"]
    entries = list(api.list_repo_tree(big["repo"], "d1", expand=True))
    assert {e.path for e in entries} == {p for p in big["files"] if p.startswith("d1/")}
    assert all(e.last_commit is not None and e.last_commit.title == "many files" for e in entries)


def test_hf_file_system_finds_every_file(hub: Server, big: dict[str, Any]) -> None:
    fs = HfFileSystem(endpoint=hub.url, token=False)
    found = fs.find(big["repo"])
    assert {p.removeprefix(big["repo"] + "/") for p in found} == big["files"]
    fs_serial = HfFileSystem(endpoint=hub.url, token=False, max_workers=1, skip_instance_cache=True)
    assert len(fs_serial.ls(f"{big['repo']}/d2", detail=False)) == len([p for p in big["files"] if p.startswith("d2/")])


def test_link_header_names_the_next_page_until_the_last(hub: Server, big: dict[str, Any]) -> None:
    url: str | None = f"{hub.url}/api/models/{big['repo']}/tree/main/d0?recursive=true&limit=150"
    pages: list[list[str]] = []
    while url is not None:
        r = _get(hub, url)
        assert r.status_code == 200, r.text
        pages.append([e["path"] for e in r.json()])
        url = r.links.get("next", {}).get("url")
        if url is not None:
            assert "recursive=true" in url and "limit=150" in url and "cursor=" in url
    listed = [p for page in pages for p in page]
    assert listed == sorted(p for p in big["files"] if p.startswith("d0/"))
    assert [len(p) for p in pages[:-1]] == [150] * (len(pages) - 1) and 0 < len(pages[-1]) <= 150
    whole = _get(hub, f"/api/models/{big['repo']}/tree/main", recursive="true", limit="1000")
    assert len(whole.json()) == 1000 and "link" in whole.headers
    # The cursor is the page's last path, encoded: stateless, and nothing the reader was not just shown.
    cursor = whole.links["next"]["url"].rsplit("cursor=", 1)[1]
    assert base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode() == whole.json()[-1]["path"]


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "many", "1.5"])
def test_limit_is_bounded(hub: Server, big: dict[str, Any], limit: str) -> None:
    r = _get(hub, f"/api/models/{big['repo']}/tree/main", limit=limit)
    assert_hub_error(r, 400, "BadRequest", contains="'limit' must be an integer from 1 to 1000")


def test_limit_bounds_are_inclusive(hub: Server, big: dict[str, Any]) -> None:
    assert len(_get(hub, f"/api/models/{big['repo']}/tree/main", limit="1").json()) == 1
    assert len(_get(hub, f"/api/models/{big['repo']}/tree/main", recursive="1", limit="1000").json()) == 1000


@pytest.mark.parametrize("cursor", ["!!!", "%%", base64.urlsafe_b64encode(b"\xff\xfe").decode(),
                                    base64.urlsafe_b64encode(b"../etc/passwd").decode(), ""])
def test_bad_cursor_is_a_clear_400(hub: Server, big: dict[str, Any], cursor: str) -> None:
    r = _get(hub, f"/api/models/{big['repo']}/tree/main", cursor=cursor)
    assert_hub_error(r, 400, "BadRequest", contains="Invalid tree cursor")


@pytest.fixture(scope="module")
def private(hub: Server) -> dict[str, Any]:
    """A private organisation model with five files, and a token per kind of caller."""
    tokens: dict[str, str | None] = {**org_callers(hub, ORG, "treepages"), "hub admin": hub.admin_token}
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    api.create_repo(PRIVATE, private=True, exist_ok=True)
    api.create_commit(PRIVATE, [CommitOperationAdd(path_in_repo=f"secret-{i}.txt", path_or_fileobj=b"s")
                                for i in range(5)], commit_message="secrets")
    first = _get(hub, f"/api/models/{PRIVATE}/tree/main", tokens["read"], limit="2")
    return {"tokens": tokens, "next": first.links["next"]["url"]}


READS = {"anonymous": False, "outsider": False, "read": True, "write": True, "admin": True, "hub admin": True}


@pytest.mark.parametrize("who", list(READS))
def test_private_tree_pages_only_for_readers(hub: Server, private: dict[str, Any], who: str) -> None:
    token = private["tokens"][who]
    first = _get(hub, f"/api/models/{PRIVATE}/tree/main", token, limit="2")
    following = _get(hub, private["next"], token)  # a reader's next-page URL, replayed by this caller
    bad = _get(hub, f"/api/models/{PRIVATE}/tree/main", token, cursor="!!!")
    if READS[who]:
        assert [e["path"] for e in first.json()] == [".gitattributes", "secret-0.txt"]
        assert first.links["next"]["url"] == private["next"]
        assert [e["path"] for e in following.json()] == ["secret-1.txt", "secret-2.txt"]
        assert_hub_error(bad, 400, "BadRequest")
        return
    # Whoever may not read the repo learns nothing: not its files, not whether a cursor is valid, no next page.
    for r in (first, following, bad):
        assert_hub_error(r, 404, "RepoNotFound")
        assert "link" not in r.headers and "secret" not in r.text
