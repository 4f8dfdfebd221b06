"""Webhooks through the real hub: signed, Hub-shaped deliveries for every event kind a test can trigger, retries with
backoff into a delivery log that shows the failure, replay, registration refused early, each route's permissions, and
no event of a private repo ever reaching a webhook whose owner lost access to it."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.apps.models import WORDS
from tests.conftest import VITRINE, Server, start_server
from tests.e2e.receiver import Receiver
from tests.helpers import assert_hub_error, bearer

SECRET = "s3cret-for-tests"
ALL_KINDS = ["repo.content", "repo.refs", "alias.moved", "promotion.refused", "evaluation.finished",
             "drift.detected"]
LABELS = ["negative", "neutral", "positive"]
CALLERS = ("anonymous", "outsider", "read", "write", "admin")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """One receiver for the module; each test posts to its own path."""
    r = Receiver()
    yield r
    r.close()



def _until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _register(hub: Server, token: str | None, **body: Any) -> httpx.Response:
    return httpx.post(f"{hub.url}/api/vitrine/webhooks", json={"secret": SECRET, **body}, headers=bearer(token))


def _deliveries(hub: Server, token: str, hook_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{hub.url}/api/vitrine/webhooks/{hook_id}/deliveries", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _signed(request: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """The request's JSON body, after checking its HMAC-SHA256 signature over the raw bytes."""
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["x-webhook-signature"], expected), request["headers"]
    assert request["headers"]["content-type"] == "application/json"
    assert secret not in json.dumps(request["headers"]) and secret.encode() not in request["body"]
    return json.loads(request["body"])  # type: ignore[no-any-return]


def _of_kind(receiver: Receiver, path: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in receiver.at(path) if r["headers"].get("x-webhook-event") == kind]


def _push_dataset(api: HfApi, repo_id: str) -> None:
    rng = random.Random(3)
    rows = {"text": [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(16)],
            "label": [rng.choice(LABELS) for _ in range(16)]}
    buf = io.BytesIO()
    pq.write_table(pa.table(rows), buf)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=repo_id, repo_type="dataset")


