"""Holes a security probe found, each driven through a real server: the answer is a clean error and nothing changes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import VITRINE, Server, server_env, start_server
from tests.helpers import assert_hub_error, opaque_bytes

# --- helpers ---------------------------------------------------------------------------------------------------


def auth(server: Server, token: str | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {token or server.admin_token}"}


def ndjson(lines: list[object]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def commit_raw(server: Server, repo_id: str, lines: list[object] | bytes, revision: str = "main") -> httpx.Response:
    body = lines if isinstance(lines, bytes) else ndjson(lines)
    return httpx.post(f"{server.url}/api/models/{repo_id}/commit/{revision}", content=body, timeout=60,
                      headers={**auth(server), "content-type": "application/x-ndjson"})


HEADER = {"key": "header", "value": {"summary": "attempt"}}


def inline(path: str, data: bytes = b"x") -> dict[str, object]:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def batch_body(oid: str, size: int) -> dict[str, object]:
    return {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}


def tree(server: Server, repo_id: str) -> list[tuple[str, str]]:
    r = httpx.get(f"{server.url}/api/models/{repo_id}/tree/main", params={"recursive": "1"}, headers=auth(server))
    assert r.status_code == 200, r.text
    return sorted((i["path"], i["oid"]) for i in r.json())


def raw_status(server: Server, method: str, path: str, headers: dict[str, str], body: bytes = b"",
               timeout: float = 10) -> int:
    """Send a request whose body may be far shorter than its Content-Length; the status the hub answers with.

    A hub that reads the whole announced body before answering never answers here: the socket times out.
    """
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


# --- 3. control characters in URLs and in echoed headers --------------------------------------------------------

CONTROL = ["%0D", "%0A", "%00", "%01", "%1F", "%7F", "%C2%85"]


@pytest.mark.parametrize("char", CONTROL)
@pytest.mark.parametrize("template", [
    "/{repo}/resolve/main/a{c}b.txt",
    "/{repo}/resolve/ma{c}in/keep.txt",
    "/api/models/{repo}/tree/ma{c}in",
    "/api/models/{repo}/revision/ma{c}in",
    "/api/models/{repo}/commits/ma{c}in",
    "/api/models/acme/x{c}y",
    "/api/vitrine/models/{repo}{c}/weights",
    "/spaces/{repo}{c}/",
    "/spaces/{repo}/revision/ma{c}in/",
])
def test_control_characters_in_url_paths_get_a_clean_400(hub: Server, repo: str, template: str, char: str) -> None:
    url = hub.url + template.format(repo=repo, c=char)
    for method in ("GET", "HEAD"):
        r = httpx.request(method, url)
        assert_hub_error(r, 400, "BadRequest")
        assert "control characters" in r.headers["x-error-message"]
        assert all(32 <= ord(ch) < 127 for ch in r.headers["x-error-message"])


def test_echoed_query_values_are_escaped_in_headers(hub: Server, repo: str) -> None:
    # A revision from the query string lands in the message; the header carries it escaped, the body verbatim.
    r = httpx.get(f"{hub.url}/api/vitrine/models/{repo}/weights", params={"revision": "a\r\nX-Evil: 1\x00\u202e"})
    assert_hub_error(r, 404, "RevisionNotFound")
    assert "x-evil" not in r.headers
    assert "a\\r\\nX-Evil: 1\\x00\\u202e" in r.headers["x-error-message"]
    assert "a\r\nX-Evil: 1\x00\u202e" in r.json()["error"]


def test_request_ids_are_echoed_only_when_tame(hub: Server) -> None:
    r = httpx.get(f"{hub.url}/api/models/acme/no-such-repo", headers={"x-request-id": "trace-42.a:b"})
    assert r.headers["x-request-id"] == "trace-42.a:b"
    r = httpx.get(f"{hub.url}/api/models/acme/no-such-repo", headers={"x-request-id": "x" * 500})
    assert len(r.headers["x-request-id"]) == 32
    r = httpx.get(f"{hub.url}/health", headers={"x-request-id": "has space"})
    assert r.headers["x-request-id"] != "has space"


# --- 4. bounded JSON and form bodies, credentials before bodies ------------------------------------------------

LIMIT = 4096


@pytest.fixture(scope="module")
def tight_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub taking JSON and form bodies of at most 4 KiB."""
    server = start_server(tmp_path_factory.mktemp("tight-hub"), VITRINE_MAX_JSON_BYTES=str(LIMIT))
    api = HfApi(endpoint=server.url, token=server.admin_token)
    api.create_repo("acme/tight")  # small bodies still go through
    api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id="acme/tight")
    yield server
    server.stop()


