"""Inference endpoints through the real hub: the stock InferenceClient, plain HTTP, a local pipeline and an evaluation
agree; bad input gets a 4xx while others are served; a load run sees zero failures while the alias moves twice; a
version that cannot load leaves the old one serving; a private repo's endpoint answers only its readers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi, InferenceClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, start_server
from tests.e2e.sentiment import push_reviews, push_versions, reviews
from tests.helpers import assert_hub_error, bearer, org_callers

ORG = "servteam"
MODEL = f"{ORG}/sentiment"
DATASET = f"{ORG}/reviews"
CALLERS = ("anonymous", "outsider", "read", "write", "admin")
TEXTS = ["The food was lovely.", "Service: rude.", "Das Essen war lecker.", "Une soirée ennuyeux, le personnel était lent."]



@pytest.fixture(scope="module")
def served(hub: Server, sentiment_versions: tuple[Path, Path]) -> dict[str, Any]:
    """A private org model with v1 promoted to production, and its endpoint loaded."""
    tokens = org_callers(hub, ORG, "serv")
    api = HfApi(endpoint=hub.url, token=tokens["admin"])
    good, flipped = sentiment_versions
    v1, v2 = push_versions(api, MODEL, good, flipped, private=True)
    push_reviews(api, DATASET, private=True)
    moved = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/production", json={"revision": v1},
                      headers=bearer(tokens["admin"]))
    assert moved.status_code == 200, moved.text
    url = f"{hub.url}/endpoints/{MODEL}"
    _wait_ready(url, tokens["read"], v1)
    return {"tokens": tokens, "api": api, "v1": v1, "v2": v2, "url": url, "good": good}


def _wait_ready(url: str, token: str | None, commit: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = httpx.get(f"{url}/ready", headers=bearer(token), timeout=30)
        if r.status_code == 200 and r.json()["commit"] == commit:
            return r.json()  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"{url} did not serve {commit} within {timeout}s: {r.status_code} {r.text}")


def _move(hub: Server, token: str | None, revision: str) -> None:
    r = httpx.put(f"{hub.url}/api/models/{MODEL}/aliases/production", json={"revision": revision},
                  headers=bearer(token))
    assert r.status_code == 200, r.text


def test_inference_client_http_pipeline_and_evaluation_agree(hub: Server, served: dict[str, Any]) -> None:
    from transformers import pipeline

    reader, admin = served["tokens"]["read"], served["tokens"]["admin"]
    client = InferenceClient(model=served["url"], token=reader)
    local = pipeline("text-classification", model=str(served["good"]))
    job = httpx.post(f"{hub.url}/api/vitrine/evals", headers=bearer(admin), json={
        "model": MODEL, "revision": served["v1"], "dataset": DATASET, "split": "test"}).json()
    deadline = time.time() + 300
    while job["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.5)
        job = httpx.get(f"{hub.url}/api/vitrine/evals/{job['id']}", headers=bearer(admin)).json()
    assert job["status"] == "succeeded", job
    rows = httpx.get(f"{hub.url}/api/vitrine/evals/{job['id']}/predictions", params={"limit": "8"},
                     headers=bearer(admin)).json()["rows"]
    dataset_texts = [str(t) for t in reviews(64, seed=5)["text"]]
    for row in rows:
        text = dataset_texts[row["row"]]
        stock = client.text_classification(text)
        plain = httpx.post(served["url"], json={"inputs": text}, headers=bearer(reader), timeout=60)
        assert plain.status_code == 200 and plain.headers["x-model-commit"] == served["v1"]
        expected = local(text, top_k=None)
        evaluated = json.loads(row["prediction"])
        assert stock[0].label == plain.json()[0][0]["label"] == expected[0]["label"] == evaluated["label"]
        assert stock[0].score == pytest.approx(expected[0]["score"], abs=1e-4)
        assert plain.json()[0][0]["score"] == pytest.approx(evaluated["score"], abs=1e-4)


def test_typed_predict_route_and_its_schema(served: dict[str, Any]) -> None:
    reader = served["tokens"]["read"]
    r = httpx.post(f"{served['url']}/predict", json={"instances": [{"text": t} for t in TEXTS]},
                   headers=bearer(reader), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["commit"] == served["v1"] == r.headers["x-model-commit"]
    assert [p["label"] for p in body["predictions"]] == [x[0]["label"] for x in httpx.post(
        served["url"], json={"inputs": TEXTS}, headers=bearer(reader), timeout=60).json()]
    schema = httpx.get(f"{served['url']}/openapi.json", headers=bearer(reader)).json()
    instance = schema["components"]["schemas"]["Instance_text_classification"]
    assert instance["properties"]["text"]["type"] == "string" and "text" in instance["required"]
    assert {"/", "/predict", "/health", "/ready", "/metrics"} <= set(schema["paths"])
    wrong = httpx.post(f"{served['url']}/predict", json={"instances": [{"text": 3}]}, headers=bearer(reader))
    assert_hub_error(wrong, 400, "BadRequest")


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400),
    (b'{"parameters": {}}', 400),
    (b'{"inputs": 5}', 400),
    (b'{"inputs": []}', 400),
    (b'{"inputs": "ok", "parameters": 3}', 400),
    (json.dumps({"inputs": ["x"] * 33}).encode(), 400),
    (json.dumps({"inputs": "word " * 20000}).encode(), 413),
    (b'{"inputs": "' + b"a" * (9 * 1024 * 1024) + b'"}', 413),
], ids=["malformed", "no-inputs", "wrong-type", "empty", "bad-parameters", "too-many", "too-long", "too-big"])
def test_bad_input_gets_a_4xx_and_the_endpoint_keeps_serving(served: dict[str, Any], body: bytes, status: int) -> None:
    reader = served["tokens"]["read"]
    r = httpx.post(served["url"], content=body, headers={**bearer(reader), "content-type": "application/json"},
                   timeout=60)
    assert r.status_code == status, r.text
    assert r.json()["error"]
    ok = httpx.post(served["url"], json={"inputs": TEXTS[0]}, headers=bearer(reader), timeout=60)
    assert ok.status_code == 200 and ok.headers["x-model-commit"] == served["v1"]


def test_health_ready_and_metrics(served: dict[str, Any]) -> None:
    reader = served["tokens"]["read"]
    assert httpx.get(f"{served['url']}/health", headers=bearer(reader)).json() == {"status": "ok"}
    ready = httpx.get(f"{served['url']}/ready", headers=bearer(reader)).json()
    assert ready["ready"] and ready["commit"] == served["v1"] and ready["task"] == "text-classification"
    text = httpx.get(f"{served['url']}/metrics", headers=bearer(reader)).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    info = [s for s in families["vitrine_endpoint_model_info"].samples if s.value == 1]
    assert [s.labels["commit"] for s in info] == [served["v1"]]
    requests = {s.labels["status"]: s.value for s in families["vitrine_endpoint_requests"].samples
                if s.name.endswith("_total")}
    assert requests.get("200", 0) >= 1
    batches = [s for s in families["vitrine_endpoint_batch_size"].samples if s.name.endswith("_count")]
    assert batches and batches[0].value >= 1
    assert "vitrine_endpoint_queue_depth" in families and "vitrine_endpoint_request_duration_seconds" in families


class _Load:
    """`clients` threads posting back to back; every answer's status and commit, per client, in order."""

    def __init__(self, url: str, token: str | None, clients: int) -> None:
        self.url, self.token = url, token
        self.stop = threading.Event()
        self.results: list[list[tuple[int, str]]] = [[] for _ in range(clients)]
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _client(self, i: int) -> None:
        with httpx.Client(timeout=60, headers=bearer(self.token)) as http:
            n = 0
            while not self.stop.is_set():
                try:
                    r = http.post(self.url, json={"inputs": TEXTS[(i + n) % len(TEXTS)]})
                    self.results[i].append((r.status_code, r.headers.get("x-model-commit", "")))
                except httpx.HTTPError as exc:
                    self.results[i].append((0, type(exc).__name__))
                n += 1

    def __enter__(self) -> _Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def failures(self) -> list[tuple[int, str]]:
        """Every answer that was not a 200."""
        return [r for rs in self.results for r in rs if r[0] != 200]

    def switches(self) -> list[list[str]]:
        """Per client, the commits it was served, with runs of the same commit collapsed."""
        out = []
        for rs in self.results:
            runs: list[str] = []
            for _, commit in rs:
                if not runs or runs[-1] != commit:
                    runs.append(commit)
            out.append(runs)
        return out