def test_signed_hub_shaped_deliveries_for_each_event_kind(hub: Server, receiver: Receiver, tmp_path: Path) -> None:
    user = "hook-author"
    token = hub.token(user, "write")
    api = HfApi(endpoint=hub.url, token=token)
    model, dataset = f"{user}/classifier", f"{user}/reviews"
    api.create_repo(model)
    _push_dataset(api, dataset)
    r = _register(hub, token, url=receiver.url("/kinds"), events=ALL_KINDS, repo=model)
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["owner"] == user and hook["target"] == {"type": "repo", "repo": model, "repoType": "model"}
    assert "secret" not in hook
    ns = _register(hub, token, url=receiver.url("/kinds-ns"), events=["repo.refs"], namespace=user)
    assert ns.status_code == 201, ns.text

    commit = push_task_model(api, model, "text-classification", tmp_path / "model", seed=0)
    api.create_tag(model, tag="v1", revision=commit)
    alias = httpx.put(f"{hub.url}/api/models/{model}/aliases/staging", json={"revision": "main"},
                      headers=bearer(token))
    assert alias.status_code == 200, alias.text
    started = httpx.post(f"{hub.url}/api/vitrine/evals", json={"model": model, "dataset": dataset, "split": "test"},
                         headers=bearer(token))
    assert started.status_code == 202, started.text

    content = _until(lambda: [_signed(x) for x in _of_kind(receiver, "/kinds", "repo.content")
                              if json.loads(x["body"])["repo"].get("headSha") == commit], what="the commit")[0]
    assert content["event"] == {"action": "update", "scope": "repo.content"}
    assert content["repo"]["name"] == model and content["repo"]["type"] == "model"
    assert content["repo"]["private"] is False and content["repo"]["url"]["web"].endswith(f"/{model}")
    assert content["webhook"] == {"id": str(hook["id"]), "version": 3}
    assert content["updatedRefs"][0]["ref"] == "refs/heads/main" and content["updatedRefs"][0]["newSha"] == commit

    tag = _signed(_until(lambda: _of_kind(receiver, "/kinds", "repo.refs"), what="the tag")[0])
    assert tag["event"] == {"action": "update", "scope": "repo"}
    assert tag["updatedRefs"] == [{"ref": "refs/tags/v1", "oldSha": None, "newSha": commit}]
    tag_ns = _signed(_until(lambda: _of_kind(receiver, "/kinds-ns", "repo.refs"), what="the namespace's tag")[0])
    assert tag_ns["updatedRefs"] == tag["updatedRefs"] and tag_ns["webhook"]["id"] == str(ns.json()["id"])
    assert not _of_kind(receiver, "/kinds-ns", "repo.content")  # it asked for ref changes only

    moved = _signed(_until(lambda: _of_kind(receiver, "/kinds", "alias.moved"), what="the alias move")[0])
    assert moved["event"] == {"action": "update", "scope": "vitrine.alias"}
    assert moved["alias"]["name"] == "staging" and moved["alias"]["to"] == commit
    assert moved["alias"]["action"] == "set"

    finished_req = _until(lambda: _of_kind(receiver, "/kinds", "evaluation.finished"), timeout=300,
                          what="the evaluation")[0]
    finished = _signed(finished_req)
    assert finished["event"] == {"action": "finished", "scope": "vitrine.evaluation"}
    assert finished["evaluation"]["id"] == started.json()["id"] and finished["evaluation"]["status"] == "succeeded"
    assert finished["evaluation"]["dataset"] == dataset and "accuracy" in finished["evaluation"]["metrics"]

    # Every request names its delivery, and the log records each as succeeded with the receiver's 200.
    log = {d["id"]: d for d in _deliveries(hub, token, hook["id"])}
    for request in receiver.at("/kinds"):
        entry = log[int(request["headers"]["x-webhook-delivery"])]
        assert entry["status"] == "succeeded" and entry["attempts"] == 1 and entry["lastStatusCode"] == 200
        assert entry["event"] == request["headers"]["x-webhook-event"]
        assert json.dumps(entry["payload"], sort_keys=True) == json.dumps(json.loads(request["body"]), sort_keys=True)


def test_failing_receiver_is_retried_then_logged_as_failed_and_replay_succeeds(receiver: Receiver,
                                                                              tmp_path: Path) -> None:
    own = start_server(tmp_path / "hub-home", VITRINE_WEBHOOK_BACKOFF_MS="50", VITRINE_WEBHOOK_MAX_ATTEMPTS="3")
    try:
        token = own.token("retry-user", "write")
        api = HfApi(endpoint=own.url, token=token)
        repo = "retry-user/flaky"
        api.create_repo(repo)
        hook = _register(own, token, url=receiver.url("/flaky"), events=["repo.content"], repo=repo).json()
        receiver.failing.add("/flaky")
        try:
            info = api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo)
            failed = _until(lambda: [d for d in _deliveries(own, token, hook["id"]) if d["status"] == "failed"],
                            what="the delivery to fail")[0]
        finally:
            receiver.failing.discard("/flaky")
        assert failed["attempts"] == 3 and failed["lastStatusCode"] == 500 and "500" in failed["lastError"]
        assert failed["finishedAt"] is not None and failed["nextAttemptAt"] is None
        tries = receiver.at("/flaky")
        assert len(tries) == 3 and {t["headers"]["x-webhook-delivery"] for t in tries} == {str(failed["id"])}
        assert len({t["body"] for t in tries}) == 1 and _signed(tries[0])["repo"]["headSha"] == info.oid

        r = httpx.post(f"{own.url}/api/vitrine/webhooks/{hook['id']}/deliveries/{failed['id']}/replay",
                       headers=bearer(token))
        assert r.status_code == 202, r.text
        replay = r.json()
        assert replay["replayOf"] == failed["id"] and replay["status"] == "pending" and replay["id"] != failed["id"]
        done = _until(lambda: [d for d in _deliveries(own, token, hook["id"])
                               if d["id"] == replay["id"] and d["status"] == "succeeded"], what="the replay")[0]
        assert done["attempts"] == 1 and done["lastStatusCode"] == 200
        again = receiver.at("/flaky")[-1]
        assert again["headers"]["x-webhook-delivery"] == str(replay["id"]) and again["body"] == tries[0]["body"]
        _signed(again)
        missing = httpx.post(f"{own.url}/api/vitrine/webhooks/{hook['id']}/deliveries/999999/replay",
                             headers=bearer(token))
        assert_hub_error(missing, 404, "NotFound")
    finally:
        own.stop()


