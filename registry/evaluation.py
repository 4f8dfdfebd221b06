"""Evaluations: model@commit x dataset@commit x split x column mapping x metrics, with slices and per-example rows.

`plan_evaluation` pins every revision to its commit and checks everything that can be wrong with a
request before any inference runs; the pinned parameters hash to a key, so the same inputs return
the stored result unless a re-run is asked for. `run_evaluation` streams the split in batches
through the task's `Predictor` (the one the demos' pipelines and the endpoint share), computes the
metrics overall, per value of each slice column and per SQL predicate in the same pass, and stores
the per-example predictions as parquet in the blob store, queryable with DuckDB.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import platform
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from registry import events, jobs
from registry.auth import Principal
from registry.core import Registry
from registry.datasets import DatasetSplit, count_rows, dataset_splits, iter_batches, quote_ident, split_schema
from registry.datasql import run_sql
from registry.errors import InvalidInputError, RegistryError, UnauthorizedError
from registry.metrics import METRICS, check_labels, compute_metrics, library_versions, metric_definitions
from registry.names import parse_repo_id
from registry.predictors import PREDICTORS, load_predictor, resolve_task
from registry.repos import RepoRecord, get_repo, open_repo
from registry.snapshots import snapshot_dir
from registry.versions import read_version

log = logging.getLogger("vitrine.eval")

KIND = "eval"
MAX_SLICE_VALUES = 50
MAX_PREDICATES = 20
MAX_BATCH = 256
# Rows read at a time and ordered by length before they are cut into batches: less padding, same answers.
SORT_WINDOW = 8
DEFAULT_BATCH = 32
# Which mapping roles a task reads, and the dataset columns they default to.
_LABEL_TASKS = ("text-classification", "image-classification", "audio-classification", "zero-shot-classification")


@dataclass(frozen=True)
class EvalRequest:
    """What a caller asks to evaluate; revisions may be branches or tags until `plan_evaluation` pins them."""

    model: str
    dataset: str
    split: str = "test"
    model_revision: str = "main"
    dataset_revision: str = "main"
    mapping: dict[str, str] = field(default_factory=dict)
    """Predictor input role (or `label`) -> dataset column; missing roles take the task's defaults."""
    slices: list[str] = field(default_factory=list)
    """Columns whose every value gets its own metrics."""
    predicates: dict[str, str] = field(default_factory=dict)
    """Name -> SQL predicate over the split (`lang = 'de'`); each gets its own metrics."""
    task: str | None = None
    candidate_labels: list[str] = field(default_factory=list)
    batch_size: int = DEFAULT_BATCH
    limit: int | None = None
    """Evaluate only the first N rows (for a quick look); part of the key."""


def _readable(reg: Registry, principal: Principal | None, repo_id: str, repo_type: str) -> RepoRecord:
    return open_repo(reg, parse_repo_id(repo_id, repo_type), principal)