def test_zero_failed_requests_while_the_alias_moves_twice(hub: Server, served: dict[str, Any]) -> None:
    admin, reader = served["tokens"]["admin"], served["tokens"]["read"]
    v1, v2 = served["v1"], served["v2"]
    with _Load(served["url"], reader, clients=16) as load:
        time.sleep(5)
        _move(hub, admin, v2)
        _wait_ready(served["url"], reader, v2)
        time.sleep(5)
        _move(hub, admin, v1)
        _wait_ready(served["url"], reader, v1)
        time.sleep(max(0.0, 20 - 10 - 2))
    total = sum(len(r) for r in load.results)
    assert total > 16 * 5, f"only {total} requests in the run"
    assert load.failures() == []
    assert all(runs == [v1, v2, v1] for runs in load.switches()), load.switches()
    metrics = httpx.get(f"{served['url']}/metrics", headers=bearer(reader)).text
    swaps = {s.labels["outcome"]: s.value for f in text_string_to_metric_families(metrics)
             if f.name == "vitrine_endpoint_swaps" for s in f.samples if s.name.endswith("_total")}
    assert swaps.get("succeeded", 0) >= 3  # the first load and the two moves


def test_a_version_that_cannot_load_leaves_the_old_one_serving(hub: Server, served: dict[str, Any]) -> None:
    admin, reader = served["tokens"]["admin"], served["tokens"]["read"]
    api: HfApi = served["api"]
    broken = api.upload_file(path_or_fileobj=b'{"model_type": "no-such-architecture"}', path_in_repo="config.json",
                             repo_id=MODEL, commit_message="a config no library can load").oid
    with _Load(served["url"], reader, clients=8) as load:
        time.sleep(1)
        _move(hub, admin, broken)
        deadline = time.time() + 60
        while time.time() < deadline:
            ready = httpx.get(f"{served['url']}/ready", headers=bearer(reader)).json()
            if (ready.get("lastError") or {}).get("commit") == broken:
                break
            time.sleep(0.2)
        time.sleep(2)
    assert ready["ready"] and ready["commit"] == served["v1"] and ready["target"] == broken, ready
    assert "no-such-architecture" in ready["lastError"]["error"]
    assert load.failures() == []
    assert {c for rs in load.results for _, c in rs} == {served["v1"]}
    metrics = httpx.get(f"{served['url']}/metrics", headers=bearer(reader)).text
    assert 'vitrine_endpoint_swaps_total{outcome="failed"}' in metrics
    _move(hub, admin, served["v1"])


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("method, path", [("POST", ""), ("POST", "/predict"), ("GET", "/health"), ("GET", "/ready"),
                                          ("GET", "/metrics"), ("GET", "/openapi.json")])