def test_private_repo_events_never_reach_an_owner_who_lost_access(hub: Server, receiver: Receiver) -> None:
    org = "hooklossorg"
    admin = hub.token("hookloss-admin", "write", org=org, org_role="admin")
    member = hub.token("hookloss-member", "write", org=org)
    outsider = hub.token("hookloss-outsider", "write")
    api = HfApi(endpoint=hub.url, token=admin)
    repo = f"{org}/secret-model"
    api.create_repo(repo, private=True)
    hook = _register(hub, member, url=receiver.url("/loss"), events=["repo.content"], repo=repo)
    assert hook.status_code == 201, hook.text
    # Someone outside the org may watch its namespace, but sees its public repos only.
    peek = _register(hub, outsider, url=receiver.url("/loss-outsider"), events=["repo.content"], namespace=org)
    assert peek.status_code == 201, peek.text

    first = api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo)
    _until(lambda: [x for x in receiver.at("/loss") if _signed(x)["repo"]["headSha"] == first.oid],
           what="the member's delivery")

    removed = httpx.delete(f"{hub.url}/api/vitrine/admin/orgs/{org}/members/hookloss-member",
                           headers=bearer(hub.admin_token))
    assert removed.status_code == 200, removed.text
    second = api.upload_file(path_or_fileobj=b"two", path_in_repo="b.txt", repo_id=repo)
    public = f"{org}/open-model"
    api.create_repo(public)
    third = api.upload_file(path_or_fileobj=b"three", path_in_repo="c.txt", repo_id=public)
    # The outsider's namespace webhook gets the public repo's commit: the worker has seen everything before it.
    _until(lambda: [x for x in receiver.at("/loss-outsider") if _signed(x)["repo"]["headSha"] == third.oid],
           what="the public repo's commit")
    time.sleep(1.5)  # a few more worker rounds
    assert [json.loads(x["body"])["repo"]["headSha"] for x in receiver.at("/loss")] == [first.oid]
    assert all(json.loads(x["body"])["repo"]["name"] == public for x in receiver.at("/loss-outsider"))
    log = _deliveries(hub, member, hook.json()["id"])
    assert [d for d in log if d["status"] != "skipped"] == [d for d in log if d["payload"]
                                                            and d["payload"]["repo"]["headSha"] == first.oid]
    assert not any(second.oid in json.dumps(d) for d in log)
    assert not any(repo in json.dumps(d) for d in _deliveries(hub, outsider, peek.json()["id"]))


