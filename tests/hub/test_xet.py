"""The Xet protocol against the real server: stock `huggingface_hub` + `hf_xet` (Xet on) up and down, plus the
CAS routes driven by hand with xorbs and shards built here, for what must be refused.

The Xet client runs in a subprocess of its own (a fresh HF_HOME, no `HF_HUB_DISABLE_XET`); this process plays the
client without Xet where a test needs one (`huggingface_hub.constants.HF_HUB_DISABLE_XET` patched).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import huggingface_hub
import lz4.frame
import pytest
from huggingface_hub import HfApi, hf_hub_download

from registry.core import Registry
from registry.settings import Settings
from registry.xet import tokens
from registry.xet.hashes import chunk_hash, file_hash, hash_to_str, str_to_hash, verification_hash, xorb_hash
from registry.xet.shards import BOOKEND, HEADER_TAG
from tests.conftest import VITRINE, Server, server_env, start_server
from tests.helpers import assert_hub_error, bearer, opaque_bytes, org_callers

CAS = "/api/xet"


def xet_client(hub: Server, token: str | None, code: str, tmp_path: Path, *, name: str = "client") -> Any:
    """Run `code` in a fresh Python with Xet on (HF_ENDPOINT, HF_TOKEN set); its last stdout line, as JSON."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_XET", "HF_TOKEN", "HF_XET_CACHE")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / f"hf-{name}"), HF_HUB_DISABLE_PROGRESS_BARS="1")
    if token:
        env["HF_TOKEN"] = token
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def stats(hub: Server) -> dict[str, int]:
    """The hub's process counters."""
    return httpx.get(f"{hub.url}/api/vitrine/stats", headers=bearer(hub.admin_token)).json()  # type: ignore[no-any-return]


def sha(data: bytes) -> str:
    """sha256 hex."""
    return hashlib.sha256(data).hexdigest()


def xet_token(hub: Server, repo_id: str, token: str | None, *, write: bool, revision: str = "main",
              query: str = "") -> httpx.Response:
    """GET the repo's xet-read-token or xet-write-token route."""
    kind = "write" if write else "read"
    return httpx.get(f"{hub.url}/api/models/{repo_id}/xet-{kind}-token/{revision}{query}", headers=bearer(token))


# --- building xorbs and shards by hand ------------------------------------------------------------------------

def make_xorb(chunks: list[bytes], *, scheme: int = 1) -> tuple[bytes, bytes, list[bytes]]:
    """(serialized xorb, its raw hash, raw chunk hashes)."""
    body = bytearray()
    for data in chunks:
        payload = lz4.frame.compress(data) if scheme == 1 else data
        body += bytes([0]) + len(payload).to_bytes(3, "little") + bytes([scheme]) + len(data).to_bytes(3, "little")
        body += payload
    hashes = [chunk_hash(c) for c in chunks]
    return bytes(body), xorb_hash([(h, len(c)) for h, c in zip(hashes, chunks)]), hashes


def make_shard(xorb: bytes, chunks: list[bytes], hashes: list[bytes], *, sha256: str | None = None,
               list_xorb: bool = True, fhash: bytes | None = None) -> bytes:
    """A shard for one file made of all `chunks` of xorb `xorb` (raw hash)."""
    size = sum(len(c) for c in chunks)
    fh = fhash or file_hash([(h, len(c)) for h, c in zip(hashes, chunks)])
    content = b"".join(chunks)
    out = bytearray(HEADER_TAG + struct.pack("<QQ", 2, 0))
    out += fh + struct.pack("<II", (1 << 31) | (1 << 30), 1) + bytes(8)
    out += xorb + struct.pack("<IIII", 0, size, 0, len(chunks))
    out += verification_hash(hashes) + bytes(16)
    out += str_to_hash(sha256 or sha(content)) + bytes(16)
    out += BOOKEND + bytes(16)
    if list_xorb:
        out += xorb + struct.pack("<IIII", 0, len(chunks), size, 0)
        pos = 0
        for h, c in zip(hashes, chunks):
            out += h + struct.pack("<II", pos, len(c)) + bytes(8)
            pos += len(c)
    out += BOOKEND + bytes(16)
    return bytes(out)