def plan_evaluation(reg: Registry, principal: Principal | None, req: EvalRequest) -> dict[str, Any]:
    """Pin `req` to commits and validate it; returns the job parameters (their hash is the cache key).

    Raises:
        RepoNotFoundError, RevisionNotFoundError: a repo or revision does not exist (or is not the caller's to read).
        InvalidInputError: unknown task or split, an empty split, a mapping naming a missing column, labels the
            model does not know, a bad predicate.
    """
    if not 1 <= req.batch_size <= MAX_BATCH:
        raise InvalidInputError(f"batch_size must be between 1 and {MAX_BATCH}.")
    if req.limit is not None and req.limit < 1:
        raise InvalidInputError("limit must be a positive number of rows.")
    if len(req.predicates) > MAX_PREDICATES:
        raise InvalidInputError(f"At most {MAX_PREDICATES} predicates per evaluation.")
    model_repo = _readable(reg, principal, req.model, "model")
    dataset_repo = _readable(reg, principal, req.dataset, "dataset")
    model = read_version(reg, model_repo, req.model_revision)
    task = req.task or model.meta.pipeline_tag
    if task is not None and req.task is None:
        task = resolve_task(task, snapshot_dir(reg, model.commit.oid, model.tree))
    if task is None or task not in PREDICTORS:
        raise InvalidInputError(
            f"Cannot evaluate {req.model}@{req.model_revision}: task {task!r} has no predictor "
            f"(supported: {', '.join(sorted(PREDICTORS))}). Pass --task to override the detected one."
        )
    dataset = read_version(reg, dataset_repo, req.dataset_revision)
    dataset_commit = dataset.commit.oid
    splits = dataset_splits(reg, dataset_repo, dataset_commit)
    if req.split not in splits:
        raise InvalidInputError(f"{req.dataset}@{req.dataset_revision} has no split {req.split!r} "
                                f"(splits: {', '.join(sorted(splits)) or 'none'}).")
    split = splits[req.split]
    mapping = _mapping(task, req.mapping)
    columns = set(split_schema(split).names)
    missing = [f"{role}={col}" for role, col in mapping.items() if col not in columns]
    missing += [f"slice {col}" for col in req.slices if col not in columns]
    if missing:
        raise InvalidInputError(f"The split {req.split!r} has no column for {', '.join(missing)} "
                                f"(columns: {', '.join(sorted(columns))}). Map them with --column ROLE=COLUMN.")
    rows = split.num_rows
    if rows == 0:
        raise InvalidInputError(f"The split {req.split!r} of {req.dataset}@{req.dataset_revision} is empty.")
    for name, predicate in req.predicates.items():
        if not name.strip() or not predicate.strip():
            raise InvalidInputError("Every predicate needs a name and a SQL condition (NAME=SQL).")
        count_rows(split, where=predicate)  # a bad predicate fails here, before any inference
    class_names = _class_names(dataset.card.data, mapping.get("label", ""))
    if task in _LABEL_TASKS and "label" in mapping:
        labels = list(req.candidate_labels) if task == "zero-shot-classification" else model.meta.labels
        if task == "zero-shot-classification" and not labels:
            raise InvalidInputError("Zero-shot classification needs candidate labels (--candidate-labels a,b,c).")
        check_labels([_reference(v, class_names or labels, task) for v in _distinct(split, mapping["label"])], labels)
    params = {
        "model": model_repo.ref.repo_id, "model_commit": model.commit.oid,
        "dataset": dataset_repo.ref.repo_id, "dataset_commit": dataset_commit, "split": req.split,
        "task": task, "mapping": mapping, "slices": sorted(set(req.slices)), "predicates": dict(req.predicates),
        "candidate_labels": list(req.candidate_labels), "metrics": list(METRICS.get(task, [])),
        "class_names": class_names,
        "limit": req.limit, "seed": 0, "rows": min(rows, req.limit or rows),
    }
    return params


def eval_key(params: dict[str, Any]) -> str:
    """The cache key of pinned parameters: equal inputs, equal key."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def _class_names(card_data: dict[str, Any], column: str) -> list[str]:
    """Names of a `ClassLabel` column from the dataset card's `dataset_info.features` (as `datasets` writes them)."""
    info = card_data.get("dataset_info")
    for entry in info if isinstance(info, list) else [info]:
        for feature in (entry or {}).get("features") or [] if isinstance(entry, dict) else []:
            if isinstance(feature, dict) and feature.get("name") == column:
                names = ((feature.get("dtype") or {}).get("class_label") or {}).get("names") \
                    if isinstance(feature.get("dtype"), dict) else None
                if isinstance(names, dict):
                    return [str(names[k]) for k in sorted(names, key=lambda k: int(k))]
                if isinstance(names, list):
                    return [str(n) for n in names]
    return []


def _mapping(task: str, given: dict[str, str]) -> dict[str, str]:
    defaults = {column: column for column in getattr(PREDICTORS[task], "input_columns", ()) or ()}
    if task in _LABEL_TASKS or task in ("token-classification", "text-regression", "sentence-similarity"):
        defaults.setdefault("label", "label")
    elif task in ("automatic-speech-recognition", "text-generation"):
        defaults.setdefault("label", "text" if task == "automatic-speech-recognition" else "target")
    return {**defaults, **given}


def _distinct(split: DatasetSplit, column: str) -> list[Any]:
    values: set[Any] = set()
    for batch in iter_batches(split, [column], batch_size=4096):
        values.update(v for v in batch.column(0).to_pylist() if v is not None)
        if len(values) > 10_000:
            break
    return sorted(values, key=str)