HUGE = {"content-type": "application/json", "content-length": str(500 * 1024 * 1024)}


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/repos/create"),
    ("DELETE", "/api/repos/delete"),
    ("POST", "/api/repos/move"),
    ("PUT", "/api/models/acme/tight/settings"),
    ("POST", "/api/models/acme/tight/branch/dev"),
    ("POST", "/api/models/acme/tight/tag/main"),
    ("POST", "/acme/tight.git/info/lfs/objects/batch"),
])
def test_anonymous_writes_are_refused_before_the_body_is_read(tight_hub: Server, method: str, path: str) -> None:
    assert raw_status(tight_hub, method, path, HUGE, b'{"name": ') == 401


def test_unsigned_verify_and_unreadable_paths_info_are_refused_before_the_body(tight_hub: Server) -> None:
    oid = "0" * 64
    assert raw_status(tight_hub, "POST", f"/api/lfs/objects/{oid}/verify", HUGE, b"{") == 403
    assert raw_status(tight_hub, "POST", "/api/models/acme/nope/paths-info/main", HUGE, b"{") == 404


def test_preupload_checks_the_token_before_reading_a_bounded_body(tight_hub: Server) -> None:
    path = "/api/models/acme/tight/preupload/main"
    assert raw_status(tight_hub, "POST", path, HUGE, b"{") == 401
    assert raw_status(tight_hub, "POST", path, {**HUGE, **auth(tight_hub)}, b"{") == 413


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/repos/create"),
    ("POST", "/api/validate-yaml"),
    ("POST", "/api/models/acme/tight/paths-info/main"),
    ("POST", "/acme/tight.git/info/lfs/objects/batch"),
    ("POST", "/api/models/acme/tight/branch/dev"),
])
def test_oversized_declared_bodies_get_413_unread(tight_hub: Server, method: str, path: str) -> None:
    assert raw_status(tight_hub, method, path, {**HUGE, **auth(tight_hub)}, b"{") == 413


def test_oversized_streamed_bodies_get_413(tight_hub: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"content": "'
        for _ in range(16):
            yield b"a" * 1024
        yield b'"}'

    # Without a Content-Length the body is read only until it passes the limit.
    r = httpx.post(f"{tight_hub.url}/api/validate-yaml", content=chunks(), headers={"content-type": "application/json"})
    assert_hub_error(r, 413, "PayloadTooLarge", contains=str(LIMIT))
    form = {"paths": ["p" * 100] * 100}
    r = httpx.post(f"{tight_hub.url}/api/models/acme/tight/paths-info/main", data=form)
    assert_hub_error(r, 413, "PayloadTooLarge")
    r = httpx.post(f"{tight_hub.url}/api/repos/create", headers=auth(tight_hub),
                   json={"name": "big", "organization": "acme", "sdk": "x" * 2 * LIMIT})
    assert_hub_error(r, 413, "PayloadTooLarge")
    assert httpx.get(f"{tight_hub.url}/api/models/acme/big").status_code == 404


# --- 5. malformed JSON gets a 400 that names the problem -------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("path,body,message", [
    ("/api/models/{repo}/paths-info/main", b"{not json", "Malformed paths-info body"),
    ("/api/models/{repo}/paths-info/main", b"\xff\xfe\x00", "Malformed paths-info body"),
    ("/api/models/{repo}/paths-info/main", b"[1, 2]", "must be a JSON object"),
    ("/api/models/{repo}/paths-info/main", DEEP, "nested too deeply"),
    ("/{repo}.git/info/lfs/objects/batch", DEEP, "nested too deeply"),
    ("/{repo}.git/info/lfs/objects/batch", b'{"operation": "upload", "objects": [', "Malformed LFS batch body"),
    ("/api/repos/create", DEEP, "nested too deeply"),
    ("/api/repos/create", b"\xc3\x28", "not UTF-8"),
    ("/api/validate-yaml", b'{"content": ', "Malformed validate-yaml body"),
    ("/api/models/{repo}/branch/dev", b"{,}", "Malformed branch body"),
    ("/api/models/{repo}/tag/main", b"", "Missing tag body"),
])
def test_malformed_json_bodies_get_a_400_naming_the_problem(hub: Server, repo: str, path: str, body: bytes,
                                                           message: str) -> None:
    r = httpx.post(hub.url + path.format(repo=repo), content=body,
                   headers={**auth(hub), "content-type": "application/json"})
    assert_hub_error(r, 400, "BadRequest", contains=message)