def cas(hub: Server, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
    """A CAS request with a Xet token."""
    headers = {**bearer(token), **kw.pop("headers", {})}
    return httpx.request(method, f"{hub.url}{CAS}{path}", headers=headers, timeout=60, **kw)


def open_registry(hub: Server) -> Registry:
    """A Registry in this process on the hub's home, database and blob storage (close it after use)."""
    maker = getattr(hub, "registry", None)  # the fixture knows the hub's backend when it is not the default
    return maker() if maker is not None else Registry(Settings.from_env({"VITRINE_HOME": str(hub.home)}))


def blob_files(hub: Server) -> set[str]:
    """Every stored blob of the hub."""
    reg = open_registry(hub)
    try:
        return set(reg.blobs.iter_oids())
    finally:
        reg.close()


@pytest.fixture
def write_token(hub: Server, admin_api: HfApi, repo_name: str) -> tuple[str, str]:
    """(repo id, Xet write token) of a fresh private repo."""
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, private=True)
    r = xet_token(hub, repo_id, hub.admin_token, write=True)
    assert r.status_code == 200, r.text
    return repo_id, r.json()["accessToken"]


# --- stock clients, Xet on --------------------------------------------------------------------------------------

UPLOAD_AND_READ = """
import hashlib, json, os, sys
from huggingface_hub import HfApi, hf_hub_download, constants
assert not constants.HF_HUB_DISABLE_XET
api = HfApi()
repo = {repo!r}
big = b"\\0" + os.urandom(12 * 1024 * 1024 - 1)  # a .bin: no pickle opcode first
open("big.bin", "wb").write(big)
api.upload_file(path_or_fileobj="big.bin", path_in_repo="weights/big.bin", repo_id=repo)
api.upload_file(path_or_fileobj=b"hello xet", path_in_repo="small.txt", repo_id=repo)
got = open(hf_hub_download(repo, "weights/big.bin", cache_dir="dl"), "rb").read()
lfs = open(hf_hub_download(repo, "lfs.bin", cache_dir="dl"), "rb").read()
print(json.dumps({{"sha": hashlib.sha256(big).hexdigest(), "same": got == big,
                  "lfs": hashlib.sha256(lfs).hexdigest()}}))
"""


