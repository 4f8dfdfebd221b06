"""Your own tokens over HTTP: list, create (the clear token shown once), revoke; nobody else's."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import Server
from tests.helpers import assert_hub_error


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_anonymous_gets_401_everywhere(hub: Server) -> None:
    assert_hub_error(httpx.get(f"{hub.url}/api/vitrine/tokens"), 401, "Unauthorized")
    assert_hub_error(httpx.post(f"{hub.url}/api/vitrine/tokens", json={"name": "x"}), 401, "Unauthorized")
    assert_hub_error(httpx.delete(f"{hub.url}/api/vitrine/tokens/1"), 401, "Unauthorized")


def test_create_list_use_revoke(hub: Server) -> None:
    mine = hub.token("tok-alice", "write")
    made = httpx.post(f"{hub.url}/api/vitrine/tokens", json={"name": "laptop", "role": "read"}, headers=_auth(mine))
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["role"] == "read" and body["name"] == "laptop" and body["token"].startswith("hf_")
    # The new token works, as the Hub's own client sees it.
    assert HfApi(endpoint=hub.url, token=body["token"]).whoami()["name"] == "tok-alice"
    listed = httpx.get(f"{hub.url}/api/vitrine/tokens", headers=_auth(mine)).json()
    assert [t["name"] for t in listed] == ["tok-alice-write", "laptop"]
    # The clear token is never shown again.
    assert all("token" not in t for t in listed) and body["token"] not in str(listed)
    again = httpx.post(f"{hub.url}/api/vitrine/tokens", json={"name": "laptop"}, headers=_auth(mine))
    assert_hub_error(again, 400, "BadRequest", contains="already have a token named")
    gone = httpx.delete(f"{hub.url}/api/vitrine/tokens/{body['id']}", headers=_auth(mine))
    assert gone.status_code == 200 and gone.json() == {"deleted": body["id"]}
    assert_hub_error(httpx.get(f"{hub.url}/api/whoami-v2", headers=_auth(body["token"])), 401)
    assert [t["name"] for t in httpx.get(f"{hub.url}/api/vitrine/tokens", headers=_auth(mine)).json()] == \
        ["tok-alice-write"]


def test_others_tokens_are_invisible_and_cannot_be_revoked(hub: Server) -> None:
    alice, bob = hub.token("tok-carol", "write"), hub.token("tok-dave", "write")
    secret = httpx.post(f"{hub.url}/api/vitrine/tokens", json={"name": "ci", "role": "write"},
                        headers=_auth(alice)).json()
    seen_by_bob = httpx.get(f"{hub.url}/api/vitrine/tokens", headers=_auth(bob)).json()
    assert secret["id"] not in [t["id"] for t in seen_by_bob]
    assert [t["name"] for t in seen_by_bob] == ["tok-dave-write"]
    assert_hub_error(httpx.delete(f"{hub.url}/api/vitrine/tokens/{secret['id']}", headers=_auth(bob)), 404, "NotFound")
    assert HfApi(endpoint=hub.url, token=secret["token"]).whoami()["name"] == "tok-carol"


def test_a_read_token_cannot_mint_or_revoke_write_tokens(hub: Server) -> None:
    write, read = hub.token("tok-erin", "write"), hub.token("tok-erin", "read")
    denied = httpx.post(f"{hub.url}/api/vitrine/tokens", json={"name": "more", "role": "write"}, headers=_auth(read))
    assert_hub_error(denied, 403, "Forbidden")
    ok = httpx.post(f"{hub.url}/api/vitrine/tokens", json={"name": "more", "role": "read"}, headers=_auth(read))
    assert ok.status_code == 200
    write_id = next(t["id"] for t in httpx.get(f"{hub.url}/api/vitrine/tokens", headers=_auth(read)).json()
                    if t["role"] == "write")
    assert_hub_error(httpx.delete(f"{hub.url}/api/vitrine/tokens/{write_id}", headers=_auth(read)), 403)
    assert httpx.get(f"{hub.url}/api/whoami-v2", headers=_auth(write)).status_code == 200


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 97}, {"name": "ok", "role": "admin"}, {"name": 3}])
def test_bad_bodies_are_400(hub: Server, body: dict[str, object]) -> None:
    mine = hub.token("tok-frank", "write")
    assert_hub_error(httpx.post(f"{hub.url}/api/vitrine/tokens", json=body, headers=_auth(mine)), 400, "BadRequest")