def test_deeply_nested_commit_line_gets_a_400(hub: Server, admin_api: HfApi, repo: str) -> None:
    before = tree(hub, repo)
    r = commit_raw(hub, repo, ndjson([HEADER]) + b'{"key": "file", "value": ' + DEEP + b"}\n")
    assert_hub_error(r, 400, "BadRequest", contains="nested too deeply")
    assert tree(hub, repo) == before


# --- 6. file paths with control characters or bidirectional marks ---------------------------------------------

BAD_PATHS = ["a\nb.txt", "a\rb.txt", "a\x01b.txt", "a\x7fb.txt", "dir\x1f/x.txt", "a\x85b.txt",
             "invoice\u202etxt.exe", "x\u202ay", "x\u202dy", "x\u2066y", "x\u2067y", "x\u2068y", "x\u2069y",
             "x\u200ey", "x\u200fy", "sub/\u202eevil.py"]


@pytest.mark.parametrize("path", BAD_PATHS, ids=[ascii(p) for p in BAD_PATHS])
def test_invisible_and_control_characters_in_paths_are_refused(hub: Server, repo: str, path: str) -> None:
    before = tree(hub, repo)
    r = commit_raw(hub, repo, [HEADER, inline("fine.txt"), inline(path)])
    assert_hub_error(r, 400, "BadRequest", contains="Invalid path")
    r = commit_raw(hub, repo, [HEADER, {"key": "deletedFile", "value": {"path": path}}])
    assert_hub_error(r, 400, "BadRequest", contains="Invalid path")
    r = httpx.post(f"{hub.url}/api/models/{repo}/preupload/main", headers=auth(hub),
                   json={"files": [{"path": path, "size": 1, "sample": ""}]})
    assert_hub_error(r, 400, "BadRequest", contains="Invalid path")
    assert tree(hub, repo) == before


def test_a_newline_in_a_file_name_is_refused_through_huggingface_hub(admin_api: HfApi, repo: str, tmp_path: Path,
                                                                     ) -> None:
    with pytest.raises(HfHubHTTPError) as exc:
        admin_api.upload_file(path_or_fileobj=b"x", path_in_repo="bad\nname.txt", repo_id=repo)
    assert exc.value.response.status_code == 400
    assert sorted(admin_api.list_repo_files(repo)) == [".gitattributes", "keep.txt"]
    # The whole repo still downloads.
    local = admin_api.snapshot_download(repo, local_dir=tmp_path / "snap")
    assert (Path(local) / "keep.txt").read_bytes() == b"original"


# --- 7. LFS verify needs the signed link the batch answer gave ------------------------------------------------


def _blob(server: Server, oid: str) -> Path:
    return server.home / "blobs" / "sha256" / oid[:2] / oid[2:4] / oid


