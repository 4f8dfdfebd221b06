"""The rest of issue 13 through the stock client: LFS deletion, moved repos, case-insensitive ids, downloads and
likes, the Space README seed, and the Hub's words in the errors the client surfaces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

from tests.conftest import VITRINE, Server, server_env, start_server
from tests.helpers import assert_hub_error, safetensors_bytes


def _fsck(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VITRINE, "fsck", "--home", str(home)], capture_output=True, text=True,
                          env=server_env(home), timeout=300)


def test_permanently_delete_lfs_files(tmp_path: Path) -> None:
    """Deleted LFS objects answer EntryNotFound at every revision; other files stay; shared blobs are kept; fsck is
    clean."""
    home = tmp_path / "home"
    server = start_server(home)
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        repo, other = "acme/purge-me", "acme/purge-other"
        api.create_repo(repo)
        api.create_repo(other)
        secret, shared = safetensors_bytes(4096, seed=1), safetensors_bytes(4096, seed=2)
        api.upload_file(path_or_fileobj=secret, path_in_repo="secret.safetensors", repo_id=repo)
        first = api.upload_file(path_or_fileobj=shared, path_in_repo="shared.safetensors", repo_id=repo).oid
        api.upload_file(path_or_fileobj=b"keep", path_in_repo="keep.txt", repo_id=repo)
        api.upload_file(path_or_fileobj=shared, path_in_repo="copy.safetensors", repo_id=other)
        reader = HfApi(endpoint=server.url, token=server.token("purge-reader", "read", org="acme"))
        lfs = list(api.list_lfs_files(repo))
        assert {f.filename for f in lfs} == {"secret.safetensors", "shared.safetensors"}
        with pytest.raises(HfHubHTTPError) as refused:
            reader.permanently_delete_lfs_files(repo, lfs)
        assert refused.value.response.status_code == 403
        api.permanently_delete_lfs_files(repo, lfs)
        assert list(api.list_lfs_files(repo)) == []
        for revision in ("main", first):
            for path in ("secret.safetensors", "shared.safetensors"):
                with pytest.raises(EntryNotFoundError):
                    hf_hub_download(repo, path, revision=revision, endpoint=server.url, token=server.admin_token,
                                    cache_dir=tmp_path / "cache")
        kept = hf_hub_download(repo, "keep.txt", endpoint=server.url, token=server.admin_token,
                               cache_dir=tmp_path / "cache")
        assert Path(kept).read_bytes() == b"keep"
        # The other repo still holds the shared object, so its blob was kept; the secret one was freed.
        copy = hf_hub_download(other, "copy.safetensors", endpoint=server.url, token=server.admin_token,
                               cache_dir=tmp_path / "cache2")
        assert Path(copy).read_bytes() == shared
        import hashlib

        blobs = {p.name for p in home.rglob("*") if p.is_file() and len(p.name) == 64}
        assert hashlib.sha256(secret).hexdigest() not in blobs
        assert hashlib.sha256(shared).hexdigest() in blobs
        fsck = _fsck(home)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        # Uploaded again, the object is the repo's again.
        api.upload_file(path_or_fileobj=secret, path_in_repo="secret.safetensors", repo_id=repo)
        again = hf_hub_download(repo, "secret.safetensors", endpoint=server.url, token=server.admin_token,
                                cache_dir=tmp_path / "cache3")
        assert Path(again).read_bytes() == secret
    finally:
        server.stop()


def test_moved_repo_keeps_answering_at_its_old_name(hub: Server, admin_api: HfApi, repo: str,
                                                    tmp_path: Path) -> None:
    """After `move_repo` the old id answers through redirects until a repo takes the name again."""
    new = repo + "-moved"
    admin_api.move_repo(repo, new)
    assert admin_api.model_info(repo).id == new
    assert admin_api.repo_exists(repo)
    path = hf_hub_download(repo, "keep.txt", endpoint=hub.url, token=hub.admin_token, cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b"original"
    raw = httpx.get(f"{hub.url}/api/models/{repo}", headers={"authorization": f"Bearer {hub.admin_token}"})
    assert raw.status_code == 307 and raw.headers["location"] == f"/api/models/{new}"
    admin_api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo)  # a commit follows too
    assert "two.txt" in admin_api.list_repo_files(new)
    admin_api.create_repo(repo)
    assert admin_api.model_info(repo).id == repo
    assert "keep.txt" not in admin_api.list_repo_files(repo)


def test_moved_private_repo_is_not_revealed(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    """A private repo's old name answers RepoNotFound, without the new name, to whoever may not read it."""
    old, new = f"acme/{repo_name}", f"acme/{repo_name}-hidden"
    admin_api.create_repo(old, private=True)
    admin_api.move_repo(old, new)
    outsider = HfApi(endpoint=hub.url, token=hub.token("move-outsider", "write"))
    with pytest.raises(RepositoryNotFoundError):
        outsider.model_info(old)
    r = httpx.get(f"{hub.url}/api/models/{old}")
    assert_hub_error(r, 404, "RepoNotFound")
    assert "hidden" not in r.text and "location" not in r.headers
    member = HfApi(endpoint=hub.url, token=hub.token("move-member", "read", org="acme"))
    assert member.model_info(old).id == new


