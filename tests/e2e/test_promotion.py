"""Aliases and promotion through the real hub: the stock clients follow `production`, the policy gate refuses a worse
version with its numbers, forced promotions and rollbacks land in the audit log, and only an organisation's admins
move its protected aliases."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from tests.conftest import VITRINE, Server
from tests.e2e.receiver import Receiver
from tests.e2e.sentiment import push_reviews, push_versions
from tests.helpers import assert_hub_error, bearer, org_callers

ORG = "promoteam"
MODEL = f"{ORG}/sentiment"
DATASET = f"{ORG}/reviews"
POLICY = f"""gates:
  production:
    - dataset: {DATASET}
      split: test
      metric: f1_macro
      max_drop: 0.01
"""
CALLERS = ("anonymous", "outsider", "read", "write", "admin")



@pytest.fixture(scope="module")
def promo(hub: Server, sentiment_versions: tuple[Path, Path]) -> Iterator[dict[str, Any]]:
    """A private org model (v1 good, v2 flipped), a private review dataset, and the gate in main's policy file."""
    tokens = org_callers(hub, ORG, "promo")
    api = HfApi(endpoint=hub.url, token=tokens["admin"])
    good, flipped = sentiment_versions
    v1, v2 = push_versions(api, MODEL, good, flipped, private=True)
    push_reviews(api, DATASET, private=True)
    api.upload_file(path_or_fileobj=POLICY.encode(), path_in_repo=".vitrine/promotion.yaml", repo_id=MODEL)
    receiver = Receiver()
    hook = httpx.post(f"{hub.url}/api/vitrine/webhooks", headers=bearer(tokens["admin"]), json={
        "url": receiver.url("/promotions"), "secret": "promo-secret", "repo": MODEL,
        "events": ["alias.moved", "promotion.refused"]})
    assert hook.status_code == 201, hook.text
    yield {"tokens": tokens, "api": api, "v1": v1, "v2": v2, "good": good, "receiver": receiver}
    receiver.close()