def test_lfs_verify_reveals_nothing_without_its_signed_link(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    secret = f"acme/{repo_name}"
    admin_api.create_repo(secret, private=True)
    data = opaque_bytes(50_000)
    oid = hashlib.sha256(data).hexdigest()
    # huggingface_hub uploads and verifies through the links of the batch answer.
    admin_api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=secret)
    blob = _blob(hub, oid)
    assert blob.read_bytes() == data
    old = time.time() - 100_000
    os.utime(blob, (old, old))

    absent = "ab" * 32
    answers = []
    for target in (oid, absent):
        for query in ("", "?size=50000&expires=9999999999&repo=1&sig=" + "0" * 64):
            for headers in ({}, auth(hub)):
                r = httpx.post(f"{hub.url}/api/lfs/objects/{target}/verify{query}", headers=headers,
                               json={"oid": target, "size": len(data)})
                assert_hub_error(r, 403, "Forbidden")
                answers.append(r.json()["error"])
    assert len(set(answers)) <= 2 and all("ask the LFS batch API" in a for a in answers)
    assert blob.stat().st_mtime == pytest.approx(old)

    # Another writer who knows the oid gets a verify link for their own repo: it does not vouch for the object.
    eve = hub.token("eve-hardening", "write")
    HfApi(endpoint=hub.url, token=eve).create_repo(f"eve-hardening/{repo_name}")
    batch = httpx.post(f"{hub.url}/eve-hardening/{repo_name}.git/info/lfs/objects/batch", headers=auth(hub, eve),
                       json=batch_body(oid, len(data)))
    assert batch.status_code == 200, batch.text
    verify = batch.json()["objects"][0]["actions"]["verify"]["href"]
    r = httpx.post(verify, json={"oid": oid, "size": len(data)})
    assert_hub_error(r, 400, "BadRequest", contains="has not been uploaded")
    # A signed link is bound to its object and size.
    assert_hub_error(httpx.post(verify.replace(oid, absent), json={"oid": absent, "size": len(data)}), 403)
    assert_hub_error(httpx.post(verify.replace("size=50000", "size=50001"), json={"oid": oid, "size": 50001}), 403)
    assert blob.stat().st_mtime == pytest.approx(old)


# --- 8. caching of private files --------------------------------------------------------------------------------


def test_private_files_are_never_cached_publicly(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    secret, public = f"acme/{repo_name}-private", f"acme/{repo_name}-public"
    for repo_id, private in ((secret, True), (public, False)):
        admin_api.create_repo(repo_id, private=private)
        admin_api.upload_file(path_or_fileobj=b"payload", path_in_repo="f.txt", repo_id=repo_id)
    sha = admin_api.model_info(secret).sha
    for revision in ("main", sha, sha[:7]):
        for method in ("GET", "HEAD"):
            r = httpx.request(method, f"{hub.url}/{secret}/resolve/{revision}/f.txt", headers=auth(hub))
            assert r.status_code == 200
            control = r.headers["cache-control"]
            assert "public" not in control and control.startswith("private"), control
            assert "authorization" in r.headers["vary"].lower()
    pinned = httpx.get(f"{hub.url}/{public}/resolve/{admin_api.model_info(public).sha}/f.txt")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{hub.url}/{public}/resolve/main/f.txt").headers["cache-control"].startswith("private")


# --- 9. branch and tag names ------------------------------------------------------------------------------------

GIT_NAMES = ["HEAD", "-x", "-", "a.lock", "x.lock/y", "a/.b", ".x", "a..b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b",
             "a\\b", "a b", "a@{b", "a/", "a.", "a//b", "/a", "a\x01b", "a\x7fb", "a\tb", "x@{1}",
             # accepted by git, refused by us: they would shadow a commit, or a ref namespace
             "8106662", "deadbeef", "0123456789abcdef0123456789abcdef01234567", "refs/heads/x", "FETCH_HEAD", "@"]


def _git_accepts(name: str) -> bool:
    # Outside any repository, so that git reads the name itself and not `@{-1}`-style shorthands.
    out = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, cwd="/")
    return out.returncode == 0


