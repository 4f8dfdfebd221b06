"""The Endpoints page: every endpoint the hub serves, the commit each serves, its last failure and its metrics,
and per endpoint its canary or shadow rule, their agreement, charts over time, drift, live accuracy and log health."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd
import streamlit as st
from prometheus_client.parser import text_string_to_metric_families

from apps.console.client import HubError
from apps.console.common import Hub, attempt, explain, query

MAX_SAMPLES = 120
MODES = ("off", "canary", "shadow")
# The window selector: label -> (window seconds, bucket seconds); about 60-100 points per chart.
WINDOWS = {"15 min": (900, 15), "1 h": (3600, 60), "24 h": (86400, 900)}
DRIFT_HINT = ("Drift compares live traffic with an evaluation of the commit this alias serves: run one on the "
              "Evaluate page (or `vitrine eval REPO@COMMIT --dataset OWNER/NAME`), then press Drift report again.")


def render(hub: Hub) -> None:
    """Render the page."""
    st.header("Endpoints")
    open_endpoint(hub)
    st.button("Refresh", key="ep_refresh")
    found = attempt(hub.client.endpoints)
    if found is None:
        return
    if not found:
        st.info("No endpoint is running yet: open one above, or send a request to `/endpoints/<namespace>/<name>`.")
        return
    st.dataframe([{"endpoint": e.get("url"), "repo": e.get("repo"), "alias": e.get("alias"), "state": e.get("state"),
                   "commit": e.get("commit"), "target": e.get("target"), "queue": e.get("queueDepth"),
                   "last error": (e.get("lastError") or {}).get("error") or ""} for e in found], width="stretch")
    for endpoint in found:
        show_endpoint(hub, endpoint)
        show_monitoring(hub, endpoint)


def open_endpoint(hub: Hub) -> None:
    """A repo and alias to open: calling the endpoint's `/ready` starts it on this hub."""
    with st.expander("Open an endpoint", expanded=not st.session_state.get("ep_opened")):
        cols = st.columns(2)
        repo = cols[0].text_input("Model repo (namespace/name)", query("repo") or "", key="ep_repo").strip()
        alias = cols[1].text_input("Alias", "production", key="ep_alias").strip() or "production"
        if st.button("Open", key="ep_open", disabled=not repo):
            url = hub.client.endpoint_url(repo, alias)
            status = attempt(lambda: hub.client.endpoint_ready(url))
            if status is None:
                return
            st.session_state["ep_opened"] = url
            if status.get("ready"):
                st.success(f"{url} is ready, serving {str(status.get('commit'))[:10]}.")
            else:
                st.info(f"{url} is {status.get('state')}: the model is loading; refresh in a few seconds.")


def show_endpoint(hub: Hub, endpoint: dict[str, Any]) -> None:
    """One endpoint: its state, the commit served against the alias's target, a failed load, its metrics."""
    url = str(endpoint.get("url"))
    st.subheader(f"{endpoint.get('repo')}@{endpoint.get('alias')}")
    commit, target = endpoint.get("commit"), endpoint.get("target")
    st.markdown(f"**State** `{endpoint.get('state')}` · **Serving** `{str(commit or '—')[:10]}` · "
                f"**Alias target** `{str(target or '—')[:10]}` · **Task** `{endpoint.get('task') or '—'}` · "
                f"**URL** `{url}`")
    error = endpoint.get("lastError")
    if error:
        failed = str(error.get("commit") or "")[:10]
        still = (f" The previous version {str(commit)[:10]} keeps serving." if commit
                 else " No version is loaded.")
        st.error(f"Loading {failed} failed at {error.get('at')}: {error.get('error')}.{still}")
    elif commit and target and commit != target:
        st.info(f"Switching to {str(target)[:10]}: {str(commit)[:10]} serves until the new version has loaded.")
    text = attempt(lambda: hub.client.endpoint_metrics(url))
    if text is None:
        return
    stats = summarize(text)
    cols = st.columns(6)
    cols[0].metric("Requests", stats["requests"])
    cols[1].metric("Error rate", _fmt(stats["error_rate"], pct=True))
    cols[2].metric("Mean latency", _ms(stats["latency_mean"]))
    cols[3].metric("p50 / p99", f"{_ms(stats['latency_p50'])} / {_ms(stats['latency_p99'])}")
    cols[4].metric("Mean batch", _fmt(stats["batch_mean"]))
    cols[5].metric("Queue depth", int(stats["queue_depth"]))
    if stats["by_status"]:
        st.dataframe([{"status": k, "requests": v} for k, v in sorted(stats["by_status"].items())], width="stretch")
    if stats["dropped"] or stats["swaps"]:
        st.caption("Dropped: " + (", ".join(f"{k} {v:g}" for k, v in stats["dropped"].items()) or "none")
                   + " · Swaps: " + (", ".join(f"{k} {v:g}" for k, v in stats["swaps"].items()) or "none"))
    samples = record_sample(url, stats)
    if len(samples) >= 2:
        st.line_chart([{"requests": s["requests"], "p50 ms": (s["latency_p50"] or 0) * 1000,
                        "p99 ms": (s["latency_p99"] or 0) * 1000} for s in samples])