def test_upload_file_then_every_client_reads_the_same_bytes(hub: Server, admin_api: HfApi, repo_name: str,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    lfs = opaque_bytes(2 * 1024 * 1024)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # a client without Xet: LFS
    admin_api.upload_file(path_or_fileobj=lfs, path_in_repo="lfs.bin", repo_id=repo_id)
    monkeypatch.undo()
    assert "x-xet-hash" not in httpx.head(f"{hub.url}/{repo_id}/resolve/main/lfs.bin").headers
    before = stats(hub)
    out = xet_client(hub, hub.admin_token, UPLOAD_AND_READ.format(repo=repo_id), tmp_path)
    assert out["same"] and out["lfs"] == sha(lfs)  # a Xet client reads an LFS file over plain HTTP
    after = stats(hub)
    assert after.get("xet_xorb_bytes_received", 0) - before.get("xet_xorb_bytes_received", 0) >= 12 * 1024 * 1024
    assert after.get("lfs_bytes_received", 0) == before.get("lfs_bytes_received", 0)  # nothing went through LFS
    # The commit cites the sha256; resolve serves the bytes to plain HTTP and advertises Xet.
    url = f"{hub.url}/{repo_id}/resolve/main/weights/big.bin"
    head = httpx.head(url)
    assert head.headers["x-linked-etag"] == f'"{out["sha"]}"'
    assert len(head.headers["x-xet-hash"]) == 64 and 'rel="xet-auth"' in head.headers["link"]
    assert head.headers["content-length"] == str(12 * 1024 * 1024)
    body = httpx.get(url).content
    assert sha(body) == out["sha"]
    # Tree and paths-info entries carry the same Xet hash as resolve; the LFS-uploaded and small files have none.
    tree = {f.path: f for f in admin_api.list_repo_tree(repo_id, recursive=True) if not hasattr(f, "tree_id")}
    assert tree["weights/big.bin"].xet_hash == head.headers["x-xet-hash"]
    assert tree["lfs.bin"].xet_hash is None and tree["small.txt"].xet_hash is None
    infos = {f.path: f for f in admin_api.get_paths_info(repo_id, ["weights/big.bin", "lfs.bin", "weights"])}
    assert infos["weights/big.bin"].xet_hash == head.headers["x-xet-hash"]  # type: ignore[union-attr]
    assert infos["lfs.bin"].xet_hash is None  # type: ignore[union-attr]
    part = httpx.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == body[1000:2000]
    # Xet off (this process): the same bytes over plain HTTP.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    path = hf_hub_download(repo_id, "weights/big.bin", endpoint=hub.url, cache_dir=str(tmp_path / "plain"))
    assert sha(Path(path).read_bytes()) == out["sha"]
    small = hf_hub_download(repo_id, "small.txt", endpoint=hub.url, cache_dir=str(tmp_path / "plain"))
    assert Path(small).read_bytes() == b"hello xet"
    # curl, the plain HTTP client of last resort.
    curl = subprocess.run(["curl", "-sfL", url], capture_output=True, check=True).stdout
    assert sha(curl) == out["sha"]


FOLDER = """
import hashlib, json, os
from pathlib import Path
import httpx
from huggingface_hub import HfApi, HfFileSystem, snapshot_download
api = HfApi()
repo = {repo!r}
src = Path("src")
want = {{}}
for i in range(15):
    p = src / "notes" / f"n{{i}}.txt"; p.parent.mkdir(parents=True, exist_ok=True); p.write_text(f"note {{i}}\\n" * (i + 1))
for i in range(3):
    p = src / f"shard-{{i}}.bin"; p.write_bytes(b"\\0" + os.urandom(2 * 1024 * 1024 + i))
for p in src.rglob("*"):
    if p.is_file():
        want[p.relative_to(src).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
api.upload_folder(folder_path=src, repo_id=repo)
xet_hashes = {{f.path: f.xet_hash for f in api.list_repo_tree(repo, recursive=True) if hasattr(f, "xet_hash")}}
stats = lambda: httpx.get(os.environ["HF_ENDPOINT"] + "/api/vitrine/stats",
                          headers={{"authorization": "Bearer " + os.environ["HF_TOKEN"]}}).json()
before = stats().get("xet_reconstructions", 0)
snap = Path(snapshot_download(repo, cache_dir="snap"))
rebuilt = stats().get("xet_reconstructions", 0) - before
got = {{p.relative_to(snap).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
       for p in snap.rglob("*") if p.is_file() and p.name != ".gitattributes"}}
fs = HfFileSystem()
fs_got = hashlib.sha256(fs.read_bytes(f"{{repo}}/shard-1.bin")).hexdigest()
print(json.dumps({{"want": want, "got": got, "fs": fs_got == want["shard-1.bin"], "xet": xet_hashes,
                  "rebuilt": rebuilt}}))
"""


def test_upload_folder_snapshot_and_filesystem(hub: Server, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, private=True)
    out = xet_client(hub, hub.admin_token, FOLDER.format(repo=repo_id), tmp_path)
    assert out["got"] == out["want"] and out["fs"]
    assert len(out["want"]) == 18
    # The tree tells the client each Xet file's hash (small files are plain git blobs and have none), so
    # snapshot_download fetched the three shards from the CAS by that hash.
    assert {p for p, h in out["xet"].items() if h} == {"shard-0.bin", "shard-1.bin", "shard-2.bin"}
    assert all(len(h) == 64 for h in out["xet"].values() if h)
    assert out["rebuilt"] >= 3


COMMIT_PR_CLI = """
import json, os, subprocess, sys
from pathlib import Path
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
api = HfApi()
repo = {repo!r}
data = b"\\0" + os.urandom(3 * 1024 * 1024)
Path("a.bin").write_bytes(data)
info = api.create_commit(repo, operations=[CommitOperationAdd("pr/a.bin", "a.bin")], commit_message="via PR",
                         create_pr=True)
pr = hf_hub_download(repo, "pr/a.bin", revision=info.pr_revision, cache_dir="dl")
Path("cli").mkdir(); Path("cli/c.bin").write_bytes(data[::-1])
hf = str(Path(sys.executable).parent / "hf")
subprocess.run([hf, "upload", repo, "cli", ".", "--commit-message", "cli"], check=True, capture_output=True)
cli = hf_hub_download(repo, "c.bin", cache_dir="dl")
print(json.dumps({{"pr": Path(pr).read_bytes() == data, "cli": Path(cli).read_bytes() == data[::-1],
                  "num": info.pr_num}}))
"""


def test_create_commit_into_a_pr_and_hf_upload(hub: Server, admin_api: HfApi, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id)
    out = xet_client(hub, hub.admin_token, COMMIT_PR_CLI.format(repo=repo_id), tmp_path)
    assert out == {"pr": True, "cli": True, "num": 1}
    assert "pr/a.bin" not in admin_api.list_repo_files(repo_id)


DATASET = """
import json
from datasets import Dataset, load_dataset
repo = {repo!r}
Dataset.from_dict({{"text": [f"row {{i}}" for i in range(500)], "label": list(range(500))}}).push_to_hub(repo)
back = load_dataset(repo, split="train", cache_dir="ds")
print(json.dumps({{"rows": back.num_rows, "last": back[499]}}))
"""


def test_dataset_push_to_hub(hub: Server, repo_name: str, tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    out = xet_client(hub, hub.admin_token, DATASET.format(repo=repo_id), tmp_path)
    assert out == {"rows": 500, "last": {"text": "row 499", "label": 499}}
    r = httpx.get(f"{hub.url}/api/vitrine/datasets/{repo_id}/splits", headers=bearer(hub.admin_token))
    assert r.status_code == 200 and "train" in r.text


REUPLOAD = """
import json, sys
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj=sys.argv[1] if len(sys.argv) > 1 else {path!r}, path_in_repo={dest!r},
                    repo_id={repo!r})
print(json.dumps({{"ok": True}}))
"""


def test_reupload_with_a_small_change_sends_only_changed_chunks(hub: Server, admin_api: HfApi, repo_name: str,
                                                               tmp_path: Path) -> None:
    repo_id = f"acme/{repo_name}"
    admin_api.create_repo(repo_id, private=True)
    data = bytearray(opaque_bytes(70 * 1024 * 1024))  # two xorbs: the dedupe answer must cover both
    (tmp_path / "v1.bin").write_bytes(data)
    xet_client(hub, hub.admin_token, REUPLOAD.format(path=str(tmp_path / "v1.bin"), dest="m.bin", repo=repo_id),
               tmp_path, name="first")
    data[40 * 1024 * 1024:40 * 1024 * 1024 + 100] = b"x" * 100
    (tmp_path / "v2.bin").write_bytes(data)
    before = stats(hub)
    # A fresh HF_HOME: no local chunk cache, so only the hub's dedupe answer can spare the unchanged chunks.
    xet_client(hub, hub.admin_token, REUPLOAD.format(path=str(tmp_path / "v2.bin"), dest="m.bin", repo=repo_id),
               tmp_path, name="second")
    after = stats(hub)
    sent = after["xet_xorb_bytes_received"] - before.get("xet_xorb_bytes_received", 0)
    assert 0 < sent < 512 * 1024, sent
    assert after["xet_dedupe_hits"] > before.get("xet_dedupe_hits", 0)
    got = httpx.get(f"{hub.url}/{repo_id}/resolve/main/m.bin", headers=bearer(hub.admin_token)).content
    assert got == bytes(data)
    back = xet_client(hub, hub.admin_token, f"""
import json
from huggingface_hub import hf_hub_download
got = open(hf_hub_download({repo_id!r}, "m.bin", cache_dir="dl"), "rb").read()
print(json.dumps(got == open({str(tmp_path / "v2.bin")!r}, "rb").read()))
""", tmp_path, name="third")
    assert back is True


# --- the CAS by hand: what is served, what is refused ---------------------------------------------------------

def test_hand_built_upload_reconstruction_and_ranges(hub: Server, write_token: tuple[str, str],
                                                     admin_api: HfApi) -> None:
    repo_id, token = write_token
    chunks = [opaque_bytes(5000), b"a" * 7000, os.urandom(3000)]  # committed as a .bin: no pickle opcode first
    body, xhash, hashes = make_xorb(chunks)
    r = cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=body)
    assert r.status_code == 200 and r.json() == {"was_inserted": True}
    r = cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=body)
    assert r.json() == {"was_inserted": False}
    r = cas(hub, "POST", "/v1/shards", token, content=make_shard(xhash, chunks, hashes))
    assert r.status_code == 200, r.text
    content = b"".join(chunks)
    fid = hash_to_str(file_hash([(h, len(c)) for h, c in zip(hashes, chunks)]))
    r = cas(hub, "GET", f"/v1/reconstructions/{fid}", token)
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["offset_into_first_range"] == 0 and rec["terms"][0]["range"] == {"start": 0, "end": 3}
    fetch = rec["fetch_info"][hash_to_str(xhash)][0]
    raw = httpx.get(fetch["url"], headers={"Range": f"bytes={fetch['url_range']['start']}-{fetch['url_range']['end']}"})
    assert raw.status_code == 206 and raw.content == body
    # A range starting inside the second chunk: terms from that chunk on, with the offset into it.
    r = cas(hub, "GET", f"/v1/reconstructions/{fid}", token, headers={"Range": "bytes=6000-6999"})
    rec = r.json()
    assert rec["offset_into_first_range"] == 1000 and rec["terms"][0]["range"] == {"start": 1, "end": 2}
    r = cas(hub, "GET", f"/v1/reconstructions/{fid}", token, headers={"Range": f"bytes={len(content)}-"})
    assert r.status_code == 416
    # A link is for its range only.
    lo, hi = fetch["url_range"]["start"], fetch["url_range"]["end"]
    assert httpx.get(fetch["url"], headers={"Range": f"bytes={lo}-{hi + 5}"}).status_code == 403
    assert httpx.get(fetch["url"].replace("sig=", "sig=0")).status_code == 403
    # Dedupe finds the xorb for a caller who may read it, from its first chunk.
    r = cas(hub, "GET", f"/v1/chunks/default-merkledb/{hash_to_str(hashes[0])}", token)
    assert r.status_code == 200 and r.content[:32] == HEADER_TAG
    # Commit citing the sha256 the shard registered, without any LFS upload.
    from huggingface_hub import CommitOperationAdd
    op = CommitOperationAdd("hand.bin", content)
    op._upload_mode = "lfs"
    op._is_uploaded = True
    admin_api.create_commit(repo_id, operations=[op], commit_message="hand-made Xet file")
    got = httpx.get(f"{hub.url}/{repo_id}/resolve/main/hand.bin", headers=bearer(hub.admin_token))
    assert got.content == content and got.headers["x-xet-hash"] == fid