@pytest.mark.parametrize("name", GIT_NAMES, ids=[ascii(n) for n in GIT_NAMES])
def test_git_invalid_and_commit_like_ref_names_are_refused(hub: Server, repo: str, name: str) -> None:
    hex_like = all(c in "0123456789abcdef" for c in name) and 7 <= len(name) <= 40
    assert not _git_accepts(name) or hex_like or name in ("refs/heads/x", "FETCH_HEAD", "@")
    before = httpx.get(f"{hub.url}/api/models/{repo}/refs").json()
    r = httpx.post(f"{hub.url}/api/models/{repo}/branch/{quote(name, safe='')}", headers=auth(hub), json={})
    assert_hub_error(r, 400, "BadRequest")
    r = httpx.post(f"{hub.url}/api/models/{repo}/tag/main", headers=auth(hub), json={"tag": name})
    assert_hub_error(r, 400, "BadRequest", contains="Invalid tag name")
    assert httpx.get(f"{hub.url}/api/models/{repo}/refs").json() == before


@pytest.mark.parametrize("name", ["dev", "feature/x-1", "v1.0", "release_2024", "abc1234x", "12345"])
def test_ordinary_ref_names_still_work(admin_api: HfApi, repo: str, name: str) -> None:
    assert _git_accepts(name)
    admin_api.create_branch(repo, branch=name)
    admin_api.create_tag(repo, tag=f"t-{name}")
    refs = admin_api.list_repo_refs(repo)
    assert name in {b.name for b in refs.branches} and f"t-{name}" in {t.name for t in refs.tags}


def test_short_commit_ids_keep_resolving(hub: Server, admin_api: HfApi, repo: str) -> None:
    sha = admin_api.model_info(repo).sha
    r = httpx.post(f"{hub.url}/api/models/{repo}/branch/{sha[:7]}", headers=auth(hub), json={})
    assert_hub_error(r, 400, "BadRequest", contains="commit id")
    assert httpx.get(f"{hub.url}/{repo}/resolve/{sha[:7]}/keep.txt").content == b"original"