ProgressFn = Callable[[int, int], bool]
"""Called with (done, total) after each batch; returns True when the job should stop (cancelled)."""


class Cancelled(Exception):
    """The evaluation was cancelled between two batches."""


def run_evaluation(reg: Registry, params: dict[str, Any], progress: ProgressFn) -> dict[str, Any]:
    """Run pinned `params` (from `plan_evaluation`): predictions, metrics, slices; returns the result record."""
    started = time.monotonic()
    model_repo = get_repo(reg, parse_repo_id(params["model"], "model"))
    dataset_repo = get_repo(reg, parse_repo_id(params["dataset"], "dataset"))
    model = read_version(reg, model_repo, params["model_commit"])
    split = dataset_splits(reg, dataset_repo, params["dataset_commit"])[params["split"]]
    task, mapping = params["task"], params["mapping"]
    options: dict[str, Any] = {"candidate_labels": list(params["candidate_labels"])} if params.get("candidate_labels") else {}
    predictor = load_predictor(task, snapshot_dir(reg, model.commit.oid, model.tree), **options)
    labels = list(predictor.labels)
    names = list(params.get("class_names") or []) or labels
    inputs = {role: col for role, col in mapping.items() if role != "label"}
    label_col = mapping.get("label")
    wanted = sorted({*mapping.values(), *params["slices"]})
    total = int(params["rows"])
    references: list[Any] = []
    predictions: list[dict[str, Any]] = []
    slice_values: dict[str, list[Any]] = {col: [] for col in params["slices"]}
    flags: dict[str, list[bool]] = {name: [] for name in params["predicates"]}
    done = 0
    for name, predicate in params["predicates"].items():
        flags[name] = predicate_flags(split, predicate, limit=total, timeout_s=float(reg.settings.sql_timeout_s) * 10)
    batch_size = int(params.get("batch_size") or DEFAULT_BATCH)
    for batch in iter_batches(split, wanted, batch_size=batch_size * SORT_WINDOW):
        rows = batch.to_pylist()
        if done + len(rows) > total:
            rows = rows[: total - done]
        payloads = [predictor.preprocess({role: row[col] for role, col in inputs.items()}) for row in rows]
        predictions.extend(_predict_sorted(predictor, payloads, batch_size))
        if label_col is not None:
            references.extend(_reference(row[label_col], names, task) for row in rows)
        for col in slice_values:
            slice_values[col].extend(row[col] for row in rows)
        done += len(rows)
        if progress(done, total):
            raise Cancelled
        if done >= total:
            break
    metrics = compute_metrics(task, references, predictions, labels=labels or None) if references else {}
    slices: dict[str, dict[str, Any]] = {}
    for col, values in slice_values.items():
        groups: dict[Any, list[int]] = defaultdict(list)
        for i, value in enumerate(values):
            groups[value].append(i)
        if len(groups) > MAX_SLICE_VALUES:
            raise InvalidInputError(f"Slice column {col!r} has {len(groups)} values; at most {MAX_SLICE_VALUES}.")
        slices[col] = {str(value): _subset_metrics(task, references, predictions, idx, labels)
                       for value, idx in sorted(groups.items(), key=lambda kv: str(kv[0]))}
    predicate_metrics = {name: _subset_metrics(task, references, predictions,
                                               [i for i, f in enumerate(fl) if f], labels)
                         for name, fl in flags.items()}
    oid = _store_predictions(reg, references, predictions, slice_values, flags)
    return {
        "model": {"id": params["model"], "commit": params["model_commit"]},
        "dataset": {"id": params["dataset"], "commit": params["dataset_commit"], "split": params["split"]},
        "task": task, "mapping": mapping, "rows": done, "metrics": metrics, "slices": slices,
        "predicates": {name: {"sql": params["predicates"][name], **m} for name, m in predicate_metrics.items()},
        "metricDefinitions": metric_definitions(task), "libraryVersions": {**library_versions(),
                                                                        "python": platform.python_version()},
        "seed": params["seed"], "predictions": {"oid": oid, "format": "parquet"},
        "durationSeconds": round(time.monotonic() - started, 3),
    }


