"""Evaluations through the real hub: metrics equal a hand-written loop, slices equal filtered subsets, results cached,
pushed as `.eval_results`, refused early on bad input, and visible only to who may read both repos."""

from __future__ import annotations

import io
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.apps.hubmodels import push_task_model
from tests.apps.models import WORDS
from tests.conftest import VITRINE, Server
from tests.helpers import assert_hub_error

LABELS = ["negative", "neutral", "positive"]
ORG = "evalteam"
MODEL = f"{ORG}/sentiment"
DATASET = f"{ORG}/reviews"


def _rows(n: int, seed: int = 7) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    return {
        "text": [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)],
        "label": [rng.choice(LABELS) for _ in range(n)],
        "lang": [rng.choice(["de", "en", "fr"]) for _ in range(n)],
    }


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def setup(hub: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A private model in two versions and a private dataset with a test split of 48 rows, in one org."""
    writer = hub.token("eval-writer", "write", org=ORG)
    api = HfApi(endpoint=hub.url, token=writer)
    root = tmp_path_factory.mktemp("eval-models")
    v1 = push_task_model(api, MODEL, "text-classification", root / "v1", seed=0, private=True)
    api.create_tag(MODEL, tag="v1", revision=v1)
    v2 = push_task_model(api, MODEL, "text-classification", root / "v2", seed=3)
    api.create_tag(MODEL, tag="v2", revision=v2)
    api.create_repo(DATASET, repo_type="dataset", private=True)
    rows = _rows(48)
    buf = io.BytesIO()
    pq.write_table(pa.table(rows), buf)
    api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=DATASET, repo_type="dataset")
    empty = io.BytesIO()
    pq.write_table(pa.table({k: pa.array([], type=pa.string()) for k in rows}), empty)
    info = api.upload_file(path_or_fileobj=empty.getvalue(), path_in_repo="data/validation-00000-of-00001.parquet",
                           repo_id=DATASET, repo_type="dataset")
    return {"writer": writer, "v1": v1, "v2": v2, "rows": rows, "dataset_commit": info.oid, "api": api}


def _wait(hub: Server, token: str, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = httpx.get(f"{hub.url}/api/vitrine/evals/{job_id}", headers=_bearer(token)).json()
        if job["status"] not in ("queued", "running"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"evaluation {job_id} did not finish")


def _hand_metrics(refs: list[str], preds: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {
        "accuracy": accuracy_score(refs, preds),
        "f1_macro": f1_score(refs, preds, average="macro", labels=LABELS, zero_division=0),
        "f1_weighted": f1_score(refs, preds, average="weighted", labels=LABELS, zero_division=0),
        "precision_macro": precision_score(refs, preds, average="macro", labels=LABELS, zero_division=0),
        "recall_macro": recall_score(refs, preds, average="macro", labels=LABELS, zero_division=0),
    }


def test_cli_eval_equals_a_hand_written_loop_with_slices(hub: Server, setup: dict[str, Any]) -> None:
    from transformers import pipeline

    out = subprocess.run(
        [VITRINE, "eval", f"{MODEL}@v1", "--dataset", f"{DATASET}@main", "--split", "test", "--slice", "lang",
         "--where", "short=length(text) < 30", "--endpoint", hub.url, "--token", setup["writer"], "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout and f"{MODEL}@{setup['v1'][:7]}" in out.stdout
    jobs = httpx.get(f"{hub.url}/api/vitrine/evals", params={"model": MODEL}, headers=_bearer(setup["writer"])).json()
    result = jobs[0]["result"]
    assert result["model"]["commit"] == setup["v1"] and result["dataset"]["commit"] == setup["dataset_commit"]

    # The same rows through transformers.pipeline and scikit-learn by hand.
    pipe = pipeline("text-classification", model=MODEL, revision=setup["v1"], token=setup["writer"])
    rows = setup["rows"]
    preds = [p["label"] for p in pipe(rows["text"], batch_size=8)]
    expected = _hand_metrics(rows["label"], preds)
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value), name
    for lang in ("de", "en", "fr"):
        idx = [i for i, v in enumerate(rows["lang"]) if v == lang]
        sub = _hand_metrics([rows["label"][i] for i in idx], [preds[i] for i in idx])
        assert result["slices"]["lang"][lang]["rows"] == len(idx)
        assert result["slices"]["lang"][lang]["accuracy"] == pytest.approx(sub["accuracy"])
        assert result["slices"]["lang"][lang]["f1_macro"] == pytest.approx(sub["f1_macro"])
    short = [i for i, t in enumerate(rows["text"]) if len(t) < 30]
    assert result["predicates"]["short"]["rows"] == len(short)
    assert result["predicates"]["short"]["accuracy"] == pytest.approx(
        _hand_metrics([rows["label"][i] for i in short], [preds[i] for i in short])["accuracy"])

    # Per-example predictions, queryable: the rows where the model was wrong.
    wrong = httpx.get(f"{hub.url}/api/vitrine/evals/{jobs[0]['id']}/predictions",
                      params={"where": "NOT correct", "limit": 1000}, headers=_bearer(setup["writer"])).json()
    assert len(wrong["rows"]) == sum(p != r for p, r in zip(preds, rows["label"], strict=True))


def test_same_inputs_return_the_stored_result_without_inference(hub: Server, setup: dict[str, Any]) -> None:
    body = {"model": MODEL, "revision": "v2", "dataset": DATASET, "split": "test"}
    first = httpx.post(f"{hub.url}/api/vitrine/evals", json=body, headers=_bearer(setup["writer"]))
    assert first.status_code in (200, 202), first.text
    done = _wait(hub, setup["writer"], first.json()["id"])
    assert done["status"] == "succeeded"
    # v2 is a tag: pinned to the same commit, the same inputs give the same key, hence the stored job.
    again = httpx.post(f"{hub.url}/api/vitrine/evals", json={**body, "revision": setup["v2"]},
                       headers=_bearer(setup["writer"]))
    assert again.status_code == 200 and again.json()["cached"] is True and again.json()["id"] == done["id"]
    rerun = httpx.post(f"{hub.url}/api/vitrine/evals", json={**body, "rerun": True}, headers=_bearer(setup["writer"]))
    assert rerun.status_code == 202 and rerun.json()["id"] != done["id"]
    assert _wait(hub, setup["writer"], rerun.json()["id"])["result"]["metrics"] == done["result"]["metrics"]


@pytest.mark.parametrize(("change", "status", "contains"), [
    ({"mapping": {"text": "review"}}, 400, "no column for text=review"),
    ({"split": "train"}, 400, "has no split 'train'"),
    ({"split": "validation"}, 400, "is empty"),
    ({"datasetRevision": "no-such-branch"}, 404, "no-such-branch"),
    ({"revision": "nope"}, 404, "nope"),
    ({"predicates": {"bad": "lang = "}}, 400, ""),
    ({"mapping": {"label": "lang"}}, 400, "labels"),
])
def test_bad_requests_fail_before_any_inference(hub: Server, setup: dict[str, Any], change: dict[str, Any],
                                                status: int, contains: str) -> None:
    before = len(httpx.get(f"{hub.url}/api/vitrine/evals", headers=_bearer(setup["writer"])).json())
    body = {"model": MODEL, "revision": "v1", "dataset": DATASET, "split": "test", **change}
    r = httpx.post(f"{hub.url}/api/vitrine/evals", json=body, headers=_bearer(setup["writer"]))
    assert r.status_code == status, r.text
    assert contains in r.json()["error"]
    assert len(httpx.get(f"{hub.url}/api/vitrine/evals", headers=_bearer(setup["writer"])).json()) == before


def test_push_writes_eval_results_the_stock_client_reads(hub: Server, setup: dict[str, Any]) -> None:
    out = subprocess.run(
        [VITRINE, "eval", f"{MODEL}@main", "--dataset", DATASET, "--push", "--endpoint", hub.url,
         "--token", setup["writer"], "--quiet"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    info = setup["api"].model_info(MODEL, expand=["evalResults"])
    entries = {e.task_id: e for e in info.eval_results or []}
    assert entries["test/accuracy"].dataset_id == DATASET
    assert entries["test/accuracy"].dataset_revision == setup["dataset_commit"]
    board = setup["api"].get_dataset_leaderboard(DATASET)
    assert [e.model_id for e in board if getattr(e, "taskId", None) == "test/accuracy"] == [MODEL]


@pytest.mark.parametrize("who", ["anonymous", "outsider", "read", "write", "admin"])
def test_evaluation_routes_follow_both_repos_visibility(hub: Server, setup: dict[str, Any], who: str) -> None:
    tokens = {"anonymous": None, "outsider": hub.token("eval-outsider", "write"),
              "read": hub.token("eval-reader", "read", org=ORG), "write": setup["writer"], "admin": hub.admin_token}
    token = tokens[who]
    listed = httpx.get(f"{hub.url}/api/vitrine/evals", headers=_bearer(token))
    assert listed.status_code == 200
    visible = who in ("read", "write", "admin")
    mine = [j for j in listed.json() if j["params"]["dataset"] == DATASET]
    assert bool(mine) is visible
    any_job = httpx.get(f"{hub.url}/api/vitrine/evals", headers=_bearer(setup["writer"])).json()[0]
    one = httpx.get(f"{hub.url}/api/vitrine/evals/{any_job['id']}", headers=_bearer(token))
    if visible:
        assert one.status_code == 200
    else:
        assert_hub_error(one, 404)
    start = httpx.post(f"{hub.url}/api/vitrine/evals", headers=_bearer(token),
                       json={"model": MODEL, "dataset": DATASET, "split": "test", "revision": "v1"})
    expected = {"anonymous": (401,), "outsider": (404,)}.get(who, (200, 202))
    assert start.status_code in expected, start.text


def test_a_job_running_when_the_hub_dies_is_resumed_after_restart(tmp_path: Path, setup: dict[str, Any]) -> None:
    import signal

    from tests.conftest import free_port, start_server

    home = tmp_path / "crash-home"
    server = start_server(home, free_port())
    try:
        api = HfApi(endpoint=server.url, token=server.admin_token)
        push_task_model(api, "crash/model", "text-classification", tmp_path / "m")
        api.create_repo("crash/data", repo_type="dataset")
        buf = io.BytesIO()
        pq.write_table(pa.table(_rows(3000, seed=1)), buf)
        api.upload_file(path_or_fileobj=buf.getvalue(), path_in_repo="data/test-00000-of-00001.parquet",
                        repo_id="crash/data", repo_type="dataset")
        r = httpx.post(f"{server.url}/api/vitrine/evals", headers=_bearer(server.admin_token),
                       json={"model": "crash/model", "dataset": "crash/data", "split": "test", "batchSize": 4})
        job_id = r.json()["id"]
        deadline = time.time() + 120
        while httpx.get(f"{server.url}/api/vitrine/evals/{job_id}",
                        headers=_bearer(server.admin_token)).json()["progress"]["done"] == 0:
            assert time.time() < deadline
            time.sleep(0.1)
        server.stop(signal.SIGKILL)
        server = start_server(home, free_port())
        job = _wait(server, server.admin_token, job_id, timeout=600)
        assert job["status"] == "succeeded" and job["attempts"] == 2 and job["result"]["rows"] == 3000
    finally:
        server.stop()
