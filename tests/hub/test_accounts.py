"""Admin account management over HTTP: users, organisations, membership; nobody else may look."""

from __future__ import annotations

import httpx
from huggingface_hub import HfApi

from tests.conftest import Server
from tests.helpers import assert_hub_error


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_only_admins_see_and_manage_accounts(hub: Server) -> None:
    plain = hub.token("acct-plain", "write")
    assert_hub_error(httpx.get(f"{hub.url}/api/vitrine/admin/accounts"), 401, "Unauthorized")
    assert_hub_error(httpx.get(f"{hub.url}/api/vitrine/admin/accounts", headers=_auth(plain)), 403, "Forbidden")
    put = httpx.put(f"{hub.url}/api/vitrine/admin/orgs/acct-org/members/acct-plain", json={"role": "admin"},
                    headers=_auth(plain))
    assert_hub_error(put, 403, "Forbidden")
    assert_hub_error(httpx.delete(f"{hub.url}/api/vitrine/admin/orgs/acct-org/members/acct-plain",
                                  headers=_auth(plain)), 403, "Forbidden")


def test_admin_adds_changes_and_removes_a_member(hub: Server) -> None:
    member = hub.token("acct-member", "write")
    admin = _auth(hub.admin_token)
    put = httpx.put(f"{hub.url}/api/vitrine/admin/orgs/acct-team/members/acct-member", json={"role": "read"},
                    headers=admin)
    assert put.status_code == 200, put.text
    body = httpx.get(f"{hub.url}/api/vitrine/admin/accounts", headers=admin).json()
    assert {"name": "acct-team", "members": [{"name": "acct-member", "role": "read"}]} in body["orgs"]
    user = next(u for u in body["users"] if u["name"] == "acct-member")
    assert user == {"name": "acct-member", "isAdmin": False, "orgs": [{"name": "acct-team", "role": "read"}]}
    assert next(u for u in body["users"] if u["name"] == "admin")["isAdmin"] is True
    # The membership is what the stock client sees, and it gives the member's org repos to them.
    assert [o["name"] for o in HfApi(endpoint=hub.url, token=member).whoami()["orgs"]] == ["acct-team"]
    httpx.put(f"{hub.url}/api/vitrine/admin/orgs/acct-team/members/acct-member", json={"role": "write"},
              headers=admin).raise_for_status()
    assert HfApi(endpoint=hub.url, token=member).whoami()["orgs"][0]["roleInOrg"] == "write"
    gone = httpx.delete(f"{hub.url}/api/vitrine/admin/orgs/acct-team/members/acct-member", headers=admin)
    assert gone.status_code == 200
    assert HfApi(endpoint=hub.url, token=member).whoami()["orgs"] == []
    again = httpx.delete(f"{hub.url}/api/vitrine/admin/orgs/acct-team/members/acct-member", headers=admin)
    assert_hub_error(again, 404, "NotFound")


def test_bad_membership_requests(hub: Server) -> None:
    admin = _auth(hub.admin_token)
    hub.token("acct-x", "read")
    bad_role = httpx.put(f"{hub.url}/api/vitrine/admin/orgs/acct-o/members/acct-x", json={"role": "owner"},
                         headers=admin)
    assert_hub_error(bad_role, 400, "BadRequest")
    nobody = httpx.put(f"{hub.url}/api/vitrine/admin/orgs/acct-o/members/acct-nobody", json={"role": "read"},
                       headers=admin)
    assert_hub_error(nobody, 404, "NotFound", contains="vitrine token create --user acct-nobody")
