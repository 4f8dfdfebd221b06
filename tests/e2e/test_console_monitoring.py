"""The console's Endpoints page watching a live pair: a shadow rule set from the page, agreement, charts over time,
a drift report without a baseline, and a prediction log that stopped writing; driven by AppTest against the real hub."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from apps.console.endpoints import confusion_frame, timeseries_frames
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
    at = widget.run()
    assert not at.exception, at.exception
    return at


def _until(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_endpoints_page_sets_a_shadow_and_shows_agreement_charts_and_drift(hub: Server, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    token = hub.token("watcher", "write")
    auth = _bearer(token)
    api = HfApi(endpoint=hub.url, token=token)
    repo = "watcher/classifier"
    c1 = push_task_model(api, repo, "text-classification", tmp_path / "v1", seed=1, private=True)
    c2 = push_task_model(api, repo, "text-classification", tmp_path / "v2", seed=2, private=True)
    assert c1 != c2
    for alias, commit in (("production", c1), ("canary", c2)):
        r = httpx.put(f"{hub.url}/api/models/{repo}/aliases/{alias}", json={"revision": commit}, headers=auth)
        assert r.status_code == 200, r.text
    first = httpx.post(f"{hub.url}/endpoints/{repo}", json={"inputs": "hello"}, headers=auth, timeout=120)
    assert first.status_code == 200, first.text

    key = f"{repo}@production"
    at = _console(hub, monkeypatch, token, page="Endpoints")
    assert not at.error, [e.value for e in at.error]
    assert any(m.value.startswith("**Now** off") for m in at.markdown)
    assert any(c.value.startswith("Prediction log: healthy") for c in at.caption)
    assert "canary" in at.selectbox(key=f"ep_target_{key}").options
    _run(at.radio(key=f"ep_mode_{key}").set_value("shadow"))
    at.selectbox(key=f"ep_target_{key}").set_value("canary")
    at.text_input(key=f"ep_reason_{key}").set_value("watch v2 beside v1")
    _run(at.button(key=f"ep_apply_{key}").click())
    assert any("is now shadow" in s.value for s in at.success), [e.value for e in at.error]
    rule = httpx.get(f"{hub.url}/api/models/{repo}/endpoints/production/traffic", headers=auth).json()
    assert rule["mode"] == "shadow" and rule["target"] == "canary"

    # The endpoint follows the rule and the shadow has loaded: from here every request is mirrored.
    _until(lambda: httpx.get(f"{hub.url}/endpoints/{repo}@canary/ready", headers=auth, timeout=60).status_code == 200,
           "the canary to load", timeout=60)
    _until(lambda: httpx.get(f"{hub.url}/endpoints/{repo}/ready", headers=auth,
                             timeout=30).json()["traffic"]["mode"] == "shadow", "the shadow rule")
    for i in range(10):
        r = httpx.post(f"{hub.url}/endpoints/{repo}", json={"inputs": f"review number {i}: lovely"}, headers=auth,
                       timeout=60)
        assert r.status_code == 200 and r.headers["x-model-commit"] == c1, r.text
    comparison_url = f"{hub.url}/api/models/{repo}/endpoints/production/comparison"
    report = _until(lambda: (lambda b: b if b["compared"] >= 10 else None)(
        httpx.get(comparison_url, params={"window": 3600}, headers=auth, timeout=60).json()), "10 compared pairs")
    assert report["other"] == "canary"

    _run(at.button(key="ep_refresh").click())
    assert not at.error, [e.value for e in at.error]
    assert any(m.value.startswith("**Now** shadow") and "`canary`" in m.value for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Agreement"] == f"{report['agreement']:.1%}"
    assert int(metrics["Compared"]) >= 10 and metrics["Other alias"] == "canary"
    confusion = next(d.value for d in at.dataframe if d.value.index.name == "production / canary")
    assert int(confusion.to_numpy().sum()) == int(metrics["Compared"])
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Request rate") for c in captions) and any(c.startswith("Latency p50") for c in captions)
    assert any(c.startswith("Error rate") for c in captions)
    assert len(at.get("vega_lite_chart")) >= 3  # request rate, error rate, latency (the canary's own too)

    # No evaluation of the served commit exists: the hub's refusal is shown as a hint, not an error.
    _run(at.button(key=f"ep_drift_{key}").click())
    hints = [i.value for i in at.info if "No finished evaluation" in i.value]
    assert hints and c1[:12] in hints[0] and "Evaluate page" in hints[0]
    assert not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("No ground truth posted") for c in at.caption)


def test_page_warns_when_the_prediction_log_stopped() -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from apps.console.endpoints import show_log_health

        show_log_health({"log": {"healthy": False, "error": "OSError: [Errno 28] No space left on device",
                                 "written": 12, "dropped": 3, "buffered": 0}})
        show_log_health({"log": {"healthy": True, "error": None, "written": 5, "dropped": 0, "buffered": 1}})

    at = AppTest.from_function(page)
    at.run()
    assert not at.exception, at.exception
    assert len(at.warning) == 1
    assert at.warning[0].value.startswith("Prediction log: logging stopped: OSError: [Errno 28] No space left")
    assert "requests are still served" in at.warning[0].value and "3 dropped" in at.warning[0].value
    assert at.caption[0].value.startswith("Prediction log: healthy · 5 rows written")


def test_chart_and_confusion_tables() -> None:
    points = [{"time": 600, "requests": 30, "errors": 3, "p50Ms": 5.0, "p99Ms": 9.0,
               "byAlias": {"production": 20, "canary": 10}},
              {"time": 660, "requests": 0, "errors": 0, "p50Ms": None, "p99Ms": None, "byAlias": {}}]
    frames = timeseries_frames(points, 60)
    assert list(frames["rate"]["requests/s"]) == [0.5, 0.0]
    assert list(frames["rate"]["canary requests/s"]) == pytest.approx([10 / 60, 0.0])
    assert list(frames["errors"]["error rate"]) == [0.1, 0.0]
    assert frames["latency"]["p99 ms"].iloc[0] == 9.0 and frames["latency"]["p50 ms"].isna().iloc[1]
    assert frames["rate"].index[0].timestamp() == 600
    table = confusion_frame({"NEG": {"NEG": 4, "POS": 1}, "POS": {"POS": 5}}, "production", "canary")
    assert list(table.index) == ["NEG", "POS"] and list(table.columns) == ["NEG", "POS"]
    assert table.loc["POS", "NEG"] == 0 and table.loc["NEG", "POS"] == 1
