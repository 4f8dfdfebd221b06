"""Watching a live endpoint: its canary or shadow rule, the prediction log (SQL), agreement, drift, live accuracy.

Aggregates (agreement, drift, accuracy) are for whoever may read the repo; the raw log holds callers'
inputs, so reading it with SQL, and posting ground truth, need write access to the repo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of, repo_for
from hub.endpoints.serving import EndpointHost
from registry import monitoring, predictionlog, traffic
from registry.aliases import check_alias_name
from registry.datasql import run_sql
from registry.errors import InvalidInputError
from registry.core import Registry
from registry.repos import RepoRecord

router = APIRouter()
MAX_FEEDBACK = 10_000
_BASE = "/api/models/{namespace}/{name}/endpoints/{alias}"


def _flush(request: Request, repo: RepoRecord, alias: str) -> None:
    """Write the running endpoint's buffered log rows first, so a report sees every request answered so far."""
    host: EndpointHost = request.app.state.endpoints
    for endpoint in host.running():
        if endpoint.ref == repo.ref and endpoint.alias == alias and endpoint.log is not None:
            endpoint.log.flush()


def _window(request: Request) -> float:
    raw = request.query_params.get("window", "3600")
    try:
        return float(raw)
    except ValueError:
        raise InvalidInputError(f"Query parameter 'window' must be a number of seconds, got {raw!r}.") from None


async def _log_report(request: Request, namespace: str, name: str, alias: str,
                      compute: Callable[[Registry, RepoRecord, float], dict[str, Any]]) -> dict[str, Any]:
    """A report over an alias's log, for readers of the repo: the running endpoint's buffer is written first, then
    `compute(registry, repo, window seconds)` runs off the event loop."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)
    check_alias_name(alias)
    window = _window(request)

    def report() -> dict[str, Any]:
        _flush(request, repo, alias)
        return compute(reg, repo, window)

    return await run_in_threadpool(report)


@router.get(f"{_BASE}/traffic")
async def get_traffic(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """The canary or shadow rule of an alias's endpoint (mode `off` when none)."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name)
    check_alias_name(alias)
    return (await run_in_threadpool(traffic.get_traffic, reg, repo, alias)).to_json()


@router.put(f"{_BASE}/traffic", openapi_extra=json_body_doc(
    {"mode": {"type": "string", "enum": list(traffic.MODES)}, "target": {"type": "string"},
     "share": {"type": "number"}, "reason": {"type": "string"}}, required=("mode",)))
async def set_traffic(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Send a share of the endpoint's traffic to a canary alias, mirror it all to a shadow, or stop (`off`); audited."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    principal = await principal_of(request)
    body = await json_object(request, what="traffic body")
    mode, target, share, reason = body.get("mode"), body.get("target", ""), body.get("share", 0.0), body.get("reason", "")
    if not isinstance(mode, str) or not isinstance(target, str) or not isinstance(reason, str):
        raise InvalidInputError("Fields 'mode', 'target' and 'reason' must be strings.")
    rule = await run_in_threadpool(lambda: traffic.set_traffic(reg, principal, repo, alias, mode=mode, target=target,
                                                               share=share, reason=reason))
    return rule.to_json()


@router.post(f"{_BASE}/log/sql", openapi_extra=json_body_doc(
    {"sql": {"type": "string"}, "limit": {"type": "integer"}}, required=("sql",)))
async def log_sql(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Read-only SQL over the endpoint's prediction log, visible as table `log` (writers of the repo only)."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    check_alias_name(alias)
    body = await json_object(request, what="SQL body")
    sql = body.get("sql")
    if not isinstance(sql, str):
        raise InvalidInputError("Field 'sql' must be a string: one SELECT over table `log`.")
    limit = body.get("limit", reg.settings.sql_row_limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= reg.settings.sql_row_limit:
        raise InvalidInputError(f"Field 'limit' must be an integer from 1 to {reg.settings.sql_row_limit}.")

    def query() -> dict[str, Any]:
        _flush(request, repo, alias)
        split = predictionlog.log_split(reg, repo.pk, alias)
        result = run_sql({"log": split}, sql, limit=limit, timeout_s=float(reg.settings.sql_timeout_s))
        return {"columns": result.columns, "types": result.types, "rows": [list(r) for r in result.rows],
                "truncated": result.truncated, "elapsedSeconds": result.elapsed_s}

    return await run_in_threadpool(query)


@router.get(f"{_BASE}/comparison")
async def compare(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """How often the canary or shadow agrees with the alias's version on the same inputs, with their confusion."""
    return await _log_report(request, namespace, name, alias,
                             lambda reg, repo, window: monitoring.comparison(reg, repo, alias, window_s=window))


@router.get(f"{_BASE}/timeseries")
async def timeseries(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Requests, errors and latency percentiles per time bucket (`window`, `bucket` in seconds), from the log."""
    def compute(reg: Registry, repo: RepoRecord, window: float) -> dict[str, Any]:
        try:
            bucket = float(request.query_params.get("bucket", "60"))
        except ValueError:
            raise InvalidInputError("Query parameter 'bucket' must be a number of seconds.") from None
        return monitoring.timeseries(reg, repo, alias, window_s=window, bucket_s=bucket)

    return await _log_report(request, namespace, name, alias, compute)


@router.get(f"{_BASE}/drift")
async def drift(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """The drift report of the window's traffic against an evaluation of the commit served (`eval=` picks one)."""
    eval_id = request.query_params.get("eval") or None
    return await _log_report(request, namespace, name, alias, lambda reg, repo, window: monitoring.drift_report(
        reg, repo, alias, window_s=window, eval_id=eval_id))


@router.post(f"{_BASE}/feedback", openapi_extra=json_body_doc(
    {"labels": {"type": "array", "items": {"type": "object", "properties": {
        "requestId": {"type": "string"}, "label": {"type": "string"}}}}}, required=("labels",)))
async def post_feedback(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """Ground truth for logged requests (their `X-Request-Id`), for live accuracy (writers of the repo only)."""
    reg, repo = registry_of(request), await repo_for(request, "models", namespace, name, write=True)
    check_alias_name(alias)
    body = await json_object(request, what="feedback body")
    items = body.get("labels")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_FEEDBACK:
        raise InvalidInputError(f"Field 'labels' must be a list of 1 to {MAX_FEEDBACK} objects.")
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("requestId"), str) \
                or not isinstance(item.get("label"), str) or not 0 < len(item["requestId"]) <= 128:
            raise InvalidInputError('Each label is {"requestId": str (at most 128 characters), "label": str}.')
        pairs.append((item["requestId"], item["label"]))
    stored = await run_in_threadpool(predictionlog.add_feedback, reg, repo.pk, pairs)
    return {"stored": stored}


@router.get(f"{_BASE}/accuracy")
async def accuracy(request: Request, namespace: str, name: str, alias: str) -> dict[str, Any]:
    """The evaluation's metrics over the window's answers that have ground truth, per commit served."""
    return await _log_report(request, namespace, name, alias,
                             lambda reg, repo, window: monitoring.live_accuracy(reg, repo, alias, window_s=window))