def test_bad_xorbs_are_refused_and_leave_nothing(hub: Server, write_token: tuple[str, str]) -> None:
    _, token = write_token
    chunks = [os.urandom(4000), os.urandom(4000)]
    body, xhash, _ = make_xorb(chunks)
    other_hash = hash_to_str(make_xorb([b"other"])[1])
    before = blob_files(hub)
    r = cas(hub, "POST", f"/v1/xorbs/default/{other_hash}", token, content=body)
    assert_hub_error(r, 400, "BadRequest", contains="Xorb hash mismatch")
    corrupt = bytearray(body)
    corrupt[8 + 4] ^= 0xFF  # inside the first chunk's LZ4 frame
    r = cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=bytes(corrupt))
    assert_hub_error(r, 400, "BadRequest", contains="chunk 0")
    r = cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=body[:-10])
    assert_hub_error(r, 400, "BadRequest", contains="truncated")
    r = cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=b"\x07" + body[1:])
    assert_hub_error(r, 400, "BadRequest", contains="version 7")
    assert blob_files(hub) == before
    assert not list((hub.home / "blobs" / "tmp").glob("*.part"))  # (none either where blobs are elsewhere)
    # The xorb never landed: a shard citing it is refused.
    r = cas(hub, "POST", "/v1/shards", token, content=make_shard(xhash, chunks, [chunk_hash(c) for c in chunks]))
    assert_hub_error(r, 400, "BadRequest", contains="not stored")