def show_monitoring(hub: Hub, endpoint: dict[str, Any]) -> None:
    """An endpoint's log health, traffic rule, agreement with its pair, charts, drift and live accuracy."""
    repo, alias = str(endpoint.get("repo")), str(endpoint.get("alias") or "production")
    key = f"{repo}@{alias}"
    show_log_health(endpoint)
    label = st.selectbox("Window", list(WINDOWS), index=1, key=f"ep_window_{key}")
    window, bucket = WINDOWS[str(label)]
    for section in (lambda: show_traffic(hub, repo, alias, key), lambda: show_comparison(hub, repo, alias, window),
                    lambda: show_timeseries(hub, repo, alias, window, bucket),
                    lambda: show_drift(hub, repo, alias, window, key),
                    lambda: show_accuracy(hub, repo, alias, window)):
        try:
            section()
        except Exception as exc:  # noqa: BLE001  # one odd answer must not hide the other sections
            st.error(explain(exc))


def show_log_health(endpoint: dict[str, Any]) -> None:
    """A warning when the endpoint's prediction log stopped writing (requests are still served), else its counts."""
    health = endpoint.get("log")
    if not health:
        st.caption("Prediction log: not open yet (it opens with the endpoint's first look at its alias).")
        return
    counts = (f"{health.get('written', 0)} rows written, {health.get('dropped', 0)} dropped, "
              f"{health.get('buffered', 0)} buffered")
    if not health.get("healthy", True):
        st.warning(f"Prediction log: logging stopped: {health.get('error') or 'unknown error'}; requests are still "
                   f"served, but monitoring (agreement, charts, drift, accuracy) misses them ({counts}). "
                   "Free disk space under the hub's home, or check the hub's log.")
    else:
        st.caption(f"Prediction log: healthy · {counts}.")


def describe_rule(rule: dict[str, Any]) -> str:
    """A traffic rule as one line (`off`, `canary: 30% to canary`, `shadow: mirrored to canary`)."""
    mode = rule.get("mode") or "off"
    if mode == "canary":
        return f"canary: {float(rule.get('share') or 0):.0%} of requests answered by `{rule.get('target')}`"
    if mode == "shadow":
        return f"shadow: every request mirrored to `{rule.get('target')}` (its answers are only logged)"
    return "off: every request is answered by this alias alone"