def test_a_retry_is_skipped_once_the_owner_lost_access(receiver: Receiver, tmp_path: Path) -> None:
    own = start_server(tmp_path / "hub-home", VITRINE_WEBHOOK_BACKOFF_MS="1500", VITRINE_WEBHOOK_MAX_ATTEMPTS="5")
    try:
        org = "hookretryorg"
        admin = own.token("hookretry-admin", "write", org=org, org_role="admin")
        member = own.token("hookretry-member", "write", org=org)
        api = HfApi(endpoint=own.url, token=admin)
        repo = f"{org}/secret"
        api.create_repo(repo, private=True)
        hook = _register(own, member, url=receiver.url("/lost-retry"), events=["repo.content"], repo=repo).json()
        receiver.failing.add("/lost-retry")
        try:
            api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo)
            _until(lambda: receiver.at("/lost-retry"), what="the first attempt")
            removed = httpx.delete(f"{own.url}/api/vitrine/admin/orgs/{org}/members/hookretry-member",
                                   headers=bearer(own.admin_token))
            assert removed.status_code == 200, removed.text
        finally:
            receiver.failing.discard("/lost-retry")
        skipped = _until(lambda: [d for d in _deliveries(own, member, hook["id"]) if d["status"] == "skipped"],
                         timeout=15, what="the retry to be skipped")[0]
        assert skipped["attempts"] == 1 and skipped["payload"] is None and "may no longer read" in skipped["lastError"]
        assert len(receiver.at("/lost-retry")) == 1
        refused = httpx.post(f"{own.url}/api/vitrine/webhooks/{hook['id']}/deliveries/{skipped['id']}/replay",
                             headers=bearer(member))
        assert_hub_error(refused, 400, "BadRequest", contains="nothing to replay")
    finally:
        own.stop()


