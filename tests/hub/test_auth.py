"""Who may see and change what: anonymous, read and write tokens, members and non-members."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.helpers import assert_hub_error


@pytest.fixture(scope="module")
def people(hub, admin_api: HfApi):  # type: ignore[no-untyped-def]
    """Tokens for a member with write, a member with read, and an outsider; a public and a private repo."""
    tokens = {
        "alice": hub.token("alice", "write", org="team"),
        "bob": hub.token("bob", "read", org="team"),
        "carol": hub.token("carol", "write"),
    }
    alice = HfApi(endpoint=hub.url, token=tokens["alice"])
    alice.create_repo("team/public-model")
    alice.create_repo("team/secret-model", private=True)
    for repo in ("team/public-model", "team/secret-model"):
        alice.upload_file(path_or_fileobj=b"w", path_in_repo="w.txt", repo_id=repo)
    return tokens


def api(hub, token: str | None) -> HfApi:  # type: ignore[no-untyped-def]
    return HfApi(endpoint=hub.url, token=token if token else False)


def test_whoami_lists_orgs_and_role(hub, people) -> None:  # type: ignore[no-untyped-def]
    me = api(hub, people["bob"]).whoami()
    assert me["name"] == "bob" and [o["name"] for o in me["orgs"]] == ["team"]
    assert me["auth"]["accessToken"]["role"] == "read"
    r = httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": "Bearer hf_not_a_token"})
    assert_hub_error(r, 401, contains="Invalid credentials")


@pytest.mark.parametrize("who", [None, "carol"])
def test_private_repo_is_invisible_to_outsiders(hub, people, who, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = api(hub, people.get(who) if who else None)
    assert client.model_info("team/public-model").id == "team/public-model"
    with pytest.raises(RepositoryNotFoundError):
        client.model_info("team/secret-model")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("team/secret-model", "w.txt", token=people.get(who) if who else False, cache_dir=tmp_path)
    listed = {m.id for m in client.list_models(author="team")}
    assert "team/public-model" in listed and "team/secret-model" not in listed
    headers = {"authorization": f"Bearer {people[who]}"} if who else {}
    r = httpx.get(f"{hub.url}/api/models/team/secret-model/tree/main", headers=headers)
    assert_hub_error(r, 404, "RepoNotFound")
    r = httpx.head(f"{hub.url}/team/secret-model/resolve/main/w.txt", headers=headers)
    assert r.status_code == 404 and r.headers["x-error-code"] == "RepoNotFound"


def test_members_read_private_repos(hub, people, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for who in ("alice", "bob"):
        client = api(hub, people[who])
        assert client.model_info("team/secret-model").private is True
        assert "team/secret-model" in {m.id for m in client.list_models(author="team")}
        path = hf_hub_download("team/secret-model", "w.txt", token=people[who], cache_dir=tmp_path / who)
        assert Path(path).read_bytes() == b"w"


def test_write_rules(hub, people) -> None:  # type: ignore[no-untyped-def]
    anon, bob, carol, alice = (api(hub, None), api(hub, people["bob"]), api(hub, people["carol"]),
                               api(hub, people["alice"]))
    with pytest.raises(HfHubHTTPError) as exc:
        anon.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/public-model")
    assert exc.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as exc:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/public-model")
    assert exc.value.response.status_code == 403 and "read role" in str(exc.value)
    with pytest.raises(HfHubHTTPError) as exc:
        carol.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/public-model")
    assert exc.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):  # a repo you cannot see stays a 404, even for writes
        carol.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/secret-model")
    with pytest.raises(HfHubHTTPError) as exc:
        carol.create_repo("team/carols-model")
    assert exc.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as exc:
        anon.create_repo("carol/anon-model")
    assert exc.value.response.status_code == 401
    assert carol.create_repo("carol/own-model").repo_id == "carol/own-model"
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="team/secret-model")
    assert "x.txt" in alice.list_repo_files("team/secret-model")
    with pytest.raises(HfHubHTTPError) as exc:
        bob.delete_repo("team/public-model")
    assert exc.value.response.status_code == 403


def test_visibility_switch(hub, people) -> None:  # type: ignore[no-untyped-def]
    alice, anon = api(hub, people["alice"]), api(hub, None)
    alice.create_repo("team/flip")
    assert anon.model_info("team/flip").private is False
    alice.update_repo_settings("team/flip", private=True)
    with pytest.raises(RepositoryNotFoundError):
        anon.model_info("team/flip")
    alice.update_repo_settings("team/flip", private=False)
    assert anon.model_info("team/flip").private is False


def test_knowing_a_sha256_does_not_leak_a_private_file(hub, people, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import json
    import os

    # `.dat`, not `.bin`: random bytes named like a pickle can happen to parse as one, and be refused as unsafe.
    secret, public = b"\x00" + os.urandom(150_000), b"\x00" + os.urandom(150_000)
    alice, carol = api(hub, people["alice"]), api(hub, people["carol"])
    alice.upload_file(path_or_fileobj=secret, path_in_repo="secret.dat", repo_id="team/secret-model")
    alice.upload_file(path_or_fileobj=public, path_in_repo="public.dat", repo_id="team/public-model")
    carol.create_repo("carol/thief", exist_ok=True)
    headers = {"authorization": f"Bearer {people['carol']}"}

    def batch(data: bytes) -> dict:  # type: ignore[type-arg]
        r = httpx.post(f"{hub.url}/carol/thief.git/info/lfs/objects/batch", headers=headers,
                       json={"operation": "upload", "objects": [{"oid": hashlib.sha256(data).hexdigest(),
                                                                 "size": len(data)}]})
        return r.json()["objects"][0]  # type: ignore[no-any-return]

    assert "actions" in batch(secret)  # the hub does not admit it has the object
    assert "actions" not in batch(public)  # readable elsewhere: no need to send it again
    line = {"key": "lfsFile", "value": {"path": "stolen.dat", "algo": "sha256",
                                        "oid": hashlib.sha256(secret).hexdigest(), "size": len(secret)}}
    body = json.dumps({"key": "header", "value": {"summary": "steal"}}) + "\n" + json.dumps(line) + "\n"
    r = httpx.post(f"{hub.url}/api/models/carol/thief/commit/main", content=body,
                   headers={**headers, "content-type": "application/x-ndjson"})
    assert_hub_error(r, 400, "BadRequest", contains="never uploaded")
    # Proving possession (uploading the bytes) makes it citable, as it should be. Carol uploads from a machine of
    # her own: a Xet cache that remembers Alice's upload would cite it instead of sending it, and be refused.
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "carol-xet-cache"))
    carol.upload_file(path_or_fileobj=secret, path_in_repo="mine.dat", repo_id="carol/thief")
    carol.upload_file(path_or_fileobj=public, path_in_repo="copy-of-public.dat", repo_id="carol/thief")
    assert {"mine.dat", "copy-of-public.dat"} <= set(carol.list_repo_files("carol/thief"))


def test_the_bot_account_cannot_be_claimed(hub) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from tests.conftest import VITRINE, server_env

    out = subprocess.run([VITRINE, "token", "create", "--home", str(hub.home), "--user", "vitrine-bot", "--role",
                          "write"], capture_output=True, text=True, env=server_env(hub.home))
    assert out.returncode == 2 and "reserved" in out.stderr
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": "x", "organization": "vitrine-bot"},
                   headers={"authorization": f"Bearer {hub.admin_token}"})
    assert_hub_error(r, 400, "BadRequest", contains="reserved")