def _cli(hub: Server, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HF_ENDPOINT": hub.url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([VITRINE, *args], capture_output=True, text=True, env=env, timeout=600)


def _promote(hub: Server, token: str | None, revision: str, **body: Any) -> httpx.Response:
    """POST promote until the gate's evaluations are done (202 means: still running)."""
    deadline = time.time() + 300
    while True:
        r = httpx.post(f"{hub.url}/api/models/{MODEL}/promote", json={"revision": revision, **body},
                       headers=bearer(token), timeout=60)
        if r.status_code != 202 or time.time() > deadline:
            return r
        time.sleep(0.5)


def _aliases(hub: Server, token: str | None) -> dict[str, Any]:
    r = httpx.get(f"{hub.url}/api/models/{MODEL}/aliases", params={"history": "1"}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def _production(hub: Server, token: str | None) -> str | None:
    return next((a["commit"] for a in _aliases(hub, token)["aliases"] if a["name"] == "production"), None)


def test_cli_promotion_moves_production_and_the_stock_clients_follow_it(hub: Server, promo: dict[str, Any]) -> None:
    from transformers import AutoModelForSequenceClassification

    admin = promo["tokens"]["admin"]
    done = _cli(hub, admin, "promote", MODEL, "v1", "--to", "production", "--reason", "first release", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Promoted" in done.stdout and "f1_macro" in done.stdout  # the gate's table, with no current to beat
    assert _production(hub, admin) == promo["v1"]

    api: HfApi = promo["api"]
    assert api.model_info(MODEL, revision="production").sha == promo["v1"]
    path = hf_hub_download(MODEL, "model.safetensors", revision="production", token=admin)
    expected = (promo["good"] / "model.safetensors").read_bytes()
    assert hashlib.sha256(Path(path).read_bytes()).digest() == hashlib.sha256(expected).digest()
    model = AutoModelForSequenceClassification.from_pretrained(MODEL, revision="production", token=admin)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    # An alias is not a branch: the branch list does not show it, and main did not move.
    refs = api.list_repo_refs(MODEL)
    assert "production" not in [b.name for b in refs.branches] + [t.name for t in refs.tags]
    assert api.model_info(MODEL, revision="main").sha != promo["v1"]


def test_gate_refuses_a_worse_version_and_prints_the_numbers(hub: Server, promo: dict[str, Any]) -> None:
    admin = promo["tokens"]["admin"]
    r = _promote(hub, admin, "v2", alias="production")
    assert_hub_error(r, 409, "GateRefused")
    check = r.json()["gate"]["checks"][0]
    assert check["passed"] is False and check["metric"] == "f1_macro"
    candidate, current = check["candidate"]["value"], check["current"]["value"]
    assert candidate < current - 0.01
    # The numbers are the stored evaluations' own, pinned to both commits.
    for side, commit in ((check["candidate"], promo["v2"]), (check["current"], promo["v1"])):
        job = httpx.get(f"{hub.url}/api/vitrine/evals/{side['eval']}", headers=bearer(admin)).json()
        assert job["result"]["model"]["commit"] == commit
        assert job["result"]["dataset"]["commit"] == check["datasetCommit"]
        assert job["result"]["metrics"]["f1_macro"] == pytest.approx(side["value"])
    assert f"{candidate:.4f}" in r.json()["error"] and f"{current:.4f}" in r.json()["error"]
    assert _production(hub, admin) == promo["v1"]

    done = _cli(hub, admin, "promote", MODEL, "v2", "--quiet")
    assert done.returncode == 1
    assert "FAIL" in done.stdout and f"{candidate:.4f}" in done.stdout and "refused" in done.stderr
    refused = [e for e in _aliases(hub, admin)["history"] if e["action"] == "refused"]
    assert refused and refused[0]["to"] == promo["v2"] and refused[0]["evidence"]["gate"]["status"] == "failed"
    # The repo's webhook heard of the move to v1 and of both refusals, each signed.
    receiver = promo["receiver"]
    deadline = time.time() + 30
    while time.time() < deadline and len(receiver.at("/promotions")) < 3:
        time.sleep(0.2)
    bodies = [json.loads(r["body"]) for r in receiver.at("/promotions")]
    scopes = [b["event"]["scope"] for b in bodies]
    assert scopes.count("vitrine.alias") == 1 and scopes.count("vitrine.promotion") == 2, scopes
    refusal = next(b for b in bodies if b["event"]["scope"] == "vitrine.promotion")
    assert refusal["promotion"]["to"] == promo["v2"] and refusal["promotion"]["from"] == promo["v1"]
    for r in receiver.at("/promotions"):
        digest = hmac.new(b"promo-secret", r["body"], hashlib.sha256).hexdigest()
        assert r["headers"]["x-webhook-signature"] == f"sha256={digest}"


def test_forced_promotion_and_rollback_are_audited(hub: Server, promo: dict[str, Any]) -> None:
    admin = promo["tokens"]["admin"]
    bare = _cli(hub, admin, "promote", MODEL, "v2", "--force")
    assert bare.returncode != 0 and "reason" in bare.stderr
    forced = _cli(hub, admin, "promote", MODEL, "v2", "--force", "--reason", "hotfix for ticket 42")
    assert forced.returncode == 0, forced.stderr
    assert _production(hub, admin) == promo["v2"]

    back = _cli(hub, admin, "rollback", MODEL, "--alias", "production", "--reason", "v2 misbehaves")
    assert back.returncode == 0, back.stderr
    assert _production(hub, admin) == promo["v1"]
    history = _aliases(hub, admin)["history"]
    latest, previous = history[0], history[1]
    assert (latest["action"], latest["from"], latest["to"], latest["reason"]) == (
        "rollback", promo["v2"], promo["v1"], "v2 misbehaves")
    assert previous["action"] == "promote" and previous["forced"] is True and previous["reason"] == "hotfix for ticket 42"
    assert all(e["actor"] == "promo-admin" for e in history[:2])
    # v1 was the first target: there is nothing before it to roll back to.
    again = httpx.post(f"{hub.url}/api/models/{MODEL}/rollback", json={"alias": "production"}, headers=bearer(admin))
    assert_hub_error(again, 409, "Conflict")
    listing = _cli(hub, admin, "aliases", MODEL, "--history")
    assert listing.returncode == 0 and "rollback" in listing.stdout and "hotfix for ticket 42" in listing.stdout


def test_a_write_member_cannot_move_protected_production(hub: Server, promo: dict[str, Any]) -> None:
    writer, admin = promo["tokens"]["write"], promo["tokens"]["admin"]
    r = _promote(hub, writer, "v1", alias="production")
    assert_hub_error(r, 403, "Forbidden")
    assert f"admins of organisation '{ORG}'" in r.json()["error"] and "write role" in r.json()["error"]
    # Any other alias is the writers' to move, until an org admin protects it.
    staging = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/staging", json={"revision": "v2"},
                        headers=bearer(writer))
    assert staging.status_code == 200, staging.text
    protect = _cli(hub, writer, "aliases", MODEL, "--protect", "staging")
    assert protect.returncode != 0 and "admins" in protect.stderr
    assert _cli(hub, admin, "aliases", MODEL, "--protect", "staging").returncode == 0
    refused = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/staging", json={"revision": "v1"},
                        headers=bearer(writer))
    assert_hub_error(refused, 403, "Forbidden")
    assert next(a for a in _aliases(hub, writer)["aliases"] if a["name"] == "staging")["commit"] == promo["v2"]


def test_alias_names_never_clash_with_branches_or_tags(hub: Server, promo: dict[str, Any]) -> None:
    api: HfApi = promo["api"]
    admin = promo["tokens"]["admin"]
    with pytest.raises(HfHubHTTPError) as err:
        api.create_branch(MODEL, branch="production")
    assert err.value.response.status_code == 409
    for name in ("main", "v1"):
        r = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/{name}", json={"revision": "v1"}, headers=bearer(admin))
        assert_hub_error(r, 400, "BadRequest")
        assert "alias needs its own name" in r.json()["error"]
    bad = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/ok", json={"revision": "no-such-rev"},
                    headers=bearer(admin))
    assert_hub_error(bad, 404, "RevisionNotFound")
    for body in ({}, {"revision": 3}, {"revision": "v1", "reason": ["x"]}):
        r = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/ok", json=body, headers=bearer(admin))
        assert_hub_error(r, 400, "BadRequest")


