"""Every bad input gets the Hub's status code and a message naming the problem, and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import Server, start_server
from tests.helpers import assert_hub_error


def auth(hub: Server) -> dict[str, str]:
    return {"authorization": f"Bearer {hub.admin_token}"}


def commit_raw(hub: Server, repo_id: str, lines: list[object] | bytes, revision: str = "main") -> httpx.Response:
    body = lines if isinstance(lines, bytes) else b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    return httpx.post(f"{hub.url}/api/models/{repo_id}/commit/{revision}", content=body,
                      headers={**auth(hub), "content-type": "application/x-ndjson"})


HEADER = {"key": "header", "value": {"summary": "attempt"}}


def inline(path: str, data: bytes = b"x") -> dict[str, object]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def head_of(api: HfApi, repo_id: str) -> tuple[str, list[str]]:
    return api.model_info(repo_id).sha, sorted(api.list_repo_files(repo_id))


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b.txt", "/etc/passwd", ".git/config", "x/.git/hooks/a",
                                  "a//b.txt", "./a.txt", "a\\b.txt", "nul\x00byte"])
def test_bad_paths_are_refused_and_change_nothing(hub, admin_api, repo, path) -> None:  # type: ignore[no-untyped-def]
    before = head_of(admin_api, repo)
    r = commit_raw(hub, repo, [HEADER, inline("fine.txt"), inline(path)])
    assert_hub_error(r, 400, "BadRequest", contains="Invalid path")
    assert head_of(admin_api, repo) == before


def test_traversal_in_download_urls(hub, repo) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(f"{hub.url}/{repo}/resolve/main/..%2F..%2F..%2Fetc%2Fpasswd")
    assert_hub_error(r, 400, "BadRequest", contains="Invalid path")
    r = httpx.get(f"{hub.url}/{repo}/resolve/main/.git%2Fconfig")
    assert_hub_error(r, 400, "BadRequest")


@pytest.mark.parametrize("name", ["bad--name", "-lead", "dot..dot", "x" * 97, "sp ace", "end.git"])
def test_invalid_repo_ids(hub, name) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": name, "organization": "acme"}, headers=auth(hub))
    assert_hub_error(r, 400, "BadRequest", contains="Invalid")
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": "ok", "organization": "acme", "type": "notebook"},
                   headers=auth(hub))
    assert_hub_error(r, 400, "BadRequest", contains="repo type")


@pytest.mark.parametrize("body,message", [
    (b"this is not json\n", "Malformed NDJSON"),
    (json.dumps(inline("a.txt")).encode() + b"\n", "first line"),
    (b"", "Empty commit"),
    (json.dumps(HEADER).encode() + b"\n" + json.dumps({"key": "rename", "value": {}}).encode(), "Unknown commit operation"),
    (json.dumps({"key": "header", "value": {"summary": ""}}).encode(), "summary"),
    (json.dumps(HEADER).encode() + b"\n" + json.dumps({"key": "file", "value": {"path": "a", "content": "!!"}}).encode(),
     "base64"),
    (json.dumps({"key": "header", "value": {"summary": "s", "parentCommit": "abc"}}).encode(), "parentCommit"),
])
def test_malformed_commits(hub, admin_api, repo, body, message) -> None:  # type: ignore[no-untyped-def]
    before = head_of(admin_api, repo)
    assert_hub_error(commit_raw(hub, repo, body), 400, "BadRequest", contains=message)
    assert head_of(admin_api, repo) == before


def test_lfs_hash_and_size_mismatch(hub, admin_api, repo) -> None:  # type: ignore[no-untyped-def]
    good, bad = os.urandom(200_000), os.urandom(200_000)
    oid = hashlib.sha256(good).hexdigest()
    batch = httpx.post(f"{hub.url}/{repo}.git/info/lfs/objects/batch", headers=auth(hub),
                       json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(good)}]})
    assert batch.status_code == 200
    href = batch.json()["objects"][0]["actions"]["upload"]["href"]
    assert_hub_error(httpx.put(href, content=bad), 400, "BadRequest", contains="sha256 mismatch")
    assert_hub_error(httpx.put(href, content=good[:-10]), 400, "BadRequest", contains="Size mismatch")
    assert_hub_error(httpx.put(href.replace("sig=", "sig=0"), content=good), 403, "Forbidden")
    verify = httpx.post(batch.json()["objects"][0]["actions"]["verify"]["href"], json={"oid": oid, "size": len(good)})
    assert_hub_error(verify, 400, "BadRequest", contains="has not been uploaded")
    before = head_of(admin_api, repo)
    r = commit_raw(hub, repo, [HEADER, {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid,
                                                                    "size": len(good)}}])
    assert_hub_error(r, 400, "BadRequest", contains="never uploaded")
    assert head_of(admin_api, repo) == before
    assert not list((hub.home / "blobs" / "tmp").glob("*.part"))
    # The right bytes then go through.
    assert httpx.put(href, content=good).status_code == 200
    r = commit_raw(hub, repo, [HEADER, {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid,
                                                                    "size": len(good) + 1}}])
    assert_hub_error(r, 400, "BadRequest", contains="announced size")


def test_unknown_revisions_and_entries(hub, admin_api, repo) -> None:  # type: ignore[no-untyped-def]
    for url in (f"{hub.url}/{repo}/resolve/nope/keep.txt", f"{hub.url}/api/models/{repo}/tree/nope",
                f"{hub.url}/api/models/{repo}/revision/nope", f"{hub.url}/api/models/{repo}/commits/nope",
                f"{hub.url}/api/models/{repo}/revision/{'0' * 40}"):
        assert_hub_error(httpx.get(url), 404, "RevisionNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/{repo}/resolve/main/missing.txt"), 404, "EntryNotFound")
    assert_hub_error(httpx.get(f"{hub.url}/api/models/acme/no-such-repo"), 404, "RepoNotFound")
    assert_hub_error(commit_raw(hub, repo, [HEADER, inline("a.txt")], revision="no-branch"), 404, "RevisionNotFound")
    r = httpx.post(f"{hub.url}/api/models/{repo}/branch/..bad", headers=auth(hub), json={})
    assert_hub_error(r, 400, "BadRequest", contains="Invalid branch name")
    r = httpx.post(f"{hub.url}/api/models/{repo}/branch/dev", headers=auth(hub), json={"startingPoint": "ghost"})
    assert_hub_error(r, 404, "RevisionNotFound")


def test_stale_parent_commit_is_refused(admin_api, repo) -> None:  # type: ignore[no-untyped-def]
    parent = admin_api.model_info(repo).sha
    admin_api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=repo, parent_commit=parent)
    with pytest.raises(HfHubHTTPError) as exc:
        admin_api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo, parent_commit=parent)
    assert exc.value.response.status_code == 412
    assert "two.txt" not in admin_api.list_repo_files(repo)


@pytest.fixture(scope="module")
def small_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub with tiny upload limits."""
    server = start_server(tmp_path_factory.mktemp("small-hub"), VITRINE_MAX_UPLOAD_BYTES=str(1024 * 1024),
                          VITRINE_MAX_INLINE_BYTES="1000")
    yield server
    server.stop()