@pytest.mark.parametrize(("change", "status", "code", "contains"), [
    ({"url": "ftp://example.com/hook"}, 400, "BadRequest", "http:// or https://"),
    ({"url": "not a url"}, 400, "BadRequest", "Invalid webhook URL"),
    ({"events": ["repo.deleted"]}, 400, "BadRequest", "Unknown event kind 'repo.deleted'"),
    ({"events": []}, 400, "BadRequest", "non-empty list"),
    ({"secret": ""}, 400, "BadRequest", "secret"),
    ({"repo": "hookval-owner/private"}, 404, "RepoNotFound", "not found"),
    ({"repo": "hookval-nobody/nothing"}, 404, "RepoNotFound", "not found"),
    ({"repo": None, "namespace": "hookval-nobody"}, 404, "NotFound", "Namespace"),
    ({"namespace": "hookval-owner"}, 400, "BadRequest", "exactly one"),
    ({"repoType": "widget"}, 400, "BadRequest", "Invalid repo type"),
    ({"owner": "hookval-owner"}, 403, "Forbidden", "may not register webhooks"),
])
def test_registration_is_refused_with_a_clear_error(hub: Server, receiver: Receiver, change: dict[str, Any],
                                                    status: int, code: str, contains: str) -> None:
    owner = hub.token("hookval-owner", "write")
    HfApi(endpoint=hub.url, token=owner).create_repo("hookval-owner/private", private=True, exist_ok=True)
    HfApi(endpoint=hub.url, token=owner).create_repo("hookval-owner/public", exist_ok=True)
    caller = hub.token("hookval-caller", "write")
    body = {"url": receiver.url("/val"), "events": ["repo.content"], "repo": "hookval-owner/public", **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert_hub_error(_register(hub, caller, **body), status, code, contains=contains)
    assert httpx.get(f"{hub.url}/api/vitrine/webhooks", headers=bearer(caller)).json() == []


@pytest.fixture(scope="module")
def external_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A hub with the default egress policy: webhooks reach external addresses only."""
    own = start_server(tmp_path_factory.mktemp("external-only"), VITRINE_WEBHOOK_ALLOWED_NETWORKS="external")
    yield own
    own.stop()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hook",  # the hub's own machine
    "http://localhost:{port}/hook",  # a name resolving there
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",  # IPv4-mapped
    "http://0.0.0.0:{port}/hook",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
    "http://10.0.0.7/hook", "http://192.168.1.1/hook", "http://[fd00::1]/hook",  # private networks
])
def test_webhooks_may_not_target_internal_addresses(external_only: Server, receiver: Receiver, url: str) -> None:
    token = external_only.token("egress-user", "write")
    HfApi(endpoint=external_only.url, token=token).create_repo("egress-user/m", exist_ok=True)
    port = receiver.url().rsplit(":", 1)[1].split("/", 1)[0]
    r = _register(external_only, token, url=url.format(port=port), events=["repo.content"], repo="egress-user/m")
    assert_hub_error(r, 400, "BadRequest", contains="network webhooks may not reach")
    assert "VITRINE_WEBHOOK_ALLOWED_NETWORKS allows external" in r.json()["error"]
    if "localhost" in url:
        assert "127.0.0.1" not in r.json()["error"]  # a name's addresses are not shown
    assert httpx.get(f"{external_only.url}/api/vitrine/webhooks", headers=bearer(token)).json() == []
    # A global address is accepted (nothing is sent to it here: no event of the repo follows).
    ok = _register(external_only, token, url="http://93.184.216.34/hook", events=["repo.content"],
                   repo="egress-user/m")
    assert ok.status_code == 201, ok.text
    httpx.delete(f"{external_only.url}/api/vitrine/webhooks/{ok.json()['id']}", headers=bearer(token))


def test_allowed_networks_setting_is_parsed_or_refused_by_name() -> None:
    from ipaddress import ip_address

    from registry.settings import Settings

    policy = Settings.from_env({"VITRINE_WEBHOOK_ALLOWED_NETWORKS": "private, 169.254.0.0/16"}).webhook_egress
    assert policy.allows(ip_address("10.1.2.3")) and policy.allows(ip_address("fd12::1"))
    assert policy.allows(ip_address("169.254.169.254"))  # named by its CIDR block
    assert not policy.allows(ip_address("8.8.8.8")) and not policy.allows(ip_address("127.0.0.1"))
    everything = Settings.from_env({"VITRINE_WEBHOOK_ALLOWED_NETWORKS": "*"}).webhook_egress
    assert everything.allows(ip_address("127.0.0.1")) and everything.allows(ip_address("::1"))
    default = Settings.from_env({}).webhook_egress
    assert default.allows(ip_address("93.184.216.34")) and not default.allows(ip_address("100.64.0.1"))
    for bad, says in (("intranet", "'intranet' is neither"), ("10.0.0.0/33", "'10.0.0.0/33' is neither"),
                      (" , ", "is empty")):
        with pytest.raises(ValueError, match=says):
            Settings.from_env({"VITRINE_WEBHOOK_ALLOWED_NETWORKS": bad})
    # `vitrine serve` stops with the same message.
    r = subprocess.run([VITRINE, "serve", "--port", "1"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "VITRINE_WEBHOOK_ALLOWED_NETWORKS": "intranet"})
    assert r.returncode != 0 and "VITRINE_WEBHOOK_ALLOWED_NETWORKS: 'intranet' is neither" in r.stderr + r.stdout


def test_delivery_checks_the_address_it_connects_to(receiver: Receiver, tmp_path: Path) -> None:
    """A webhook registered while loopback was allowed is not delivered once it is not: the check is made at every
    attempt, on the address dialled (as it must be for a name that re-resolves), and the log says why."""
    home = tmp_path / "hub-home"
    own = start_server(home, VITRINE_WEBHOOK_ALLOWED_NETWORKS="external,loopback")
    try:
        token = own.token("rebind-user", "write")
        HfApi(endpoint=own.url, token=token).create_repo("rebind-user/m")
        hook = _register(own, token, url=receiver.url("/rebind").replace("127.0.0.1", "localhost"),
                         events=["repo.content"], repo="rebind-user/m").json()
    finally:
        own.stop()
    own = start_server(home, VITRINE_WEBHOOK_ALLOWED_NETWORKS="external",
                       VITRINE_WEBHOOK_MAX_ATTEMPTS="1")
    try:
        HfApi(endpoint=own.url, token=token).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt",
                                                         repo_id="rebind-user/m")
        failed = _until(lambda: [d for d in _deliveries(own, token, hook["id"]) if d["status"] == "failed"],
                        what="the delivery to be refused")[0]
        assert failed["lastError"].startswith("Blocked: localhost resolves only to addresses in a network")
        assert failed["lastStatusCode"] is None
        assert receiver.at("/rebind") == []
    finally:
        own.stop()


def test_https_delivery_to_a_name_keeps_its_host_and_certificate_check(tmp_path: Path) -> None:
    """Pinned to the address checked, an HTTPS delivery still sends the URL's Host and verifies the certificate for
    the name (which names `localhost` only, not 127.0.0.1); an internal CA comes from SSL_CERT_FILE."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    tls = Receiver(tls=(cert, key))
    own = start_server(tmp_path / "hub-home", SSL_CERT_FILE=str(cert))
    try:
        token = own.token("tls-user", "write")
        api = HfApi(endpoint=own.url, token=token)
        api.create_repo("tls-user/m")
        url = tls.url("/tls")
        hook = _register(own, token, url=url, events=["repo.content"], repo="tls-user/m").json()
        info = api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tls-user/m")
        got = _until(lambda: tls.at("/tls"), what="the HTTPS delivery")[0]
        assert got["headers"]["host"] == url.split("/")[2] and _signed(got)["repo"]["headSha"] == info.oid
        assert _until(lambda: [d for d in _deliveries(own, token, hook["id"]) if d["status"] == "succeeded"])
    finally:
        own.stop()
        tls.close()


@pytest.fixture(scope="module")
def perms(hub: Server, receiver: Receiver) -> dict[str, Any]:
    """An org's private repo, an org-owned webhook on it with one delivery, and a token per kind of caller."""
    org = "hookpermorg"
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "outsider": hub.token("hookperm-outsider", "write"),
        "read": hub.token("hookperm-reader", "read", org=org, org_role="read"),
        "write": hub.token("hookperm-writer", "write", org=org),
        "admin": hub.token("hookperm-admin", "write", org=org, org_role="admin"),
    }
    api = HfApi(endpoint=hub.url, token=tokens["admin"])
    repo = f"{org}/private-model"
    api.create_repo(repo, private=True)
    made = _register(hub, tokens["admin"], url=receiver.url("/perm"), events=["repo.content"], repo=repo, owner=org)
    assert made.status_code == 201 and made.json()["owner"] == org, made.text
    info = api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    hook_id = made.json()["id"]
    delivery = _until(lambda: [d for d in _deliveries(hub, tokens["admin"], hook_id)
                               if d["status"] == "succeeded"], what="the org's delivery")[0]
    assert delivery["payload"]["repo"]["headSha"] == info.oid
    return {"tokens": tokens, "repo": repo, "org": org, "hook": hook_id, "delivery": delivery["id"]}