# --- 10. every 405 carries Allow ------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/api/models/{repo}/branch/dev", {"POST", "DELETE"}),
    ("PUT", "/api/models/{repo}/tag/v1", {"POST", "DELETE"}),
    ("POST", "/api/models/{repo}/tree/main", {"GET"}),
    ("DELETE", "/{repo}/resolve/main/keep.txt", {"GET", "HEAD"}),
    ("GET", "/api/repos/create", {"POST"}),
    ("PATCH", "/api/models/{repo}/settings", {"PUT"}),
    ("POST", "/health", {"GET"}),
])
def test_405_lists_the_allowed_methods(hub: Server, repo: str, method: str, path: str, allowed: set[str]) -> None:
    r = httpx.request(method, hub.url + path.format(repo=repo))
    assert_hub_error(r, 405, "MethodNotAllowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed


# --- 11. full or read-only blob storage -----------------------------------------------------------------------


def _mount(*args: str) -> None:
    out = subprocess.run(["mount", *args], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"needs root and mount(8) to fake a full or read-only disk: mount {' '.join(args)}: "
                    f"{out.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _lfs_put(server: Server, repo_id: str, data: bytes) -> httpx.Response:
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx.post(f"{server.url}/{repo_id}.git/info/lfs/objects/batch", headers=auth(server),
                       json=batch_body(oid, len(data)))
    assert batch.status_code == 200, batch.text
    return httpx.put(batch.json()["objects"][0]["actions"]["upload"]["href"], content=data, timeout=60)


def _assert_store_intact(server: Server, blobs: Path, repo_id: str, before: list[tuple[str, str]]) -> None:
    """Reads still work, nothing half-written is left, and fsck finds nothing wrong."""
    r = httpx.get(f"{server.url}/{repo_id}/resolve/main/keep.txt", headers=auth(server))
    assert r.status_code == 200 and r.content == b"original"
    assert tree(server, repo_id) == before
    assert not list((blobs / "tmp").glob("*.part"))
    env = server_env(server.home, VITRINE_STORAGE_URL=f"file://{blobs}")
    fsck = subprocess.run([VITRINE, "fsck", "--home", str(server.home), "--quiet"], env=env, capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def _storage_hub(home: Path, blobs: Path) -> tuple[Server, str, list[tuple[str, str]]]:
    server = start_server(home, VITRINE_STORAGE_URL=f"file://{blobs}")
    api = HfApi(endpoint=server.url, token=server.admin_token)
    api.create_repo("acme/disk")
    api.upload_file(path_or_fileobj=b"original", path_in_repo="keep.txt", repo_id="acme/disk")
    return server, "acme/disk", tree(server, "acme/disk")


def test_full_blob_disk_answers_507_and_loses_nothing(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(blobs))
    server = None
    try:
        server, repo_id, before = _storage_hub(tmp_path / "home", blobs)
        big = opaque_bytes(3 * 1024 * 1024)
        r = commit_raw(server, repo_id, [HEADER, inline("big.txt", big)])
        assert_hub_error(r, 507, "InsufficientStorage", contains="storage is full")
        assert "No space left on device" in r.headers["x-error-message"]
        assert_hub_error(_lfs_put(server, repo_id, big), 507, "InsufficientStorage", contains="storage is full")
        _assert_store_intact(server, blobs, repo_id, before)
    finally:
        if server is not None:
            server.stop()
        _umount(blobs)


def test_read_only_blob_disk_answers_503_and_keeps_serving_reads(tmp_path: Path) -> None:
    source, blobs = tmp_path / "blobs-source", tmp_path / "blobs"
    source.mkdir()
    blobs.mkdir()
    _mount("--bind", str(source), str(blobs))
    server = None
    try:
        server, repo_id, before = _storage_hub(tmp_path / "home", blobs)
        _mount("-o", "remount,ro,bind", str(blobs))
        r = commit_raw(server, repo_id, [HEADER, inline("new.txt", b"new")])
        assert_hub_error(r, 503, "ServiceUnavailable", contains="does not accept writes")
        assert_hub_error(_lfs_put(server, repo_id, os.urandom(1000)), 503, "ServiceUnavailable")
        _assert_store_intact(server, blobs, repo_id, before)
    finally:
        if server is not None:
            server.stop()
        _umount(blobs)


# --- 12. deleting the root folder -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/", "//"])
def test_deleting_the_root_folder_is_refused(hub: Server, repo: str, path: str) -> None:
    before = tree(hub, repo)
    assert ".gitattributes" in {p for p, _ in before}
    r = commit_raw(hub, repo, [HEADER, {"key": "deletedFolder", "value": {"path": path}}])
    assert_hub_error(r, 400, "BadRequest", contains="root folder")
    r = commit_raw(hub, repo, [HEADER, {"key": "deletedFile", "value": {"path": path}}])
    assert_hub_error(r, 400, "BadRequest", contains="Invalid path")
    assert tree(hub, repo) == before


def test_deleting_a_real_folder_still_works(admin_api: HfApi, repo: str) -> None:
    admin_api.upload_file(path_or_fileobj=b"1", path_in_repo="sub/a.txt", repo_id=repo)
    admin_api.delete_folder("sub", repo_id=repo)
    assert sorted(admin_api.list_repo_files(repo)) == [".gitattributes", "keep.txt"]


# --- repo names with '/' ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"name": "a/b", "organization": "acme"},
    {"name": "acme/b/c"},
    {"name": "/b"},
    {"name": "acme/"},
])
def test_repo_names_with_slashes_are_invalid_not_forbidden(hub: Server, body: dict[str, str]) -> None:
    r = httpx.post(f"{hub.url}/api/repos/create", json=body, headers=auth(hub))
    assert_hub_error(r, 400, "BadRequest", contains="Invalid")


def test_namespace_slash_name_still_creates(hub: Server, admin_api: HfApi, repo_name: str) -> None:
    admin_api.create_repo(f"acme/{repo_name}")  # huggingface_hub sends name and organization apart
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": f"acme/{repo_name}-2"}, headers=auth(hub))
    assert r.status_code == 200 and r.json()["id"] == f"acme/{repo_name}-2"