def test_private_endpoint_answers_only_readers(hub: Server, served: dict[str, Any], method: str, path: str,
                                               who: str) -> None:
    token = served["tokens"][who]
    body = {"inputs": TEXTS[0]} if path == "" else {"instances": [{"text": TEXTS[0]}]}
    r = httpx.request(method, f"{served['url']}{path}", json=body if method == "POST" else None,
                      headers=bearer(token), timeout=60)
    if who in ("anonymous", "outsider"):
        assert_hub_error(r, 404, "RepoNotFound")
        assert served["v1"] not in r.text and "x-model-commit" not in r.headers
    else:
        assert r.status_code == 200, r.text
    listing = httpx.get(f"{hub.url}/api/vitrine/endpoints", headers=bearer(token)).json()["endpoints"]
    assert (MODEL in [e["repo"] for e in listing]) is (who not in ("anonymous", "outsider"))


def test_an_alias_with_no_target_is_a_clear_404(hub: Server, served: dict[str, Any]) -> None:
    reader = served["tokens"]["read"]
    r = httpx.post(f"{hub.url}/endpoints/{MODEL}@canary", json={"inputs": "x"}, headers=bearer(reader))
    assert_hub_error(r, 404, "NotFound")
    assert "promote" in r.json()["error"]


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path, sentiment_versions: tuple[Path, Path]) -> None:
    server = start_server(tmp_path / "home", VITRINE_ENDPOINT_MAX_QUEUE="2", VITRINE_ENDPOINT_MAX_BATCH="1")
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        v1, _ = push_versions(api, "solo/sentiment", *sentiment_versions, private=False)
        r = httpx.put(f"{server.url}/api/models/solo/sentiment/aliases/production", json={"revision": v1},
                      headers=bearer(server.admin_token))
        assert r.status_code == 200, r.text
        url = f"{server.url}/endpoints/solo/sentiment"
        _wait_ready(url, None, v1)
        statuses: list[tuple[int, str | None]] = []

        def one() -> None:
            resp = httpx.post(url, json={"inputs": ["The food was lovely."] * 2}, timeout=60)
            statuses.append((resp.status_code, resp.headers.get("retry-after")))

        threads = [threading.Thread(target=one) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert {s for s, _ in statuses} <= {200, 503}
        assert any(s == 200 for s, _ in statuses) and any(s == 503 for s, _ in statuses), statuses
        assert all(retry == "1" for s, retry in statuses if s == 503)
        metrics = httpx.get(f"{url}/metrics").text
        assert 'vitrine_endpoint_dropped_total{reason="queue_full"}' in metrics
    finally:
        server.stop()