def test_oversized_uploads(small_hub: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = HfApi(endpoint=small_hub.url, token=small_hub.admin_token)
    api.create_repo("acme/limited")
    # Through Xet the shard naming the file is refused (hf_xet reports the status, not the hub's message) ...
    with pytest.raises(Exception) as exc:
        api.upload_file(path_or_fileobj=os.urandom(2 * 1024 * 1024), path_in_repo="big.bin", repo_id="acme/limited")
    assert "413" in str(exc.value), exc.value
    # ... and through LFS the batch call, with the hub's message.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    with pytest.raises(Exception) as exc:
        api.upload_file(path_or_fileobj=os.urandom(2 * 1024 * 1024), path_in_repo="big.bin", repo_id="acme/limited")
    assert "exceeds the upload limit" in str(exc.value) + str(exc.value.__cause__)
    assert api.list_repo_files("acme/limited") == [".gitattributes"]
    # A client that lies in the batch call is still cut off at the limit by the PUT.
    data = os.urandom(1024 * 1024 + 1)
    oid = hashlib.sha256(data).hexdigest()
    r = httpx.post(f"{small_hub.url}/acme/limited.git/info/lfs/objects/batch", headers=auth(small_hub),
                   json={"operation": "upload", "objects": [{"oid": oid, "size": 10}]})
    href = r.json()["objects"][0]["actions"]["upload"]["href"]
    assert_hub_error(httpx.put(href, content=iter([data])), 413, "PayloadTooLarge")
    r = commit_raw(small_hub, "acme/limited", [HEADER, inline("inline.txt", b"y" * 5000)])
    assert_hub_error(r, 413, "PayloadTooLarge", contains="upload it through LFS")
    assert api.list_repo_files("acme/limited") == [".gitattributes"]
    assert not list((small_hub.home / "blobs" / "tmp").glob("*.part"))

