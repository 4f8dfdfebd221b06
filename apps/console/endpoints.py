"""The Endpoints page: every endpoint the hub serves, the commit each serves, its last failure and its metrics."""

from __future__ import annotations

import math
import time
from typing import Any

import streamlit as st
from prometheus_client.parser import text_string_to_metric_families

from apps.console.common import Hub, attempt, query

MAX_SAMPLES = 120


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