def _predict_sorted(predictor: Any, payloads: list[Any], batch_size: int) -> list[dict[str, Any]]:
    """Predict `payloads` in batches of similar length (less padding), answered in their original order.

    Padding never changes a row's prediction, only the work: a window of rows is ordered by input size,
    cut into batches, and the outputs put back where their rows were.
    """
    order = sorted(range(len(payloads)), key=lambda i: _size(payloads[i]))
    out: list[dict[str, Any]] = [{} for _ in payloads]
    for start in range(0, len(order), batch_size):
        chunk = order[start: start + batch_size]
        for i, result in zip(chunk, predictor.postprocess(predictor.predict([payloads[i] for i in chunk])),
                             strict=True):
            out[i] = result
    return out


def _size(payload: Any) -> int:
    if isinstance(payload, str):
        return len(payload)
    if isinstance(payload, dict):
        return sum(len(v) for v in payload.values() if isinstance(v, str))
    return 0


def predicate_flags(split: DatasetSplit, predicate: str, *, limit: int, timeout_s: float) -> list[bool]:
    """Whether each of the first `limit` rows of `split`, in order, matches the SQL `predicate` (NULL: no).

    Caller-written SQL runs in the sandbox's worker processes (registry/datasql.py), never in the hub's.
    """
    sql = f"SELECT coalesce(CAST((\n{predicate}\n) AS BOOLEAN), false) AS f FROM {quote_ident(split.name)}"
    result = run_sql({split.name: split}, sql, limit=limit, timeout_s=timeout_s)
    if result.truncated and len(result.rows) < limit:
        raise InvalidInputError(f"Predicate {predicate!r}: the split is too large to slice by a predicate here.")
    return [bool(v) for (v,) in result.rows]


def _reference(value: Any, labels: list[str], task: str) -> Any:
    # Class labels stored as ids (datasets' ClassLabel) name the card's class names, else the model's, by position.
    if task in _LABEL_TASKS and isinstance(value, int) and not isinstance(value, bool) and labels:
        if not 0 <= value < len(labels):
            raise InvalidInputError(f"Label id {value} is outside the model's {len(labels)} classes.")
        return labels[value]
    return value


def _subset_metrics(task: str, references: list[Any], predictions: list[dict[str, Any]], idx: list[int],
                    labels: list[str]) -> dict[str, Any]:
    if not idx or not references:
        return {"rows": len(idx)}
    sub = compute_metrics(task, [references[i] for i in idx], [predictions[i] for i in idx], labels=labels or None)
    return {"rows": len(idx), **sub}


def _store_predictions(reg: Registry, references: list[Any], predictions: list[dict[str, Any]],
                       slice_values: dict[str, list[Any]], flags: dict[str, list[bool]]) -> str:
    table: dict[str, Any] = {
        "row": list(range(len(predictions))),
        "prediction": [json.dumps(p, sort_keys=True, default=str) for p in predictions],
        "predicted": [str(p.get("label", p.get("text", p.get("value", "")))) for p in predictions],
        "score": [float(p["score"]) if isinstance(p.get("score"), (int, float)) else None for p in predictions],
    }
    if references:
        table["reference"] = [json.dumps(r, default=str) if not isinstance(r, str) else r for r in references]
        table["correct"] = [str(r) == table["predicted"][i] for i, r in enumerate(references)]
    for col, values in slice_values.items():
        table[f"slice_{col}"] = [str(v) for v in values]
    for name, fl in flags.items():
        table[f"predicate_{name}"] = fl
    buf = io.BytesIO()
    pq.write_table(pa.table(table), buf)
    return reg.blobs.put_bytes(buf.getvalue()).oid


def start_evaluation(reg: Registry, principal: Principal | None, req: EvalRequest, *,
                     rerun: bool = False) -> tuple[jobs.Job, bool]:
    """Plan `req` and return (job, cached): the stored result for equal inputs unless `rerun`, else a queued job."""
    if principal is None:
        raise UnauthorizedError("Starting an evaluation needs a token (HF_TOKEN).")
    params = plan_evaluation(reg, principal, req)
    params_with_batch = {**params, "batch_size": req.batch_size}
    key = eval_key(params)
    if not rerun:
        cached = jobs.latest_success(reg, KIND, key)
        if cached is not None:
            return cached, True
        running = jobs.active_with_key(reg, KIND, key)
        if running is not None:
            return running, False
    return jobs.submit(reg, KIND, params_with_batch, owner=principal.user, key=key), False