def test_bad_shards_are_refused_and_register_nothing(hub: Server, write_token: tuple[str, str]) -> None:
    repo_id, token = write_token
    chunks = [os.urandom(6000)]
    body, xhash, hashes = make_xorb(chunks, scheme=0)
    assert cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=body).status_code == 200
    cases = {
        "sha256 mismatch": make_shard(xhash, chunks, hashes, sha256="0" * 64),
        "does not hash to": make_shard(xhash, chunks, hashes, fhash=b"\x01" * 32),
        "header tag": b"nonsense" * 10,
        "truncated": make_shard(xhash, chunks, hashes)[:-20],
    }
    for needle, shard in cases.items():
        r = cas(hub, "POST", "/v1/shards", token, content=shard)
        assert_hub_error(r, 400, "BadRequest", contains=needle)
    fid = hash_to_str(file_hash([(hashes[0], len(chunks[0]))]))
    assert_hub_error(cas(hub, "GET", f"/v1/reconstructions/{fid}", token), 404)
    assert sha(chunks[0]) not in blob_files(hub)


def test_tokens_are_scoped_to_their_repo_right_and_time(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    tag = f"{abs(hash(repo_name)) % 10**8}"
    alice, bob = hub.token(f"xa{tag}"), hub.token(f"xb{tag}")
    a_repo, b_repo = f"xa{tag}/private", f"xb{tag}/mine"
    HfApi(endpoint=hub.url, token=alice).create_repo(a_repo, private=True)
    HfApi(endpoint=hub.url, token=bob).create_repo(b_repo, private=True)
    a_token = xet_token(hub, a_repo, alice, write=True).json()["accessToken"]
    b_token = xet_token(hub, b_repo, bob, write=True).json()["accessToken"]
    chunks = [os.urandom(3000)]
    body, xhash, hashes = make_xorb(chunks)
    assert cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", a_token, content=body).status_code == 200
    assert cas(hub, "POST", "/v1/shards", a_token, content=make_shard(xhash, chunks, hashes)).status_code == 200
    fid = hash_to_str(file_hash([(hashes[0], len(chunks[0]))]))
    # Bob knows the hashes but may read neither the xorb nor the file: no dedupe, no reconstruction, no citing.
    assert_hub_error(cas(hub, "GET", f"/v1/chunks/default-merkledb/{hash_to_str(hashes[0])}", b_token), 404)
    assert_hub_error(cas(hub, "GET", f"/v1/reconstructions/{fid}", b_token), 404)
    r = cas(hub, "POST", "/v1/shards", b_token, content=make_shard(xhash, chunks, hashes, list_xorb=False))
    assert_hub_error(r, 400, "BadRequest", contains="not readable")
    # A read token may not write; no token, a forged or an expired one is a 401.
    a_read = xet_token(hub, a_repo, alice, write=False).json()["accessToken"]
    assert_hub_error(cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", a_read, content=body), 403)
    assert cas(hub, "GET", f"/v1/reconstructions/{fid}", a_read).status_code == 200
    assert_hub_error(cas(hub, "GET", f"/v1/reconstructions/{fid}", None), 401)
    assert_hub_error(cas(hub, "GET", f"/v1/reconstructions/{fid}", a_read[:-3] + "abc"), 401)
    reg = open_registry(hub)
    try:
        grant = tokens.check(reg, a_read)
        expired, _ = tokens.issue(reg, repo_pk=grant.repo_pk, write=True, pr=False, user=grant.user, ttl_s=-1)
    finally:
        reg.close()
    assert_hub_error(cas(hub, "GET", f"/v1/reconstructions/{fid}", expired), 401, contains="expired")
    before = blob_files(hub)
    assert_hub_error(cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(make_xorb([b'z' * 99])[1])}", expired,
                         content=make_xorb([b"z" * 99])[0]), 401)
    assert blob_files(hub) == before
    # Alice may build a public file on her private xorb: its readers get that file, not the xorb for dedupe.
    p_repo = f"xa{tag}/public"
    HfApi(endpoint=hub.url, token=alice).create_repo(p_repo)
    p_token = xet_token(hub, p_repo, alice, write=True).json()["accessToken"]
    r = cas(hub, "POST", "/v1/shards", p_token, content=make_shard(xhash, chunks, hashes, list_xorb=False))
    assert r.status_code == 200, r.text
    anon_read = xet_token(hub, p_repo, None, write=False).json()["accessToken"]
    assert cas(hub, "GET", f"/v1/reconstructions/{fid}", anon_read).status_code == 200
    assert_hub_error(cas(hub, "GET", f"/v1/chunks/default-merkledb/{hash_to_str(hashes[0])}", anon_read), 404)
    assert_hub_error(cas(hub, "GET", f"/v1/chunks/default-merkledb/{hash_to_str(hashes[0])}", b_token), 404)
    # Once Bob uploads the same bytes himself he has proven he holds them.
    assert cas(hub, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", b_token, content=body).status_code == 200
    r = cas(hub, "POST", "/v1/shards", b_token, content=make_shard(xhash, chunks, hashes))
    assert r.status_code == 200, r.text


def test_unimplemented_cas_routes_answer_404(hub: Server, write_token: tuple[str, str]) -> None:
    _, token = write_token
    assert cas(hub, "GET", "/v2/reconstructions/" + "0" * 64, token).status_code == 404
    assert cas(hub, "POST", "/v2/shards", token, content=b"").status_code == 404
    assert cas(hub, "POST", "/v1/xorb-grants/default/" + "0" * 64, token).status_code == 404


def test_token_route_permissions(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    org = f"xo{abs(hash(repo_name)) % 10**8}"
    callers = org_callers(hub, org, org)
    repo_id = f"{org}/{repo_name}"
    admin_api.create_repo(repo_id, private=True)
    expected = {  # who: (read token, write token, write token for a new PR)
        "anonymous": (404, 404, 404), "outsider": (404, 404, 404), "read": (200, 403, 403),
        "write": (200, 200, 200), "admin": (200, 200, 200),
    }
    for who, token in callers.items():
        got = (xet_token(hub, repo_id, token, write=False).status_code,
               xet_token(hub, repo_id, token, write=True).status_code,
               xet_token(hub, repo_id, token, write=True, revision="None", query="?create_pr=1").status_code)
        assert got == expected[who], who
    r = xet_token(hub, repo_id, callers["write"], write=True)
    body = r.json()
    assert set(body) == {"accessToken", "exp", "casUrl"} and body["casUrl"] == hub.url + CAS
    assert r.headers["x-xet-access-token"] == body["accessToken"] and r.headers["x-xet-cas-url"] == body["casUrl"]
    # On a public repo anyone may read, and an outsider may upload only for a pull request.
    public = f"{org}/{repo_name}-pub"
    admin_api.create_repo(public)
    assert xet_token(hub, public, None, write=False).status_code == 200
    assert xet_token(hub, public, callers["outsider"], write=True).status_code == 403
    assert xet_token(hub, public, callers["outsider"], write=True, revision="None",
                     query="?create_pr=1").status_code == 200


# --- fsck and gc ------------------------------------------------------------------------------------------------

def test_fsck_and_gc_know_xorbs(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        api.create_repo("acme/kept", private=True)
        token = xet_token(server, "acme/kept", server.admin_token, write=True).json()["accessToken"]
        kept_chunks = [opaque_bytes(4000)]
        body, xhash, hashes = make_xorb(kept_chunks)
        assert cas(server, "POST", f"/v1/xorbs/default/{hash_to_str(xhash)}", token, content=body).status_code == 200
        assert cas(server, "POST", "/v1/shards", token, content=make_shard(xhash, kept_chunks, hashes)).status_code == 200
        from huggingface_hub import CommitOperationAdd
        op = CommitOperationAdd("kept.bin", kept_chunks[0])
        op._upload_mode, op._is_uploaded = "lfs", True
        api.create_commit("acme/kept", operations=[op], commit_message="kept")
        orphan, ohash, _ = make_xorb([os.urandom(5000)])
        assert cas(server, "POST", f"/v1/xorbs/default/{hash_to_str(ohash)}", token, content=orphan).status_code == 200
        env = server_env(server.home)
        fsck = subprocess.run([VITRINE, "fsck", "--home", str(server.home)], env=env, capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        # A young orphan may still be cited by a shard on its way: kept. With no grace, only it goes.
        subprocess.run([VITRINE, "gc", "--home", str(server.home)], env=env, check=True, capture_output=True)
        assert sha(orphan) in blob_files(server)
        subprocess.run([VITRINE, "gc", "--home", str(server.home), "--grace", "0"], env=env, check=True,
                       capture_output=True)
        names = blob_files(server)
        assert sha(orphan) not in names and sha(body) in names and sha(kept_chunks[0]) in names
        fid = hash_to_str(file_hash([(hashes[0], len(kept_chunks[0]))]))
        assert cas(server, "GET", f"/v1/reconstructions/{fid}", token).status_code == 200
        assert_hub_error(cas(server, "GET", f"/v1/chunks/default-merkledb/{hash_to_str(chunk_hash(orphan[8:]))}",
                             token), 404)
        # A xorb whose bytes rot is reported.
        path = server.home / "blobs" / "sha256" / sha(body)[:2] / sha(body)[2:4] / sha(body)
        path.chmod(0o644)
        path.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))
        fsck = subprocess.run([VITRINE, "fsck", "--home", str(server.home)], env=env, capture_output=True, text=True)
        assert fsck.returncode == 1 and f"xorb {hash_to_str(xhash)}" in fsck.stdout + fsck.stderr
    finally:
        server.stop()


RETRYING_UPLOAD = """
import hashlib, json, sys, time
from huggingface_hub import HfApi
api = HfApi()
for attempt in range(60):  # what a user (or a job runner) does when an upload dies with the server: try again
    try:
        api.upload_file(path_or_fileobj={path!r}, path_in_repo="big.bin", repo_id={repo!r})
        break
    except Exception as exc:
        print("attempt", attempt, type(exc).__name__, file=sys.stderr)
        time.sleep(1)
print(json.dumps({{"attempts": attempt + 1}}))
"""


def test_sigkill_during_a_xet_upload_then_the_retry_completes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    port = int(server.url.rsplit(":", 1)[1])
    repo_id = "acme/crash-xet"
    HfApi(endpoint=server.url, token=server.admin_token).create_repo(repo_id)
    data = opaque_bytes(150 * 1024 * 1024)  # three xorbs: the kill lands between two of them
    (tmp_path / "big.bin").write_bytes(data)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_XET", "HF_XET_CACHE")}
    env.update(HF_ENDPOINT=server.url, HF_TOKEN=server.admin_token, HF_HOME=str(tmp_path / "hf"),
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    client = subprocess.Popen([sys.executable, "-c", RETRYING_UPLOAD.format(path=str(tmp_path / "big.bin"),
                                                                            repo=repo_id)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while (seen := stats(server)).get("xet_xorbs_received", 0) < 1:  # the first xorb is in: under way
            assert time.time() < deadline and client.poll() is None, "the upload never reached the hub"
            time.sleep(0.05)
        server.stop(signal.SIGKILL)
        assert seen.get("xet_shards_received", 0) == 0  # killed before the shard, so before any commit
        fsck = subprocess.run([VITRINE, "fsck", "--home", str(home), "--quiet"], capture_output=True, text=True,
                              env=server_env(home))
        assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr
        server = start_server(home, port=port)  # same address: the client's retries find it again
        out, err = client.communicate(timeout=300)
    finally:
        if client.poll() is None:
            client.kill()
        server.stop()
    assert client.returncode == 0, err[-4000:]
    assert json.loads(out.strip().splitlines()[-1])["attempts"] >= 1
    restarted = start_server(home, port=port)
    try:
        got = httpx.get(f"{restarted.url}/{repo_id}/resolve/main/big.bin", headers=bearer(restarted.admin_token))
        assert got.status_code == 200 and sha(got.content) == sha(data)
    finally:
        restarted.stop()
    fsck = subprocess.run([VITRINE, "fsck", "--home", str(home), "--quiet"], capture_output=True, text=True,
                          env=server_env(home))
    assert fsck.returncode == 0 and "clean" in fsck.stdout, fsck.stdout + fsck.stderr
