"""The stock huggingface_hub client against a real hub: every call a team uses day to day."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    HfFileSystem,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from tests.conftest import ADMIN_TOKEN
from tests.helpers import opaque_bytes, safetensors_bytes

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}

MB = 1024 * 1024


def test_create_upload_download_roundtrip(admin_api: HfApi, hub, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    url = admin_api.create_repo(repo_id)
    assert url.repo_id == repo_id and url.repo_type == "model"
    # exist_ok reads the repo url from the 409 body
    assert admin_api.create_repo(repo_id, exist_ok=True).repo_id == repo_id
    with pytest.raises(Exception) as exc:
        admin_api.create_repo(repo_id)
    assert exc.value.response.status_code == 409

    big = opaque_bytes(11 * MB)
    admin_api.upload_file(path_or_fileobj=b"small text", path_in_repo="notes/a.txt", repo_id=repo_id)
    admin_api.upload_file(path_or_fileobj=big, path_in_repo="weights.bin", repo_id=repo_id)

    info = admin_api.model_info(repo_id, files_metadata=True)
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", "notes/a.txt", "weights.bin"}
    assert siblings["weights.bin"].size == len(big) and siblings["weights.bin"].lfs is not None
    assert siblings["notes/a.txt"].lfs is None and siblings["notes/a.txt"].size == 10
    assert len(info.sha) == 40

    path = hf_hub_download(repo_id, "weights.bin", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == big
    # A range request, as HfFileSystem and datasets streaming send
    r = httpx.get(f"{hub.url}/{repo_id}/resolve/main/weights.bin", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == big[100:200]
    head = httpx.head(f"{hub.url}/{repo_id}/resolve/main/weights.bin")
    assert head.headers["x-repo-commit"] == info.sha
    assert head.headers["x-linked-size"] == str(len(big))
    assert head.headers["x-linked-etag"].strip('"') == siblings["weights.bin"].lfs.sha256


def test_upload_folder_hundreds_of_files_and_revisions(admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    folder = tmp_path / "folder"
    for i in range(300):
        (folder / f"part{i % 7}").mkdir(parents=True, exist_ok=True)
        (folder / f"part{i % 7}" / f"file{i}.txt").write_text(f"content {i}\n")
    (folder / "model.safetensors").write_bytes(safetensors_bytes(2 * MB))
    first = admin_api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="v1 upload")
    admin_api.create_tag(repo_id, tag="v1")
    v1_sha = first.oid

    (folder / "part0" / "file0.txt").write_text("changed\n")
    admin_api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="v2 upload")
    files = admin_api.list_repo_files(repo_id)
    assert len(files) == 302

    for rev in ("v1", v1_sha, "main"):
        snap = Path(snapshot_download(repo_id, revision=rev, allow_patterns=["part0/*"], cache_dir=tmp_path / "s"))
        got = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
        assert got == sorted(f for f in files if f.startswith("part0/"))
        expected = "content 0\n" if rev != "main" else "changed\n"
        assert (snap / "part0" / "file0.txt").read_text() == expected

    admin_api.create_branch(repo_id, branch="dev", revision="v1")
    dev = hf_hub_download(repo_id, "part0/file0.txt", revision="dev", cache_dir=tmp_path / "d")
    assert Path(dev).read_text() == "content 0\n"
    refs = admin_api.list_repo_refs(repo_id)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"]
    assert refs.tags[0].target_commit == v1_sha
    admin_api.delete_branch(repo_id, branch="dev")
    admin_api.delete_tag(repo_id, tag="v1")
    refs = admin_api.list_repo_refs(repo_id)
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "part0/file0.txt", revision="v1", cache_dir=tmp_path / "e")

    # Through Xet the client may split a big upload_folder into several commits, "v1 upload (part 2)" and so on.
    titles = [c.title.split(" (part ")[0] for c in admin_api.list_repo_commits(repo_id)]
    assert list(dict.fromkeys(titles)) == ["v2 upload", "v1 upload", "initial commit"]
    tree = list(admin_api.list_repo_tree(repo_id, path_in_repo="part1", expand=True))
    assert all(t.path.startswith("part1/") for t in tree) and len(tree) == len([f for f in files if f.startswith("part1/")])
    assert all(t.last_commit.title == "v1 upload" for t in tree)
    top = {t.path for t in admin_api.list_repo_tree(repo_id)}
    assert top == {".gitattributes", "model.safetensors", *(f"part{i}" for i in range(7))}


def test_create_commit_with_deletes_and_copies(admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    payload = safetensors_bytes(3 * MB)
    admin_api.create_commit(repo_id, commit_message="seed", operations=[
        CommitOperationAdd("data/a.txt", b"a"), CommitOperationAdd("data/b.txt", b"b"),
        CommitOperationAdd("blob.safetensors", payload), CommitOperationAdd("keep.txt", b"keep"),
    ])
    admin_api.create_commit(repo_id, commit_message="edit", operations=[
        CommitOperationCopy("blob.safetensors", "copies/blob.safetensors"),
        CommitOperationCopy("keep.txt", "copies/keep.txt"),
        CommitOperationDelete("data/"),
        CommitOperationDelete("keep.txt"),
    ])
    assert sorted(admin_api.list_repo_files(repo_id)) == [
        ".gitattributes", "blob.safetensors", "copies/blob.safetensors", "copies/keep.txt"]
    info = {f.path: f for f in admin_api.get_paths_info(repo_id, ["copies/blob.safetensors", "copies", "nope"])}
    assert set(info) == {"copies/blob.safetensors", "copies"}
    assert info["copies/blob.safetensors"].lfs.size == len(payload)
    with pytest.raises(EntryNotFoundError):
        admin_api.delete_file("does/not/exist.txt", repo_id)


def test_second_upload_of_unchanged_files_sends_no_lfs_bytes(admin_api: HfApi, hub, repo_name: str,
                                                             tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(safetensors_bytes(4 * MB, seed=1))
    (folder / "config.json").write_text("{}")
    admin_api.upload_folder(folder_path=folder, repo_id=repo_id)
    before = httpx.get(f"{hub.url}/api/vitrine/stats", headers=ADMIN).json()
    head_before = admin_api.model_info(repo_id).sha
    admin_api.upload_folder(folder_path=folder, repo_id=repo_id)
    after = httpx.get(f"{hub.url}/api/vitrine/stats", headers=ADMIN).json()
    assert after["lfs_bytes_received"] == before["lfs_bytes_received"]
    assert after["lfs_objects_received"] == before["lfs_objects_received"]
    # And a new name for the same content is a commit without any transfer either.
    admin_api.upload_file(path_or_fileobj=folder / "model.safetensors", path_in_repo="again.safetensors",
                          repo_id=repo_id)
    assert httpx.get(f"{hub.url}/api/vitrine/stats", headers=ADMIN).json()["lfs_bytes_received"] == before["lfs_bytes_received"]
    assert admin_api.model_info(repo_id).sha != head_before


def test_info_listing_and_filesystem(admin_api: HfApi, repo_name: str) -> None:
    card = "---\nlicense: mit\ntags: [vision, demo]\npipeline_tag: image-classification\n---\n# Hello\n"
    for i in range(3):
        admin_api.create_repo(f"listers/{repo_name}-{i}")
        admin_api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md",
                              repo_id=f"listers/{repo_name}-{i}")
    admin_api.create_repo(f"listers/{repo_name}-ds", repo_type="dataset")
    admin_api.upload_file(path_or_fileobj=b"x,y\n1,2\n", path_in_repo="data.csv", repo_id=f"listers/{repo_name}-ds",
                          repo_type="dataset")

    found = [m.id for m in admin_api.list_models(search=repo_name, author="listers")]
    assert sorted(found) == [f"listers/{repo_name}-{i}" for i in range(3)]
    assert [m.id for m in admin_api.list_models(search=repo_name, limit=2)] == found[:2]
    assert len(list(admin_api.list_models(author="listers", filter="vision", search=repo_name))) == 3
    assert list(admin_api.list_models(author="listers", filter="audio", search=repo_name)) == []
    newest_first = [m.id for m in admin_api.list_models(search=repo_name, sort="createdAt")]
    assert newest_first == [f"listers/{repo_name}-{i}" for i in (2, 1, 0)]
    # Raw pagination: one item per page, following the Link header like the client does.
    url, pages = f"{admin_api.endpoint}/api/models?search={repo_name}&limit=1&sort=createdAt&direction=1", []
    while url:
        r = httpx.get(url)
        pages.append([m["id"] for m in r.json()])
        url = r.links.get("next", {}).get("url")
    assert pages == [[f"listers/{repo_name}-{i}"] for i in range(3)]
    r = httpx.get(f"{admin_api.endpoint}/api/models?sort=bogus")
    assert r.status_code == 400 and "Invalid sort" in r.json()["error"]
    info = admin_api.model_info(f"listers/{repo_name}-0")
    assert info.pipeline_tag == "image-classification" and "vision" in info.tags
    assert info.card_data["license"] == "mit"
    ds = admin_api.dataset_info(f"listers/{repo_name}-ds")
    assert [s.rfilename for s in ds.siblings] == [".gitattributes", "data.csv"]
    assert [d.id for d in admin_api.list_datasets(search=repo_name)] == [f"listers/{repo_name}-ds"]

    fs = HfFileSystem(endpoint=admin_api.endpoint, token=admin_api.token)
    listing = fs.ls(f"datasets/listers/{repo_name}-ds", detail=False)
    assert sorted(listing) == sorted([f"datasets/listers/{repo_name}-ds/.gitattributes",
                                      f"datasets/listers/{repo_name}-ds/data.csv"])
    with fs.open(f"datasets/listers/{repo_name}-ds/data.csv", "rb") as fh:
        assert fh.read() == b"x,y\n1,2\n"


def test_delete_move_and_unknown_things(admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    admin_api.upload_file(path_or_fileobj=b"print(1)", path_in_repo="app.py", repo_id=repo_id, repo_type="space")
    assert admin_api.space_info(repo_id).sdk == "gradio"
    admin_api.move_repo(repo_id, f"acme/{repo_name}-moved", repo_type="space")
    # The old name keeps answering, redirected to the new one, as on the Hub.
    assert admin_api.space_info(repo_id).id == f"acme/{repo_name}-moved"
    assert admin_api.list_repo_files(f"acme/{repo_name}-moved", repo_type="space") == [
        ".gitattributes", "README.md", "app.py"]
    with pytest.raises(RevisionNotFoundError):
        admin_api.list_repo_files(f"acme/{repo_name}-moved", repo_type="space", revision="nope")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(f"acme/{repo_name}-moved", "missing.py", repo_type="space")
    admin_api.delete_repo(f"acme/{repo_name}-moved", repo_type="space")
    with pytest.raises(RepositoryNotFoundError):
        admin_api.space_info(f"acme/{repo_name}-moved")
