"""Evaluations: start, poll, cancel, list, per-example predictions; and the Hub's dataset leaderboard.

The evaluation worker runs in this process (one job at a time, in a thread), started with the app;
jobs live in the metadata DB, so any replica may run them and a restart resumes them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hub.bodies import json_body_doc, json_object
from hub.deps import principal_of, registry_of, repo_for
from registry import evaluation, jobs
from registry.auth import check_can_write
from registry.errors import InvalidInputError, UnauthorizedError
from registry.leaderboard import dataset_leaderboard
from registry.predictions import read_predictions


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    stop = threading.Event()
    worker = threading.Thread(target=evaluation.work, args=(app.state.registry, stop), name="vitrine-eval",
                              daemon=True)
    worker.start()
    yield
    stop.set()
    await run_in_threadpool(worker.join, 30)


router = APIRouter(lifespan=_lifespan)


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"Field {key!r} must be a list of strings.")
    return list(value)


def _string_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInputError(f"Field {key!r} must map strings to strings.")
    return dict(value)


def _request(body: dict[str, Any]) -> evaluation.EvalRequest:
    def text(key: str, default: str | None = None) -> str:
        value = body.get(key, default)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"Field {key!r} must be a non-empty string.")
        return value

    def number(key: str, default: int | None) -> int | None:
        value = body.get(key, default)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidInputError(f"Field {key!r} must be an integer.")
        return value

    task = body.get("task")
    if task is not None and not isinstance(task, str):
        raise InvalidInputError("Field 'task' must be a string.")
    return evaluation.EvalRequest(
        model=text("model"), dataset=text("dataset"), split=text("split", "test"),
        model_revision=text("revision", "main"), dataset_revision=text("datasetRevision", "main"),
        mapping=_string_map(body, "mapping"), slices=_strings(body, "slices"),
        predicates=_string_map(body, "predicates"), task=task, candidate_labels=_strings(body, "candidateLabels"),
        batch_size=number("batchSize", evaluation.DEFAULT_BATCH) or evaluation.DEFAULT_BATCH,
        limit=number("limit", None),
    )


_EVAL_BODY = json_body_doc({
    "model": {"type": "string"}, "revision": {"type": "string"}, "dataset": {"type": "string"},
    "datasetRevision": {"type": "string"}, "split": {"type": "string"},
    "mapping": {"type": "object", "additionalProperties": {"type": "string"}},
    "slices": {"type": "array", "items": {"type": "string"}},
    "predicates": {"type": "object", "additionalProperties": {"type": "string"}},
    "task": {"type": "string"}, "candidateLabels": {"type": "array", "items": {"type": "string"}},
    "batchSize": {"type": "integer"}, "limit": {"type": "integer"}, "rerun": {"type": "boolean"},
}, required=("model", "dataset"))


@router.post("/api/vitrine/evals", openapi_extra=_EVAL_BODY)
async def start_eval(request: Request) -> JSONResponse:
    """Start an evaluation (202 with the job), or answer the stored result for the same pinned inputs (200)."""
    principal = await principal_of(request)
    if principal is None:  # before reading any body
        raise UnauthorizedError("Starting an evaluation needs a token (HF_TOKEN).")
    reg = registry_of(request)
    body = await json_object(request, what="evaluation request")
    req = _request(body)
    rerun = body.get("rerun", False)
    if not isinstance(rerun, bool):
        raise InvalidInputError("Field 'rerun' must be a boolean.")
    job, cached = await run_in_threadpool(evaluation.start_evaluation, reg, principal, req, rerun=rerun)
    return JSONResponse({**job.to_json(), "cached": cached}, status_code=200 if cached else 202)


async def _visible_job(request: Request, job_id: str) -> jobs.Job:
    reg, principal = registry_of(request), await principal_of(request)
    job = await run_in_threadpool(jobs.get_job, reg, job_id)
    if job.kind != evaluation.KIND or not await run_in_threadpool(evaluation.may_see, reg, principal, job):
        raise jobs.JobNotFoundError(job_id)
    return job


@router.get("/api/vitrine/evals")
async def list_evals(request: Request, model: str | None = None, dataset: str | None = None,
                     status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Evaluation history, newest first, of the repos the caller may read (`model`, `dataset`, `status` filter)."""
    if status is not None and status not in jobs.STATES:
        raise InvalidInputError(f"Invalid status {status!r}: expected one of {', '.join(jobs.STATES)}.")
    if not 1 <= limit <= 1000:
        raise InvalidInputError("limit must be between 1 and 1000.")
    reg, principal = registry_of(request), await principal_of(request)

    def run() -> list[dict[str, Any]]:
        out = []
        for job in jobs.list_jobs(reg, kind=evaluation.KIND, limit=5000, status=status):
            if (model and job.params.get("model") != model) or (dataset and job.params.get("dataset") != dataset):
                continue
            if evaluation.may_see(reg, principal, job):
                out.append(job.to_json())
            if len(out) >= limit:
                break
        return out

    return await run_in_threadpool(run)


@router.get("/api/vitrine/evals/{job_id}")
async def get_eval(request: Request, job_id: str) -> dict[str, Any]:
    """One evaluation: status, progress and, once it succeeded, the result."""
    return (await _visible_job(request, job_id)).to_json()


@router.post("/api/vitrine/evals/{job_id}/cancel")
async def cancel_eval(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel an evaluation (its owner, or whoever may write the model's namespace)."""
    job = await _visible_job(request, job_id)
    principal = await principal_of(request)
    if principal is None or principal.user != job.owner:
        check_can_write(principal, job.params["model"].split("/")[0])
    return (await run_in_threadpool(jobs.request_cancel, registry_of(request), job_id)).to_json()


@router.get("/api/vitrine/evals/{job_id}/predictions")
async def eval_predictions(request: Request, job_id: str, offset: int = 0, limit: int = 100,
                           where: str | None = None) -> dict[str, Any]:
    """Per-example predictions of a finished evaluation, paged, filtered by a read-only SQL predicate."""
    job = await _visible_job(request, job_id)
    if job.result is None:
        raise InvalidInputError(f"Evaluation {job_id} has no predictions yet (status {job.status}).")
    if not (0 <= offset and 1 <= limit <= 1000):
        raise InvalidInputError("offset must be >= 0 and limit between 1 and 1000.")
    oid = job.result["predictions"]["oid"]
    return await run_in_threadpool(read_predictions, registry_of(request), oid, offset=offset, limit=limit,
                                   where=where)


@router.get("/api/datasets/{namespace}/{name}/leaderboard")
async def leaderboard(request: Request, namespace: str, name: str) -> list[dict[str, Any]]:
    """Models ranked by the `.eval_results` entries they declare for this dataset (the Hub's leaderboard)."""
    repo = await repo_for(request, "datasets", namespace, name)
    base_only = request.query_params.get("base_model", "true").lower() not in ("false", "0")
    return await run_in_threadpool(dataset_leaderboard, registry_of(request), repo, await principal_of(request),
                                   base_model_only=base_only)