@pytest.mark.parametrize(("caller", "own", "for_org"), [
    ("anonymous", 401, 401), ("outsider", 404, 403), ("read", 403, 403), ("write", 201, 403), ("admin", 201, 201),
])
def test_register_permissions(hub: Server, receiver: Receiver, perms: dict[str, Any], caller: str, own: int,
                              for_org: int) -> None:
    token = perms["tokens"][caller]
    body = {"url": receiver.url("/perm-register"), "events": ["repo.refs"], "repo": perms["repo"]}
    r = _register(hub, token, **body)
    assert r.status_code == own, r.text
    r = _register(hub, token, **body, owner=perms["org"])
    assert r.status_code == for_org, r.text


@pytest.mark.parametrize("caller", CALLERS)
def test_list_permissions(hub: Server, perms: dict[str, Any], caller: str) -> None:
    r = httpx.get(f"{hub.url}/api/vitrine/webhooks", headers=bearer(perms["tokens"][caller]))
    if caller == "anonymous":
        assert_hub_error(r, 401, "Unauthorized")
        return
    assert r.status_code == 200, r.text
    owners = {h["owner"] for h in r.json()}
    assert (perms["org"] in owners) == (caller == "admin")
    assert all("secret" not in h for h in r.json())


@pytest.mark.parametrize(("caller", "status"), [
    ("anonymous", 401), ("outsider", 404), ("read", 404), ("write", 404), ("admin", 200),
])
def test_deliveries_and_replay_permissions(hub: Server, perms: dict[str, Any], caller: str, status: int) -> None:
    token = perms["tokens"][caller]
    base = f"{hub.url}/api/vitrine/webhooks/{perms['hook']}"
    log = httpx.get(f"{base}/deliveries", headers=bearer(token))
    replay = httpx.post(f"{base}/deliveries/{perms['delivery']}/replay", headers=bearer(token))
    if status != 200:
        assert_hub_error(log, status)
        assert_hub_error(replay, status)
        return
    assert log.status_code == 200 and any(d["id"] == perms["delivery"] for d in log.json())
    assert replay.status_code == 202 and replay.json()["replayOf"] == perms["delivery"], replay.text