def test_repo_ids_are_case_insensitive(admin_api: HfApi, repo_name: str) -> None:
    """`ACME/X` finds `acme/x`, answering with the case it was created with; a case variant is a 409."""
    repo_id = f"acme/Case-{repo_name}"
    admin_api.create_repo(repo_id)
    assert admin_api.model_info(repo_id.upper()).id == repo_id
    assert admin_api.model_info(repo_id.lower()).id == repo_id
    with pytest.raises(HfHubHTTPError) as conflict:
        admin_api.create_repo(repo_id.lower())
    assert conflict.value.response.status_code == 409
    assert "You already created this model repo" in str(conflict.value)
    assert admin_api.create_repo(repo_id.lower(), exist_ok=True)


def test_downloads_are_counted_as_the_hub_does(hub: Server, admin_api: HfApi, repo: str, tmp_path: Path) -> None:
    """A GET of config.json counts (HEAD and other files do not, once config.json exists); listings sort by it."""
    assert admin_api.model_info(repo).downloads == 0
    hf_hub_download(repo, "keep.txt", endpoint=hub.url, token=hub.admin_token, cache_dir=tmp_path / "a")
    assert admin_api.model_info(repo).downloads == 1  # no config.json: any file counts
    admin_api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=repo)
    hf_hub_download(repo, "keep.txt", endpoint=hub.url, token=hub.admin_token, cache_dir=tmp_path / "b")
    get_hf_file_metadata(hf_hub_url(repo, "config.json", endpoint=hub.url), token=hub.admin_token)
    assert admin_api.model_info(repo).downloads == 1
    hf_hub_download(repo, "config.json", endpoint=hub.url, token=hub.admin_token, cache_dir=tmp_path / "c")
    assert admin_api.model_info(repo).downloads == 2
    top = next(iter(admin_api.list_models(sort="downloads", limit=1)))
    assert top.downloads is not None and top.downloads >= 2
    listed = {m.id: m.downloads for m in admin_api.list_models(search=repo.split("/")[1])}
    assert listed[repo] == 2


def _like(hub: Server, token: str, repo_id: str) -> httpx.Response:
    # huggingface_hub 2.x has no `like` ("not possible from a script"): the route is the Hub's, called directly.
    return httpx.post(f"{hub.url}/api/models/{repo_id}/like", headers={"authorization": f"Bearer {token}"})


def test_likes(hub: Server, admin_api: HfApi, repo: str, repo_name: str) -> None:
    """Liking, `unlike`, `list_liked_repos`, `list_repo_likers`, `likes` and `sort=likes`; private likes stay hidden."""
    fan_token, other_token = hub.token("fan", "write", org="acme"), hub.token("fan-friend", "write")
    fan, other = HfApi(endpoint=hub.url, token=fan_token), HfApi(endpoint=hub.url, token=other_token)
    private = f"acme/{repo_name}-private"
    admin_api.create_repo(private, private=True)
    for token, repo_id in ((fan_token, repo), (fan_token, repo), (other_token, repo), (fan_token, private)):
        assert _like(hub, token, repo_id).status_code == 200  # liking twice is still one like
    assert admin_api.model_info(repo).likes == 2
    assert {u.username for u in admin_api.list_repo_likers(repo)} == {"fan", "fan-friend"}
    assert set(fan.list_liked_repos("fan").models) >= {repo, private}
    assert private not in other.list_liked_repos("fan").models
    assert private not in HfApi(endpoint=hub.url, token=False).list_liked_repos("fan").models
    ranked = [m.id for m in admin_api.list_models(sort="likes", search=repo.split("/")[1])]
    assert ranked[0] == repo
    fan.unlike(repo)
    assert admin_api.model_info(repo).likes == 1
    assert_hub_error(_like(hub, other_token, private), 404, "RepoNotFound")
    assert_hub_error(httpx.post(f"{hub.url}/api/models/{repo}/like"), 401, "Unauthorized")


def test_new_space_is_seeded_with_a_readme(admin_api: HfApi, repo_name: str) -> None:
    """An empty new Space holds the README the Hub seeds: front matter with its title and sdk."""
    space = f"acme/{repo_name}"
    admin_api.create_repo(space, repo_type="space", space_sdk="gradio")
    assert set(admin_api.list_repo_files(space, repo_type="space")) == {".gitattributes", "README.md"}
    readme = Path(admin_api.hf_hub_download(space, "README.md", repo_type="space")).read_text()
    assert readme.startswith("---\n") and f"title: {repo_name}\n" in readme and "sdk: gradio\n" in readme
    info = admin_api.space_info(space)
    assert info.sdk == "gradio"
    assert info.card_data is not None and info.card_data.get("sdk") == "gradio"


def test_error_messages_read_like_the_hubs(admin_api: HfApi, repo: str) -> None:
    """An existing repo, a commit conflict, an existing ref and the main branch answer in the Hub's words."""
    with pytest.raises(HfHubHTTPError) as exists:
        admin_api.create_repo(repo)
    assert "You already created this model repo" in str(exists.value)
    head = admin_api.model_info(repo).sha
    admin_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    with pytest.raises(HfHubHTTPError) as conflict:
        admin_api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=repo, parent_commit=head)
    assert conflict.value.response.status_code == 412
    assert "A commit has happened since" in str(conflict.value)
    admin_api.create_branch(repo, branch="dev")
    with pytest.raises(HfHubHTTPError) as ref:
        admin_api.create_branch(repo, branch="dev")
    assert ref.value.response.status_code == 409 and "Reference already exists" in str(ref.value)
    with pytest.raises(HfHubHTTPError) as main:
        admin_api.delete_branch(repo, branch="main")
    assert "main branch cannot be deleted" in str(main.value)
