"""What the prediction log says about a live version: canary/shadow agreement, drift, and live accuracy.

Drift compares a window of live traffic with a baseline, the per-example predictions of an
evaluation of the same commit (and the inputs of the dataset rows it ran on), with the field's
conventions computed by scipy: the population stability index on every feature (bands: < 0.1 stable,
0.1-0.25 moderate, > 0.25 significant), two-sample Kolmogorov-Smirnov for numeric features (text
length, token count, score) and chi-squared for categorical ones (the predicted label), p < 0.05.
A feature has drifted when its test rejects (p < 0.05) and its PSI is at least moderate: with
thousands of rows a test alone flags shifts too small to matter, with a few dozen PSI alone is noise.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from registry import events, jobs
from registry.core import Registry
from registry.datasets import dataset_splits, iter_batches, read_table
from registry.errors import InvalidInputError
from registry.evaluation import KIND as EVAL_KIND
from registry.metrics import compute_metrics
from registry.names import parse_repo_id
from registry.predictionlog import feedback, read_log
from registry.predictions import predictions_split
from registry.repos import RepoRecord, get_repo, resolve_commit
from registry.snapshots import snapshot_dir
from registry.versions import read_version

P_VALUE = 0.05
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25
MIN_ROWS = 20
BINS = 10
_EPS = 1e-4
MAX_WINDOW_S = 90 * 24 * 3600


def _window(window_s: float) -> float:
    if isinstance(window_s, bool) or not isinstance(window_s, int | float) or not 0 < window_s <= MAX_WINDOW_S:
        raise InvalidInputError(f"A window is 1 to {MAX_WINDOW_S} seconds, got {window_s!r}.")
    return float(window_s)


def _since(window_s: float) -> float:
    import time

    return time.time() - _window(window_s)


def comparison(reg: Registry, repo: RepoRecord, alias: str, *, window_s: float = 3600) -> dict[str, Any]:
    """Agreement of the two versions of a canary or shadow pair on the same logged inputs, and their confusion."""
    table = read_log(reg, repo.pk, alias, since=_since(window_s))
    rows = table.select(["request_id", "input_index", "role", "served_alias", "commit", "label", "error",
                         "latency_ms"]).to_pylist()
    by_input: dict[tuple[str, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_input[(row["request_id"], row["input_index"])][row["served_alias"]] = row
    pairs = [(v[alias], next(r for a, r in v.items() if a != alias)) for v in by_input.values()
             if alias in v and len(v) == 2]
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    agree = failed = 0
    other_alias = pairs[0][1]["served_alias"] if pairs else None
    for mine, theirs in pairs:
        if theirs["error"] or mine["error"]:
            failed += 1
            continue
        agree += mine["label"] == theirs["label"]
        confusion[str(mine["label"])][str(theirs["label"])] += 1
    compared = len(pairs) - failed
    latency = {a: _percentiles([r["latency_ms"] for r in rows if r["served_alias"] == a and r["latency_ms"]])
               for a in {r["served_alias"] for r in rows}}
    return {"alias": alias, "other": other_alias, "windowSeconds": window_s, "pairs": len(pairs),
            "compared": compared, "failed": failed, "agreement": agree / compared if compared else None,
            "confusion": {k: dict(v) for k, v in sorted(confusion.items())}, "latencyMs": latency,
            "commits": sorted({r["commit"] for r in rows if r["commit"]})}


MAX_BUCKETS = 2000


def timeseries(reg: Registry, repo: RepoRecord, alias: str, *, window_s: float = 3600,
               bucket_s: float = 60) -> dict[str, Any]:
    """Per time bucket of the window: answers, errors, latency p50/p99 and the commits that answered."""
    window = _window(window_s)
    if isinstance(bucket_s, bool) or not isinstance(bucket_s, int | float) or not 1 <= bucket_s <= window \
            or window / bucket_s > MAX_BUCKETS:
        raise InvalidInputError(f"A bucket is 1 s to the window, and at most {MAX_BUCKETS} buckets fit a window.")
    table = read_log(reg, repo.pk, alias, since=_since(window))
    buckets: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in table.select(["time", "role", "input_index", "latency_ms", "error", "served_alias"]).to_pylist():
        if row["role"] == "answer" and row["input_index"] == 0:
            buckets[int(row["time"].timestamp() // bucket_s)].append(row)
    points = []
    for key in sorted(buckets):
        rows = buckets[key]
        latency = _percentiles([r["latency_ms"] for r in rows if r["latency_ms"] is not None and not r["error"]])
        points.append({"time": key * bucket_s, "requests": len(rows), "errors": sum(1 for r in rows if r["error"]),
                       "p50Ms": latency["p50"] if latency else None, "p99Ms": latency["p99"] if latency else None,
                       "byAlias": dict(Counter(r["served_alias"] for r in rows))})
    return {"alias": alias, "windowSeconds": window, "bucketSeconds": bucket_s, "points": points}


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)), "n": int(arr.size)}


def _baseline_job(reg: Registry, repo: RepoRecord, commit: str, eval_id: str | None) -> jobs.Job:
    if eval_id:
        job = jobs.get_job(reg, eval_id)
        if job.kind != EVAL_KIND or job.params.get("model") != repo.ref.repo_id or job.status != "succeeded":
            raise InvalidInputError(f"Evaluation {eval_id} is not a finished evaluation of {repo.ref.repo_id}.")
        return job
    for job in jobs.list_jobs(reg, kind=EVAL_KIND, limit=5000, status="succeeded"):
        if job.params.get("model") == repo.ref.repo_id and job.params.get("model_commit") == commit:
            return job
    raise InvalidInputError(f"No finished evaluation of {repo.ref.repo_id}@{commit[:12]} to use as the baseline; "
                            f"run one: vitrine eval {repo.ref.repo_id}@{commit[:12]} --dataset OWNER/NAME.")


def _baseline(reg: Registry, job: jobs.Job) -> dict[str, list[Any]]:
    """The baseline's features: its predictions (label, score) and its inputs' text length and token count."""
    from registry.predictors.base import count_tokens

    preds = read_table(predictions_split(reg, (job.result or {})["predictions"]["oid"]).files[0],
                       columns=["row", "predicted", "score"]).to_pydict()
    features: dict[str, list[Any]] = {"label": [str(p) for p in preds["predicted"]],
                                      "score": [s for s in preds["score"] if s is not None]}
    text_col = job.params.get("mapping", {}).get("text")
    if text_col:
        dataset = get_repo(reg, parse_repo_id(job.params["dataset"], "dataset"))
        split = dataset_splits(reg, dataset, job.params["dataset_commit"])[job.params["split"]]
        texts: list[str] = []
        for batch in iter_batches(split, [text_col], batch_size=4096):
            texts.extend(str(t) for t in batch.column(text_col).to_pylist())
            if len(texts) >= len(preds["row"]):
                break
        texts = texts[: len(preds["row"])]
        model_repo = get_repo(reg, parse_repo_id(job.params["model"], "model"))
        version = read_version(reg, model_repo, job.params["model_commit"])
        features["text_length"] = [len(t) for t in texts]
        features["token_count"] = count_tokens(snapshot_dir(reg, version.commit.oid, version.tree), texts)
    return features


def _psi_categorical(base: list[str], live: list[str]) -> tuple[float, dict[str, Any]]:
    cats = sorted(set(base) | set(live))
    b, lv = Counter(base), Counter(live)
    pb = np.array([max(b[c] / len(base), _EPS) for c in cats])
    pl = np.array([max(lv[c] / len(live), _EPS) for c in cats])
    psi = float(np.sum((pl - pb) * np.log(pl / pb)))
    return psi, {"baseline": {c: b[c] / len(base) for c in cats}, "live": {c: lv[c] / len(live) for c in cats}}


def _psi_numeric(base: np.ndarray, live: np.ndarray) -> float:
    edges = np.unique(np.quantile(base, np.linspace(0, 1, BINS + 1)))
    if edges.size < 2:
        edges = np.array([base.min() - 0.5, base.max() + 0.5])
    edges[0], edges[-1] = -np.inf, np.inf
    pb = np.maximum(np.histogram(base, edges)[0] / base.size, _EPS)
    pl = np.maximum(np.histogram(live, edges)[0] / live.size, _EPS)
    return float(np.sum((pl - pb) * np.log(pl / pb)))


def _band(psi: float) -> str:
    return "stable" if psi < PSI_MODERATE else "moderate" if psi <= PSI_SIGNIFICANT else "significant"


def _feature(name: str, base: list[Any], live: list[Any]) -> dict[str, Any]:
    from scipy import stats

    out: dict[str, Any] = {"name": name, "baselineRows": len(base), "liveRows": len(live)}
    if name == "label":
        psi, detail = _psi_categorical([str(v) for v in base], [str(v) for v in live])
        cats = sorted(detail["baseline"])
        table = np.array([[Counter(map(str, base))[c] for c in cats], [Counter(map(str, live))[c] for c in cats]])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            statistic, pvalue = 0.0, 1.0
        else:
            statistic, pvalue = (float(x) for x in stats.chi2_contingency(table)[:2])
        out.update(kind="categorical", test="chi-squared", distribution=detail)
    else:
        b, lv = np.asarray(base, dtype=float), np.asarray(live, dtype=float)
        psi = _psi_numeric(b, lv)
        result = stats.ks_2samp(b, lv)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
        out.update(kind="numeric", test="kolmogorov-smirnov", baselineMean=float(b.mean()), liveMean=float(lv.mean()))
    out.update(psi=psi, band=_band(psi), statistic=statistic, pvalue=pvalue,
               drifted=bool(pvalue < P_VALUE and psi >= PSI_MODERATE))
    return out


def drift_report(reg: Registry, repo: RepoRecord, alias: str, *, window_s: float = 3600,
                 eval_id: str | None = None) -> dict[str, Any]:
    """Live traffic of `alias` over the window against the baseline evaluation of the commit it serves.

    Only answers logged from that commit count; `status` is "drifted" (naming `drifted` features),
    "stable", or "insufficient" when either side has fewer than `MIN_ROWS` rows. A drifted report
    emits a `drift.detected` event for webhooks.
    """
    commit = resolve_commit(reg, repo, alias).oid
    job = _baseline_job(reg, repo, commit, eval_id)
    table = read_log(reg, repo.pk, alias, since=_since(window_s))
    live_rows = [r for r in table.select(["role", "commit", "label", "score", "text_length", "token_count", "error"])
                 .to_pylist() if r["role"] == "answer" and r["commit"] == job.params["model_commit"] and not r["error"]]
    base = _baseline(reg, job)
    live: dict[str, list[Any]] = {name: [r[name] for r in live_rows if r.get(name) is not None] for name in base}
    report: dict[str, Any] = {
        "alias": alias, "commit": job.params["model_commit"], "windowSeconds": window_s,
        "baseline": {"eval": job.id, "dataset": job.params["dataset"], "datasetCommit": job.params["dataset_commit"],
                     "split": job.params["split"], "rows": len(base["label"])},
        "live": {"rows": len(live_rows)}, "thresholds": {"p": P_VALUE, "psiModerate": PSI_MODERATE,
                                                          "psiSignificant": PSI_SIGNIFICANT},
        "features": [],
    }
    if len(live_rows) < MIN_ROWS or len(base["label"]) < MIN_ROWS:
        report.update(status="insufficient", drifted=[])
        return report
    report["features"] = [_feature(name, values, live[name]) for name, values in base.items()
                          if len(values) >= MIN_ROWS and len(live[name]) >= MIN_ROWS]
    drifted = [f["name"] for f in report["features"] if f["drifted"]]
    report.update(status="drifted" if drifted else "stable", drifted=drifted)
    if drifted:
        events.emit_now(reg, "drift.detected", repo.pk, actor="", data={"drift": {
            "alias": alias, "commit": report["commit"], "features": drifted, "eval": job.id,
            "psi": {f["name"]: f["psi"] for f in report["features"] if f["drifted"]}}})
    return report


def live_accuracy(reg: Registry, repo: RepoRecord, alias: str, *, window_s: float = 3600) -> dict[str, Any]:
    """Evaluation metrics over the window's answers that have ground truth posted for their request id."""
    labels = feedback(reg, repo.pk)
    table = read_log(reg, repo.pk, alias, since=_since(window_s))
    rows = [r for r in table.select(["request_id", "input_index", "role", "task", "label", "score", "commit"])
            .to_pylist() if r["role"] == "answer" and r["input_index"] == 0 and r["request_id"] in labels]
    by_commit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_commit[r["commit"]].append(r)
    out: dict[str, Any] = {"alias": alias, "windowSeconds": window_s, "labelled": len(rows), "commits": {}}
    for commit, items in by_commit.items():
        task = items[0]["task"]
        refs = [labels[r["request_id"]] for r in items]
        preds = [{"label": r["label"], "score": r["score"]} for r in items]
        known = sorted({*refs, *(p["label"] for p in preds)})
        metrics = compute_metrics(task, refs, preds, labels=known)
        out["commits"][commit] = {"rows": len(items), "metrics": {k: v for k, v in metrics.items()
                                                                  if k != "confusion_matrix"}}
    return out