def show_traffic(hub: Hub, repo: str, alias: str, key: str) -> None:
    """The alias's canary or shadow rule, and a form to set it (off, canary with a share, shadow), with a reason."""
    st.markdown("#### Traffic rule")
    rule = attempt(lambda: hub.client.traffic(repo, alias))
    if rule is None:
        return
    st.markdown(f"**Now** {describe_rule(rule)}")
    found = attempt(lambda: hub.client.aliases(repo, history=False))
    others = sorted(str(a["name"]) for a in (found or {}).get("aliases", []) if a.get("name") != alias)
    current = rule.get("mode") if rule.get("mode") in MODES else "off"
    cols = st.columns([1, 1, 1, 2])
    mode = str(cols[0].radio("Mode", MODES, index=MODES.index(current), key=f"ep_mode_{key}", horizontal=True))
    target = cols[1].selectbox("Target alias", others, key=f"ep_target_{key}", disabled=mode == "off",
                               index=others.index(rule["target"]) if rule.get("target") in others else 0)
    share = cols[2].slider("Canary share", 0.0, 1.0, float(rule.get("share") or 0.0), 0.05, key=f"ep_share_{key}",
                           disabled=mode != "canary")
    reason = cols[3].text_input("Reason", key=f"ep_reason_{key}", placeholder="why (kept in the alias's audit log)")
    if mode != "off" and not others:
        st.info(f"{repo} has no other alias to send traffic to: point one (e.g. `canary`) at a commit first.")
    if st.button("Apply traffic rule", key=f"ep_apply_{key}", disabled=mode != "off" and not target):
        body = {"mode": mode, "target": str(target or "") if mode != "off" else "",
                "share": float(share) if mode == "canary" else 0.0, "reason": reason.strip()}
        done = attempt(lambda: hub.client.set_traffic(repo, alias, **body))
        if done is not None:
            st.success(f"Traffic rule of {key} is now {describe_rule(done)}; the endpoint follows it within a "
                       "second or so.")


def confusion_frame(confusion: dict[str, dict[str, int]], alias: str, other: str) -> pd.DataFrame:
    """The confusion of a pair as a table: rows are `alias`'s labels, columns `other`'s, cells the counts."""
    rows = sorted(confusion)
    cols = sorted({c for row in confusion.values() for c in row})
    frame = pd.DataFrame([[int(confusion[r].get(c, 0)) for c in cols] for r in rows],
                         index=pd.Index(rows, name=f"{alias} / {other}"), columns=cols)
    return frame


def show_comparison(hub: Hub, repo: str, alias: str, window: float) -> None:
    """How often the alias and its canary or shadow agree on the same inputs, their confusion and latencies."""
    st.markdown("#### Agreement with the canary or shadow")
    report = attempt(lambda: hub.client.comparison(repo, alias, window=window))
    if report is None:
        return
    other = report.get("other")
    if not report.get("pairs"):
        st.caption("No input was answered by both versions in this window: set a canary or shadow rule above "
                   "and send requests.")
        return
    cols = st.columns(4)
    agreement = report.get("agreement")
    cols[0].metric("Agreement", _fmt(agreement, pct=True))
    cols[1].metric("Compared", int(report.get("compared") or 0))
    cols[2].metric("Failed", int(report.get("failed") or 0))
    cols[3].metric("Other alias", str(other or "—"))
    confusion = report.get("confusion") or {}
    if confusion:
        st.caption(f"Confusion: rows are the labels of `{alias}`, columns those of `{other}`.")
        st.dataframe(confusion_frame(confusion, alias, str(other)), width="stretch")
    latency = [{"alias": a, "p50 ms": (v or {}).get("p50"), "p99 ms": (v or {}).get("p99"),
                "answers": (v or {}).get("n")} for a, v in sorted((report.get("latencyMs") or {}).items())]
    if latency:
        st.dataframe(latency, width="stretch")


def timeseries_frames(points: list[dict[str, Any]], bucket: float) -> dict[str, pd.DataFrame]:
    """The three charts' tables (request rate, error rate, latency), indexed by the bucket's start time."""
    index = pd.to_datetime([p["time"] for p in points], unit="s", utc=True).rename("time")
    aliases = sorted({a for p in points for a in (p.get("byAlias") or {})})
    rate: dict[str, list[float]] = {"requests/s": [p["requests"] / bucket for p in points]}
    if len(aliases) > 1:
        for a in aliases:
            rate[f"{a} requests/s"] = [(p.get("byAlias") or {}).get(a, 0) / bucket for p in points]
    errors = {"error rate": [p["errors"] / p["requests"] if p["requests"] else 0.0 for p in points]}
    latency = {"p50 ms": [p.get("p50Ms") for p in points], "p99 ms": [p.get("p99Ms") for p in points]}
    return {"rate": pd.DataFrame(rate, index=index), "errors": pd.DataFrame(errors, index=index),
            "latency": pd.DataFrame(latency, index=index, dtype=float)}


