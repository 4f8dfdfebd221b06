"""Watching live versions through a real hub: canary share within a binomial bound, shadows mirrored and never
answering, a failing shadow that changes nothing for callers, the prediction log queried with DuckDB and surviving a
restart, drift on shifted traffic only, and live accuracy from ground truth posted later."""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from tests.conftest import VITRINE, free_port, start_server
from tests.e2e.sentiment import build_short_context, push_versions, reviews
from tests.helpers import assert_hub_error, bearer, org_callers

ORG = "monteam"
MODEL = f"{ORG}/sentiment"
DATASET = f"{ORG}/reviews"
BASELINE_ROWS = 400
CALLERS = ("anonymous", "outsider", "read", "write", "admin")



@pytest.fixture(scope="module")
def mon(tmp_path_factory: pytest.TempPathFactory, sentiment_versions: tuple[Path, Path]) -> Any:
    """A hub of this module's own (it is restarted), a private org model with aliases, a dataset, an evaluation."""
    home, port = tmp_path_factory.mktemp("monitoring") / "home", free_port()
    env = {"VITRINE_PREDICTION_LOG_ROLL_S": "1"}
    hub = start_server(home, port, **env)
    tokens = org_callers(hub, ORG, "mon")
    admin = tokens["admin"]
    api = HfApi(endpoint=hub.url, token=admin)
    good, flipped = sentiment_versions
    v1, v2 = push_versions(api, MODEL, good, flipped, private=True)
    short = build_short_context(good, tmp_path_factory.mktemp("short") / "short")
    v3 = api.upload_folder(folder_path=str(short), repo_id=MODEL, commit_message="16 positions only").oid
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    api.create_repo(DATASET, repo_type="dataset", private=True)
    buf = io.BytesIO()
    pq.write_table(pa.table(reviews(BASELINE_ROWS, seed=5)), buf)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet", repo_id=DATASET,
                    repo_type="dataset")
    for alias, commit in (("production", v1), ("canary", v2), ("short", v3), ("drift", v1), ("shifted", v1)):
        r = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/{alias}", json={"revision": commit},
                      headers=bearer(admin))
        assert r.status_code == 200, r.text
    job = httpx.post(f"{hub.url}/api/vitrine/evals", headers=bearer(admin), timeout=60, json={
        "model": MODEL, "revision": v1, "dataset": DATASET, "split": "test"}).json()
    state = {"hub": hub, "home": home, "port": port, "env": env, "tokens": tokens, "v1": v1, "v2": v2, "v3": v3,
             "eval": job["id"]}
    yield state
    state["hub"].stop()


def _url(mon: Any, alias: str = "production") -> str:
    suffix = "" if alias == "production" else f"@{alias}"
    return f"{mon['hub'].url}/endpoints/{MODEL}{suffix}"


