"""Crashes, races and garbage collection: nothing acknowledged is lost, nothing half-written is visible."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from tests.conftest import VITRINE, server_env, start_server
from tests.helpers import opaque_bytes


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VITRINE, *args, "--home", str(home)], capture_output=True, text=True,
                          env=server_env(home), timeout=300)


def test_sigkill_during_uploads_leaves_every_repo_readable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    api = HfApi(endpoint=server.url, token=server.admin_token)
    for i in range(3):
        api.create_repo(f"acme/crash-{i}")
    acknowledged: dict[str, dict[str, str]] = {f"acme/crash-{i}": {} for i in range(3)}
    stop = threading.Event()

    def writer(repo_id: str) -> None:
        n = 0
        while not stop.is_set():
            data = opaque_bytes(3 * 1024 * 1024 + n)
            path = f"w/{n}.bin"
            try:
                api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo_id)
                api.upload_file(path_or_fileobj=f"{n}".encode(), path_in_repo=f"t/{n}.txt", repo_id=repo_id)
            except Exception:
                return  # the server died under us
            acknowledged[repo_id][path] = hashlib.sha256(data).hexdigest()
            n += 1

    threads = [threading.Thread(target=writer, args=(r,), daemon=True) for r in acknowledged]
    for t in threads:
        t.start()
    time.sleep(4)
    server.stop(signal.SIGKILL)
    stop.set()
    # A writer cut off mid-upload may sit in its client's retries for minutes; what it had acknowledged before the
    # kill is what must survive, and an acknowledgement arriving at the kill is recorded within this wait.
    deadline = time.monotonic() + 3
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    survived = {repo_id: dict(files) for repo_id, files in acknowledged.items()}  # a late writer cannot touch it
    assert sum(len(v) for v in survived.values()) > 0

    fsck = run_cli(home, "fsck", "--quiet")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "clean" in fsck.stdout

    restarted = start_server(home)
    try:
        api = HfApi(endpoint=restarted.url, token=restarted.admin_token)
        for repo_id, files in survived.items():
            present = set(api.list_repo_files(repo_id))
            assert set(files) <= present  # every acknowledged commit survived
            for f in sorted(present):
                if f.endswith(".bin"):
                    data = Path(hf_hub_download(repo_id, f, endpoint=restarted.url, cache_dir=tmp_path / "c")).read_bytes()
                    info = api.get_paths_info(repo_id, [f])[0]
                    assert hashlib.sha256(data).hexdigest() == info.lfs.sha256
        gc = run_cli(home, "gc", "--grace", "0")
        assert gc.returncode == 0, gc.stderr
        assert not list((home / "blobs" / "tmp").glob("*.part"))
    finally:
        restarted.stop()
    assert run_cli(home, "fsck", "--quiet").returncode == 0


def test_two_writers_racing_on_one_branch_lose_nothing(admin_api: HfApi, repo_name: str) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    errors: list[BaseException] = []

    def writer(who: str) -> None:
        try:
            for i in range(12):
                admin_api.create_commit(repo_id, commit_message=f"{who} {i}",
                                        operations=[CommitOperationAdd(f"{who}/{i}.txt", f"{who}{i}".encode())])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = set(admin_api.list_repo_files(repo_id))
    assert {f"{w}/{i}.txt" for w in ("left", "right") for i in range(12)} <= files
    commits = list(admin_api.list_repo_commits(repo_id))
    assert len(commits) == 25 and len({c.commit_id for c in commits}) == 25


def test_gc_removes_only_unreferenced_blobs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        shared, unique, in_flight = opaque_bytes(300_000), opaque_bytes(300_000), opaque_bytes(300_000)
        for repo_id in ("acme/keep", "acme/drop"):
            api.create_repo(repo_id)
            api.upload_file(path_or_fileobj=shared, path_in_repo="shared.bin", repo_id=repo_id)
        api.upload_file(path_or_fileobj=unique, path_in_repo="unique.bin", repo_id="acme/drop")
        api.upload_file(path_or_fileobj=b"old", path_in_repo="old.txt", repo_id="acme/keep")
        api.upload_file(path_or_fileobj=b"new", path_in_repo="old.txt", repo_id="acme/keep")  # old stays in history
        oid = hashlib.sha256(in_flight).hexdigest()
        batch = httpx.post(f"{server.url}/acme/keep.git/info/lfs/objects/batch",
                           headers={"authorization": f"Bearer {server.admin_token}"},
                           json={"operation": "upload", "objects": [{"oid": oid, "size": len(in_flight)}]})
        assert httpx.put(batch.json()["objects"][0]["actions"]["upload"]["href"], content=in_flight).status_code == 200
        api.delete_repo("acme/drop")
    finally:
        server.stop()

    def present(data: bytes) -> bool:
        h = hashlib.sha256(data).hexdigest()
        return (home / "blobs" / "sha256" / h[:2] / h[2:4] / h).exists()

    out = run_cli(home, "gc")  # default grace: the upload in flight and the fresh orphan are kept
    assert out.returncode == 0, out.stderr
    assert present(in_flight) and present(unique)
    out = run_cli(home, "gc", "--grace", "0")
    # The unique file (its blob and the xorb it came up in, through Xet) and the object in flight.
    assert "removed 3 blobs" in out.stdout, out.stdout
    assert present(shared) and present(b"old") and present(b"new")
    assert not present(unique) and not present(in_flight)
    assert run_cli(home, "fsck").returncode == 0