def show_timeseries(hub: Hub, repo: str, alias: str, window: float, bucket: float) -> None:
    """Request rate, error rate and p50/p99 latency over the window, from the prediction log."""
    st.markdown("#### Over time")
    data = attempt(lambda: hub.client.timeseries(repo, alias, window=window, bucket=bucket))
    if data is None:
        return
    points = list(data.get("points") or [])
    if not points:
        st.caption("No request was logged in this window.")
        return
    frames = timeseries_frames(points, float(data.get("bucketSeconds") or bucket))
    cols = st.columns(3)
    with cols[0]:
        st.caption(f"Request rate (requests/s, {bucket:g} s buckets)")
        st.line_chart(frames["rate"], height=220)
    with cols[1]:
        st.caption("Error rate (errors / requests)")
        st.line_chart(frames["errors"], height=220)
    with cols[2]:
        st.caption("Latency p50 / p99 (ms)")
        st.line_chart(frames["latency"], height=220)


def show_drift(hub: Hub, repo: str, alias: str, window: float, key: str) -> None:
    """On request, the drift report of the window's traffic against an evaluation of the commit served."""
    st.markdown("#### Drift")
    cols = st.columns([2, 1])
    eval_id = cols[0].text_input("Baseline evaluation (empty: the latest of the commit served)",
                                 key=f"ep_drift_eval_{key}").strip() or None
    state_key = f"ep_drift_report_{key}"
    if cols[1].button("Drift report", key=f"ep_drift_{key}"):
        try:
            st.session_state[state_key] = {"report": hub.client.drift(repo, alias, window=window, eval_id=eval_id)}
        except HubError as exc:
            st.session_state[state_key] = {"refused": str(exc)} if exc.status == 400 else {"error": explain(exc)}
        except Exception as exc:  # noqa: BLE001  # a network error: say so, keep the page
            st.session_state[state_key] = {"error": explain(exc)}
    shown = st.session_state.get(state_key)
    if not shown:
        return
    if "refused" in shown:
        st.info(f"{shown['refused']} {DRIFT_HINT}")
        return
    if "error" in shown:
        st.error(shown["error"])
        return
    show_drift_report(shown["report"])


def show_drift_report(report: dict[str, Any]) -> None:
    """A drift report: its status, baseline and live rows, and every feature's test, p-value and PSI."""
    status = report.get("status")
    base, live = report.get("baseline") or {}, report.get("live") or {}
    where = (f"{live.get('rows', 0)} live answers of {str(report.get('commit'))[:10]} against evaluation "
             f"{base.get('eval')} ({base.get('dataset')} {base.get('split')}, {base.get('rows')} rows)")
    if status == "stable":
        st.success(f"Stable: no feature drifted — {where}.")
    elif status == "drifted":
        st.error(f"Drifted: {', '.join(report.get('drifted') or [])} — {where}.")
    else:
        st.warning(f"Insufficient data to judge drift — {where}; send more requests or widen the window.")
    thresholds = report.get("thresholds") or {}
    if thresholds:
        st.caption(f"A feature drifts when p < {thresholds.get('p')} and PSI ≥ {thresholds.get('psiModerate')} "
                   f"(PSI > {thresholds.get('psiSignificant')} is significant).")
    features = report.get("features") or []
    if features:
        st.dataframe([{"feature": f.get("name"), "kind": f.get("kind"), "test": f.get("test"),
                       "statistic": f.get("statistic"), "p-value": f.get("pvalue"), "psi": f.get("psi"),
                       "band": f.get("band"), "drifted": bool(f.get("drifted")),
                       "baseline mean": f.get("baselineMean"), "live mean": f.get("liveMean"),
                       "baseline rows": f.get("baselineRows"), "live rows": f.get("liveRows")} for f in features],
                     width="stretch")