def may_see(reg: Registry, principal: Principal | None, job: jobs.Job) -> bool:
    """Whether the caller may read both repos the job evaluated (as they are now)."""
    try:
        _readable(reg, principal, job.params["model"], "model")
        _readable(reg, principal, job.params["dataset"], "dataset")
    except LookupError:
        return False
    return True


def warm_up() -> None:
    """Import the inference stack once while the worker is idle, so the first evaluation does not pay for it."""
    try:
        from registry.predictors.base import transformers_name

        transformers_name("pipeline")  # the import is the point: ~10 s on this machine, paid once
    except Exception:  # no ML extras installed: evaluations will say so when they run
        log.info("transformers is not importable; evaluations will fail until it is installed")


def run_job(reg: Registry, job: jobs.Job, *, worker: str | None = None) -> None:
    """Run one claimed evaluation job to its end: succeeded, cancelled or failed with a readable reason.

    With the `worker` that claimed it, a heartbeat runs beside it (a model load or a long batch reports
    no progress for a while), and every write is that worker's only while the job is still its own.
    """
    def progress(done: int, total: int) -> bool:
        return jobs.report_progress(reg, job.id, done=done, total=total, worker=worker)

    beating = threading.Event()
    if worker is not None:
        threading.Thread(target=_heartbeat, args=(reg, job.id, worker, beating), name="vitrine-eval-heartbeat",
                         daemon=True).start()
    try:
        try:
            progress(0, int(job.params.get("rows") or 0))
            result = run_evaluation(reg, job.params, progress)
        except Cancelled:
            ended = jobs.finish(reg, job.id, status="cancelled", worker=worker)
        except RegistryError as exc:
            ended = jobs.finish(reg, job.id, status="failed", error=exc.message, worker=worker)
        except Exception as exc:  # a model that fails to load or predict must not take the worker down
            log.exception("evaluation %s failed", job.id)
            ended = jobs.finish(reg, job.id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000],
                                worker=worker)
        else:
            ended = jobs.finish(reg, job.id, status="succeeded", result=result, worker=worker)
    finally:
        beating.set()
    if ended:
        _announce(reg, job.id)
    else:
        log.warning("evaluation %s was taken over by another worker; its outcome there stands", job.id)


def _heartbeat(reg: Registry, job_id: str, worker: str, stop: threading.Event) -> None:
    every = max(0.2, reg.settings.job_stale_s / 4)
    while not stop.wait(every):
        try:
            if not jobs.heartbeat(reg, job_id, worker=worker):
                return  # no longer ours: the next progress report stops the run
        except Exception:  # a DB blip: the next beat tries again, well within the staleness window
            log.exception("heartbeat of evaluation %s failed", job_id)


def _announce(reg: Registry, job_id: str) -> None:
    """Emit `evaluation.finished` on the model repo (webhooks deliver it to whoever may read both repos)."""
    job = jobs.get_job(reg, job_id)
    try:
        repo = get_repo(reg, parse_repo_id(job.params["model"], "model"))
    except LookupError:  # the repo went away while it was evaluated
        return
    metrics = {k: v for k, v in ((job.result or {}).get("metrics") or {}).items() if isinstance(v, int | float)}
    events.emit_now(reg, "evaluation.finished", repo.pk, actor=job.owner, data={"evaluation": {
        "id": job.id, "status": job.status, "error": job.error, "model": job.params["model"],
        "modelCommit": job.params["model_commit"], "dataset": job.params["dataset"],
        "datasetCommit": job.params["dataset_commit"], "split": job.params["split"], "metrics": metrics}})


def work(reg: Registry, stop: Any, *, poll_s: float = 0.5) -> None:
    """The evaluation worker loop: recover orphaned jobs, then claim and run queued ones until `stop` is set."""
    worker = jobs.worker_id()
    warmed = not reg.settings.eval_warmup
    last_recovery = 0.0
    while not stop.is_set():
        if time.monotonic() - last_recovery > reg.settings.job_stale_s / 2:
            jobs.recover_stale(reg)
            last_recovery = time.monotonic()
        job = jobs.claim_next(reg, (KIND,), worker=worker)
        if job is None:
            if not warmed:
                warm_up()
                warmed = True
            stop.wait(poll_s)
            continue
        run_job(reg, job, worker=worker)