def test_a_malformed_policy_is_a_clear_error_and_moves_nothing(hub: Server, promo: dict[str, Any]) -> None:
    api: HfApi = promo["api"]
    admin = promo["tokens"]["admin"]
    before = _production(hub, admin)
    api.upload_file(path_or_fileobj=b"gates:\n  production:\n    - dataset: x/y\n", path_in_repo=".vitrine/promotion.yaml",
                    repo_id=MODEL)
    try:
        r = _promote(hub, admin, "v2", alias="production")
        assert_hub_error(r, 400, "BadRequest")
        assert ".vitrine/promotion.yaml" in r.json()["error"] and "metric" in r.json()["error"]
        assert _production(hub, admin) == before
    finally:
        api.upload_file(path_or_fileobj=POLICY.encode(), path_in_repo=".vitrine/promotion.yaml", repo_id=MODEL)


# Route -> the status each kind of caller gets on the private org model (production is protected).
_ROUTES: dict[tuple[str, str, str], dict[str, int]] = {
    ("GET", f"/api/models/{MODEL}/aliases", ""): {"anonymous": 404, "outsider": 404, "read": 200, "write": 200,
                                                  "admin": 200},
    ("GET", f"/api/models/{MODEL}/aliases/production/history", ""): {"anonymous": 404, "outsider": 404, "read": 200,
                                                                      "write": 200, "admin": 200},
    ("PUT", f"/api/models/{MODEL}/aliases/production", "v1"): {"anonymous": 404, "outsider": 404, "read": 403,
                                                               "write": 403, "admin": 200},
    ("PUT", f"/api/models/{MODEL}/aliases/perm-check", "v1"): {"anonymous": 404, "outsider": 404, "read": 403,
                                                               "write": 200, "admin": 200},
    ("PUT", f"/api/models/{MODEL}/aliases/perm-check/protection", ""): {"anonymous": 404, "outsider": 404,
                                                                        "read": 403, "write": 403, "admin": 200},
    ("POST", f"/api/models/{MODEL}/promote", "v1"): {"anonymous": 404, "outsider": 404, "read": 403, "write": 403,
                                                     "admin": 200},
    ("POST", f"/api/models/{MODEL}/rollback", ""): {"anonymous": 404, "outsider": 404, "read": 403, "write": 403},
    ("DELETE", f"/api/models/{MODEL}/aliases/no-such-alias", ""): {"anonymous": 404, "outsider": 404, "read": 403,
                                                                   "write": 404, "admin": 404},
}


# (A successful rollback is the functional test's: it would move production under the other rows.)
@pytest.mark.parametrize("route, who", [(r, w) for r in _ROUTES for w in CALLERS if w in _ROUTES[r]],
                         ids=lambda v: v if isinstance(v, str) else f"{v[0]} {v[1]}")
def test_alias_route_permissions(hub: Server, promo: dict[str, Any], route: tuple[str, str, str], who: str) -> None:
    method, path, revision = route
    expected = _ROUTES[route][who]
    token = promo["tokens"][who]
    body: dict[str, Any] = {}
    if path.endswith("/protection"):
        body = {"protected": False}
    elif revision:
        body = {"revision": promo[revision]}
        if path.endswith("/promote"):
            body.update(alias="production", dryRun=True)
    r = httpx.request(method, f"{hub.url}{path}", json=body if method != "GET" and method != "DELETE" else None,
                      headers=bearer(token), timeout=300)
    if expected == 200:
        assert r.status_code in (200, 202), r.text
    else:
        code = {404: "RepoNotFound" if who in ("anonymous", "outsider") else "NotFound", 403: "Forbidden"}[expected]
        assert_hub_error(r, expected, code)
        if who in ("anonymous", "outsider"):
            assert promo["v1"] not in r.text and "production" not in r.text
