"""The console's Promote and Endpoints pages, driven by AppTest against the real hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from apps.console.endpoints import quantile, summarize
from tests.apps.hubmodels import push_task_model
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "apps" / "console" / "app.py")


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _console(hub: Server, monkeypatch: pytest.MonkeyPatch, token: str, **params: str) -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("VITRINE_ENDPOINT", hub.url)
    monkeypatch.setenv("VITRINE_TOKEN", token)
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def _run(widget: Any) -> Any:
    """Rerun the app after an interaction with `widget`; the AppTest."""
    at = widget.run()
    assert not at.exception, at.exception
    return at


def _aliases(hub: Server, token: str, repo: str) -> dict[str, Any]:
    r = httpx.get(f"{hub.url}/api/models/{repo}/aliases", params={"history": "1"}, headers=_bearer(token))
    r.raise_for_status()
    return dict(r.json())


def _production(hub: Server, token: str, repo: str) -> str | None:
    return next((a["commit"] for a in _aliases(hub, token, repo)["aliases"] if a["name"] == "production"), None)


def _frame(at: Any, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_promote_page_checks_gate_promotes_and_rolls_back(hub: Server, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token = hub.token("promoter", "write")
    api = HfApi(endpoint=hub.url, token=token)
    repo = "promoter/classifier"
    v1 = push_task_model(api, repo, "text-classification", tmp_path / "v1", seed=0)

    at = _console(hub, monkeypatch, token, page="Promote", repo=repo)
    assert at.header[0].value == "Promote"
    assert at.selectbox(key="promote_repo").value == repo
    assert any("No aliases yet" in i.value for i in at.info)
    # Nothing to roll back yet: the hub's message, not a traceback.
    _run(at.button(key="promote_rollback").click())
    assert at.error and "Traceback" not in at.error[0].value
    # Promote is locked until the gate has been checked; force without a reason stays locked.
    assert at.button(key="promote_go").disabled
    _run(at.checkbox(key="promote_force").check())
    assert at.button(key="promote_go").disabled
    assert any("needs a reason" in w.value for w in at.warning)
    _run(at.checkbox(key="promote_force").uncheck())

    at.selectbox(key="promote_revision").set_value(v1)
    _run(at.button(key="promote_check").click())
    assert not at.error, [e.value for e in at.error]
    assert any("No gate for this alias" in i.value for i in at.info)
    assert not at.button(key="promote_go").disabled
    at.text_input(key="promote_reason").set_value("first release")
    _run(at.button(key="promote_go").click())
    assert any("Promoted" in s.value for s in at.success), [e.value for e in at.error]
    assert _production(hub, token, repo) == v1
    aliases = _frame(at, "protected")
    assert list(aliases["alias"]) == ["production"] and aliases["commit"].iloc[0] == v1
    audit = _frame(at, "action")
    assert audit["action"].iloc[0] == "promote" and audit["to"].iloc[0] == v1[:10]
    assert audit["reason"].iloc[0] == "first release"

    v2 = push_task_model(api, repo, "text-classification", tmp_path / "v2", seed=3)
    at = _console(hub, monkeypatch, token, page="Promote", repo=repo)
    assert v2 in at.selectbox(key="promote_revision").options
    at.selectbox(key="promote_revision").set_value(v2)
    _run(at.button(key="promote_check").click())
    _run(at.button(key="promote_go").click())
    assert _production(hub, token, repo) == v2
    at.text_input(key="promote_rollback_reason").set_value("v2 misbehaves")
    _run(at.button(key="promote_rollback").click())
    assert any("Rolled back production" in s.value for s in at.success), [e.value for e in at.error]
    assert _production(hub, token, repo) == v1
    audit = _frame(at, "action")
    assert list(audit["action"])[:3] == ["rollback", "promote", "promote"]
    assert audit["to"].iloc[0] == v1[:10] and audit["from"].iloc[0] == v2[:10]
    assert audit["reason"].iloc[0] == "v2 misbehaves"
    history = _aliases(hub, token, repo)["history"]
    assert history[0]["action"] == "rollback" and history[0]["to"] == v1


def test_endpoints_page_opens_lists_and_reads_metrics(hub: Server, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    token = hub.token("servant", "write")
    api = HfApi(endpoint=hub.url, token=token)
    repo = "servant/classifier"
    v1 = push_task_model(api, repo, "text-classification", tmp_path / "v1", seed=1, private=True)
    r = httpx.post(f"{hub.url}/api/models/{repo}/promote", json={"revision": v1}, headers=_bearer(token), timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "promoted", r.text

    at = _console(hub, monkeypatch, token, page="Endpoints")
    assert at.header[0].value == "Endpoints"
    assert at.button(key="ep_open").disabled  # nothing to open yet
    _run(at.text_input(key="ep_repo").set_value(repo))
    _run(at.button(key="ep_open").click())
    assert not at.error, [e.value for e in at.error]
    assert any(f"/endpoints/{repo}" in m.value for m in [*at.success, *at.info])
    answer = httpx.post(f"{hub.url}/endpoints/{repo}", json={"inputs": "hello"}, headers=_bearer(token), timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-model-commit"] == v1

    _run(at.button(key="ep_refresh").click())
    listed = _frame(at, "endpoint")
    row = listed[listed["repo"] == repo].iloc[0]
    assert row["alias"] == "production" and row["commit"] == v1 and row["state"] == "ready"
    assert any(m.value.startswith(f"**State** `ready` · **Serving** `{v1[:10]}`") for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Requests"]) >= 1
    assert metrics["Error rate"] == "0.0%"
    assert metrics["Mean latency"].endswith(" ms")
    by_status = _frame(at, "status")
    assert "200" in list(by_status["status"])

    # Someone who may not read the private repo does not see its endpoint on the page.
    at = _console(hub, monkeypatch, hub.token("servant-outsider", "read"), page="Endpoints")
    shown = [d.value for d in at.dataframe if "endpoint" in d.value.columns]
    assert not shown or repo not in list(shown[0]["repo"])
    assert not any(h.value == f"{repo}@production" for h in at.subheader)


def test_metrics_summary_from_prometheus_text() -> None:
    text = """# TYPE vitrine_endpoint_requests_total counter