@pytest.mark.parametrize(("caller", "status"), [
    ("anonymous", 401), ("outsider", 404), ("read", 404), ("write", 404), ("admin", 200),
])
def test_delete_permissions(hub: Server, receiver: Receiver, perms: dict[str, Any], caller: str,
                            status: int) -> None:
    admin = perms["tokens"]["admin"]
    made = _register(hub, admin, url=receiver.url("/perm-delete"), events=["repo.refs"], repo=perms["repo"],
                     owner=perms["org"]).json()
    r = httpx.delete(f"{hub.url}/api/vitrine/webhooks/{made['id']}", headers=bearer(perms["tokens"][caller]))
    listed = [h["id"] for h in httpx.get(f"{hub.url}/api/vitrine/webhooks", headers=bearer(admin)).json()]
    if status != 200:
        assert_hub_error(r, status)
        assert made["id"] in listed
        httpx.delete(f"{hub.url}/api/vitrine/webhooks/{made['id']}", headers=bearer(admin)).raise_for_status()
        return
    assert r.status_code == 200 and r.json() == {"deleted": made["id"]}
    assert made["id"] not in listed
    assert_hub_error(httpx.get(f"{hub.url}/api/vitrine/webhooks/{made['id']}/deliveries", headers=bearer(admin)),
                     404, "NotFound")


def test_a_read_token_of_the_owner_may_look_but_not_change(hub: Server, receiver: Receiver) -> None:
    write = hub.token("hookro-user", "write")
    read = hub.token("hookro-user", "read")
    HfApi(endpoint=hub.url, token=write).create_repo("hookro-user/m")
    made = _register(hub, write, url=receiver.url("/ro"), events=["repo.content"], repo="hookro-user/m").json()
    assert [h["id"] for h in httpx.get(f"{hub.url}/api/vitrine/webhooks", headers=bearer(read)).json()] == [made["id"]]
    assert httpx.get(f"{hub.url}/api/vitrine/webhooks/{made['id']}/deliveries", headers=bearer(read)).json() == []
    assert_hub_error(httpx.delete(f"{hub.url}/api/vitrine/webhooks/{made['id']}", headers=bearer(read)), 403,
                     "Forbidden")


