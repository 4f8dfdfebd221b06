"""Issue 13's added routes against every kind of caller: LFS deletion, likes, likers, a moved repo's old name."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import Server
from tests.helpers import assert_hub_error

ORG = "permextras"
PRIVATE, PUBLIC = f"{ORG}/private-extras", f"{ORG}/public-extras"
MOVED_FROM, MOVED_TO = f"{ORG}/private-old-name", f"{ORG}/private-new-name"
WHO = ["anonymous", "outsider", "read", "write", "admin"]


@pytest.fixture(scope="module")
def callers(hub: Server) -> dict[str, str | None]:
    """A token per kind of caller; a private and a public repo, and a private repo moved away from its name."""
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "outsider": hub.token("extras-outsider", "write"),
        "read": hub.token("extras-reader", "read", org=ORG),
        "write": hub.token("extras-writer", "write", org=ORG),
        "admin": hub.admin_token,
    }
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    api.create_repo(PRIVATE, private=True)
    api.create_repo(PUBLIC)
    api.create_repo(MOVED_FROM, private=True)
    api.move_repo(MOVED_FROM, MOVED_TO)
    return tokens


_NO_SUCH_LFS = {"deletions": {"sha": ["a" * 64], "rewriteHistory": True}}
# (method, path, json body) -> the status each caller gets, in WHO's order.
ROUTES: dict[tuple[str, str], list[int]] = {
    ("POST", f"/api/models/{PRIVATE}/lfs-files/batch"): [404, 404, 403, 200, 200],
    ("POST", f"/api/models/{PUBLIC}/lfs-files/batch"): [401, 403, 403, 200, 200],
    ("POST", f"/api/models/{PRIVATE}/like"): [401, 404, 200, 200, 200],
    ("DELETE", f"/api/models/{PRIVATE}/like"): [401, 404, 200, 200, 200],
    ("POST", f"/api/models/{PUBLIC}/like"): [401, 200, 200, 200, 200],
    ("GET", f"/api/models/{PRIVATE}/likers"): [404, 404, 200, 200, 200],
    ("GET", f"/api/models/{PUBLIC}/likers"): [200, 200, 200, 200, 200],
    ("GET", f"/api/users/{ORG}/likes"): [200, 200, 200, 200, 200],
    ("GET", f"/api/models/{MOVED_FROM}"): [404, 404, 307, 307, 307],
    ("GET", f"/api/models/{MOVED_FROM}/tree/main"): [404, 404, 307, 307, 307],
}
CODES = {401: "Unauthorized", 403: "Forbidden", 404: "RepoNotFound"}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("route", list(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_permissions(hub: Server, callers: dict[str, str | None], route: tuple[str, str], who: str) -> None:
    method, path = route
    token = callers[who]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = _NO_SUCH_LFS if path.endswith("lfs-files/batch") else None
    r = httpx.request(method, f"{hub.url}{path}", headers=headers, json=body, follow_redirects=False)
    expected = ROUTES[route][WHO.index(who)]
    if expected in (200, 307):
        assert r.status_code == expected, r.text
        if expected == 307:
            assert r.headers["location"].startswith(f"/api/models/{MOVED_TO}")
    else:
        assert_hub_error(r, expected, CODES[expected])
        assert "new-name" not in r.text and "location" not in r.headers


def test_liked_private_repo_listed_only_to_readers(hub: Server, callers: dict[str, str | None]) -> None:
    """A private repo liked by a member shows in that member's likes only to those who may read it."""
    writer = callers["write"]
    assert httpx.post(f"{hub.url}/api/models/{PRIVATE}/like",
                      headers={"authorization": f"Bearer {writer}"}).status_code == 200
    for who, sees in (("anonymous", False), ("outsider", False), ("read", True), ("admin", True)):
        token = callers[who]
        r = httpx.get(f"{hub.url}/api/users/extras-writer/likes",
                      headers={"authorization": f"Bearer {token}"} if token else {})
        assert r.status_code == 200
        assert (PRIVATE in r.text) is sees, (who, r.text)
