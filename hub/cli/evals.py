"""`vitrine eval`: evaluate a model version on a dataset split through the hub, watch it, print the metrics."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hub.cli.client import CliError, add_client_args, endpoint_of, get_json, send_json, token_of

POLL_S = 0.5


def _at(spec: str, what: str) -> tuple[str, str]:
    repo_id, _, revision = spec.partition("@")
    if repo_id.count("/") != 1:
        raise CliError(f"{what} {spec!r} must look like namespace/name[@revision].")
    return repo_id, revision or "main"


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise CliError(f"{flag} takes KEY=VALUE, got {item!r}.")
        out[key] = value
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    """Start (or reuse) an evaluation, show its progress, then print its metrics and slices."""
    from tqdm import tqdm

    endpoint, token = endpoint_of(args), token_of(args)
    model, revision = _at(args.model, "Model")
    dataset, dataset_revision = _at(args.dataset, "Dataset")
    body: dict[str, Any] = {
        "model": model, "revision": revision, "dataset": dataset, "datasetRevision": dataset_revision,
        "split": args.split, "mapping": _pairs(args.column, "--column"), "slices": args.slice,
        "predicates": _pairs(args.where, "--where"), "batchSize": args.batch_size, "rerun": args.rerun,
        "candidateLabels": [c for c in (args.candidate_labels or "").split(",") if c],
    }
    if args.task:
        body["task"] = args.task
    if args.limit:
        body["limit"] = args.limit
    job = send_json(endpoint, token, "POST", "/api/vitrine/evals", body=body, repo_id=model)
    if job.get("cached"):
        print(f"Reusing the stored result of evaluation {job['id']} (pass --rerun to evaluate again).")
    bar = tqdm(total=job["progress"]["total"] or None, unit="row", desc=f"eval {model}@{revision}",
               disable=args.quiet)
    try:
        while job["status"] in ("queued", "running"):
            time.sleep(POLL_S)
            job = get_json(endpoint, token, f"/api/vitrine/evals/{job['id']}", params={})
            bar.total = job["progress"]["total"] or bar.total
            bar.update(job["progress"]["done"] - bar.n)
    except KeyboardInterrupt:
        send_json(endpoint, token, "POST", f"/api/vitrine/evals/{job['id']}/cancel", body={})
        raise CliError(f"Cancelled evaluation {job['id']}.") from None
    finally:
        bar.close()
    if job["status"] != "succeeded":
        raise CliError(f"Evaluation {job['id']} {job['status']}: {job.get('error') or 'no reason given'}")
    print_result(job)
    if args.push:
        push_result(endpoint, token, job["result"], revision=revision, source=f"{endpoint}/api/vitrine/evals/{job['id']}")
    return 0


def print_result(job: dict[str, Any]) -> None:
    """Print an evaluation's metrics, slice metrics and predicates as tables."""
    from rich.console import Console
    from rich.table import Table

    result = job["result"]
    console = Console()
    m, d = result["model"], result["dataset"]
    console.print(f"[bold]{m['id']}@{m['commit'][:7]}[/] on {d['id']}@{d['commit'][:7]} "
                  f"split {d['split']} ({result['rows']} rows, task {result['task']}) — evaluation {job['id']}")
    table = Table("metric", "value")
    for name, value in result["metrics"].items():
        if isinstance(value, (int, float)):
            table.add_row(name, _fmt(value))
    console.print(table)
    groups = [(f"{col}={value}", metrics) for col, values in result["slices"].items() for value, metrics in values.items()]
    groups += [(f"{name}: {p['sql']}", p) for name, p in result["predicates"].items()]
    if groups:
        names = [k for k, v in result["metrics"].items() if isinstance(v, (int, float))]
        sliced = Table("slice", "rows", *names)
        for label, metrics in groups:
            sliced.add_row(label, str(metrics.get("rows", "")), *[_fmt(metrics.get(n)) for n in names])
        console.print(sliced)


def push_result(endpoint: str, token: str | None, result: dict[str, Any], *, revision: str, source: str) -> None:
    """Commit the result to the model repo as `.eval_results/<dataset>.yaml`, pinned to the dataset commit."""
    import yaml
    from huggingface_hub import EvalResultEntry, HfApi, eval_result_entries_to_yaml

    dataset, split = result["dataset"], result["dataset"]["split"]
    entries = [
        EvalResultEntry(dataset_id=dataset["id"], task_id=f"{split}/{name}", value=value,
                        dataset_revision=dataset["commit"], source_url=source, source_name="Vitrine evaluation",
                        notes=f"model commit {result['model']['commit']}; task {result['task']}")
        for name, value in result["metrics"].items() if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    path = f".eval_results/{dataset['id'].replace('/', '__')}__{split}.yaml"
    api = HfApi(endpoint=endpoint, token=token)
    info = api.upload_file(path_or_fileobj=yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False).encode(),
                           path_in_repo=path, repo_id=result["model"]["id"], revision=revision,
                           commit_message=f"Evaluation on {dataset['id']}@{dataset['commit'][:7]} ({split})")
    print(f"Pushed {path} to {result['model']['id']}@{revision}: {info.oid}")


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def register(sub: Any) -> None:
    """Add `eval` to the `vitrine` parser."""
    p = add_client_args(sub.add_parser("eval", help="evaluate a model version on a dataset split"))
    p.add_argument("model", help="model repo, optionally @revision (branch, tag or commit)")
    p.add_argument("--dataset", required=True, help="dataset repo, optionally @revision")
    p.add_argument("--split", default="test")
    p.add_argument("--column", action="append", default=[], metavar="ROLE=COLUMN",
                   help="map a model input (text, image, audio, sentence1...) or `label` to a column")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN", help="metrics per value of COLUMN")
    p.add_argument("--where", action="append", default=[], metavar="NAME=SQL",
                   help="metrics on the rows matching a SQL predicate, e.g. de=\"lang = 'de'\"")
    p.add_argument("--task", help="override the detected task")
    p.add_argument("--candidate-labels", help="comma-separated labels for zero-shot classification")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="evaluate the first N rows only")
    p.add_argument("--rerun", action="store_true", help="evaluate again even if a stored result matches")
    p.add_argument("--push", action="store_true", help="commit the result to the model repo (.eval_results/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)
