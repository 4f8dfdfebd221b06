"""Vitrine's own routes, each against every kind of caller: anonymous, outsider, read member, write member, admin."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import Server
from tests.helpers import assert_hub_error, safetensors_bytes

ORG = "permteam"
MODEL = f"{ORG}/private-weights"


@pytest.fixture(scope="module")
def callers(hub: Server) -> dict[str, str | None]:
    """A token per kind of caller, and a private model with two versions to read."""
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "outsider": hub.token("perm-outsider", "write"),
        "read": hub.token("perm-reader", "read", org=ORG),
        "write": hub.token("perm-writer", "write", org=ORG),
        "admin": hub.admin_token,
    }
    api = HfApi(endpoint=hub.url, token=tokens["write"])
    api.create_repo(MODEL, private=True)
    for seed in (0, 1):
        api.upload_file(path_or_fileobj=safetensors_bytes(4096, seed=seed), path_in_repo="model.safetensors",
                        repo_id=MODEL)
    return tokens


# Route -> the status each caller gets: private model routes answer 404 to whoever may not read the repo.
READ_ROUTES: dict[str, dict[str, int]] = {
    f"/api/vitrine/models/{MODEL}/weights": {"anonymous": 404, "outsider": 404, "read": 200, "write": 200,
                                             "admin": 200},
    f"/api/vitrine/models/{MODEL}/diff?old=main&new=main": {"anonymous": 404, "outsider": 404, "read": 200,
                                                           "write": 200, "admin": 200},
    f"/api/vitrine/models/{MODEL}/card": {"anonymous": 404, "outsider": 404, "read": 200, "write": 200,
                                          "admin": 200},
    "/api/vitrine/stats": {"anonymous": 401, "outsider": 403, "read": 403, "write": 403, "admin": 200},
    "/api/vitrine/admin/deployment": {"anonymous": 401, "outsider": 403, "read": 403, "write": 403, "admin": 200},
}


@pytest.mark.parametrize("who", ["anonymous", "outsider", "read", "write", "admin"])
@pytest.mark.parametrize("route", list(READ_ROUTES))
def test_vitrine_route_permissions(hub: Server, callers: dict[str, str | None], route: str, who: str) -> None:
    token = callers[who]
    r = httpx.get(f"{hub.url}{route}", headers={"authorization": f"Bearer {token}"} if token else {})
    expected = READ_ROUTES[route]
    if expected[who] == 200:
        assert r.status_code == 200, r.text
    else:
        code = {404: "RepoNotFound", 401: "Unauthorized", 403: "Forbidden"}[expected[who]]
        assert_hub_error(r, expected[who], code)
        # Nothing about the private repo in the refusal: not its files, not its size.
        assert "model.safetensors" not in r.text and "parameters" not in r.text


@pytest.mark.parametrize("who", ["anonymous", "outsider", "read", "write", "admin"])
def test_private_demo_bundle_and_listing(hub: Server, callers: dict[str, str | None], who: str) -> None:
    token = callers[who]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    bundle = httpx.get(f"{hub.url}/api/vitrine/spaces/{MODEL}/bundle", headers=headers, timeout=60)
    if who in ("anonymous", "outsider"):
        assert_hub_error(bundle, 404, "RepoNotFound")
    else:
        assert bundle.status_code == 200 and MODEL in bundle.json()["files"]["app.py"]
    listing = httpx.get(f"{hub.url}/api/vitrine/spaces", headers=headers)
    assert listing.status_code == 200
    assert ("builds" in listing.json()) is (who == "admin")