def _cli(hub: Server, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HF_ENDPOINT": hub.url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([VITRINE, *args], check=False, capture_output=True, text=True, env=env, timeout=120)


def test_cli_adds_lists_shows_deliveries_replays_and_removes(hub: Server, receiver: Receiver) -> None:
    token = hub.token("hookcli-user", "write")
    api = HfApi(endpoint=hub.url, token=token)
    api.create_repo("hookcli-user/m")
    out = _cli(hub, token, "webhook", "add", receiver.url("/cli"), "--repo", "hookcli-user/m", "--events",
               "repo.content,repo.refs", "--secret", SECRET)
    assert out.returncode == 0, out.stderr
    hook_id = int(out.stdout.split()[1])
    assert "models/hookcli-user/m" in out.stdout and "repo.content, repo.refs" in out.stdout
    listed = _cli(hub, token, "webhook", "list")
    assert listed.returncode == 0 and receiver.url("/cli") in listed.stdout, listed.stderr
    api.create_tag("hookcli-user/m", tag="t1")
    first = _until(lambda: [d for d in _deliveries(hub, token, hook_id) if d["status"] == "succeeded"],
                   what="the tag's delivery")[0]
    log = _cli(hub, token, "webhook", "deliveries", str(hook_id))
    assert log.returncode == 0 and "repo.refs" in log.stdout and "succeeded" in log.stdout, log.stderr
    replay = _cli(hub, token, "webhook", "replay", str(hook_id), str(first["id"]))
    assert replay.returncode == 0 and f"replay of {first['id']}" in replay.stdout, replay.stderr
    _until(lambda: len(receiver.at("/cli")) == 2, what="the replay")
    bad = _cli(hub, token, "webhook", "add", receiver.url("/cli"), "--namespace", "hookcli-user", "--events",
               "nope", "--secret", SECRET)
    assert bad.returncode == 1 and "Unknown event kind 'nope'" in bad.stderr
    gone = _cli(hub, token, "webhook", "remove", str(hook_id))
    assert gone.returncode == 0 and f"Removed webhook {hook_id}" in gone.stdout
    missing = _cli(hub, token, "webhook", "deliveries", str(hook_id))
    assert missing.returncode == 1 and f"Webhook {hook_id} not found" in missing.stderr


def test_console_page_lists_adds_replays_and_removes(hub: Server, receiver: Receiver) -> None:
    from streamlit.testing.v1 import AppTest

    token = hub.token("hookpage-user", "write")
    api = HfApi(endpoint=hub.url, token=token)
    api.create_repo("hookpage-user/m")
    made = _register(hub, token, url=receiver.url("/page"), events=["repo.refs"], repo="hookpage-user/m").json()
    api.create_tag("hookpage-user/m", tag="t1")
    _until(lambda: [d for d in _deliveries(hub, token, made["id"]) if d["status"] == "succeeded"],
           what="the tag's delivery")
    script = f"""
from huggingface_hub import HfApi
from apps.console import webhooks
from apps.console.client import VitrineClient
from apps.console.common import Hub
webhooks.render(Hub({hub.url!r}, {token!r}, HfApi(endpoint={hub.url!r}, token={token!r}),
                    VitrineClient({hub.url!r}, {token!r})))
"""
    at = AppTest.from_string(script, default_timeout=60).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.header[0].value == "Webhooks"
    assert at.dataframe[0].value["url"].tolist() == [receiver.url("/page")]
    log = at.dataframe[1].value
    assert log["status"].tolist() == ["succeeded"] and log["last code"].tolist() == [200]

    at.button(key="webhook_replay_" + str(made["id"])).click().run()
    assert not at.error and "Queued delivery" in at.success[0].value
    _until(lambda: len(receiver.at("/page")) == 2, what="the replay")

    at.text_input(key="webhook_url").input(receiver.url("/page-2"))
    at.text_input(key="webhook_target").input("hookpage-user/m")
    at.text_input(key="webhook_secret").input(SECRET)
    at.button[0].click().run()  # the form's submit button
    assert not at.error, [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 2

    at.text_input(key="webhook_url").input("ftp://nowhere")
    at.button[0].click().run()
    assert "http:// or https://" in at.error[0].value

    at.button(key="webhook_remove").click().run()
    assert [h["url"] for h in httpx.get(f"{hub.url}/api/vitrine/webhooks", headers=bearer(token)).json()] == [
        receiver.url("/page-2")]