def show_accuracy(hub: Hub, repo: str, alias: str, window: float) -> None:
    """Live accuracy: the metrics per commit over answers with ground truth posted (`vitrine endpoint feedback`)."""
    st.markdown("#### Live accuracy")
    report = attempt(lambda: hub.client.live_accuracy(repo, alias, window=window))
    if report is None:
        return
    commits = report.get("commits") or {}
    if not report.get("labelled") or not commits:
        st.caption("No ground truth posted for this window's answers yet: post labels for their `X-Request-Id` "
                   "(`vitrine endpoint feedback`).")
        return
    st.dataframe([{"commit": str(c)[:10], "labelled": v.get("rows"),
                   **{k: m for k, m in (v.get("metrics") or {}).items() if isinstance(m, int | float | str)}}
                  for c, v in commits.items()], width="stretch")


def summarize(text: str) -> dict[str, Any]:
    """The numbers the page shows, from an endpoint's Prometheus text."""
    by_status: dict[str, float] = {}
    dropped: dict[str, float] = {}
    swaps: dict[str, float] = {}
    hist: dict[str, dict[str, Any]] = {}
    queue_depth = 0.0
    served: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "vitrine_endpoint_requests_total":
                by_status[labels.get("status", "?")] = by_status.get(labels.get("status", "?"), 0) + value
            elif name == "vitrine_endpoint_dropped_total":
                dropped[labels.get("reason", "?")] = value
            elif name == "vitrine_endpoint_swaps_total":
                swaps[labels.get("outcome", "?")] = value
            elif name == "vitrine_endpoint_queue_depth":
                queue_depth = value
            elif name == "vitrine_endpoint_model_info" and value:
                served = dict(labels)
            for base in ("vitrine_endpoint_request_duration_seconds", "vitrine_endpoint_batch_size"):
                if name.startswith(base):
                    h = hist.setdefault(base, {"buckets": [], "sum": 0.0, "count": 0.0})
                    if name == f"{base}_bucket":
                        h["buckets"].append((float(labels["le"]), value))
                    elif name == f"{base}_sum":
                        h["sum"] = value
                    elif name == f"{base}_count":
                        h["count"] = value
    total = sum(by_status.values())
    errors = sum(v for k, v in by_status.items() if k.isdigit() and int(k) >= 400)
    latency = hist.get("vitrine_endpoint_request_duration_seconds") or {"buckets": [], "sum": 0.0, "count": 0.0}
    batch = hist.get("vitrine_endpoint_batch_size") or {"buckets": [], "sum": 0.0, "count": 0.0}
    return {"requests": int(total), "by_status": {k: int(v) for k, v in by_status.items()},
            "error_rate": errors / total if total else None,
            "latency_mean": latency["sum"] / latency["count"] if latency["count"] else None,
            "latency_p50": quantile(latency["buckets"], 0.5), "latency_p99": quantile(latency["buckets"], 0.99),
            "batch_mean": batch["sum"] / batch["count"] if batch["count"] else None,
            "queue_depth": queue_depth, "dropped": dropped, "swaps": swaps, "model": served}


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The `q` quantile estimated from cumulative histogram buckets (`le`, count), linear within a bucket."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is the best estimate
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def record_sample(url: str, stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Keep this refresh's numbers for `url` in the session (for the chart over time); all samples so far."""
    samples: dict[str, list[dict[str, Any]]] = st.session_state.setdefault("ep_samples", {})
    kept = samples.setdefault(url, [])
    kept.append({"at": time.time(), "requests": stats["requests"], "latency_p50": stats["latency_p50"],
                 "latency_p99": stats["latency_p99"]})
    del kept[:-MAX_SAMPLES]
    return kept


def _fmt(value: float | None, *, pct: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if pct else f"{value:.2f}"


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f} ms"