def _ready(mon: Any, alias: str, commit: str, *, mode: str | None = None, target: str | None = None,
           timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = httpx.get(f"{_url(mon, alias)}/ready", headers=bearer(mon["tokens"]["read"]), timeout=30)
        body = r.json()
        if r.status_code == 200 and body["commit"] == commit and (mode is None or body["traffic"]["mode"] == mode) \
                and (target is None or body["traffic"]["target"] == target):
            return
        time.sleep(0.2)
    raise AssertionError(f"{alias} not serving {commit} (mode {mode}): {r.text}")


def _traffic(mon: Any, alias: str, *args: str) -> None:
    env = {"HF_ENDPOINT": mon["hub"].url, "HF_TOKEN": mon["tokens"]["admin"], "PATH": "/usr/bin:/bin"}
    done = subprocess.run([VITRINE, "endpoint", "traffic", MODEL, "--alias", alias, *args], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr


def _post_many(url: str, token: str | None, bodies: list[dict[str, Any]], clients: int = 8) -> list[httpx.Response]:
    out: list[httpx.Response | None] = [None] * len(bodies)
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=120, headers=bearer(token)) as http:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                out[i] = http.post(url, json=bodies[i])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return [r for r in out if r is not None]


def _report(mon: Any, alias: str, what: str, **params: str) -> dict[str, Any]:
    r = httpx.get(f"{mon['hub'].url}/api/models/{MODEL}/endpoints/{alias}/{what}", params=params,
                  headers=bearer(mon["tokens"]["read"]), timeout=300)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_canary_answers_its_share_and_disagrees_where_it_should(mon: Any) -> None:
    _ready(mon, "canary", mon["v2"])
    _traffic(mon, "production", "--canary", "canary", "--share", "0.3", "--reason", "try v2 on 30%")
    _ready(mon, "production", mon["v1"], mode="canary")
    n, share = 300, 0.3
    texts = [str(t) for t in reviews(n, seed=21)["text"]]
    answers = _post_many(_url(mon), mon["tokens"]["read"], [{"inputs": t} for t in texts])
    assert [r.status_code for r in answers] == [200] * n
    by_alias = [r.headers["x-served-alias"] for r in answers]
    served = by_alias.count("canary")
    assert all(r.headers["x-model-commit"] == (mon["v2"] if a == "canary" else mon["v1"])
               for r, a in zip(answers, by_alias, strict=True))
    # Within four standard deviations of the binomial: a false alarm once in ~16,000 runs.
    assert abs(served - n * share) <= 4 * math.sqrt(n * share * (1 - share)), served
    deadline = time.time() + 30
    while time.time() < deadline and _report(mon, "production", "comparison")["compared"] < served:
        time.sleep(0.5)
    report = _report(mon, "production", "comparison")
    # v2 is v1 with its two output rows swapped: on every input both saw, they disagree.
    assert report["other"] == "canary" and report["compared"] == served and report["agreement"] == 0.0
    assert all(mine != theirs for mine, row in report["confusion"].items() for theirs in row)
    history = httpx.get(f"{mon['hub'].url}/api/models/{MODEL}/aliases/production/history",
                        headers=bearer(mon["tokens"]["read"])).json()["history"]
    assert history[0]["action"] == "traffic" and history[0]["evidence"]["traffic"]["share"] == 0.3
    assert history[0]["reason"] == "try v2 on 30%"


def test_shadow_sees_every_request_and_never_answers(mon: Any) -> None:
    _traffic(mon, "production", "--shadow", "canary")
    _ready(mon, "production", mon["v1"], mode="shadow", target="canary")
    before = _report(mon, "production", "comparison")["compared"]
    texts = [str(t) for t in reviews(60, seed=22)["text"]]
    answers = _post_many(_url(mon), mon["tokens"]["read"], [{"inputs": t} for t in texts])
    assert all(r.status_code == 200 and r.headers["x-served-alias"] == "production"
               and r.headers["x-model-commit"] == mon["v1"] for r in answers)
    deadline = time.time() + 30
    while time.time() < deadline and _report(mon, "production", "comparison")["compared"] < before + len(texts):
        time.sleep(0.5)
    assert _report(mon, "production", "comparison")["compared"] == before + len(texts)


def test_a_failing_shadow_changes_nothing_for_callers(mon: Any) -> None:
    _ready(mon, "short", mon["v3"])
    _traffic(mon, "production", "--shadow", "short")
    _ready(mon, "production", mon["v1"], mode="shadow", target="short")
    long_texts = [" ".join(str(t) for t in reviews(6, seed=30 + i)["text"]) for i in range(40)]
    answers = _post_many(_url(mon), mon["tokens"]["read"], [{"inputs": t} for t in long_texts])
    assert all(r.status_code == 200 and r.headers["x-model-commit"] == mon["v1"] for r in answers)
    failed = "SELECT count(*) FROM log WHERE role = 'mirror' AND served_alias = 'short' AND error IS NOT NULL"
    deadline = time.time() + 60  # mirrors run once the primary is idle: after the burst
    while time.time() < deadline and _sql(mon, failed)[0][0] < len(long_texts):
        time.sleep(0.5)
    metrics = httpx.get(f"{_url(mon)}/metrics", headers=bearer(mon["tokens"]["read"])).text
    outcomes = {line.split('"')[1]: float(line.split()[-1]) for line in metrics.splitlines()
                if line.startswith("vitrine_endpoint_mirrors_total")}
    assert _sql(mon, failed)[0][0] == len(long_texts), outcomes
    assert outcomes.get("failed", 0) >= len(long_texts), outcomes
    _traffic(mon, "production", "--off")


def _sql(mon: Any, sql: str, alias: str = "production") -> list[list[Any]]:
    r = httpx.post(f"{mon['hub'].url}/api/models/{MODEL}/endpoints/{alias}/log/sql", json={"sql": sql},
                   headers=bearer(mon["tokens"]["write"]), timeout=120)
    assert r.status_code == 200, r.text
    return r.json()["rows"]  # type: ignore[no-any-return]


def test_the_prediction_log_has_every_request_and_survives_a_restart(mon: Any) -> None:
    _ready(mon, "production", mon["v1"], mode="off")
    texts = [f"Logged review number {i}: the food was lovely." for i in range(40)]
    answers = _post_many(_url(mon), mon["tokens"]["read"], [{"inputs": t} for t in texts])
    ids = {r.headers["x-request-id"]: t for r, t in zip(answers, texts, strict=True)}
    sql = "SELECT request_id, input, commit FROM log WHERE role = 'answer' AND contains(input, 'Logged review')"

    def logged() -> dict[str, tuple[str, str]]:
        return {row[0]: (json.loads(row[1])["text"], row[2]) for row in _sql(mon, sql)}

    assert {k: v[0] for k, v in logged().items()} == ids
    assert {v[1] for v in logged().values()} == {mon["v1"]}
    series = _report(mon, "production", "timeseries", window="3600", bucket="3600")["points"]
    counted = _sql(mon, "SELECT count(*) FROM log WHERE role = 'answer' AND input_index = 0")[0][0]
    assert sum(p["requests"] for p in series) == counted and all(p["p99Ms"] >= p["p50Ms"] > 0 for p in series)
    mon["hub"].stop()
    mon["hub"] = start_server(mon["home"], mon["port"], **mon["env"])
    assert {k: v[0] for k, v in logged().items()} == ids
    env = {"HF_ENDPOINT": mon["hub"].url, "HF_TOKEN": mon["tokens"]["write"], "PATH": "/usr/bin:/bin",
           "COLUMNS": "200"}
    cli = subprocess.run([VITRINE, "endpoint", "log", MODEL, "SELECT count(*) AS n FROM log WHERE role = 'answer' "
                          "AND contains(input, 'Logged review')"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert cli.returncode == 0 and str(len(ids)) in cli.stdout, cli.stderr


def _wait_eval(mon: Any) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        job = httpx.get(f"{mon['hub'].url}/api/vitrine/evals/{mon['eval']}",
                        headers=bearer(mon["tokens"]["admin"])).json()
        if job["status"] == "succeeded":
            return
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.5)
    raise AssertionError("the baseline evaluation did not finish")


def _send_batched(mon: Any, alias: str, texts: list[str]) -> None:
    bodies = [{"inputs": texts[i:i + 32]} for i in range(0, len(texts), 32)]
    answers = _post_many(_url(mon, alias), mon["tokens"]["read"], bodies, clients=4)
    assert all(r.status_code == 200 for r in answers)


def test_drift_is_reported_for_shifted_traffic_only(mon: Any) -> None:
    import hashlib
    import hmac

    from tests.e2e.receiver import Receiver

    receiver = Receiver()
    hook = httpx.post(f"{mon['hub'].url}/api/vitrine/webhooks", headers=bearer(mon["tokens"]["write"]), json={
        "url": receiver.url("/drift"), "secret": "drift-secret", "events": ["drift.detected"], "repo": MODEL})
    assert hook.status_code == 201, hook.text
    _wait_eval(mon)
    _ready(mon, "drift", mon["v1"])
    _send_batched(mon, "drift", [str(t) for t in reviews(BASELINE_ROWS, seed=41)["text"]])
    stable = _report(mon, "drift", "drift")
    assert stable["status"] == "stable", stable
    assert stable["baseline"]["eval"] == mon["eval"] and stable["live"]["rows"] == BASELINE_ROWS
    assert {f["name"] for f in stable["features"]} == {"label", "score", "text_length", "token_count"}
    assert all(f["band"] == "stable" for f in stable["features"])

    # Longer texts (three reviews in one) and a skewed label mix (mostly positive reviews).
    pool = reviews(3 * BASELINE_ROWS, seed=42)
    positive = [str(t) for t, lab in zip(pool["text"], pool["label"], strict=True) if lab == "positive"]
    shifted = [" ".join(positive[i:i + 3]) for i in range(0, 3 * (len(positive) // 3), 3)]
    _ready(mon, "shifted", mon["v1"])
    _send_batched(mon, "shifted", shifted)
    drifted = _report(mon, "shifted", "drift")
    assert drifted["status"] == "drifted", drifted
    assert {"label", "text_length", "token_count"} <= set(drifted["drifted"])
    by_name = {f["name"]: f for f in drifted["features"]}
    assert by_name["text_length"]["psi"] > 0.25 and by_name["text_length"]["pvalue"] < 0.05
    assert by_name["text_length"]["liveMean"] > 2 * by_name["text_length"]["baselineMean"]
    assert by_name["label"]["test"] == "chi-squared" and by_name["text_length"]["test"] == "kolmogorov-smirnov"
    # The drifted report (and only it) reached the repo's webhook, signed.
    deadline = time.time() + 30
    while time.time() < deadline and not receiver.at("/drift"):
        time.sleep(0.2)
    received = receiver.at("/drift")
    receiver.close()
    assert len(received) == 1
    payload = json.loads(received[0]["body"])
    assert payload["event"]["scope"] == "vitrine.drift" and payload["drift"]["alias"] == "shifted"
    assert set(payload["drift"]["features"]) == set(drifted["drifted"])
    expected = hmac.new(b"drift-secret", received[0]["body"], hashlib.sha256).hexdigest()
    assert received[0]["headers"]["x-webhook-signature"] == f"sha256={expected}"


def test_live_accuracy_from_ground_truth_posted_later(mon: Any, tmp_path: Path) -> None:
    data = reviews(40, seed=51)
    answers = _post_many(_url(mon, "drift"), mon["tokens"]["read"], [{"inputs": str(t)} for t in data["text"]])
    truth = {r.headers["x-request-id"]: str(label) for r, label in zip(answers, data["label"], strict=True)}
    predicted = {r.headers["x-request-id"]: r.json()[0][0]["label"] for r in answers}
    lines = tmp_path / "labels.jsonl"
    lines.write_text("".join(json.dumps({"requestId": k, "label": v}) + "\n" for k, v in truth.items()))
    env = {"HF_ENDPOINT": mon["hub"].url, "HF_TOKEN": mon["tokens"]["write"], "PATH": "/usr/bin:/bin"}
    done = subprocess.run([VITRINE, "endpoint", "feedback", MODEL, "--alias", "drift", str(lines)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and "Stored 40 labels" in done.stdout, done.stderr
    report = _report(mon, "drift", "accuracy")
    assert report["labelled"] == 40
    expected = sum(predicted[k] == truth[k] for k in truth) / len(truth)
    assert report["commits"][mon["v1"]]["metrics"]["accuracy"] == pytest.approx(expected)


_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "traffic"): {"anonymous": 404, "outsider": 404, "read": 200, "write": 200, "admin": 200},
    ("PUT", "traffic"): {"anonymous": 404, "outsider": 404, "read": 403, "write": 200, "admin": 200},
    ("POST", "log/sql"): {"anonymous": 404, "outsider": 404, "read": 403, "write": 200, "admin": 200},
    ("GET", "comparison"): {"anonymous": 404, "outsider": 404, "read": 200, "write": 200, "admin": 200},
    ("GET", "drift"): {"anonymous": 404, "outsider": 404, "read": 200, "write": 200, "admin": 200},
    ("POST", "feedback"): {"anonymous": 404, "outsider": 404, "read": 403, "write": 200, "admin": 200},
    ("GET", "accuracy"): {"anonymous": 404, "outsider": 404, "read": 200, "write": 200, "admin": 200},
    ("GET", "timeseries"): {"anonymous": 404, "outsider": 404, "read": 200, "write": 200, "admin": 200},
}
_BODIES = {"traffic": {"mode": "off"}, "log/sql": {"sql": "SELECT count(*) FROM log"},
           "feedback": {"labels": [{"requestId": "perm-check", "label": "positive"}]}}


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("route", list(_ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_monitoring_route_permissions(mon: Any, route: tuple[str, str], who: str) -> None:
    method, what = route
    alias = "drift"
    r = httpx.request(method, f"{mon['hub'].url}/api/models/{MODEL}/endpoints/{alias}/{what}",
                      json=_BODIES.get(what) if method != "GET" else None, headers=bearer(mon["tokens"][who]),
                      timeout=300)
    expected = _ROUTES[route][who]
    if expected == 200:
        assert r.status_code == 200, r.text
    else:
        assert_hub_error(r, expected, "RepoNotFound" if expected == 404 else "Forbidden")
        assert mon["v1"] not in r.text


@pytest.mark.parametrize("body", [{"mode": "sideways"}, {"mode": "canary", "target": "canary", "share": 1.5},
                                  {"mode": "canary", "target": "no-such-alias", "share": 0.1},
                                  {"mode": "shadow", "target": "drift"}, {"mode": 3}])
def test_bad_traffic_rules_are_refused_and_change_nothing(mon: Any, body: dict[str, Any]) -> None:
    before = httpx.get(f"{mon['hub'].url}/api/models/{MODEL}/endpoints/drift/traffic",
                       headers=bearer(mon["tokens"]["read"])).json()
    r = httpx.put(f"{mon['hub'].url}/api/models/{MODEL}/endpoints/drift/traffic", json=body,
                  headers=bearer(mon["tokens"]["admin"]))
    assert_hub_error(r, 400, "BadRequest")
    after = httpx.get(f"{mon['hub'].url}/api/models/{MODEL}/endpoints/drift/traffic",
                      headers=bearer(mon["tokens"]["read"])).json()
    assert before == after