vitrine_endpoint_requests_total{status="200"} 8.0
vitrine_endpoint_requests_total{status="503"} 2.0
# TYPE vitrine_endpoint_request_duration_seconds histogram
vitrine_endpoint_request_duration_seconds_bucket{le="0.01"} 0.0
vitrine_endpoint_request_duration_seconds_bucket{le="0.1"} 5.0
vitrine_endpoint_request_duration_seconds_bucket{le="1.0"} 10.0
vitrine_endpoint_request_duration_seconds_bucket{le="+Inf"} 10.0
vitrine_endpoint_request_duration_seconds_count 10.0
vitrine_endpoint_request_duration_seconds_sum 2.5
# TYPE vitrine_endpoint_batch_size histogram
vitrine_endpoint_batch_size_bucket{le="1.0"} 2.0
vitrine_endpoint_batch_size_bucket{le="+Inf"} 4.0
vitrine_endpoint_batch_size_count 4.0
vitrine_endpoint_batch_size_sum 10.0
# TYPE vitrine_endpoint_queue_depth gauge
vitrine_endpoint_queue_depth 3.0
"""
    stats = summarize(text)
    assert stats["requests"] == 10 and stats["by_status"] == {"200": 8, "503": 2}
    assert stats["error_rate"] == pytest.approx(0.2)
    assert stats["latency_mean"] == pytest.approx(0.25)
    assert stats["latency_p50"] == pytest.approx(0.1)
    assert stats["latency_p99"] == pytest.approx(0.1 + 0.9 * 4.9 / 5)
    assert stats["batch_mean"] == pytest.approx(2.5) and stats["queue_depth"] == 3
    assert quantile([(1.0, 2.0), (float("inf"), 4.0)], 0.99) == 1.0
    assert quantile([], 0.5) is None
